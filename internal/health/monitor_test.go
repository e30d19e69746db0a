package health

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/runatlantis/atlantis-lock-operator/internal/breaker"
	"github.com/runatlantis/atlantis-lock-operator/internal/events"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

func TestMonitorScoresEachComponentAndGivesUpOnSlowChecks(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	var reports []Report
	m := NewMonitor(MonitorOptions{Interval: time.Minute, Timeout: 50 * time.Millisecond, Clock: clk,
		OnReport: func(r Report) { reports = append(reports, r) }})
	m.Add("fine", func(context.Context) (int, error) { return 100, nil })
	m.Add("limping", func(context.Context) (int, error) { return 60, errors.New("3 events dropped") })
	hung := make(chan struct{})
	defer close(hung)
	m.Add("hung", func(ctx context.Context) (int, error) {
		select {
		case <-hung:
		case <-ctx.Done():
		}
		return 100, nil
	})

	if err := m.Ready(nil); err != nil {
		t.Errorf("Ready before the first round = %v, want nil", err)
	}
	r := m.CheckNow(context.Background())
	want := map[string]orchestrator.ComponentStatus{
		"fine":    {Status: StatusHealthy, Score: 100, LastCheck: clk.Now()},
		"limping": {Status: StatusDegraded, Score: 60, LastError: "3 events dropped", LastCheck: clk.Now()},
		"hung":    {Status: StatusUnhealthy, Score: 0, LastError: "health check did not finish within 50ms", LastCheck: clk.Now()},
	}
	for name, w := range want {
		if got := r.Components[name]; got != w {
			t.Errorf("%s: %+v, want %+v", name, got, w)
		}
	}
	if len(r.TimedOut) != 1 || r.TimedOut[0] != "hung" {
		t.Errorf("TimedOut = %v, want [hung]", r.TimedOut)
	}
	if len(reports) != 1 {
		t.Errorf("OnReport called %d times, want 1", len(reports))
	}
	err := m.Ready(nil)
	if err == nil || !strings.Contains(err.Error(), "hung (score 0)") || strings.Contains(err.Error(), "limping") {
		t.Errorf("Ready = %v, want it to name the unhealthy component only", err)
	}
	if got := m.Components()["limping"].Score; got != 60 {
		t.Errorf("Components()[limping].Score = %d", got)
	}
}

type fixedStats struct{ snap orchestrator.MetricsSnapshot }

func (f *fixedStats) GetMetrics() *orchestrator.MetricsSnapshot { s := f.snap; return &s }

func TestBackendCheck(t *testing.T) {
	var pingErr error
	stats := &fixedStats{}
	circuit := breaker.Status{State: breaker.Closed}
	check := BackendCheck(func(context.Context) error { return pingErr }, stats, func() breaker.Status { return circuit })
	ctx := context.Background()
	if score, err := check(ctx); score != 100 || err != nil {
		t.Errorf("first check = %d, %v", score, err)
	}
	stats.snap.BackendErrors, stats.snap.TimeoutErrors, stats.snap.LastError = 2, 1, "etcd slow"
	if score, err := check(ctx); score != degradedScore || err == nil || !strings.Contains(err.Error(), "3 backend errors") || !strings.Contains(err.Error(), "etcd slow") {
		t.Errorf("after errors = %d, %v", score, err)
	}
	if score, err := check(ctx); score != 100 || err != nil {
		t.Errorf("no new errors = %d, %v; want healthy again", score, err)
	}
	circuit = breaker.Status{State: breaker.Open, Failures: 5, LastError: errors.New("the API server answered 500")}
	if score, err := check(ctx); score != 0 || err == nil || !strings.Contains(err.Error(), "circuit open") || !strings.Contains(err.Error(), "500") {
		t.Errorf("circuit open = %d, %v; want 0, saying so", score, err)
	}
	circuit.State = breaker.HalfOpen
	if score, err := check(ctx); score != staleScore || err == nil || !strings.Contains(err.Error(), "half-open") {
		t.Errorf("circuit half-open = %d, %v; want %d, saying so", score, err, staleScore)
	}
	circuit = breaker.Status{State: breaker.Closed}
	pingErr = errors.New("connection refused")
	if score, err := check(ctx); score != 0 || err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("API server down = %d, %v", score, err)
	}
}

