package orchestrator

import (
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
	conflicts     int64
	deadlocks     int64
	lastScan      time.Duration
	lastScanEdges int
	waits         samples
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
		case PhaseQueued:
			s.results["queued"]++
		case PhaseTerminal:
			s.results[out.State.Reason]++
		}
	}
}

func (s *stats) backendError() {
	s.mu.Lock()
	s.backendErrors++
	s.mu.Unlock()
}

func (s *stats) conflict() {
	s.mu.Lock()
	s.conflicts++
	s.mu.Unlock()
}

func (s *stats) deadlockScan(took time.Duration, edges int, found []Deadlock) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadlocks += int64(len(found))
	s.lastScan = took
	s.lastScanEdges = edges
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

// Percentiles summarizes latencies.
type Percentiles struct {
	// Count is the number of samples.
	Count int `json:"count"`
	// P50, P90, P95 and P99 are the percentiles.
	P50 time.Duration `json:"p50"`
	P90 time.Duration `json:"p90"`
	P95 time.Duration `json:"p95"`
	P99 time.Duration `json:"p99"`
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
