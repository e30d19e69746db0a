package operator

import (
	"encoding/json"
	"net/http"
	"sync/atomic"

	"github.com/runatlantis/atlantis-lock-operator/internal/metrics"
)

// Paths of the endpoints served beside /metrics on the metrics server.
const (
	// MetricsJSONPath serves the metrics collector's Snapshot as JSON, the
	// original design's /metrics/atlantis. ?format=prometheus gives the atlantis_*
	// series in the Prometheus text format instead.
	MetricsJSONPath = "/metrics/atlantis"
	// StatusPath serves the OrchestratorStatus as JSON: leader or not, the
	// components' health, locks held, requests queued, uptime.
	StatusPath = "/status"
)

// Endpoints serves /metrics/atlantis and /status. The handlers must be given to
// the manager's metrics server before the manager exists, and the operator is
// set up after it: Bind connects them. Until then (and when enhanced locking is
// off) they answer 503.
type Endpoints struct {
	op atomic.Pointer[Operator]
}

// Bind makes the endpoints serve op.
func (e *Endpoints) Bind(op *Operator) { e.op.Store(op) }

// Handlers returns the handlers by path, for metricsserver.Options.ExtraHandlers.
func (e *Endpoints) Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		MetricsJSONPath: http.HandlerFunc(e.serveMetrics),
		StatusPath:      http.HandlerFunc(e.serveStatus),
	}
}

func (e *Endpoints) serveMetrics(w http.ResponseWriter, r *http.Request) {
	op := e.bound(w)
	if op == nil {
		return
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = metrics.FormatJSON
	}
	body, err := op.Collector.ExportMetrics(format)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	contentType := "application/json"
	if format == metrics.FormatPrometheus {
		contentType = "text/plain; version=0.0.4; charset=utf-8"
	}
	w.Header().Set("Content-Type", contentType)
	_, _ = w.Write(body)
}

func (e *Endpoints) serveStatus(w http.ResponseWriter, _ *http.Request) {
	op := e.bound(w)
	if op == nil {
		return
	}
	status := op.Orchestrator.GetStatus()
	status.Leader = op.Leader()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(status)
}

func (e *Endpoints) bound(w http.ResponseWriter) *Operator {
	op := e.op.Load()
	if op == nil {
		http.Error(w, "the lock operator is not running (enhanced_locking.enabled is false, or it is starting)", http.StatusServiceUnavailable)
	}
	return op
}
