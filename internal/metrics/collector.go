package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"k8s.io/utils/clock"

	"github.com/runatlantis/atlantis-lock-operator/internal/events"
	"github.com/runatlantis/atlantis-lock-operator/internal/health"
	"github.com/runatlantis/atlantis-lock-operator/internal/latency"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// Export formats of ExportMetrics.
const (
	// FormatJSON is the Snapshot as JSON, as /metrics/atlantis serves it.
	FormatJSON = "json"
	// FormatPrometheus is the atlantis_* series in the Prometheus text format.
	FormatPrometheus = "prometheus"
)

// Source is where the collector reads the orchestrator's counters.
type Source interface {
	// GetMetricsSince returns the counters, with latency percentiles over the
	// samples taken at or after from.
	GetMetricsSince(from time.Time) *orchestrator.MetricsSnapshot
}

// Snapshot is what the collector saw at one collection: the orchestrator's
// counters and percentiles, plus the rates over the last collection interval and
// the health score. It is the JSON of /metrics/atlantis.
type Snapshot struct {
	orchestrator.MetricsSnapshot
	// IntervalSeconds is the length of the window the rates are measured over:
	// the time since the previous collection.
	IntervalSeconds float64 `json:"intervalSeconds"`
	// RetentionSeconds is how far back the percentiles look (retention_period).
	RetentionSeconds float64 `json:"retentionSeconds"`
	// Rates are per second over the interval.
	Rates Rates `json:"rates"`
	// ErrorRate is the share of decisions over the interval that failed with a
	// backend error or timeout (atlantis_lock_error_rate).
	ErrorRate float64 `json:"errorRate"`
	// QueueUtilization is the fullest queue's share of max_queue_length.
	QueueUtilization float64 `json:"queueUtilization"`
	// HealthScore is the overall health score (atlantis_lock_health_score).
	HealthScore int `json:"healthScore"`
	// APICalls are the latency percentiles of the operator's calls to the API
	// server over the retention period, keyed by "verb resource" ("update leases").
	APICalls map[string]latency.Percentiles `json:"apiCalls,omitempty"`
}

// Rates are counts per second over a collection interval.
type Rates struct {
	// Decisions per second (one per reconcile of a key).
	Decisions float64 `json:"decisions"`
	// Grants per second.
	Grants float64 `json:"grants"`
	// HandOffs per second.
	HandOffs float64 `json:"handOffs"`
	// Errors per second: backend errors and timeouts.
	Errors float64 `json:"errors"`
}

// CollectorOptions configure a Collector.
type CollectorOptions struct {
	// Interval is how often a snapshot is taken (collection_interval).
	Interval time.Duration
	// Retention is how far back latency percentiles look (retention_period).
	Retention time.Duration
	// Clock is the collector's only source of time.
	Clock clock.WithTicker
	// Publish, if set, receives the metrics_updated event of each collection.
	Publish func(events.Event)
	// Gatherer is where ExportMetrics("prometheus") reads the series from: the
	// registry the Metrics were registered with.
	Gatherer prometheus.Gatherer
	// APICalls, if set, returns the percentiles of the API calls made at or
	// after from (apicalls.Recorder.Percentiles).
	APICalls func(from time.Time) map[string]latency.Percentiles
}

// Collector is the MetricsCollector of the original design: every Interval it
// reads the orchestrator's counters, computes the error rate and health score,
// sets their gauges and emits metrics_updated. It is a manager Runnable that runs
// on every replica.
type Collector struct {
	src  Source
	m    *Metrics
	opts CollectorOptions

	mu      sync.RWMutex
	last    *Snapshot
	lastRun time.Time
}

// NewCollector returns a collector of src's counters into m.
func NewCollector(src Source, m *Metrics, opts CollectorOptions) *Collector {
	return &Collector{src: src, m: m, opts: opts}
}

