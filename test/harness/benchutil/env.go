package benchutil

import (
	"context"
	"errors"
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

	"github.com/runatlantis/atlantis-lock-operator/internal/logging"
	"github.com/runatlantis/atlantis-lock-operator/internal/scheme"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/localcluster"
)

// Client rate limits of every REST config an Env hands out. client-go's default (5
// QPS, burst 10) would throttle an operator to a few lock cycles per second, and a
// measurement would measure the limiter, not the operator.
const (
	ClientQPS   = 1000
	ClientBurst = 2000
)

// EnvOptions say where the control plane's binaries, state and CRDs are.
type EnvOptions struct {
	// StateDir is the control plane's state directory; it is wiped at start.
	StateDir string
	// BinDir holds etcd, kube-apiserver and kube-controller-manager.
	BinDir string
	// CRDDir holds the CRDs to install (config/crd/bases).
	CRDDir string
	// Namespace is created for the measurement's objects.
	Namespace string
}

// Env is the local control plane a measurement runs on, and a client for it.
type Env struct {
	// Cluster is the control plane.
	Cluster *localcluster.Cluster
	// Client is an uncached client with the operator's scheme: the measurement's
	// own "Atlantis" clients.
	Client client.WithWatch

	logFile *os.File
}

// StartEnv starts the local control plane in opts.StateDir, sends controller-runtime's
// and klog's logs of this process to LogPath("clients.log"), installs the CRDs and
// creates the namespace. On error nothing is left running.
func StartEnv(ctx context.Context, opts EnvOptions) (_ *Env, retErr error) {
	Step("starting the local control plane in %s", opts.StateDir)
	cluster, err := localcluster.Start(ctx, localcluster.Options{BinDir: opts.BinDir, StateDir: opts.StateDir})
	if err != nil {
		return nil, err
	}
	e := &Env{Cluster: cluster}
	defer func() {
		if retErr != nil {
			_ = e.Stop()
		}
	}()
	if err := e.redirectLogs(); err != nil {
		return nil, err
	}
	if _, err := localcluster.InstallCRDs(e.RESTConfig(), opts.CRDDir); err != nil {
		return nil, fmt.Errorf("%w (run `make manifests`)", err)
	}
	if e.Client, err = client.NewWithWatch(e.RESTConfig(), client.Options{Scheme: scheme.New()}); err != nil {
		return nil, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opts.Namespace}}
	if err := e.Client.Create(ctx, ns); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", opts.Namespace, err)
	}
	return e, nil
}

// redirectLogs sends the logs of controller-runtime and klog (client-go) of this
// process, its clients', to clients.log in the log directory, so that a report on
// stdout stays readable. The operator, a process of its own, logs to a file of its
// own.
func (e *Env) redirectLogs() error {
	f, err := os.OpenFile(e.LogPath("clients.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	e.logFile = f
	// The operator's logger, as cmd/main.go sets it: JSON at info level, every
	// line kept.
	logger := logging.NewJSON(zap.Options{DestWriter: f})
	ctrl.SetLogger(logger)
	klog.SetLogger(logger.WithName("klog"))
	return nil
}

// LogPath is the path of a log file named name in the control plane's log directory,
// beside the logs of etcd, kube-apiserver and kube-controller-manager.
func (e *Env) LogPath(name string) string {
	return filepath.Join(e.Cluster.LogDir(), name)
}

// RESTConfig returns a fresh admin REST config with the ClientQPS and ClientBurst
// rate limits.
func (e *Env) RESTConfig() *rest.Config {
	cfg := e.Cluster.Config()
	cfg.QPS, cfg.Burst = ClientQPS, ClientBurst
	return cfg
}

// StopInto stops the control plane (see Stop) and joins its error to *err: defer
// it with the named error result of the function that called StartEnv.
func (e *Env) StopInto(err *error) {
	Step("stopping the local control plane")
	*err = errors.Join(*err, e.Stop())
}

// Stop stops the control plane and checks that none of its processes is left.
func (e *Env) Stop() error {
	err := e.Cluster.Stop()
	if e.logFile != nil {
		_ = e.logFile.Close()
	}
	if err != nil {
		return err
	}
	if left := localcluster.ProcessesUsing(e.Cluster.StateDir()); len(left) > 0 {
		return fmt.Errorf("processes %v of the local control plane are still running", left)
	}
	return nil
}
