package events

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// logLines runs events through a LogHandler on a JSON funcr logger at verbosity v
// and returns the lines, decoded.
func logLines(t *testing.T, v int, events ...Event) []map[string]any {
	t.Helper()
	var lines []map[string]any
	log := funcr.NewJSON(func(obj string) {
		var m map[string]any
		if err := json.Unmarshal([]byte(obj), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", obj, err)
		}
		lines = append(lines, m)
	}, funcr.Options{Verbosity: v})
	h := NewLogHandler(log.WithName("events"))
	for _, e := range events {
		if err := h.HandleEvent(context.Background(), e); err != nil {
			t.Fatalf("HandleEvent: %v", err)
		}
	}
	return lines
}

func TestLogHandlerWritesEveryFieldThatIsSet(t *testing.T) {
	e := sampleEvent()
	e.Type = QueueTimeout
	e.Reason = "QueueTimeout"
	e.Message = "gave up after waiting 30m0s"
	e.Position = 2
	e.BlockedBy = "acme/infra#41"
	e.Held = 90 * time.Second
	e.Wait = 30 * time.Minute

	got := logLines(t, 0, e)
	want := []map[string]any{{
		"logger":       "events",
		"level":        0.0,
		"msg":          "event",
		"type":         "queue_timeout",
		"severity":     "warning",
		"namespace":    "atlantis",
		"lockKey":      "acme/infra/modules/vpc/default/vpc",
		"lock":         "acme-infra-vpc-default-1a2b3c",
		"repository":   "acme/infra",
		"request":      "pr-42-vpc",
		"requestUID":   "6f1c1f7e-0d5b-4c1e-9d2a-2b6f0e5d8c11",
		"owner":        "acme/infra#42",
		"pull":         42.0,
		"pullURL":      "https://github.com/acme/infra/pull/42",
		"user":         "alice",
		"fencingToken": "7",
		"position":     2.0,
		"blockedBy":    "acme/infra#41",
		"reason":       "QueueTimeout",
		"message":      "gave up after waiting 30m0s",
		"wait":         "30m0s",
		"held":         "1m30s",
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log line (-want +got):\n%s", diff)
	}
}

func TestLogHandlerSeverityAndVerbosity(t *testing.T) {
	for _, typ := range Types() {
		t.Run(string(typ), func(t *testing.T) {
			e := Event{Type: typ, Time: sampleTime, Message: "m"}
			wantSeverity := "info"
			if typ.Warning() {
				wantSeverity = "warning"
			}
			periodic := typ == MetricsUpdated || typ == SystemHealthCheck

			quiet := logLines(t, 0, e)
			if periodic != (len(quiet) == 0) {
				t.Errorf("at verbosity 0: %d lines; periodic %v", len(quiet), periodic)
			}
			loud := logLines(t, 1, e)
			if len(loud) != 1 {
				t.Fatalf("at verbosity 1: %d lines, want 1", len(loud))
			}
			wantLevel := 0.0
			if periodic {
				wantLevel = 1
			}
			got := map[string]any{"severity": loud[0]["severity"], "level": loud[0]["level"], "type": loud[0]["type"]}
			want := map[string]any{"severity": wantSeverity, "level": wantLevel, "type": string(typ)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// Nothing is logged as an error.
			if _, ok := loud[0]["error"]; ok {
				t.Errorf("logged with an error key: %v", loud[0])
			}
		})
	}
}

func TestLogHandlerSystemEvents(t *testing.T) {
	deadlock := Event{
		Type: DeadlockDetected, Time: sampleTime, Namespace: "atlantis",
		Reason: "DeadlockDetected", Message: "cycle broken",
		Cycle: []string{"acme/infra#1", "acme/infra#2"},
	}
	health := Event{
		Type: SystemHealthCheck, Time: sampleTime,
		Health: &Health{Score: 85, Components: map[string]orchestrator.ComponentStatus{
			"kubernetes_backend": {Status: "degraded", Score: 80, LastError: "etcd slow", LastCheck: sampleTime},
			"event_bus":          {Status: "healthy", Score: 100, LastCheck: sampleTime},
		}},
	}
	got := logLines(t, 1, deadlock, health)
	want := []map[string]any{
		{
			"logger": "events", "level": 0.0, "msg": "event",
			"type": "deadlock_detected", "severity": "warning", "namespace": "atlantis",
			"reason": "DeadlockDetected", "message": "cycle broken",
			"cycle": []any{"acme/infra#1", "acme/infra#2"},
		},
		{
			"logger": "events", "level": 1.0, "msg": "event",
			"type": "system_health_check", "severity": "info", "healthScore": 85.0,
			"components": []any{"event_bus=healthy", "kubernetes_backend=degraded"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log lines (-want +got):\n%s", diff)
	}
}

// The operator logs through controller-runtime's zap (zapr) in JSON: a warning
// event is an info-level line with severity "warning", no error and no stack.
func TestLogHandlerThroughZapJSON(t *testing.T) {
	var buf bytes.Buffer
	log := zap.New(zap.WriteTo(&buf), zap.UseDevMode(false))
	e := sampleEvent()
	e.Type, e.Reason, e.Cycle = DeadlockDetected, "DeadlockDetected", []string{"a#1", "b#2"}
	if err := NewLogHandler(log.WithName("events")).HandleEvent(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("zap line %q is not JSON: %v", buf.String(), err)
	}
	want := map[string]any{
		"level": "info", "logger": "events", "msg": "event",
		"type": "deadlock_detected", "severity": "warning",
		"lockKey": "acme/infra/modules/vpc/default/vpc", "pull": 42.0,
		"wait": "3s", "cycle": []any{"a#1", "b#2"},
	}
	for k, w := range want {
		if diff := cmp.Diff(w, got[k]); diff != "" {
			t.Errorf("key %s (-want +got):\n%s", k, diff)
		}
	}
	for _, k := range []string{"error", "stacktrace"} {
		if _, ok := got[k]; ok {
			t.Errorf("zap line has %q: %s", k, buf.String())
		}
	}
}