// Start implements manager.Runnable.
func (c *Collector) Start(ctx context.Context) error {
	ticker := c.opts.Clock.NewTicker(c.opts.Interval)
	defer ticker.Stop()
	for {
		c.Collect()
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (c *Collector) NeedLeaderElection() bool { return false }

// LastRun returns when the latest collection ran, or zero.
func (c *Collector) LastRun() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.lastRun
}

// Collect takes a snapshot now, updates the gauges and publishes metrics_updated.
func (c *Collector) Collect() *Snapshot {
	now := c.opts.Clock.Now()
	from := time.Time{}
	if c.opts.Retention > 0 {
		from = now.Add(-c.opts.Retention)
	}
	cur := c.src.GetMetricsSince(from)

	c.mu.Lock()
	prev, prevAt := c.last, c.lastRun
	snap := &Snapshot{MetricsSnapshot: *cur, RetentionSeconds: c.opts.Retention.Seconds(), APICalls: c.apiCalls(from)}
	if prev != nil {
		window := now.Sub(prevAt)
		snap.IntervalSeconds = window.Seconds()
		decisions := cur.Decisions - prev.Decisions
		errs := (cur.BackendErrors + cur.TimeoutErrors) - (prev.BackendErrors + prev.TimeoutErrors)
		if decisions > 0 {
			snap.ErrorRate = min(float64(errs)/float64(decisions), 1)
		}
		if window > 0 {
			perSecond := func(n int64) float64 { return float64(n) / window.Seconds() }
			snap.Rates = Rates{
				Decisions: perSecond(decisions),
				Grants:    perSecond(cur.Grants - prev.Grants),
				HandOffs:  perSecond(cur.HandOffs - prev.HandOffs),
				Errors:    perSecond(errs),
			}
		}
	}
	snap.QueueUtilization = health.QueueUtilization(cur.LongestQueue, cur.MaxQueueLength)
	snap.HealthScore = health.Score(snap.ErrorRate, cur.CurrentDeadlocks, snap.QueueUtilization)
	c.last, c.lastRun = snap, now
	c.mu.Unlock()

	c.m.ErrorRate.Set(snap.ErrorRate)
	c.m.HealthScore.Set(float64(snap.HealthScore))
	if c.opts.Publish != nil {
		c.opts.Publish(events.Event{
			Type: events.MetricsUpdated, Time: now,
			Message: fmt.Sprintf("health score %d, error rate %.4f, %d locks held, %d queued",
				snap.HealthScore, snap.ErrorRate, snap.LocksHeld, snap.Queued),
		})
	}
	return snap
}

func (c *Collector) apiCalls(from time.Time) map[string]latency.Percentiles {
	if c.opts.APICalls == nil {
		return nil
	}
	return c.opts.APICalls(from)
}

// Snapshot returns the latest collection's snapshot, taking one if none was
// taken yet.
func (c *Collector) Snapshot() *Snapshot {
	c.mu.RLock()
	last := c.last
	c.mu.RUnlock()
	if last == nil {
		return c.Collect()
	}
	return last
}

// Current returns the counters, gauges and percentiles as they are now, with the
// rates and error rate of the latest collection interval (rates need a window),
// and the health score of that error rate and the current deadlocks and queues.
// It changes nothing: the gauges and the window move only with Collect.
func (c *Collector) Current() *Snapshot {
	last := c.Snapshot()
	now := c.opts.Clock.Now()
	from := time.Time{}
	if c.opts.Retention > 0 {
		from = now.Add(-c.opts.Retention)
	}
	cur := c.src.GetMetricsSince(from)
	snap := *last
	snap.MetricsSnapshot = *cur
	snap.APICalls = c.apiCalls(from)
	snap.QueueUtilization = health.QueueUtilization(cur.LongestQueue, cur.MaxQueueLength)
	snap.HealthScore = health.Score(snap.ErrorRate, cur.CurrentDeadlocks, snap.QueueUtilization)
	return &snap
}

// ExportMetrics returns the metrics in format: FormatJSON (Current) or
// FormatPrometheus (the atlantis_* series in the text exposition format).
func (c *Collector) ExportMetrics(format string) ([]byte, error) {
	switch format {
	case FormatJSON:
		return json.MarshalIndent(c.Current(), "", "  ")
	case FormatPrometheus:
		if c.opts.Gatherer == nil {
			return nil, fmt.Errorf("exporting metrics: no registry to read the series from")
		}
		families, err := c.opts.Gatherer.Gather()
		if err != nil {
			return nil, fmt.Errorf("gathering metrics: %w", err)
		}
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range families {
			if !strings.HasPrefix(mf.GetName(), "atlantis_") {
				continue
			}
			if err := enc.Encode(mf); err != nil {
				return nil, fmt.Errorf("encoding %s: %w", mf.GetName(), err)
			}
		}
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("unsupported metrics format %q: use %q or %q", format, FormatJSON, FormatPrometheus)
}
