// Package logging builds the operator's production logger (cmd/main.go); the
// programs of test/ log their own clients with it too, in the same format.
package logging

import (
	"os"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	uberzap "go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// NewJSON returns the operator's production logger: controller-runtime's (JSON
// lines, RFC 3339 times, info level, stack traces from error level, Kubernetes
// objects by reference) without its sampler. The sampler keeps, per level and
// message, 100 lines a second and then 1 in 100; every line of the event log has the message "event", so on a busy
// operator it dropped events from the log, a backend_error among hundreds of
// lock_requested lines (the e2e fault test "Lease writes answered with 500 and 409"
// found it). o carries the --zap-* flags.
func NewJSON(o zap.Options) logr.Logger {
	var level zapcore.LevelEnabler = zapcore.InfoLevel
	if o.Level != nil {
		level = o.Level
	}
	var stack zapcore.LevelEnabler = zapcore.ErrorLevel
	if o.StacktraceLevel != nil {
		stack = o.StacktraceLevel
	}
	cfg := uberzap.NewProductionEncoderConfig()
	cfg.EncodeTime = zapcore.RFC3339TimeEncoder
	if o.TimeEncoder != nil {
		cfg.EncodeTime = o.TimeEncoder
	}
	dest := o.DestWriter
	if dest == nil {
		dest = os.Stderr
	}
	sink := zapcore.AddSync(dest)
	enc := &zap.KubeAwareEncoder{Encoder: zapcore.NewJSONEncoder(cfg)}
	core := zapcore.NewCore(enc, sink, level)
	return zapr.NewLogger(uberzap.New(core, uberzap.AddStacktrace(stack), uberzap.ErrorOutput(sink)))
}
