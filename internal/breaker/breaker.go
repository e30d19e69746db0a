// Package breaker is the circuit breaker on the operator's decision path. Calls to
// the API server that fail because it cannot serve them (internal/apicalls: timeout,
// unavailable, server error, throttled) are counted; after FailureThreshold of them
// in a row the circuit opens, and lock decisions pause instead of each key retrying
// on its own. Once the open period has passed, one decision at a time may probe: a
// call that succeeds closes the circuit, one that fails opens it again for twice as
// long (client-go's flowcontrol.Backoff, up to MaxOpenTimeout).
//
// Why flowcontrol.Backoff rather than a breaker library such as sony/gobreaker: it
// takes the operator's injected clock (so that every state change is tested on a fake
// clock, as the rest of the operator is), grows the open period on repeated failed
// probes rather than keeping it fixed, and is already part of client-go.
package breaker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
)

// State is the circuit's state.
type State string

// The states.
const (
	// Closed: decisions run.
	Closed State = "closed"
	// Open: decisions pause until the open period has passed.
	Open State = "open"
	// HalfOpen: one decision at a time probes whether the API server serves again.
	HalfOpen State = "half-open"
)

// Config tunes a Breaker.
type Config struct {
	// FailureThreshold is how many failed calls in a row open the circuit.
	FailureThreshold int
	// OpenTimeout is the first open period.
	OpenTimeout time.Duration
	// MaxOpenTimeout bounds the open period as failed probes double it.
	MaxOpenTimeout time.Duration
}

// Status is the circuit as it stands.
type Status struct {
	// State is closed, open or half-open.
	State State
	// Failures counts the failed calls in a row.
	Failures int
	// Since is when the circuit last left Closed, zero while closed.
	Since time.Time
	// RetryAt is when an open circuit lets the next probe through.
	RetryAt time.Time
	// LastError is the latest failure.
	LastError error
}

// backoffID names the one entry of the backoff: a breaker guards one API server.
const backoffID = "api-server"

// Breaker is a circuit breaker. It is safe for concurrent use.
type Breaker struct {
	cfg     Config
	clk     clock.Clock
	backoff *flowcontrol.Backoff

	mu      sync.Mutex
	st      Status
	probing bool
}

// openJitter spreads the open periods of replicas that failed together by up to
// a tenth, so that their probes do not arrive at once.
const openJitter = 0.1

// New returns a closed Breaker on clk.
func New(cfg Config, clk clock.Clock) *Breaker {
	return newBreaker(cfg, clk, openJitter)
}

func newBreaker(cfg Config, clk clock.Clock, jitter float64) *Breaker {
	// NewFakeBackOffWithJitter is client-go's constructor for a Backoff on a given
	// clock; the operator's clock is the real one outside tests.
	b := &Breaker{cfg: cfg, clk: clk, backoff: flowcontrol.NewFakeBackOffWithJitter(cfg.OpenTimeout, cfg.MaxOpenTimeout, clk, jitter)}
	b.st.State = Closed
	// The backoff forgets failures older than twice its maximum; a breaker forgets
	// them only when a call succeeds.
	b.backoff.HasExpiredFunc = func(time.Time, time.Time, time.Duration) bool { return false }
	return b
}

// Record counts the outcome of one call on the decision path: failed is true for a
// transient failure (apicalls.Call.Transient), cause says what failed.
func (b *Breaker) Record(failed bool, cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clk.Now()
	if !failed {
		if b.st.State != Closed {
			b.backoff.Reset(backoffID)
		}
		b.st = Status{State: Closed}
		return
	}
	b.st.Failures++
	b.st.LastError = cause
	if b.st.State == HalfOpen || (b.st.State == Closed && b.st.Failures >= b.cfg.FailureThreshold) {
		if b.st.State == Closed {
			b.st.Since = now
		}
		b.backoff.Next(backoffID, now)
		b.st.State = Open
		b.st.RetryAt = now.Add(b.backoff.Get(backoffID))
	}
}

// Allow asks whether a decision may run now. When it may, release must be called
// once it is done (in half-open state it is the probe, and the next probe waits for
// it). When it may not, wait says how long until it may: requeue the decision then,
// rather than spin.
func (b *Breaker) Allow() (release func(), wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clk.Now()
	if b.st.State == Open && !now.Before(b.st.RetryAt) {
		b.st.State = HalfOpen
	}
	switch b.st.State {
	case Open:
		return nil, b.st.RetryAt.Sub(now)
	case HalfOpen:
		if b.probing {
			return nil, b.cfg.OpenTimeout
		}
		b.probing = true
		return b.endProbe, 0
	}
	return func() {}, 0
}

func (b *Breaker) endProbe() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}

// Status returns the circuit as it stands now.
func (b *Breaker) Status() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.st
	if st.State == Open && !b.clk.Now().Before(st.RetryAt) {
		st.State = HalfOpen
	}
	return st
}

// Describe says, for health checks and logs, why the circuit is not closed.
func (s Status) Describe() string {
	switch s.State {
	case Open:
		return fmt.Sprintf("circuit open since %s after %d failed API calls in a row; lock decisions paused until %s; the latest: %v",
			s.Since.Format(time.RFC3339), s.Failures, s.RetryAt.Format(time.RFC3339Nano), s.LastError)
	case HalfOpen:
		return fmt.Sprintf("circuit half-open since %s: one lock decision at a time probes the API server after %d failed calls in a row; the latest: %v",
			s.Since.Format(time.RFC3339), s.Failures, s.LastError)
	}
	return "circuit closed"
}

// Releaser gives up the leadership of a replica whose circuit has stayed open (or
// half-open) for After: the API server answers this replica's election renewals but
// not its lock decisions (a broken path, a proxy, one node's network), so a standby,
// which may reach it, should decide instead. It is a leader-only manager Runnable;
// GiveUp is called once, and must make the manager stop (main cancels its context:
// controller-runtime then releases the election Lease, and the process exits so that
// it restarts as a standby).
type Releaser struct {
	// Breaker is the circuit watched.
	Breaker *Breaker
	// After is how long the circuit may stay open before the leader gives up.
	After time.Duration
	// Interval is how often the circuit is looked at.
	Interval time.Duration
	// Clock is the only source of time.
	Clock clock.WithTicker
	// GiveUp stops the manager, with the reason.
	GiveUp func(reason error)
}

// NeedLeaderElection makes the Releaser run on the leader only.
func (r *Releaser) NeedLeaderElection() bool { return true }

// Start looks at the circuit every Interval until ctx ends or it gives up.
func (r *Releaser) Start(ctx context.Context) error {
	ticker := r.Clock.NewTicker(r.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		}
		if reason := r.due(); reason != nil {
			r.GiveUp(reason)
			return nil
		}
	}
}

// due returns why the leader should give up now, or nil.
func (r *Releaser) due() error {
	st := r.Breaker.Status()
	if st.State == Closed || r.Clock.Since(st.Since) < r.After {
		return nil
	}
	return fmt.Errorf("giving up leadership so that a standby decides: the API server has failed this replica's lock decisions for %s (%s)",
		r.Clock.Since(st.Since).Round(time.Millisecond), st.Describe())
}
