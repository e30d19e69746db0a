package operator

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	clientevents "k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/apicalls"
	"github.com/runatlantis/atlantis-lock-operator/internal/breaker"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/events"
	"github.com/runatlantis/atlantis-lock-operator/internal/health"
	"github.com/runatlantis/atlantis-lock-operator/internal/latency"
	"github.com/runatlantis/atlantis-lock-operator/internal/metrics"
)

// Subscriber names on the event bus.
const (
	subscriberMetrics    = "metrics"
	subscriberKubeEvents = "kubernetes-events"
	subscriberAudit      = "audit"
	subscriberLog        = "log"
)

// setupObservability builds the event bus and its handlers, the metrics, the
// metrics collector and the health monitor, adds the runnables to mgr and fills
// op's fields.
func setupObservability(ctx context.Context, mgr ctrl.Manager, cfg config.Config, clk clock.WithTicker, reg registry, calls *apicalls.Recorder, op *Operator) error {
	orch := op.Orchestrator
	m := metrics.New(func() (int, int) {
		load := orch.Load()
		return load.LocksHeld, load.Queued
	})
	if err := m.Register(reg); err != nil {
		return fmt.Errorf("registering the atlantis_* metrics: %w", err)
	}
	log := mgr.GetLogger().WithName("events")
	var hooks []*events.Webhook
	if cfg.EnableEvents {
		var err error
		if hooks, err = newWebhooks(cfg, clk, m, log); err != nil {
			return err
		}
	}
	bus := events.NewBus(events.Options{
		BufferSize:   cfg.EventBufferSize,
		Observer:     events.WebhookDrops(metrics.NewBusObserver(m), hooks...),
		DrainTimeout: cfg.ComponentTimeout,
		Log:          log,
	})
	if _, err := bus.SubscribeSync(subscriberMetrics, metrics.NewHandler(m), events.Filter{}); err != nil {
		return err
	}
	if cfg.EnableEvents {
		if err := subscribeHandlers(ctx, mgr, bus, cfg, clk, hooks, log); err != nil {
			return err
		}
	}
	orch.AddObserver(events.Publisher{Bus: bus})
	m.SetCircuitSource(func() breaker.State { return op.Breaker.Status().State })
	var apiPercentiles func(time.Time) map[string]latency.Percentiles
	if calls != nil {
		calls.AddObserver(m)
		calls.AddObserver(failedCalls{bus: bus, clk: clk})
		apiPercentiles = calls.Percentiles
	}
	if err := mgr.Add(bus); err != nil {
		return fmt.Errorf("adding the event bus: %w", err)
	}

	collector := metrics.NewCollector(orch, m, metrics.CollectorOptions{
		Interval:  cfg.CollectionInterval,
		Retention: cfg.RetentionPeriod,
		Clock:     clk,
		Publish:   bus.Publish,
		Gatherer:  reg,
		APICalls:  apiPercentiles,
	})
	if err := mgr.Add(collector); err != nil {
		return fmt.Errorf("adding the metrics collector: %w", err)
	}

	monitor, err := newHealthMonitor(mgr, cfg, clk, op, bus, collector, m)
	if err != nil {
		return err
	}
	if err := mgr.Add(monitor); err != nil {
		return fmt.Errorf("adding the health monitor: %w", err)
	}
	if err := mgr.AddReadyzCheck("components", monitor.Ready); err != nil {
		return fmt.Errorf("adding the components readiness check: %w", err)
	}
	orch.SetHealthSource(monitor.Components)

	op.Bus, op.Metrics, op.Collector, op.Health = bus, m, collector, monitor
	return nil
}

// newHealthMonitor checks the five components every health_check_interval. Each
// round sets atlantis_component_health, publishes system_health_check, and a
// timeout_error for each check that ran out of time.
func newHealthMonitor(mgr ctrl.Manager, cfg config.Config, clk clock.WithTicker, op *Operator,
	bus *events.Bus, collector *metrics.Collector, m *metrics.Metrics) (*health.Monitor, error) {
	disco, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("making the API server health probe: %w", err)
	}
	ping := func(ctx context.Context) error {
		// /readyz is open to every authenticated client (system:public-info-viewer)
		// and fails when the API server cannot reach etcd.
		return disco.RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	}
	orch := op.Orchestrator
	started := clk.Now()
	// Periodic work counts as overdue one whole interval after it was due: enough
	// for a busy replica, short enough to fail readiness within two intervals.
	monitor := health.NewMonitor(health.MonitorOptions{
		Interval: cfg.HealthCheckInterval,
		Timeout:  cfg.ComponentTimeout,
		Clock:    clk,
		OnReport: func(r health.Report) {
			for name, st := range r.Components {
				m.ComponentHealth.WithLabelValues(name).Set(float64(st.Score))
			}
			bus.Publish(events.Event{
				Type: events.SystemHealthCheck, Time: r.Time,
				Health: &events.Health{Score: collector.Snapshot().HealthScore, Components: r.Components},
			})
			for _, name := range r.TimedOut {
				bus.Publish(events.Event{
					Type: events.TimeoutError, Time: r.Time, Reason: "HealthCheckTimeout",
					Message: fmt.Sprintf("the health check of %s did not finish within %s", name, cfg.ComponentTimeout),
				})
			}
		},
	})
	monitor.Add("kubernetes_backend", health.BackendCheck(ping, orch, op.Breaker.Status))
	monitor.Add("event_bus", health.BusCheck(bus))
	monitor.Add("metrics_collector", health.FreshnessCheck("the metrics collector", collector,
		cfg.CollectionInterval, cfg.CollectionInterval, clk, started))
	monitor.Add("timeout_manager", health.TimeoutManagerCheck(orch.Timeouts(), op.Leader,
		max(cfg.ComponentTimeout, cfg.HealthCheckInterval), clk))
	monitor.Add("deadlock_detector", health.DeadlockDetectorCheck(orch, op.Leader,
		cfg.DeadlockCheckInterval, cfg.DeadlockCheckInterval, clk))
	return monitor, nil
}

