// Package metrics holds the operator's Prometheus series (all named atlantis_*),
// the metrics event handler that keeps them up to date, and the MetricsCollector
// that takes periodic snapshots: error rate, health score, and the JSON snapshot
// served on /metrics/atlantis.
//
// The series carry no per-key labels: a platform with ten thousand lock keys must
// not get ten thousand series. docs/metrics.md lists every series; a test keeps it
// in step with Describe.
package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runatlantis/atlantis-lock-operator/internal/apicalls"
	"github.com/runatlantis/atlantis-lock-operator/internal/breaker"
	"github.com/runatlantis/atlantis-lock-operator/internal/events"
)

// Label values. Every value is listed in its series' Help text and initialised to
// zero, so that a series exists (and rate() works) before its first event.
var (
	// RequestResults are the values of atlantis_lock_requests_total{result}.
	RequestResults = []string{"acquired", "conflict", "queue_timeout", "queue_full", "deadlock_victim"}
	// TimeoutKinds are the values of atlantis_lock_timeouts_total{kind}.
	TimeoutKinds = []string{"queue", "ttl"}
	// BackendErrorKinds are the values of atlantis_lock_backend_errors_total{kind}.
	BackendErrorKinds = []string{"error", "timeout"}
	// Components are the values of atlantis_component_health{component}.
	Components = []string{"kubernetes_backend", "event_bus", "metrics_collector", "timeout_manager", "deadlock_detector"}
)

// apiBuckets reach from a fast read (a millisecond) to the API server's own request
// timeout (a minute), in seconds.
var apiBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// durationBuckets reach from a millisecond (an uncontended grant) to a week (a
// lock forgotten on an abandoned pull request), in seconds.
var durationBuckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
	60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800,
}

// Metrics is the operator's set of series. Make it with New and register it once
// with Register; tests make their own on a fresh registry.
type Metrics struct {
	// RequestsTotal counts lock requests by how asking ended.
	RequestsTotal *prometheus.CounterVec
	// WaitDuration observes the time from joining the queue to the grant.
	WaitDuration prometheus.Histogram
	// HoldDuration observes the time from the grant to the release, expiry or
	// revocation.
	HoldDuration prometheus.Histogram
	// LocksHeld is the number of lock keys with a holder.
	LocksHeld prometheus.GaugeFunc
	// QueueDepth is the number of requests waiting over all keys.
	QueueDepth prometheus.GaugeFunc
	// HandOffs counts grants of a lock from one owner to the next waiter.
	HandOffs prometheus.Counter
	// DeadlocksDetected counts cycles found and broken.
	DeadlocksDetected prometheus.Counter
	// TimeoutsTotal counts queue timeouts and hold expiries.
	TimeoutsTotal *prometheus.CounterVec
	// BackendErrors counts failed backend calls.
	BackendErrors *prometheus.CounterVec
	// EventsTotal counts events published on the bus, by type.
	EventsTotal *prometheus.CounterVec
	// EventsDropped counts events a subscriber did not get because its buffer
	// was full.
	EventsDropped prometheus.Counter
	// WebhookDeliveries counts webhook deliveries by result.
	WebhookDeliveries *prometheus.CounterVec
	// ErrorRate is the share of decisions that failed over the last collection
	// interval.
	ErrorRate prometheus.Gauge
	// HealthScore is the overall health score.
	HealthScore prometheus.Gauge
	// ComponentHealth is each component's health score.
	ComponentHealth *prometheus.GaugeVec
	// APIRequestDuration observes the operator's calls to the API server, by verb
	// and resource (watches left out).
	APIRequestDuration *prometheus.HistogramVec
	// APIRequestErrors counts the operator's failed calls to the API server, by
	// verb, resource and kind.
	APIRequestErrors *prometheus.CounterVec
	// CircuitState is the circuit breaker's state: 0 closed, 1 half-open, 2 open,
	// read on every scrape from the source SetCircuitSource gives.
	CircuitState prometheus.GaugeFunc
	circuit      atomic.Pointer[func() breaker.State]
}

// LoadFunc reports the current number of keys held and requests queued.
type LoadFunc func() (held, queued int)

