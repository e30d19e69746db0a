// Command manager is the atlantis-lock-operator: it grants Atlantis project/workspace
// locks, asked for with LockRequest objects, over coordination.k8s.io Leases.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"

	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/runatlantis/atlantis-lock-operator/internal/apicalls"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/logging"
	"github.com/runatlantis/atlantis-lock-operator/internal/operator"
	"github.com/runatlantis/atlantis-lock-operator/internal/scheme"
)

// options are the command line flags that are not keys of the config file.
type options struct {
	configFile       string
	metricsAddr      string
	probeAddr        string
	pprofAddr        string
	leaderElect      bool
	leaderElectionNS string
	watchNamespaces  string
	dev              bool
	// memoryLimitPercent sets the Go runtime's soft memory limit to that share of
	// the container's memory limit (0: leave it to GOMEMLIMIT or Go's default).
	memoryLimitPercent int
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "atlantis-lock-operator:", err)
		os.Exit(1)
	}
}

func run() error {
	var opts options
	flag.StringVar(&opts.configFile, "config", "", "Path of the enhanced_locking YAML configuration file (see docs/configuration.md). Flags below override its keys.")
	flag.StringVar(&opts.metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus /metrics endpoint; \"0\" turns it off.")
	flag.StringVar(&opts.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	flag.StringVar(&opts.pprofAddr, "pprof-bind-address", "0", "Address of Go's /debug/pprof profiles (heap, CPU, goroutines), for diagnosing memory and CPU use; \"0\" (the default) turns it off. Never expose it beyond the pod.")
	flag.BoolVar(&opts.leaderElect, "leader-elect", true, "Elect a leader among replicas; only the leader decides. Turn off only for a single replica.")
	flag.StringVar(&opts.leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election Lease; defaults to the pod's namespace.")
	flag.StringVar(&opts.watchNamespaces, "watch-namespaces", "", "Comma-separated namespaces whose LockRequests the operator serves; empty serves every namespace.")
	flag.BoolVar(&opts.dev, "dev", false, "Log for people (console, debug level) instead of JSON.")
	flag.IntVar(&opts.memoryLimitPercent, "memory-limit-percent", 0, "Set the Go runtime's soft memory limit to this percentage of the container's memory limit, given in bytes in "+containerMemoryLimitEnv+" (the chart does both); 0 leaves it to GOMEMLIMIT, which wins when set.")
	overrides := config.BindFlags(flag.CommandLine)
	// --zap-log-level=debug (or 2) shows the V(1) lines, such as the periodic
	// system_health_check and metrics_updated events, in JSON logs too.
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()

	if opts.dev {
		ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts), zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(logging.NewJSON(zapOpts))
	}
	setupLog := ctrl.Log.WithName("setup")

	softLimit, err := softMemoryLimit(opts.memoryLimitPercent, os.Getenv)
	if err != nil {
		return err
	}
	if softLimit > 0 {
		debug.SetMemoryLimit(softLimit)
		setupLog.Info("Go soft memory limit set", "bytes", softLimit, "percentOfContainerLimit", opts.memoryLimitPercent)
	}

	cfg := config.Default()
	if opts.configFile != "" {
		if cfg, err = config.Load(opts.configFile); err != nil {
			return err
		}
	}
	overrides.Apply(&cfg)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}

	cacheOpts, err := cacheOptions(opts.watchNamespaces)
	if err != nil {
		return err
	}

	// GiveUp (the circuit breaker's leadership releaser) stops the manager with a
	// cause: it releases the election Lease, and run returns the cause, so that the
	// process exits 1 and is restarted as a standby.
	ctx, giveUp := context.WithCancelCause(ctrl.SetupSignalHandler())
	defer giveUp(nil)
	// /metrics/atlantis and /status are served beside /metrics.
	var endpoints operator.Endpoints
	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("no Kubernetes API to talk to (set KUBECONFIG or run in a cluster): %w", err)
	}
	// Every API call of the manager (its clients, informers, leader election and
	// health probes) is timed and classified.
	calls := apicalls.NewRecorder(clock.RealClock{})
	restConfig.Wrap(calls.Wrap)
	// And client-go's own view, opt-in since controller-runtime v0.25: the latency
	// by verb and host, the time spent in the client's rate limiter (client-side
	// throttling), and the retries.
	ctrlmetrics.RegisterRESTClientMetrics(ctrlmetrics.MetricRequestLatency, ctrlmetrics.MetricRateLimiterLatency,
		ctrlmetrics.MetricRequestRetry)
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                        scheme.New(),
		Metrics:                       metricsserver.Options{BindAddress: opts.metricsAddr, ExtraHandlers: endpoints.Handlers()},
		HealthProbeBindAddress:        opts.probeAddr,
		PprofBindAddress:              opts.pprofAddr,
		LeaderElection:                opts.leaderElect,
		LeaderElectionID:              "atlantis-lock-operator.locking.runatlantis.io",
		LeaderElectionNamespace:       opts.leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cacheOpts,
		MapperProvider:                operator.MapperProvider,
		// A replica that does not lead still lists and watches what the lock
		// controller watches, so that a new leader decides at once instead of first
		// listing every ProjectLock and Lease (seconds with thousands of locks; see
		// docs/benchmarks.md, "Restart").
		Controller: ctrlconfig.Controller{EnableWarmup: ptr.To(true)},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	switch {
	case !cfg.Enabled:
		// Switched off, the operator still serves its probes and metrics, so that a
		// Deployment stays healthy, but grants, queues and changes nothing.
		setupLog.Info("enhanced_locking.enabled is false: no lock is granted or changed until it is turned on")
	default:
		if cfg.Backend == config.BackendMemory {
			setupLog.Info("backend \"memory\": locks are granted in this process only, without Leases; use it for trials, never with more than one replica")
		}
		op, err := operator.Setup(ctx, mgr, cfg, clock.RealClock{}, operator.WithRegistry(ctrlmetrics.Registry),
			operator.WithAPICalls(calls), operator.WithGiveUp(func(reason error) {
				setupLog.Error(reason, "stopping")
				giveUp(reason)
			}))
		if err != nil {
			return err
		}
		endpoints.Bind(op)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}

	setupLog.Info("starting", "workers", cfg.WorkerCount, "backend", cfg.Backend, "leaderElection", opts.leaderElect)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}