// newWebhooks makes the configured webhooks, reading their secrets now so that a
// missing secret stops start-up rather than the first delivery.
func newWebhooks(cfg config.Config, clk clock.WithTicker, m *metrics.Metrics, log logr.Logger) ([]*events.Webhook, error) {
	// Backoff waits use the operator's clock when it can schedule them.
	var hookClock clock.WithDelayedExecution = clock.RealClock{}
	if c, ok := clk.(clock.WithDelayedExecution); ok {
		hookClock = c
	}
	hooks := make([]*events.Webhook, 0, len(cfg.Webhooks))
	for i, wh := range cfg.Webhooks {
		secret, err := wh.Secret()
		if err != nil {
			return nil, fmt.Errorf("enhanced_locking.webhooks[%d]: %w", i, err)
		}
		types := make([]events.Type, 0, len(wh.Events))
		for _, t := range wh.Events {
			types = append(types, events.Type(t))
		}
		hook, err := events.NewWebhook(events.WebhookOptions{
			Name:       fmt.Sprintf("webhook-%d", i),
			URL:        wh.URL,
			Events:     types,
			Secret:     secret,
			Timeout:    wh.Timeout,
			MaxRetries: wh.MaxRetries,
			QueueSize:  wh.QueueSize,
			Clock:      hookClock,
			Delivered:  m.Delivered,
			Log:        log,
		})
		if err != nil {
			return nil, fmt.Errorf("enhanced_locking.webhooks[%d]: %w", i, err)
		}
		hooks = append(hooks, hook)
	}
	return hooks, nil
}

// subscribeHandlers subscribes the asynchronous handlers: Kubernetes Events, the
// structured log, the audit trail and the webhooks.
func subscribeHandlers(ctx context.Context, mgr ctrl.Manager, bus *events.Bus, cfg config.Config, clk clock.WithTicker, hooks []*events.Webhook, log logr.Logger) error {
	clientset, err := kubernetes.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return fmt.Errorf("creating the Events client: %w", err)
	}
	// Not the manager's recorder: its broadcaster keeps every Event it recorded
	// for six minutes or more (see events.BoundedRecorder).
	recorder := events.NewBoundedRecorder(ctx, clk, &clientevents.EventSinkImpl{Interface: clientset.EventsV1()},
		mgr.GetScheme(), lockingv1alpha1.FieldManager, events.DefaultEventsPerBroadcaster)
	kube := events.NewKubeEvents(recorder, mgr.GetClient(), clk)
	if _, err := bus.Subscribe(subscriberKubeEvents, kube, events.KubeEventsFilter()); err != nil {
		return err
	}
	if cfg.AuditLog != "" {
		audit, err := events.OpenAudit(cfg.AuditLog, cfg.Audit())
		if err != nil {
			return err // it names enhanced_locking.audit_log and the path
		}
		// Synchronous: a line is written before the decision that published its
		// event returns, so the trail never drops one (docs/events.md).
		if _, err := bus.SubscribeSync(subscriberAudit, audit, events.Filter{}); err != nil {
			return err
		}
	}
	if _, err := bus.Subscribe(subscriberLog, events.NewLogHandler(log), events.Filter{}); err != nil {
		return err
	}
	for _, hook := range hooks {
		if _, err := hook.Subscribe(bus); err != nil {
			return err
		}
	}
	return nil
}

// ReasonAPICallFailed is the reason of the backend_error and timeout_error events of
// failed API calls outside the orchestrator's decisions (which report their own).
const ReasonAPICallFailed = "APICallFailed"

// failedCalls publishes a backend_error (or timeout_error) event for every API call
// that failed and whose caller does not report it itself: lists and watches of the
// informers, ProjectLock creates and status writes, health probes.
type failedCalls struct {
	bus *events.Bus
	clk clock.PassiveClock
}

func (f failedCalls) ObserveCall(c apicalls.Call) {
	if !c.Failed() || c.Reported {
		return
	}
	typ := events.BackendError
	if c.Kind == apicalls.KindTimeout {
		typ = events.TimeoutError
	}
	f.bus.Publish(events.Event{Type: typ, Time: f.clk.Now(), Reason: ReasonAPICallFailed,
		Message: fmt.Sprintf("%s failed (%s): %v", c, c.Kind, c.Err)})
}
