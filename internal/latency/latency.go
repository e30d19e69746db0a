// Package latency keeps bounded windows of latency samples and summarizes them as
// percentiles: the P50, P90, P95 and P99 of the original design's metrics snapshot,
// for lock waits and for the operator's API calls alike.
package latency

import (
	"encoding/json"
	"math"
	"slices"
	"time"
)

// MaxSamples bounds the samples a Window keeps: the newest replace the oldest.
const MaxSamples = 4096

// Window is a bounded ring of latency samples with the time each was taken. It is
// not safe for concurrent use; its owner guards it.
type Window struct {
	at   []time.Time
	dur  []time.Duration
	next int
}

// Add records a sample of d taken at at.
func (w *Window) Add(at time.Time, d time.Duration) {
	if len(w.dur) < MaxSamples {
		w.at = append(w.at, at)
		w.dur = append(w.dur, d)
		return
	}
	w.at[w.next], w.dur[w.next] = at, d
	w.next = (w.next + 1) % MaxSamples
}

// Since returns the percentiles of the samples taken at or after from.
func (w *Window) Since(from time.Time) Percentiles {
	var ds []time.Duration
	for i, at := range w.at {
		if !at.Before(from) {
			ds = append(ds, w.dur[i])
		}
	}
	return Of(ds)
}

// Percentiles summarizes latencies. In JSON the percentiles are seconds, as
// Prometheus writes durations: {"count":12,"p50Seconds":0.023,...}.
type Percentiles struct {
	// Count is the number of samples.
	Count int
	// P50, P90, P95 and P99 are the percentiles.
	P50, P90, P95, P99 time.Duration
}

// MarshalJSON writes the percentiles in seconds.
func (p Percentiles) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Count int     `json:"count"`
		P50   float64 `json:"p50Seconds"`
		P90   float64 `json:"p90Seconds"`
		P95   float64 `json:"p95Seconds"`
		P99   float64 `json:"p99Seconds"`
	}{p.Count, p.P50.Seconds(), p.P90.Seconds(), p.P95.Seconds(), p.P99.Seconds()})
}

// Of returns the nearest-rank percentiles of ds, which it sorts.
func Of(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		// Nearest rank: the smallest sample with at least q of all samples at or below it.
		rank := int(math.Ceil(q * float64(len(ds))))
		return ds[min(max(rank, 1), len(ds))-1]
	}
	return Percentiles{Count: len(ds), P50: at(0.50), P90: at(0.90), P95: at(0.95), P99: at(0.99)}
}
