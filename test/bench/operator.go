package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/chartmemory"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/managerproc"
)

// lockControllerName is the name internal/controller gives the lock controller, the
// value of the controller label of controller-runtime's metrics.
const lockControllerName = "lock"

// operatorProcess names the operator among the processes a cpuMeter reads.
const operatorProcess = "operator"

// operatorStopTimeout bounds how long a stopping operator may take to exit.
const operatorStopTimeout = time.Minute

// runningOperator is the operator's binary running as a process of its own, with
// the memory settings the chart gives it: measured as it ships, its garbage
// collections its own, and not this process's, whose clients time it.
type runningOperator struct {
	m *managerproc.Manager
	// workers is the operator's worker_count.
	workers int
}

// startOperator starts opts.manager configured by opCfg (its enable_events and
// audit_log, the keys the bench's phases change) against e's control plane, with
// the chart's memory settings, and returns once it decides. It runs without leader
// election (one replica, and no Lease renewals among the requests counted) and
// watches opts.Namespace only, as the chart's watchNamespaces makes it: the
// hand-off floor's requests, in a namespace of their own, are not its to decide.
func startOperator(ctx context.Context, opts options, e *benchutil.Env, opCfg config.Config, name string) (*runningOperator, error) {
	if err := opCfg.Validate(); err != nil {
		return nil, fmt.Errorf("operator configuration: %w", err)
	}
	memory, err := chartmemory.Read(opts.Root)
	if err != nil {
		return nil, err
	}
	configPath := e.LogPath(name + "-config.yaml")
	configYAML := fmt.Sprintf("enhanced_locking:\n  enable_events: %t\n", opCfg.EnableEvents)
	if err := os.WriteFile(configPath, []byte(configYAML), 0o600); err != nil {
		return nil, fmt.Errorf("writing the operator's configuration: %w", err)
	}
	args := append([]string{"--leader-elect=false", "--watch-namespaces=" + opts.Namespace, "--config=" + configPath,
		"--" + config.FlagAuditLog + "=" + opCfg.AuditLog}, memory.ManagerArgs()...)
	m, err := managerproc.Start(managerproc.Options{Binary: opts.manager, Kubeconfig: e.Cluster.KubeconfigPath(),
		Args: args, Env: memory.ManagerEnv(), LogPath: e.LogPath(name + ".log")})
	if err != nil {
		return nil, err
	}
	if err := m.WaitLeader(ctx); err != nil {
		return nil, errors.Join(err, m.Stop(operatorStopTimeout))
	}
	return &runningOperator{m: m, workers: opCfg.WorkerCount}, nil
}

// pid is the operator's process id.
func (o *runningOperator) pid() int { return o.m.Pid() }

// stop stops the operator (SIGTERM) and waits until it has exited.
func (o *runningOperator) stop() error {
	return o.m.Stop(operatorStopTimeout)
}

// requests returns how many API requests the operator has sent so far, by kind
// ("update leases", "update lockrequests/status"), from its
// atlantis_backend_request_duration_seconds histogram, which observes every call.
func (o *runningOperator) requests(ctx context.Context) (map[string]int, error) {
	metrics, err := o.m.Scrape(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the operator's requests: %w", err)
	}
	counts := map[string]int{}
	for _, s := range metrics["atlantis_backend_request_duration_seconds"] {
		counts[s.Labels["verb"]+" "+s.Labels["resource"]] += int(s.Value)
	}
	return counts, nil
}

// requestsSince returns what the operator sent after the counts before.
func (o *runningOperator) requestsSince(ctx context.Context, before map[string]int) (requestDelta, error) {
	now, err := o.requests(ctx)
	if err != nil {
		return requestDelta{}, err
	}
	return deltaOf(before, now), nil
}

// deltaOf is what was sent between two counts: watches aside, which stay open.
func deltaOf(before, now map[string]int) requestDelta {
	d := requestDelta{Counts: map[string]int{}}
	for kind, n := range now {
		n -= before[kind]
		if n <= 0 || strings.HasPrefix(kind, "watch ") {
			continue
		}
		d.Counts[kind] = n
		if isWrite(kind) {
			d.Writes += n
		} else {
			d.Reads += n
		}
	}
	return d
}

// reconciles returns how many reconciles the lock controller has run so far, from
// controller-runtime's controller_runtime_reconcile_total counter.
func (o *runningOperator) reconciles(ctx context.Context) (float64, error) {
	metrics, err := o.m.Scrape(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the operator's reconciles: %w", err)
	}
	return metrics.Sum("controller_runtime_reconcile_total", "controller", lockControllerName), nil
}

// defaultManager is bin/manager under root (make build writes it).
func defaultManager(root string) string { return filepath.Join(root, "bin", "manager") }
