package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// TestJSONLoggerKeepsEveryLine: 1,000 lines of the same message in well under a
// second all reach the output (controller-runtime's production logger keeps 100 and
// then 1 in 100), as JSON at info level, without stack traces below error level.
func TestJSONLoggerKeepsEveryLine(t *testing.T) {
	var buf bytes.Buffer
	log := NewJSON(zap.Options{DestWriter: &buf}).WithName("events")
	const n = 1000
	for i := range n {
		log.Info("event", "type", "lock_requested", "i", i)
	}
	log.Error(nil, "failed", "type", "backend_error")
	log.V(1).Info("hidden at the default level")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != n+1 {
		t.Fatalf("%d lines, want %d: the %d info lines and the error", len(lines), n+1, n)
	}
	var first, last map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("line %q: %v", lines[0], err)
	}
	if err := json.Unmarshal([]byte(lines[n]), &last); err != nil {
		t.Fatalf("line %q: %v", lines[n], err)
	}
	if first["level"] != "info" || first["logger"] != "events" || first["msg"] != "event" || first["stacktrace"] != nil {
		t.Errorf("an info line: %v", first)
	}
	if last["level"] != "error" || last["stacktrace"] == nil {
		t.Errorf("the error line: %v", last)
	}
}
