package atlantis_test

// The tests of this module run against a real kube-apiserver and etcd (envtest, the
// binaries of the repository's bin/, built by `make tools`) with the operator
// embedded in the test process as cmd/main.go sets it up, and, for the differential
// test, against Atlantis's own BoltDB backend in a temporary directory.

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/pkg/atlantis"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("TEST_OPERATOR_LOG") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	}
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start the test API server:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the test API server:", err)
		}
	}()

	op, err := env.StartOperator(config.Default(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the operator:", err)
		return 1
	}
	defer func() {
		if err := op.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the operator:", err)
		}
	}()
	return m.Run()
}

// newNamespace makes a namespace of its own for one test, so that tests never see
// each other's locks.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "atlantis-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// newClient returns a lock client for namespace ns, as Atlantis would build one.
func newClient(t *testing.T, ns string) *lockclient.Client {
	t.Helper()
	kc, err := client.NewWithWatch(env.Config, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return lockclient.New(kc, ns)
}

// countedLocker is a Locker of a namespace of its own whose client counts its lists
// of LockRequests.
type countedLocker struct {
	ns      string
	kc      client.WithWatch
	counted *testenv.ReadCounter
	client  *lockclient.Client
	locker  *atlantis.Locker
}

func newCountedLocker(t *testing.T) countedLocker {
	t.Helper()
	ns := newNamespace(t)
	kc, err := client.NewWithWatch(env.Config, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	counted := &testenv.ReadCounter{WithWatch: kc}
	c := lockclient.New(counted, ns)
	return countedLocker{ns: ns, kc: kc, counted: counted, client: c, locker: atlantis.NewLocker(c)}
}

// adapter is the Locker and ApplyLocker of one namespace.
type adapter struct {
	ns     string
	locker *atlantis.Locker
	apply  *atlantis.ApplyLocker
}

func newAdapter(t *testing.T, opts ...atlantis.Option) adapter {
	t.Helper()
	ns := newNamespace(t)
	c := newClient(t, ns)
	return adapter{ns: ns, locker: atlantis.NewLocker(c, opts...), apply: atlantis.NewApplyLocker(c, false, false, opts...)}
}
