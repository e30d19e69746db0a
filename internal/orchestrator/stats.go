package orchestrator

import (
	"encoding/json"
	"math"
	"sort"
	"sync"
	"time"
)

// maxSamples bounds the latency samples kept for percentiles.
const maxSamples = 4096

// stats counts what the orchestrator decided, for GetMetrics and GetStatus.
type stats struct {
	mu            sync.Mutex
	results       map[string]int64
	grants        int64
	handOffs      int64
	releases      int64
	backendErrors int64
	timeoutErrors int64
	syncs         int64
	conflicts     int64
	deadlocks     int64
	lastScan      time.Duration
	lastScanAt    time.Time
	lastScanEdges int
	lastScanFound int
	lastError     string
	lastErrorAt   time.Time
	waits         samples
	acquires      samples
}

func newStats() *stats {
	return &stats{results: map[string]int64{}}
}

func (s *stats) recordDecision(d Decision) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.HandOff && d.PreviousOwner != "" {
		s.handOffs++
	}
	if d.Released {
		s.releases++
	}
}

func (s *stats) recordOutcomes(now time.Time, outs []Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, out := range outs {
		prev, next := out.Request.State.Phase, out.State.Phase
		if prev == next {
			continue
		}
		switch next {
		case PhaseAcquired:
			s.grants++
			s.results["acquired"]++
			start := out.Request.State.EnqueuedAt
			if start.IsZero() {
				start = now
			}
			s.waits.add(now, now.Sub(start))
			if !out.Request.Created.IsZero() {
				s.acquires.add(now, now.Sub(out.Request.Created))
			}
		case PhaseQueued:
			s.results["queued"]++
		case PhaseTerminal:
			s.results[out.State.Reason]++
		}
	}
}

func (s *stats) backendError(at time.Time, err error, timeout bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if timeout {
		s.timeoutErrors++
	} else {
		s.backendErrors++
	}
	s.lastError = err.Error()
	s.lastErrorAt = at
}

func (s *stats) sync() {
	s.mu.Lock()
	s.syncs++
	s.mu.Unlock()
}

func (s *stats) conflict() {
	s.mu.Lock()
	s.conflicts++
	s.mu.Unlock()
}

// deadlockScan records a scan that found current cycles, fresh of them new.
func (s *stats) deadlockScan(at time.Time, took time.Duration, edges, current, fresh int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadlocks += int64(fresh)
	s.lastScan = took
	s.lastScanAt = at
	s.lastScanEdges = edges
	s.lastScanFound = current
}

// samples is a bounded ring of latency samples with the time they were taken.
type samples struct {
	at   []time.Time
	dur  []time.Duration
	next int
}

func (s *samples) add(at time.Time, d time.Duration) {
	if len(s.dur) < maxSamples {
		s.at = append(s.at, at)
		s.dur = append(s.dur, d)
		return
	}
	s.at[s.next], s.dur[s.next] = at, d
	s.next = (s.next + 1) % maxSamples
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

// since returns the percentiles of the samples taken at or after from.
func (s *samples) since(from time.Time) Percentiles {
	var ds []time.Duration
	for i, at := range s.at {
		if !at.Before(from) {
			ds = append(ds, s.dur[i])
		}
	}
	return percentilesOf(ds)
}

func percentilesOf(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(q float64) time.Duration {
		// Nearest rank: the smallest sample with at least q of all samples at or below it.
		rank := int(math.Ceil(q * float64(len(ds))))
		return ds[min(max(rank, 1), len(ds))-1]
	}
	return Percentiles{Count: len(ds), P50: at(0.50), P90: at(0.90), P95: at(0.95), P99: at(0.99)}
}
