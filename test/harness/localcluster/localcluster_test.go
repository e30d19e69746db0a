package localcluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// controllerTimeout bounds how long the controllers of kube-controller-manager may
// take to act; they start their informers after /healthz already answers.
const controllerTimeout = 60 * time.Second

// binDir is where `make tools` puts the binaries: KUBEBUILDER_ASSETS (the Makefile
// exports it), else bin/ at the repository root, two levels above this package.
func binDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin")
	}
	for _, name := range []string{EtcdBinary, APIServerBinary, ControllerManagerBinary} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("%s not found in %s: run `make tools` first", name, dir)
		}
	}
	return dir
}

// TestClusterRunsControllers starts a cluster and proves that kube-controller-manager
// works (garbage collection, namespace deletion), that extra users authenticate and
// are subject to RBAC, and that Stop leaves no process behind.
func TestClusterRunsControllers(t *testing.T) {
	stateDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	started := time.Now()
	c, err := Start(ctx, Options{BinDir: binDir(t), StateDir: stateDir})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("control plane started in %s", time.Since(started).Round(time.Millisecond))
	t.Cleanup(func() { _ = c.Stop() })

	if _, err := os.Stat(c.KubeconfigPath()); err != nil {
		t.Errorf("admin kubeconfig: %v", err)
	}
	if pids := childrenUsing(stateDir); len(pids) != 3 {
		t.Errorf("children using the state directory = %v, want etcd, kube-apiserver and kube-controller-manager", pids)
	}
	cs := kubernetes.NewForConfigOrDie(c.Config())

	t.Run("garbage collection of owned objects", func(t *testing.T) {
		testGarbageCollection(ctx, t, cs)
	})
	t.Run("namespace deletion", func(t *testing.T) {
		testNamespaceDeletion(ctx, t, cs)
	})
	t.Run("extra users are subject to RBAC", func(t *testing.T) {
		testUserWithoutRoles(ctx, t, c)
	})

	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if pids := ProcessesUsing(stateDir); len(pids) != 0 {
		t.Errorf("processes still using %s after Stop: %v", stateDir, pids)
	}
}

func testGarbageCollection(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	ns := createNamespace(ctx, t, cs, "gc")
	cms := cs.CoreV1().ConfigMaps(ns)
	owner, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dependent := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "dependent",
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID,
		}},
	}}
	if _, err := cms.Create(ctx, dependent, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	background := metav1.DeletePropagationBackground
	if err := cms.Delete(ctx, owner.Name, metav1.DeleteOptions{PropagationPolicy: &background}); err != nil {
		t.Fatal(err)
	}
	waitGone(ctx, t, "ConfigMap "+ns+"/dependent", func(ctx context.Context) error {
		_, err := cms.Get(ctx, dependent.Name, metav1.GetOptions{})
		return err
	})
}

func testNamespaceDeletion(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	ns := createNamespace(ctx, t, cs, "delete-me")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "content"}}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Only the namespace controller empties a terminating namespace and removes its
	// "kubernetes" finalizer.
	waitGone(ctx, t, "Namespace "+ns, func(ctx context.Context) error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err
	})
}

func testUserWithoutRoles(ctx context.Context, t *testing.T, c *Cluster) {
	user, err := c.AddUser("alice", []string{"developers"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(user.KubeconfigPath); err != nil {
		t.Errorf("kubeconfig of %s: %v", user.Name, err)
	}
	cs := kubernetes.NewForConfigOrDie(user.Config())
	_, err = cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("listing namespaces as a user without roles: got %v, want Forbidden (authenticated, not authorized)", err)
	}
}

// createNamespace creates a namespace with a generated name starting with prefix.
func createNamespace(ctx context.Context, t *testing.T, cs kubernetes.Interface, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	ns, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// waitGone polls get until it reports NotFound, failing the test after
// controllerTimeout.
func waitGone(ctx context.Context, t *testing.T, what string, get func(context.Context) error) {
	t.Helper()
	start := time.Now()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, controllerTimeout, true, func(ctx context.Context) (bool, error) {
		err := get(ctx)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("%s not deleted by kube-controller-manager: %v", what, err)
	}
	t.Logf("%s deleted after %s", what, time.Since(start).Round(time.Millisecond))
}
