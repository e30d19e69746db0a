package orchestrator

import (
	"sync"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/internal/latency"
)

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
	waits         latency.Window
	acquires      latency.Window
}

func newStats() *stats {
	return &stats{results: map[string]int64{}}
}

// recordDecision counts a decision whose lock record was written. A grant
// (Decision.Grants) is counted here, on the record's compare-and-swap that makes
// it, and nowhere else: the write succeeds once per grant, whichever operator makes it,
// while the request's status may be written (or found deleted) by a later
// decision of another operator that recovers the grant from the record.
func (s *stats) recordDecision(now time.Time, d Decision) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.HandOff && d.PreviousOwner != "" {
		s.handOffs++
	}
	if d.Released {
		s.releases++
	}
	if d.Write == nil {
		return
	}
	for _, i := range d.Grants {
		out := d.Outcomes[i]
		s.grants++
		s.results["acquired"]++
		start := out.Request.State.EnqueuedAt
		if start.IsZero() {
			start = now
		}
		s.waits.Add(now, now.Sub(start))
		if !out.Request.Created.IsZero() {
			s.acquires.Add(now, now.Sub(out.Request.Created))
		}
	}
}

func (s *stats) recordOutcomes(outs []Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, out := range outs {
		prev, next := out.Request.State.Phase, out.State.Phase
		if prev == next {
			continue
		}
		switch next {
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

// Percentiles summarizes latencies (see latency.Percentiles).
type Percentiles = latency.Percentiles
