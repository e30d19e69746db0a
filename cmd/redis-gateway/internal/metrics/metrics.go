// Package metrics holds the gateway's Prometheus metrics, in the project's
// "atlantis_" naming: commands by name and result, errors by kind, command latency,
// open connections. Label values are bounded: command names are the few the gateway
// serves plus "unknown", error kinds the resp.Kind* constants.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics implements resp.Observer.
type Metrics struct {
	commands    *prometheus.CounterVec
	errors      *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	connections prometheus.Gauge
}

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atlantis_gateway_commands_total",
			Help: "Redis commands the gateway answered, by command (get, set, del, scan, eval, hello, auth, select, client, ping, quit, unknown) and result (ok, error).",
		}, []string{"command", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atlantis_gateway_command_errors_total",
			Help: "Error replies of the gateway, by command and kind (locked: a lock key held by another owner; unknown_command; syntax; bad_key: a key shape Atlantis never writes; bad_value; auth; backend: the Kubernetes API failed; shutdown).",
		}, []string{"command", "kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "atlantis_gateway_command_duration_seconds",
			Help:    "Time from a command's arrival to its reply being ready, by command. go-redis's default read timeout is 3 s: a command near it is retried by the client.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"command"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "atlantis_gateway_connections",
			Help: "Client connections open to the gateway.",
		}),
	}
	for _, c := range []prometheus.Collector{m.commands, m.errors, m.latency, m.connections} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Command records one command.
func (m *Metrics) Command(name string, took time.Duration, errKind string) {
	result := "ok"
	if errKind != "" {
		result = "error"
		m.errors.WithLabelValues(name, errKind).Inc()
	}
	m.commands.WithLabelValues(name, result).Inc()
	m.latency.WithLabelValues(name).Observe(took.Seconds())
}

// Connections records a connection opened or closed.
func (m *Metrics) Connections(delta int) { m.connections.Add(float64(delta)) }