func TestBusCheck(t *testing.T) {
	bus := events.NewBus(events.Options{BufferSize: 1})
	block := make(chan struct{})
	entered := make(chan struct{}, 1)
	if _, err := bus.Subscribe("slow", events.HandlerFunc(func(ctx context.Context, _ events.Event) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil
	}), events.Filter{}); err != nil {
		t.Fatal(err)
	}
	check := BusCheck(bus)
	ctx := context.Background()
	if score, err := check(ctx); score != 100 || err != nil {
		t.Errorf("idle bus = %d, %v", score, err)
	}
	bus.Publish(events.Event{Type: events.LockAcquired})
	<-entered
	for range 3 {
		bus.Publish(events.Event{Type: events.LockAcquired}) // 1 buffered, 2 dropped
	}
	if score, err := check(ctx); score != degradedScore || err == nil || !strings.Contains(err.Error(), "2 events dropped") {
		t.Errorf("after drops = %d, %v", score, err)
	}
	if score, _ := check(ctx); score != 100 {
		t.Errorf("no drops since = %d, want 100", score)
	}
	close(block)
	shutCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := bus.Shutdown(shutCtx); err != nil {
		t.Fatal(err)
	}
	if score, err := check(ctx); score != 0 || err == nil {
		t.Errorf("shut-down bus = %d, %v; want 0", score, err)
	}
}

type lastRun struct{ at time.Time }

func (l *lastRun) LastRun() time.Time { return l.at }

func TestFreshnessCheck(t *testing.T) {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	work := &lastRun{}
	check := FreshnessCheck("the collector", work, 30*time.Second, 30*time.Second, clk, start)
	ctx := context.Background()
	clk.Step(59 * time.Second) // never ran, but within two intervals of the start
	if score, err := check(ctx); score != 100 || err != nil {
		t.Errorf("fresh start = %d, %v", score, err)
	}
	clk.Step(2 * time.Second)
	if score, err := check(ctx); score != staleScore || err == nil || !strings.Contains(err.Error(), "the collector last ran 1m1s ago") {
		t.Errorf("overdue = %d, %v", score, err)
	}
	work.at = clk.Now()
	if score, _ := check(ctx); score != 100 {
		t.Errorf("just ran = %d", score)
	}
}

func TestDeadlockDetectorCheckCountsFromLeadership(t *testing.T) {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	leading := false
	stats := &fixedStats{}
	check := DeadlockDetectorCheck(stats, func() bool { return leading }, 10*time.Second, 10*time.Second, clk)
	ctx := context.Background()
	clk.Step(time.Hour)
	if score, _ := check(ctx); score != 100 {
		t.Errorf("not leading = %d, want 100: the detector does not run here", score)
	}
	leading = true
	if score, _ := check(ctx); score != 100 {
		t.Errorf("just elected = %d, want 100", score)
	}
	clk.Step(15 * time.Second)
	stats.snap.LastDeadlockScanTime = clk.Now()
	if score, _ := check(ctx); score != 100 {
		t.Errorf("scanned = %d", score)
	}
	clk.Step(21 * time.Second)
	if score, err := check(ctx); score != staleScore || err == nil {
		t.Errorf("no scan for 21s with a 10s interval = %d, %v", score, err)
	}
}

func TestTimeoutManagerCheck(t *testing.T) {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	tm := orchestrator.NewTimeoutManager()
	check := TimeoutManagerCheck(tm, func() bool { return true }, 5*time.Second, clk)
	ctx := context.Background()
	if score, _ := check(ctx); score != 100 {
		t.Errorf("no deadlines = %d", score)
	}
	tm.Set(orchestrator.LockRef{Namespace: "ns", Name: "k"}, start.Add(time.Second))
	clk.Step(6 * time.Second) // 5 s overdue: within the slack
	if score, _ := check(ctx); score != 100 {
		t.Errorf("5s overdue = %d", score)
	}
	clk.Step(time.Second)
	if score, err := check(ctx); score != staleScore || err == nil || !strings.Contains(err.Error(), "overdue by 6s") {
		t.Errorf("6s overdue = %d, %v", score, err)
	}
}