// New makes the series. load is read on every scrape for the two gauges of
// current load.
func New(load LoadFunc) *Metrics {
	m := &Metrics{
		RequestsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atlantis_lock_requests_total",
			Help: "Lock requests by how asking ended. result: acquired (granted, at once or from the queue), conflict (asked not to wait and the lock was held), queue_timeout (waited longer than its queue timeout), queue_full (its lock's queue was full), deadlock_victim (failed to break a deadlock).",
		}, []string{"result"}),
		WaitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "atlantis_lock_wait_duration_seconds",
			Help:    "Time from joining a lock's queue to being granted the lock; 0 for a grant at once.",
			Buckets: durationBuckets,
		}),
		HoldDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "atlantis_lock_hold_duration_seconds",
			Help:    "Time an owner held a lock, from the grant to its release, expiry or revocation.",
			Buckets: durationBuckets,
		}),
		LocksHeld: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "atlantis_locks_held",
			Help: "Lock keys with a holder now, as the leader sees them (0 on other replicas).",
		}, func() float64 { held, _ := load(); return float64(held) }),
		QueueDepth: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "atlantis_lock_queue_depth",
			Help: "Lock requests waiting now, over all keys, as the leader sees them (0 on other replicas).",
		}, func() float64 { _, queued := load(); return float64(queued) }),
		HandOffs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atlantis_lock_handoffs_total",
			Help: "Grants of a lock from one owner straight to the next waiter.",
		}),
		DeadlocksDetected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atlantis_lock_deadlocks_detected_total",
			Help: "Deadlocks (cycles of owners waiting for each other) found and broken by failing one waiting request.",
		}),
		TimeoutsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atlantis_lock_timeouts_total",
			Help: "Timeouts by kind. kind: queue (a request waited longer than its queue timeout), ttl (a hold expired without renewal).",
		}, []string{"kind"}),
		BackendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atlantis_lock_backend_errors_total",
			Help: "Failed calls to the Kubernetes API, each also a backend_error or timeout_error event: those of lock decisions and every other call of the operator (lists, watches, status writes, health probes); compare-and-swap conflicts excluded. kind: error, timeout (a call or a component health check that ran out of time).",
		}, []string{"kind"}),
		EventsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atlantis_lock_events_total",
			Help: "Events published on the event bus. type: " + typeList() + ".",
		}, []string{"type"}),
		EventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atlantis_lock_events_dropped_total",
			Help: "Events a subscriber (Kubernetes Events, log, audit trail, a webhook) did not get because its buffer was full; locking never waits for a subscriber.",
		}),
		WebhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atlantis_lock_webhook_deliveries_total",
			Help: "Webhook deliveries by result. result: success (a 2xx answer), failure (gave up after the retries, or a 4xx answer), dropped (the webhook's queue was full).",
		}, []string{"result"}),
		ErrorRate: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "atlantis_lock_error_rate",
			Help: "Share (0 to 1) of lock decisions that failed with a backend error or timeout over the last collection interval.",
		}),
		HealthScore: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "atlantis_lock_health_score",
			Help: "Overall health score, 0 to 100: 100 minus up to 50 for the error rate, 10 per current deadlock, and up to 20 for the fullest queue above 80 % of max_queue_length.",
		}),
		ComponentHealth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "atlantis_component_health",
			Help: "Health score (0 to 100) of each component at the last health check; below 80 is unhealthy or degraded. component: kubernetes_backend, event_bus, metrics_collector, timeout_manager, deadlock_detector.",
		}, []string{"component"}),
		APIRequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "atlantis_backend_request_duration_seconds",
			Help:    "Time to the API server's answer of each call the operator makes (reads, writes, lists; watches left out), by verb (get, list, create, update, patch, delete, deletecollection; the HTTP method for paths that are no resource) and resource (leases, lockrequests/status, ...; nonresource for /readyz and discovery).",
			Buckets: apiBuckets,
		}, []string{"verb", "resource"}),
		APIRequestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atlantis_backend_request_errors_total",
			Help: "Calls of the operator to the API server that failed, by verb, resource and kind: timeout, unavailable (unreachable, 502, 503), server_error (500 and other 5xx), throttled (429), denied (401, 403), client_error (other 4xx). Not found, conflict and gone are answers, not failures.",
		}, []string{"verb", "resource", "kind"}),
	}
	m.CircuitState = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "atlantis_backend_circuit_state",
		Help: "The circuit breaker on the lock decisions' API calls: 0 closed (decisions run), 1 half-open (one decision at a time probes the API server), 2 open (decisions paused).",
	}, m.circuitValue)
	initLabels(m.RequestsTotal, RequestResults)
	initLabels(m.TimeoutsTotal, TimeoutKinds)
	initLabels(m.BackendErrors, BackendErrorKinds)
	initLabels(m.WebhookDeliveries, events.DeliveryResults())
	for _, t := range events.Types() {
		m.EventsTotal.WithLabelValues(string(t))
	}
	for _, c := range Components {
		m.ComponentHealth.WithLabelValues(c).Set(100)
	}
	m.HealthScore.Set(100)
	return m
}

func initLabels(v *prometheus.CounterVec, values []string) {
	for _, value := range values {
		v.WithLabelValues(value)
	}
}

func typeList() string {
	s := ""
	for i, t := range events.Types() {
		if i > 0 {
			s += ", "
		}
		s += string(t)
	}
	return s
}

// Collectors returns every series, for Register and for tests.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.RequestsTotal, m.WaitDuration, m.HoldDuration, m.LocksHeld, m.QueueDepth,
		m.HandOffs, m.DeadlocksDetected, m.TimeoutsTotal, m.BackendErrors,
		m.EventsTotal, m.EventsDropped, m.WebhookDeliveries, m.ErrorRate,
		m.HealthScore, m.ComponentHealth, m.APIRequestDuration, m.APIRequestErrors, m.CircuitState,
	}
}

// Register registers every series with reg: controller-runtime's
// metrics.Registry in the operator, so that /metrics serves them beside
// controller_runtime_* and workqueue_*.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for _, c := range m.Collectors() {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// ObserveCall implements apicalls.Observer: the call's latency and, when it failed,
// its error.
func (m *Metrics) ObserveCall(c apicalls.Call) {
	if c.Verb != "watch" {
		m.APIRequestDuration.WithLabelValues(c.Verb, c.Resource).Observe(c.Duration.Seconds())
	}
	if c.Failed() {
		m.APIRequestErrors.WithLabelValues(c.Verb, c.Resource, string(c.Kind)).Inc()
	}
}

// SetCircuitSource makes atlantis_backend_circuit_state read the breaker's state
// from state.
func (m *Metrics) SetCircuitSource(state func() breaker.State) { m.circuit.Store(&state) }

func (m *Metrics) circuitValue() float64 {
	src := m.circuit.Load()
	if src == nil {
		return 0
	}
	switch (*src)() {
	case breaker.Open:
		return 2
	case breaker.HalfOpen:
		return 1
	}
	return 0
}
