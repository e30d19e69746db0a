package metrics

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/runatlantis/atlantis-lock-operator/internal/events"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// fakeSource returns the snapshot it is given, and remembers the window asked for.
type fakeSource struct {
	snap orchestrator.MetricsSnapshot
	from time.Time
}

func (f *fakeSource) GetMetricsSince(from time.Time) *orchestrator.MetricsSnapshot {
	f.from = from
	s := f.snap
	return &s
}

func TestCollectorComputesRatesErrorRateAndHealthScore(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	src := &fakeSource{snap: orchestrator.MetricsSnapshot{Decisions: 100, BackendErrors: 1, Grants: 40, MaxQueueLength: 10}}
	m := New(func() (int, int) { return 0, 0 })
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	var published []events.Event
	c := NewCollector(src, m, CollectorOptions{
		Interval: 30 * time.Second, Retention: time.Hour, Clock: clk, Gatherer: reg,
		Publish: func(e events.Event) { published = append(published, e) },
	})

	first := c.Collect()
	if first.ErrorRate != 0 || first.HealthScore != 100 {
		t.Errorf("first collection: error rate %v, score %d; want 0 and 100 (no window yet)", first.ErrorRate, first.HealthScore)
	}
	if !src.from.Equal(t0.Add(-time.Hour)) {
		t.Errorf("percentiles asked from %v, want one retention period back", src.from)
	}

	// 30 s later: 200 more decisions, 20 of them failed (10 %), 60 more grants,
	// 2 deadlocks in the latest scan, the fullest queue 9 of 10.
	clk.Step(30 * time.Second)
	src.snap = orchestrator.MetricsSnapshot{
		Decisions: 300, BackendErrors: 16, TimeoutErrors: 5, Grants: 100,
		CurrentDeadlocks: 2, LongestQueue: 9, MaxQueueLength: 10, LastError: "etcd slow",
	}
	snap := c.Collect()
	if snap.ErrorRate != 0.1 {
		t.Errorf("error rate %v, want 0.1", snap.ErrorRate)
	}
	if snap.Rates.Grants != 2 || snap.Rates.Decisions != 200.0/30 {
		t.Errorf("rates %+v, want 2 grants/s and 6.67 decisions/s", snap.Rates)
	}
	// 100 - 10%×50 - 2×10 - (0.9-0.8)×100 = 100 - 5 - 20 - 10
	if snap.HealthScore != 65 {
		t.Errorf("health score %d, want 65", snap.HealthScore)
	}
	if got := testutil.ToFloat64(m.ErrorRate); got != 0.1 {
		t.Errorf("atlantis_lock_error_rate = %v, want 0.1", got)
	}
	if got := testutil.ToFloat64(m.HealthScore); got != 65 {
		t.Errorf("atlantis_lock_health_score = %v, want 65", got)
	}
	if len(published) != 2 || published[1].Type != events.MetricsUpdated || !strings.Contains(published[1].Message, "health score 65") {
		t.Errorf("published %+v, want a metrics_updated event per collection", published)
	}
	if !c.LastRun().Equal(t0.Add(30 * time.Second)) {
		t.Errorf("LastRun %v", c.LastRun())
	}

	// Between collections, the JSON export shows the counters as they are now,
	// with the last interval's rates.
	src.snap.Grants, src.snap.LocksHeld = 130, 4
	body, err := c.ExportMetrics("json")
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]any
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Fatalf("JSON export does not parse: %v\n%s", err, body)
	}
	for _, key := range []string{"healthScore", "errorRate", "rates", "wait", "acquire", "decisions", "locksHeld"} {
		if _, ok := decoded[key]; !ok {
			t.Errorf("JSON export lacks %q:\n%s", key, body)
		}
	}
	if decoded["grants"] != 130.0 || decoded["locksHeld"] != 4.0 || decoded["errorRate"] != 0.1 || decoded["healthScore"] != 65.0 {
		t.Errorf("JSON export is not current: %s", body)
	}
	text, err := c.ExportMetrics("prometheus")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "atlantis_lock_health_score 65") || strings.Contains(string(text), "go_goroutines") {
		t.Errorf("Prometheus export must hold the atlantis_* series only:\n%s", text)
	}
	if _, err := c.ExportMetrics("xml"); err == nil || !strings.Contains(err.Error(), `"json" or "prometheus"`) {
		t.Errorf("ExportMetrics(xml) = %v, want an error naming the supported formats", err)
	}
}
