package orchestrator

import (
	"time"
)

// OrchestratorStatus is the orchestrator's state at a glance.
type OrchestratorStatus struct {
	// Leader is true when this instance makes decisions (set by the caller that
	// runs leader election; always true without it).
	Leader bool `json:"leader"`
	// Uptime is how long the orchestrator has run.
	Uptime time.Duration `json:"uptime"`
	// LocksHeld counts keys with a holder.
	LocksHeld int `json:"locksHeld"`
	// Queued counts waiting requests over all keys.
	Queued int `json:"queued"`
	// PendingDeadlines counts keys with a queue timeout or hold expiry to come.
	PendingDeadlines int `json:"pendingDeadlines"`
	// Components is the health of each component.
	Components map[string]ComponentStatus `json:"components"`
}

// ComponentStatus is the health of one component.
type ComponentStatus struct {
	// Status is "healthy", "degraded" or "unhealthy".
	Status string `json:"status"`
	// Score is 0 to 100.
	Score int `json:"score"`
	// LastError is the component's latest error, or "".
	LastError string `json:"lastError,omitempty"`
	// LastCheck is when the status was computed.
	LastCheck time.Time `json:"lastCheck"`
}

// MetricsSnapshot is the orchestrator's counters and latency percentiles.
type MetricsSnapshot struct {
	// Time is when the snapshot was taken.
	Time time.Time `json:"time"`
	// Results counts requests by outcome: acquired, queued, and each terminal reason.
	Results map[string]int64 `json:"results"`
	// Grants counts locks granted, HandOffs grants from one owner to the next, and
	// Releases holders letting go.
	Grants   int64 `json:"grants"`
	HandOffs int64 `json:"handOffs"`
	Releases int64 `json:"releases"`
	// BackendErrors counts failed backend calls; Conflicts compare-and-swap losses.
	BackendErrors int64 `json:"backendErrors"`
	Conflicts     int64 `json:"conflicts"`
	// Deadlocks counts cycles broken.
	Deadlocks int64 `json:"deadlocks"`
	// LastDeadlockScan is how long the latest scan took, over LastDeadlockScanEdges
	// waiting requests.
	LastDeadlockScan      time.Duration `json:"lastDeadlockScan"`
	LastDeadlockScanEdges int           `json:"lastDeadlockScanEdges"`
	// LocksHeld and Queued are the current gauges.
	LocksHeld int `json:"locksHeld"`
	Queued    int `json:"queued"`
	// Wait is the time from joining the queue to the grant, over the last samples.
	Wait Percentiles `json:"wait"`
}

// GetStatus returns the orchestrator's status.
func (o *LockOrchestrator) GetStatus() *OrchestratorStatus {
	held, queued := o.gauges()
	return &OrchestratorStatus{
		Leader:           true,
		Uptime:           o.clock.Since(o.started),
		LocksHeld:        held,
		Queued:           queued,
		PendingDeadlines: o.timeouts.Len(),
		Components:       o.GetComponentHealth(),
	}
}

// GetMetrics returns a snapshot of the counters, with wait percentiles over the
// samples of the last retention period (all kept samples when retention is 0).
func (o *LockOrchestrator) GetMetrics() *MetricsSnapshot {
	return o.GetMetricsSince(time.Time{})
}

// GetMetricsSince is GetMetrics with percentiles over samples taken at or after from.
func (o *LockOrchestrator) GetMetricsSince(from time.Time) *MetricsSnapshot {
	held, queued := o.gauges()
	s := o.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	results := make(map[string]int64, len(s.results))
	for k, v := range s.results {
		results[k] = v
	}
	return &MetricsSnapshot{
		Time:                  o.clock.Now(),
		Results:               results,
		Grants:                s.grants,
		HandOffs:              s.handOffs,
		Releases:              s.releases,
		BackendErrors:         s.backendErrors,
		Conflicts:             s.conflicts,
		Deadlocks:             s.deadlocks,
		LastDeadlockScan:      s.lastScan,
		LastDeadlockScanEdges: s.lastScanEdges,
		LocksHeld:             held,
		Queued:                queued,
		Wait:                  s.waits.since(from),
	}
}

// GetComponentHealth returns the health of the orchestrator's components: the
// backend, the timeout manager and the deadlock detector.
func (o *LockOrchestrator) GetComponentHealth() map[string]ComponentStatus {
	now := o.clock.Now()
	s := o.stats
	s.mu.Lock()
	backendErrors := s.backendErrors
	s.mu.Unlock()
	backend := ComponentStatus{Status: "healthy", Score: 100, LastCheck: now}
	if backendErrors > 0 {
		backend = ComponentStatus{Status: "degraded", Score: 80, LastCheck: now}
	}
	return map[string]ComponentStatus{
		"backend":           backend,
		"timeout_manager":   {Status: "healthy", Score: 100, LastCheck: now},
		"deadlock_detector": {Status: "healthy", Score: 100, LastCheck: now},
	}
}

func (o *LockOrchestrator) gauges() (held, queued int) {
	o.mu.Lock()
	states := make([]*lockState, 0, len(o.locks))
	for _, st := range o.locks {
		states = append(states, st)
	}
	o.mu.Unlock()
	for _, st := range states {
		st.mu.Lock()
		if st.holder != nil {
			held++
		}
		queued += len(st.queue)
		st.mu.Unlock()
	}
	return held, queued
}
