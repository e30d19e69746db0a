package health

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// Check checks one component and returns its score, 0 to 100, and the problem
// behind a score below 100. It must honour ctx: the monitor gives up on a check
// that runs past the component timeout and scores the component 0.
type Check func(ctx context.Context) (score int, problem error)

// Report is the result of one round of checks.
type Report struct {
	// Time is when the round started.
	Time time.Time
	// Components maps each component to its status.
	Components map[string]orchestrator.ComponentStatus
	// TimedOut names the components whose check ran out of time, sorted.
	TimedOut []string
}

// MonitorOptions configure a Monitor.
type MonitorOptions struct {
	// Interval is how often the checks run (health_check_interval).
	Interval time.Duration
	// Timeout bounds each check (component_timeout).
	Timeout time.Duration
	// Clock is the monitor's only source of time.
	Clock clock.WithTicker
	// OnReport, if set, is called after each round, on the monitor's goroutine:
	// the operator sets atlantis_component_health and publishes the
	// system_health_check event there.
	OnReport func(Report)
}

// Monitor runs the component checks every Interval. It is a manager Runnable
// that runs on every replica, since each replica's readiness is its own.
type Monitor struct {
	opts   MonitorOptions
	names  []string
	checks map[string]Check

	mu     sync.RWMutex
	latest map[string]orchestrator.ComponentStatus
}

// NewMonitor returns a monitor without checks; Add them before Start.
func NewMonitor(opts MonitorOptions) *Monitor {
	return &Monitor{opts: opts, checks: map[string]Check{}}
}

// Add registers the check of a component.
func (m *Monitor) Add(component string, check Check) {
	m.names = append(m.names, component)
	m.checks[component] = check
}

// Start implements manager.Runnable: a round at once, then one per Interval.
func (m *Monitor) Start(ctx context.Context) error {
	ticker := m.opts.Clock.NewTicker(m.opts.Interval)
	defer ticker.Stop()
	for {
		m.CheckNow(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (m *Monitor) NeedLeaderElection() bool { return false }

// CheckNow runs every check concurrently, each bounded by Timeout, records the
// statuses and reports them.
func (m *Monitor) CheckNow(ctx context.Context) Report {
	start := m.opts.Clock.Now()
	type result struct {
		name    string
		score   int
		problem error
	}
	results := make(chan result, len(m.names))
	for _, name := range m.names {
		go func(name string, check Check) {
			checkCtx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
			defer cancel()
			done := make(chan result, 1)
			go func() {
				score, problem := check(checkCtx)
				done <- result{name, score, problem}
			}()
			select {
			case r := <-done:
				results <- r
			case <-checkCtx.Done():
				results <- result{name, -1, fmt.Errorf("health check did not finish within %s", m.opts.Timeout)}
			}
		}(name, m.checks[name])
	}
	report := Report{Time: start, Components: make(map[string]orchestrator.ComponentStatus, len(m.names))}
	for range m.names {
		r := <-results
		if r.score < 0 {
			report.TimedOut = append(report.TimedOut, r.name)
			r.score = 0
		}
		score := min(max(r.score, 0), 100)
		st := orchestrator.ComponentStatus{Status: StatusOf(score), Score: score, LastCheck: start}
		if r.problem != nil {
			st.LastError = r.problem.Error()
		}
		report.Components[r.name] = st
	}
	sort.Strings(report.TimedOut)
	m.mu.Lock()
	m.latest = report.Components
	m.mu.Unlock()
	if m.opts.OnReport != nil {
		m.opts.OnReport(report)
	}
	return report
}

// Components returns the statuses of the latest round (empty before the first).
func (m *Monitor) Components() map[string]orchestrator.ComponentStatus {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string]orchestrator.ComponentStatus, len(m.latest))
	for k, v := range m.latest {
		out[k] = v
	}
	return out
}

// Ready is a controller-runtime readiness check (healthz.Checker): it fails
// while any component is unhealthy, naming each with its problem. Before the
// first round it passes, so that start-up is not held back by the check
// interval.
func (m *Monitor) Ready(*http.Request) error {
	var bad []string
	for name, st := range m.Components() {
		if st.Status == StatusUnhealthy {
			bad = append(bad, fmt.Sprintf("%s (score %d): %s", name, st.Score, st.LastError))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("unhealthy: %s", strings.Join(bad, "; "))
}
