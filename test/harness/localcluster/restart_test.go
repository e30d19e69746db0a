package localcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// restartGrace is how long kube-apiserver or etcd may take to stop before it is
// killed.
const restartGrace = 2 * time.Second

// TestRestartAPIServerAndEtcd restarts kube-apiserver and stops and starts etcd of a
// running cluster, and checks that the clients made before (the admin's
// certificate and a service-account token) work again afterwards without being
// remade, that the objects are still there, that the processes are the cluster's
// (pid file) and that Stop still leaves nothing behind.
func TestRestartAPIServerAndEtcd(t *testing.T) {
	stateDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := Start(ctx, Options{BinDir: binDir(t), StateDir: stateDir})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	admin := kubernetes.NewForConfigOrDie(c.Config())
	url := c.APIServerURL().String()
	// kube-controller-manager exits when the API server goes away while it is still
	// building its controllers, in its first seconds. Garbage collection runs only
	// once every controller is built and the informers are started: after it, the
	// restart is what the tests that use it see, on a cluster that is up.
	testGarbageCollection(ctx, t, admin)

	ns := createNamespace(ctx, t, admin, "restart")
	before := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}, Data: map[string]string{"k": "v"}}
	if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, before, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sa := serviceAccountClient(ctx, t, admin, c, ns)
	pidsBefore := childrenUsing(stateDir)
	checkProcessIDs(t, c, pidsBefore)

	t.Run("kube-apiserver restarted", func(t *testing.T) {
		start := time.Now()
		if err := c.RestartAPIServer(ctx, restartGrace); err != nil {
			t.Fatal(err)
		}
		t.Logf("kube-apiserver restarted in %s", time.Since(start).Round(time.Millisecond))
		if got := c.APIServerURL().String(); got != url {
			t.Errorf("kube-apiserver serves at %s after the restart, want %s as before", got, url)
		}
		pids := childrenUsing(stateDir)
		if len(pids) != 3 || slices.Equal(pids, pidsBefore) {
			t.Errorf("children using the state directory: %v before, %v after the restart; want three, kube-apiserver's new", pidsBefore, pids)
		}
		checkRecordedPIDs(t, stateDir, pids)
		checkProcessIDs(t, c, pids)
		// The clients of before the restart, not new ones: they reconnect.
		checkReadable(ctx, t, admin, "the admin", ns, before.Name)
		checkReadable(ctx, t, sa, "the service account's token", ns, before.Name)
		if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-restart"}}, metav1.CreateOptions{}); err != nil {
			t.Errorf("writing after the restart: %v", err)
		}
	})

	t.Run("etcd stopped and started", func(t *testing.T) {
		if err := c.StopEtcd(ctx, restartGrace); err != nil {
			t.Fatal(err)
		}
		if pids := childrenUsing(stateDir); len(pids) != 2 {
			t.Errorf("children using the state directory with etcd stopped = %v, want kube-apiserver and kube-controller-manager", pids)
		}
		// The API server stays up without its storage, and says so on /readyz.
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, controllerTimeout, true, func(ctx context.Context) (bool, error) {
			return readyz(ctx, admin) != nil, nil
		})
		if err != nil {
			t.Fatalf("kube-apiserver's /readyz kept answering OK with etcd stopped: %v", err)
		}
		if err := c.StopEtcd(ctx, restartGrace); err != nil {
			t.Errorf("stopping a stopped etcd: %v", err)
		}

		start := time.Now()
		if err := c.StartEtcd(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("etcd started again in %s", time.Since(start).Round(time.Millisecond))
		checkRecordedPIDs(t, stateDir, childrenUsing(stateDir))
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, controllerTimeout, true, func(ctx context.Context) (bool, error) {
			return readyz(ctx, admin) == nil, nil
		})
		if err != nil {
			t.Fatalf("kube-apiserver's /readyz did not answer OK again after etcd was started: %v", err)
		}
		checkReadable(ctx, t, admin, "the admin", ns, before.Name)
		checkReadable(ctx, t, sa, "the service account's token", ns, "after-restart")
		if err := c.StartEtcd(ctx); err != nil {
			t.Errorf("starting a running etcd: %v", err)
		}
	})

	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if pids := ProcessesUsing(stateDir); len(pids) != 0 {
		t.Errorf("processes still using %s after Stop: %v", stateDir, pids)
	}
	for name, err := range map[string]error{
		"RestartAPIServer": c.RestartAPIServer(ctx, restartGrace),
		"StopEtcd":         c.StopEtcd(ctx, restartGrace),
		"StartEtcd":        c.StartEtcd(ctx),
	} {
		if !errors.Is(err, errStopped) {
			t.Errorf("%s after Stop: %v, want %v", name, err, errStopped)
		}
	}
}

// checkProcessIDs checks that ProcessIDs names the cluster's children, pids, each
// by the binary it runs.
func checkProcessIDs(t *testing.T, c *Cluster, pids []int) {
	t.Helper()
	ids, err := c.ProcessIDs()
	if err != nil {
		t.Fatalf("ProcessIDs: %v", err)
	}
	var got []int
	for name, pid := range ids {
		got = append(got, pid)
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			t.Errorf("ProcessIDs: %s has pid %d, which is not running: %v", name, pid, err)
			continue
		}
		if argv0, _, _ := strings.Cut(string(cmdline), "\x00"); filepath.Base(argv0) != name {
			t.Errorf("ProcessIDs: pid %d of %s runs %s", pid, name, argv0)
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(pids))
	if !slices.Equal(got, want) {
		t.Errorf("ProcessIDs = %v, want the cluster's children %v", ids, want)
	}
}

// serviceAccountClient makes a service account in ns allowed to read its
// ConfigMaps, and returns a client authenticated with a TokenRequest token of it.
func serviceAccountClient(ctx context.Context, t *testing.T, admin kubernetes.Interface, c *Cluster, ns string) kubernetes.Interface {
	t.Helper()
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "reader", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	grantConfigMapReads(ctx, t, admin, ns, "reader")
	admCfg := c.Config()
	cfg := &rest.Config{Host: admCfg.Host, BearerToken: tr.Status.Token}
	cfg.CAData = admCfg.CAData
	return kubernetes.NewForConfigOrDie(cfg)
}

// checkReadable reads ConfigMap ns/name through cs, failing the test with who
// could not.
func checkReadable(ctx context.Context, t *testing.T, cs kubernetes.Interface, who, ns, name string) {
	t.Helper()
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Errorf("%s cannot read ConfigMap %s/%s: %v", who, ns, name, err)
	}
}

// readyz asks kube-apiserver's /readyz, with a deadline of its own so that an API
// server waiting for etcd counts as not ready.
func readyz(ctx context.Context, cs kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return cs.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
}

// checkRecordedPIDs checks that the pid file lists exactly pids, so that a later
// Start in the same directory could end them.
func checkRecordedPIDs(t *testing.T, stateDir string, pids []int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stateDir, pidFile))
	if err != nil {
		t.Fatal(err)
	}
	var recorded []int
	for _, field := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(field)
		if err != nil {
			t.Fatalf("pid file: %v", err)
		}
		recorded = append(recorded, pid)
	}
	if !slices.Equal(recorded, pids) {
		t.Errorf("pid file lists %v, want the running processes %v", recorded, pids)
	}
}

// grantConfigMapReads lets service account ns/name read the ConfigMaps of ns.
func grantConfigMapReads(ctx context.Context, t *testing.T, admin kubernetes.Interface, ns, name string) {
	t.Helper()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}},
	}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
