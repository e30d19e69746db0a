package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/runatlantis/atlantis-lock-operator/internal/localcluster"
	"github.com/runatlantis/atlantis-lock-operator/internal/scheme"
)

// Client rate limits of every REST config of the benchmark, the operator's included.
// client-go's default (5 QPS, burst 10) would throttle the operator to a few lock
// cycles per second and the benchmark would measure the limiter, not the operator.
const (
	clientQPS   = 1000
	clientBurst = 2000
)

// env is the local control plane the benchmark runs on, and a client for it.
type env struct {
	cluster *localcluster.Cluster
	// client is an uncached client with the operator's scheme: the benchmark's own
	// "Atlantis" clients.
	client client.WithWatch
	// logFile receives the operator's and client-go's logs.
	logFile *os.File
}

// startEnv starts the local control plane in opts.stateDir, sends controller-runtime's
// and klog's logs to a file in its log directory, installs the CRDs and creates the
// benchmark's namespace. On error nothing is left running.
func startEnv(ctx context.Context, opts options) (_ *env, retErr error) {
	cluster, err := localcluster.Start(ctx, localcluster.Options{BinDir: opts.binDir, StateDir: opts.stateDir})
	if err != nil {
		return nil, err
	}
	e := &env{cluster: cluster}
	defer func() {
		if retErr != nil {
			_ = e.stop()
		}
	}()
	if err := e.redirectLogs(); err != nil {
		return nil, err
	}
	if _, err := localcluster.InstallCRDs(e.restConfig(), opts.crdDir); err != nil {
		return nil, fmt.Errorf("%w (run `make manifests`)", err)
	}
	if e.client, err = client.NewWithWatch(e.restConfig(), client.Options{Scheme: scheme.New()}); err != nil {
		return nil, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opts.namespace}}
	if err := e.client.Create(ctx, ns); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", opts.namespace, err)
	}
	return e, nil
}

// redirectLogs sends the logs of controller-runtime (the operator) and klog
// (client-go) to LOGDIR/operator.log, so that the report on stdout stays readable.
func (e *env) redirectLogs() error {
	path := e.operatorLogPath()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	e.logFile = f
	// Production mode: JSON at info level.
	logger := zap.New(zap.WriteTo(f))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger.WithName("klog"))
	return nil
}

// operatorLogPath is where redirectLogs writes.
func (e *env) operatorLogPath() string {
	return filepath.Join(e.cluster.LogDir(), "operator.log")
}

// restConfig returns a fresh admin REST config with the benchmark's rate limits.
func (e *env) restConfig() *rest.Config {
	cfg := e.cluster.Config()
	cfg.QPS, cfg.Burst = clientQPS, clientBurst
	return cfg
}

// stop stops the control plane and checks that none of its processes is left.
func (e *env) stop() error {
	err := e.cluster.Stop()
	if e.logFile != nil {
		_ = e.logFile.Close()
	}
	if err != nil {
		return err
	}
	if left := localcluster.ProcessesUsing(e.cluster.StateDir()); len(left) > 0 {
		return fmt.Errorf("processes %v of the local control plane are still running", left)
	}
	return nil
}
