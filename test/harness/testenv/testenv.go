// Package testenv starts a real kube-apiserver and etcd (envtest) with this project's
// CRDs installed, for integration tests. The binaries come from bin/, built by
// `make tools`; KUBEBUILDER_ASSETS may point elsewhere.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/runatlantis/atlantis-lock-operator/internal/scheme"
)

// Env is a running API server with the CRDs installed.
type Env struct {
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Client is a live (uncached) client with Scheme.
	Client client.Client
	// Scheme knows the built-in kinds and this project's kinds.
	Scheme *runtime.Scheme

	env *envtest.Environment
}

// NewScheme returns a scheme with the built-in kinds and this project's kinds.
func NewScheme() *runtime.Scheme { return scheme.New() }

// RepoRoot returns the directory of this repository's go.mod, found upwards from the
// working directory (a test's package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && isRootModule(data) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no go.mod of github.com/runatlantis/atlantis-lock-operator above the working directory")
		}
		dir = parent
	}
}

func isRootModule(goMod []byte) bool {
	const want = "module github.com/runatlantis/atlantis-lock-operator\n"
	return len(goMod) >= len(want) && string(goMod[:len(want)]) == want
}

// AssetsDir returns where etcd, kube-apiserver and kubectl are: KUBEBUILDER_ASSETS, or
// bin/ of the repository. It fails with the command to run when they are missing.
func AssetsDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "bin")
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("testenv: %s not found in %s; run `make tools` first", name, dir)
		}
	}
	return dir, nil
}

// Start starts etcd and kube-apiserver and installs the CRDs of config/crd/bases.
// Call Stop when done (in TestMain, after m.Run).
func Start() (*Env, error) {
	return start(true)
}

// StartWithoutCRDs starts etcd and kube-apiserver without this project's CRDs: a
// cluster where the operator is not installed, for testing what clients say then.
func StartWithoutCRDs() (*Env, error) {
	return start(false)
}

func start(withCRDs bool) (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	sch := NewScheme()
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		Scheme:                sch,
	}
	if withCRDs {
		env.CRDDirectoryPaths = []string{filepath.Join(root, "config", "crd", "bases")}
		env.ErrorIfCRDPathMissing = true
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("testenv: starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	// Tests run many clients at once; the default 5 QPS would measure the limiter.
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := client.New(cfg, client.Options{Scheme: sch})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Config: cfg, Client: c, Scheme: sch, env: env}, nil
}

// Stop stops the API server and etcd.
func (e *Env) Stop() error {
	return e.env.Stop()
}
