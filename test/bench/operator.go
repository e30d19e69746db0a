package main

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/operator"
)

// lockControllerName is the name internal/controller gives the lock controller, the
// value of the controller label of controller-runtime's metrics.
const lockControllerName = "lock"

// runningOperator is the operator running in this process, as cmd/main.go sets it up
// (minus metrics and probe servers and leader election).
type runningOperator struct {
	// requests counts every request the operator sends to the API server.
	requests *requestCounter
	// workers is the operator's worker_count.
	workers int

	cancel context.CancelFunc
	done   chan error
}

// startOperator starts a controller-runtime manager with the operator configured by
// opCfg against cfg, and returns once it runs. Its requests are counted. It watches
// namespace only, as the chart's watchNamespaces makes it: the hand-off floor's
// requests, in a namespace of their own, are not the operator's to decide.
func startOperator(ctx context.Context, cfg *rest.Config, opCfg config.Config, namespace string) (*runningOperator, error) {
	counter := newRequestCounter()
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(counter.wrap)
	mgrOpts := operator.EmbeddedOptions()
	mgrOpts.Cache.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if err := opCfg.Validate(); err != nil {
		return nil, fmt.Errorf("operator configuration: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	if _, err := operator.Setup(ctx, mgr, opCfg, clock.RealClock{}); err != nil {
		cancel()
		return nil, err
	}
	op := &runningOperator{requests: counter, workers: opCfg.WorkerCount, cancel: cancel, done: make(chan error, 1)}
	go func() { op.done <- mgr.Start(ctx) }()
	select {
	case <-mgr.Elected():
		return op, nil
	case err := <-op.done:
		cancel()
		return nil, fmt.Errorf("the manager stopped at start-up: %w", err)
	}
}

// stop stops the manager and waits until it has.
func (o *runningOperator) stop() error {
	o.cancel()
	if err := <-o.done; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}

// reconciles returns how many reconciles the lock controller has run so far, from
// controller-runtime's controller_runtime_reconcile_total counter.
func reconciles() (float64, error) {
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return 0, err
	}
	var total float64
	for _, mf := range families {
		if mf.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == lockControllerName {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total, nil
}
