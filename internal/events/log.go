package events

import (
	"context"
	"sort"

	"github.com/go-logr/logr"
)

// Severities of an event's log line, the value of its "severity" key.
const (
	// SeverityInfo marks events that are part of normal operation.
	SeverityInfo = "info"
	// SeverityWarning marks the types for which Type.Warning is true: a request
	// timed out or was refused, a lock expired, a deadlock, a backend failure.
	SeverityWarning = "warning"
)

// LogHandler logs every event as one structured line, with the message "event"
// and the event's fields as keys, so that logs can be searched by type, lock key,
// owner or fencing token.
//
// Every line is logged with Info, never with Error: a warning event is a lock
// outcome that someone should look at, not an operator failure, and logr's Error
// wants an error value (zap would also attach a stack trace). Warnings instead
// carry "severity": "warning", everything else "severity": "info". The periodic
// system events (metrics_updated, system_health_check) are logged at V(1), since
// they come every collection and health interval; the operator's -v flag (or
// zap's log level) shows them.
type LogHandler struct {
	log logr.Logger
}

// NewLogHandler returns a handler that logs to log; give it a named logger such
// as ctrl.Log.WithName("events").
func NewLogHandler(log logr.Logger) *LogHandler {
	return &LogHandler{log: log}
}

// verbose reports whether events of type t are logged at V(1): the periodic
// ones.
func verbose(t Type) bool {
	return t == MetricsUpdated || t == SystemHealthCheck
}

// HandleEvent logs e. It never fails.
func (h *LogHandler) HandleEvent(_ context.Context, e Event) error {
	log := h.log
	if verbose(e.Type) {
		log = log.V(1)
	}
	if !log.Enabled() {
		return nil
	}
	log.Info("event", logKeysAndValues(e)...)
	return nil
}

// logKeysAndValues returns e's fields for a log line: type and severity always,
// the others when set. Keys are the event's JSON names; durations are written as
// Go durations ("1m30s") so they read the same in console and JSON logs.
func logKeysAndValues(e Event) []any {
	severity := SeverityInfo
	if e.Type.Warning() {
		severity = SeverityWarning
	}
	kv := []any{"type", string(e.Type), "severity", severity}
	str := func(k, v string) {
		if v != "" {
			kv = append(kv, k, v)
		}
	}
	str("namespace", e.Namespace)
	str("lockKey", e.LockKey)
	str("lock", e.Lock)
	str("repository", e.Repository)
	str("request", e.Request)
	str("requestUID", e.RequestUID)
	str("owner", e.Owner)
	if e.Pull != 0 {
		kv = append(kv, "pull", e.Pull)
	}
	str("pullURL", e.PullURL)
	str("user", e.User)
	str("fencingToken", e.FencingToken)
	if e.Position != 0 {
		kv = append(kv, "position", e.Position)
	}
	str("blockedBy", e.BlockedBy)
	str("reason", e.Reason)
	str("message", e.Message)
	if e.Wait != 0 {
		kv = append(kv, "wait", e.Wait.String())
	}
	if e.Waited {
		kv = append(kv, "waited", true)
	}
	if e.Held != 0 {
		kv = append(kv, "held", e.Held.String())
	}
	if len(e.Cycle) > 0 {
		kv = append(kv, "cycle", e.Cycle)
	}
	if e.Health != nil {
		kv = append(kv, "healthScore", e.Health.Score)
		if len(e.Health.Components) > 0 {
			kv = append(kv, "components", componentStatuses(e.Health))
		}
	}
	return kv
}

// componentStatuses returns each component's status as "name=status", sorted by
// name, so that the line is short and stable; /status has the details.
func componentStatuses(h *Health) []string {
	out := make([]string, 0, len(h.Components))
	for name, c := range h.Components {
		out = append(out, name+"="+c.Status)
	}
	sort.Strings(out)
	return out
}
