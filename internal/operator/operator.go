// Package operator wires the lock orchestrator, its controller and its runnables
// into a controller-runtime manager: the one place that main, the integration
// tests and the benchmarks set the operator up, so that they test what ships.
package operator

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/event"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/runatlantis/atlantis-lock-operator/internal/apicalls"
	"github.com/runatlantis/atlantis-lock-operator/internal/breaker"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/controller"
	"github.com/runatlantis/atlantis-lock-operator/internal/events"
	"github.com/runatlantis/atlantis-lock-operator/internal/health"
	"github.com/runatlantis/atlantis-lock-operator/internal/indexes"
	"github.com/runatlantis/atlantis-lock-operator/internal/leasebackend"
	"github.com/runatlantis/atlantis-lock-operator/internal/metrics"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
	"github.com/runatlantis/atlantis-lock-operator/internal/scheme"
)

// Operator is the lock operator as added to a manager.
type Operator struct {
	// Orchestrator makes the lock decisions.
	Orchestrator *orchestrator.LockOrchestrator
	// Reconciler is the lock controller.
	Reconciler *controller.LockReconciler
	// Bus carries the orchestrator's events to their handlers.
	Bus *events.Bus
	// Metrics are the atlantis_* series.
	Metrics *metrics.Metrics
	// Registry is where Metrics are registered.
	Registry prometheus.Gatherer
	// Collector takes the periodic metrics snapshots.
	Collector *metrics.Collector
	// Health runs the component health checks.
	Health *health.Monitor
	// Leader reports whether this replica leads.
	Leader func() bool
	// Breaker is the circuit breaker on the lock decisions' API calls.
	Breaker *breaker.Breaker
}

// Option changes how Setup sets the operator up.
type Option func(*setupOptions)

type setupOptions struct {
	registry registry
	calls    *apicalls.Recorder
	giveUp   func(error)
}

// WithAPICalls observes the API calls the recorder sees (its Wrap must be on the
// manager's rest.Config): the atlantis_backend_* series, the circuit breaker, the
// percentiles of /metrics/atlantis and backend_error events for failed calls.
// Without it, the breaker never opens and only the orchestrator's own failures are
// reported.
func WithAPICalls(rec *apicalls.Recorder) Option {
	return func(o *setupOptions) { o.calls = rec }
}

// WithGiveUp lets the leader give up leadership when its circuit stays open for
// leader_release_after: giveUp must stop the manager (main cancels its context).
func WithGiveUp(giveUp func(reason error)) Option {
	return func(o *setupOptions) { o.giveUp = giveUp }
}

// registry is a Prometheus registry: where the series are registered and read.
type registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// WithRegistry registers the atlantis_* series with reg; main passes
// controller-runtime's metrics.Registry, so that /metrics serves them. Without it
// they go to a registry of their own, so that several operators can share a
// process (the integration tests run two).
func WithRegistry(reg registry) Option {
	return func(o *setupOptions) { o.registry = reg }
}

// Setup adds the operator to mgr: the field indexes, the lock controller and the
// leader-only deadlock detector. The manager must use CacheOptions. clk is the
// orchestrator's only source of time.
func Setup(ctx context.Context, mgr ctrl.Manager, cfg config.Config, clk clock.WithTicker, opts ...Option) (*Operator, error) {
	var o setupOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.registry == nil {
		o.registry = prometheus.NewRegistry()
	}
	if err := indexes.Setup(ctx, mgr.GetCache()); err != nil {
		return nil, fmt.Errorf("setting up indexes: %w", err)
	}
	leases := leasebackend.New(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetClient())
	var backend orchestrator.Backend = leases
	leaseSeen := leases.Seen
	if cfg.Backend == config.BackendMemory {
		backend, leaseSeen = orchestrator.NewMemoryBackend(), nil
	}
	orch := orchestrator.New(backend, clk, cfg.Orchestrator())
	brk := breaker.New(cfg.Breaker(), clk)
	if o.calls != nil {
		o.calls.AddObserver(apicalls.ObserverFunc(func(c apicalls.Call) {
			if c.DecisionPath {
				brk.Record(c.Transient(), fmt.Errorf("%s: %w", c, c.Err))
			}
		}))
	}
	op := &Operator{Orchestrator: orch, Registry: o.registry, Leader: elected(mgr), Breaker: brk}
	if err := setupObservability(ctx, mgr, cfg, clk, o.registry, o.calls, op); err != nil {
		return nil, err
	}
	if o.giveUp != nil && cfg.LeaderReleaseAfter > 0 {
		releaser := &breaker.Releaser{Breaker: brk, After: cfg.LeaderReleaseAfter, Clock: clk,
			Interval: min(cfg.LeaderReleaseAfter/4, time.Second), GiveUp: o.giveUp}
		if err := mgr.Add(releaser); err != nil {
			return nil, fmt.Errorf("adding the leadership releaser: %w", err)
		}
	}

	wake := make(chan event.GenericEvent, cfg.RequestBufferSize)
	reconciler := &controller.LockReconciler{
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Orchestrator: orch,
		Wake:         wake,
		Breaker:      brk,

		ProjectLockDelay:          cfg.ProjectLockDelay,
		ProjectLockUpdateInterval: cfg.StatusUpdateInterval,
		LeaseSeen:                 leaseSeen,
	}
	if err := reconciler.SetupWithManager(mgr, cfg.WorkerCount); err != nil {
		return nil, fmt.Errorf("setting up the lock controller: %w", err)
	}
	detector := &controller.DeadlockDetector{Orchestrator: orch, Wake: wake, Interval: cfg.DeadlockCheckInterval}
	if err := mgr.Add(detector); err != nil {
		return nil, fmt.Errorf("adding the deadlock detector: %w", err)
	}
	op.Reconciler = reconciler
	return op, nil
}

// elected reports whether mgr leads: its Elected channel is closed (at once
// without leader election).
func elected(mgr ctrl.Manager) func() bool {
	return func() bool {
		select {
		case <-mgr.Elected():
			return true
		default:
			return false
		}
	}
}

// EmbeddedOptions are the manager options of an operator embedded in another process,
// as the integration tests and the benchmarks run it: this project's scheme and
// CacheOptions, no metrics or probe servers and no leader election, and controller
// names that may repeat, since several such managers can share one process.
func EmbeddedOptions() ctrl.Options {
	return ctrl.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
		Cache:                  CacheOptions(),
		MapperProvider:         MapperProvider,
		Controller:             ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
	}
}
