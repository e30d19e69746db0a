package lockclient_test

// The tests run the client against a real kube-apiserver and etcd (envtest) with the
// operator embedded, as cmd/main.go sets it up. Namespace "unattended" is left out of
// the operator's cache, to see what the client does when no operator decides.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

const (
	// unattendedNamespace is a namespace no operator serves.
	unattendedNamespace = "unattended"
	// exampleNamespace is where the Examples take their locks.
	exampleNamespace = "atlantis"
	// testTimeout bounds every wait of a test; reaching it is a failure.
	testTimeout = 30 * time.Second
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	// The Examples load their configuration as a program does: from KUBECONFIG.
	dir, err := os.MkdirTemp("", "lockclient-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	cfg := config.Default()
	cfg.WorkerCount = 4
	ignoreUnattended := func(o *ctrl.Options) {
		o.Cache.DefaultFieldSelector = fields.OneTermNotEqualSelector("metadata.namespace", unattendedNamespace)
	}
	return testenv.MainWithOperator(m, cfg, ignoreUnattended, func(e *testenv.Env) error {
		env = e
		for _, ns := range []string{unattendedNamespace, exampleNamespace} {
			if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				return err
			}
		}
		kubeconfig := filepath.Join(dir, "kubeconfig")
		if err := env.WriteKubeconfig(kubeconfig, exampleNamespace); err != nil {
			return err
		}
		return os.Setenv("KUBECONFIG", kubeconfig)
	})
}

// newNamespace creates a namespace of its own for a test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "lockclient-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// newClient returns a lock client for a new namespace of its own.
func newClient(t *testing.T, opts ...lockclient.Option) *lockclient.Client {
	t.Helper()
	return newClientIn(t, newNamespace(t), opts...)
}

func newClientIn(t *testing.T, ns string, opts ...lockclient.Option) *lockclient.Client {
	t.Helper()
	kc, err := client.NewWithWatch(env.Config, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return lockclient.New(kc, ns, opts...)
}

func deadline(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startWithoutCRDs starts a second API server, one without this project's CRDs, for
// the length of the test.
func startWithoutCRDs(t *testing.T) (*testenv.Env, error) {
	t.Helper()
	bare, err := testenv.StartWithoutCRDs()
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := bare.Stop(); err != nil {
			t.Errorf("stopping the API server without CRDs: %v", err)
		}
	})
	return bare, nil
}
