package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/runatlantis/atlantis-lock-operator/internal/breaker"
	"github.com/runatlantis/atlantis-lock-operator/internal/events"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// Scores given to components with a problem.
const (
	// degradedScore: the component works, with problems since the last check.
	degradedScore = 60
	// staleScore: periodic work of the component is overdue.
	staleScore = 40
)

// Stats is where the checks read the orchestrator's counters from.
type Stats interface {
	// GetMetrics returns the orchestrator's counters.
	GetMetrics() *orchestrator.MetricsSnapshot
}

// Pinger probes the Kubernetes API server: a GET of its /readyz, for example.
type Pinger func(ctx context.Context) error

// Circuit reports the circuit breaker on the lock decisions' API calls.
type Circuit func() breaker.Status

// BackendCheck checks the Kubernetes backend: the API server must answer ping, the
// circuit breaker must be closed, and lock decisions must not have failed since the
// previous check. A failed ping or an open circuit scores 0, a half-open one
// (probing) staleScore; backend errors or timeouts since the previous check score
// degraded, with the latest error. circuit may be nil (no breaker).
func BackendCheck(ping Pinger, stats Stats, circuit Circuit) Check {
	var mu sync.Mutex
	var seen int64 = -1
	return func(ctx context.Context) (int, error) {
		if err := ping(ctx); err != nil {
			return 0, fmt.Errorf("the API server does not answer: %w", err)
		}
		if circuit != nil {
			switch st := circuit(); st.State {
			case breaker.Open:
				return 0, errors.New(st.Describe())
			case breaker.HalfOpen:
				return staleScore, errors.New(st.Describe())
			}
		}
		snap := stats.GetMetrics()
		errs := snap.BackendErrors + snap.TimeoutErrors
		mu.Lock()
		defer mu.Unlock()
		prev := seen
		seen = errs
		if prev >= 0 && errs > prev {
			return degradedScore, fmt.Errorf("%d backend errors since the last check, the latest: %s", errs-prev, snap.LastError)
		}
		return 100, nil
	}
}

// BusCheck checks the event bus: unhealthy once shut down, degraded when it
// dropped events since the previous check (a subscriber cannot keep up).
func BusCheck(bus *events.Bus) Check {
	var mu sync.Mutex
	var seen int64
	return func(context.Context) (int, error) {
		if bus.Closed() {
			return 0, errors.New("the event bus is shut down")
		}
		dropped := bus.Dropped()
		mu.Lock()
		defer mu.Unlock()
		prev := seen
		seen = dropped
		if dropped > prev {
			return degradedScore, fmt.Errorf("%d events dropped since the last check: a subscriber's buffer was full", dropped-prev)
		}
		return 100, nil
	}
}

// Freshness reports when periodic work last ran.
type Freshness interface {
	// LastRun returns when the work last ran, or zero if never.
	LastRun() time.Time
}

// FreshnessCheck checks that periodic work ran within its interval plus slack:
// the metrics collector, for example. since is when the work could first have
// run (the operator's start), so that a fresh start is not overdue.
func FreshnessCheck(what string, f Freshness, interval, slack time.Duration, clk clock.PassiveClock, since time.Time) Check {
	return func(context.Context) (int, error) {
		last := f.LastRun()
		if last.IsZero() {
			last = since
		}
		if late := clk.Since(last) - interval - slack; late > 0 {
			return staleScore, fmt.Errorf("%s last ran %s ago, every %s is due", what, clk.Since(last).Round(time.Millisecond), interval)
		}
		return 100, nil
	}
}

// Leader reports whether this replica leads (and so runs the leader-only work).
type Leader func() bool

// DeadlockDetectorCheck checks that the leader's deadlock detector scanned within
// its interval plus slack, counted from the first check that saw this replica
// lead. On other replicas the detector does not run, and is healthy.
func DeadlockDetectorCheck(stats Stats, leader Leader, interval, slack time.Duration, clk clock.PassiveClock) Check {
	var mu sync.Mutex
	var leadingSince time.Time
	return func(ctx context.Context) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if !leader() {
			leadingSince = time.Time{}
			return 100, nil
		}
		if leadingSince.IsZero() {
			leadingSince = clk.Now()
		}
		// A scan from an earlier time as leader does not count.
		last := stats.GetMetrics().LastDeadlockScanTime
		if last.Before(leadingSince) {
			last = leadingSince
		}
		fresh := FreshnessCheck("the deadlock detector", freshnessFunc(func() time.Time { return last }), interval, slack, clk, leadingSince)
		return fresh(ctx)
	}
}

// TimeoutManagerCheck checks that no queue timeout or hold expiry is overdue by
// more than slack: one that is means the deadlines are not being acted on.
func TimeoutManagerCheck(timeouts *orchestrator.TimeoutManager, leader Leader, slack time.Duration, clk clock.PassiveClock) Check {
	return func(context.Context) (int, error) {
		if !leader() {
			return 100, nil
		}
		next, ok := timeouts.Next()
		if !ok {
			return 100, nil
		}
		if late := clk.Since(next); late > slack {
			return staleScore, fmt.Errorf("a deadline is overdue by %s (%d pending)", late.Round(time.Millisecond), timeouts.Len())
		}
		return 100, nil
	}
}

type freshnessFunc func() time.Time

func (f freshnessFunc) LastRun() time.Time { return f() }
