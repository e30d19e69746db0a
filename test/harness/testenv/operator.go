package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/operator"
)

// Operator is the lock operator embedded in a test process, set up by
// internal/operator as cmd/main.go sets it up (operator.EmbeddedOptions: no leader
// election, no metrics server).
type Operator struct {
	// Operator is what operator.Setup returned.
	*operator.Operator

	cancel context.CancelFunc
	done   chan error
}

// cacheSyncTimeout bounds the wait for a new operator's informers.
const cacheSyncTimeout = 30 * time.Second

// StartOperator runs the operator with cfg against the API server, on the real clock,
// until Stop. customize, when not nil, changes the manager options first (for example
// the cache's namespaces). It returns once the operator's caches have synced.
func (e *Env) StartOperator(cfg config.Config, customize func(*ctrl.Options)) (*Operator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("operator configuration: %w", err)
	}
	opts := operator.EmbeddedOptions()
	if customize != nil {
		customize(&opts)
	}
	mgr, err := ctrl.NewManager(e.Config, opts)
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	op, err := operator.Setup(ctx, mgr, cfg, clock.RealClock{})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("setting up the operator: %w", err)
	}
	o := &Operator{Operator: op, cancel: cancel, done: make(chan error, 1)}
	go func() { o.done <- mgr.Start(ctx) }()
	syncCtx, syncCancel := context.WithTimeout(ctx, cacheSyncTimeout)
	defer syncCancel()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		return nil, errors.Join(errors.New("the operator's caches did not sync"), o.Stop())
	}
	return o, nil
}

// Stop stops the operator and waits until it has stopped.
func (o *Operator) Stop() error {
	o.cancel()
	return <-o.done
}

// WriteKubeconfig writes a kubeconfig file that reaches the API server as the
// admin, with namespace as the context's default namespace, so that a test can run
// a program that loads its configuration the standard way (KUBECONFIG, --kubeconfig).
func (e *Env) WriteKubeconfig(path, namespace string) error {
	const name = "envtest"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   e.Config.Host,
		CertificateAuthorityData: e.Config.CAData,
	}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{
		ClientCertificateData: e.Config.CertData,
		ClientKeyData:         e.Config.KeyData,
		Token:                 e.Config.BearerToken,
	}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: namespace}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

// MainWithOperator is the body of a TestMain whose tests need the API server and an
// operator: it starts both (the operator with cfg, its manager options changed by
// customize when not nil), calls setup (when not nil) with the environment, runs the
// tests and stops everything. It returns the exit code for os.Exit. The operator's
// log is discarded.
func MainWithOperator(m *testing.M, cfg config.Config, customize func(*ctrl.Options), setup func(*Env) error) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	env, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start the test API server:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the test API server:", err)
		}
	}()
	op, err := env.StartOperator(cfg, customize)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start the operator:", err)
		return 1
	}
	defer func() {
		if err := op.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the operator:", err)
		}
	}()
	if setup != nil {
		if err := setup(env); err != nil {
			fmt.Fprintln(os.Stderr, "setting up the tests:", err)
			return 1
		}
	}
	return m.Run()
}
