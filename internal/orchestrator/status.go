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
	Uptime time.Duration `json:"uptimeNanoseconds"`
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
	// Decisions counts decisions attempted (one per Sync), the denominator of
	// the error rate.
	Decisions int64 `json:"decisions"`
	// BackendErrors counts failed backend calls other than timeouts;
	// TimeoutErrors those that ran out of time; Conflicts compare-and-swap losses
	// (normal under concurrency, not errors).
	BackendErrors int64 `json:"backendErrors"`
	TimeoutErrors int64 `json:"timeoutErrors"`
	Conflicts     int64 `json:"conflicts"`
	// LastError is the latest backend or timeout error, and LastErrorTime when
	// it happened.
	LastError     string    `json:"lastError,omitempty"`
	LastErrorTime time.Time `json:"lastErrorTime,omitzero"`
	// Deadlocks counts cycles broken.
	Deadlocks int64 `json:"deadlocks"`
	// CurrentDeadlocks is how many cycles the latest scan found.
	CurrentDeadlocks int `json:"currentDeadlocks"`
	// LastDeadlockScan is how long the latest scan took, over LastDeadlockScanEdges
	// waiting requests, at LastDeadlockScanTime (zero before the first scan).
	LastDeadlockScan      time.Duration `json:"lastDeadlockScanNanoseconds"`
	LastDeadlockScanEdges int           `json:"lastDeadlockScanEdges"`
	LastDeadlockScanTime  time.Time     `json:"lastDeadlockScanTime,omitzero"`
	// LocksHeld and Queued are the current gauges.
	LocksHeld int `json:"locksHeld"`
	Queued    int `json:"queued"`
	// LongestQueue is the length of the longest queue, and MaxQueueLength the
	// configured limit (0: unbounded); together they give the queue utilisation.
	LongestQueue   int `json:"longestQueue"`
	MaxQueueLength int `json:"maxQueueLength"`
	// Wait is the time from joining the queue to the grant (zero for a grant at
	// once), over the kept samples.
	Wait Percentiles `json:"wait"`
	// Acquire is the time from the request's creation to its grant, over the
	// kept samples.
	Acquire Percentiles `json:"acquire"`
}

// GetStatus returns the orchestrator's status.
func (o *LockOrchestrator) GetStatus() *OrchestratorStatus {
	held, queued, _ := o.gauges()
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
	held, queued, longest := o.gauges()
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
		Decisions:             s.syncs,
		BackendErrors:         s.backendErrors,
		TimeoutErrors:         s.timeoutErrors,
		Conflicts:             s.conflicts,
		LastError:             s.lastError,
		LastErrorTime:         s.lastErrorAt,
		Deadlocks:             s.deadlocks,
		CurrentDeadlocks:      s.lastScanFound,
		LastDeadlockScan:      s.lastScan,
		LastDeadlockScanEdges: s.lastScanEdges,
		LastDeadlockScanTime:  s.lastScanAt,
		LocksHeld:             held,
		Queued:                queued,
		LongestQueue:          longest,
		MaxQueueLength:        o.cfg.MaxQueueLength,
		Wait:                  s.waits.Since(from),
		Acquire:               s.acquires.Since(from),
	}
}

// HealthSource reports component health; see SetHealthSource.
type HealthSource func() map[string]ComponentStatus

// SetHealthSource makes GetComponentHealth and GetStatus report what src says:
// the operator's health monitor, which also knows the components around the
// orchestrator (event bus, metrics collector).
func (o *LockOrchestrator) SetHealthSource(src HealthSource) {
	o.observersMu.Lock()
	defer o.observersMu.Unlock()
	o.health = src
}

// GetComponentHealth returns the health of each component, as the health source
// last saw it. Without a health source it reports only the backend, from the
// errors counted so far.
func (o *LockOrchestrator) GetComponentHealth() map[string]ComponentStatus {
	o.observersMu.RLock()
	src := o.health
	o.observersMu.RUnlock()
	if src != nil {
		return src()
	}
	now := o.clock.Now()
	s := o.stats
	s.mu.Lock()
	errs, lastErr := s.backendErrors+s.timeoutErrors, s.lastError
	s.mu.Unlock()
	backend := ComponentStatus{Status: "healthy", Score: 100, LastCheck: now}
	if errs > 0 {
		backend = ComponentStatus{Status: "degraded", Score: 80, LastError: lastErr, LastCheck: now}
	}
	return map[string]ComponentStatus{"backend": backend}
}

// Load is how busy the orchestrator is now.
type Load struct {
	// LocksHeld counts keys with a holder.
	LocksHeld int
	// Queued counts waiting requests over all keys.
	Queued int
	// LongestQueue is the length of the longest queue.
	LongestQueue int
}

// Load returns the current load, from the cached state of every key. It is cheap
// enough to call on every metrics scrape.
func (o *LockOrchestrator) Load() Load {
	held, queued, longest := o.gauges()
	return Load{LocksHeld: held, Queued: queued, LongestQueue: longest}
}

// gauges counts the keys held and the requests queued, and finds the longest queue.
func (o *LockOrchestrator) gauges() (held, queued, longest int) {
	o.mu.Lock()
	states := make([]*lockState, 0, len(o.locks))
	for _, st := range o.locks {
		states = append(states, st)
	}
	o.mu.Unlock()
	for _, st := range states {
		st.viewMu.Lock()
		if st.holder != nil {
			held++
		}
		queued += len(st.queue)
		longest = max(longest, len(st.queue))
		st.viewMu.Unlock()
	}
	return held, queued, longest
}
