//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/localcluster"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

// The release the tests install, as docs/install.md names it.
const (
	releaseName      = "atlantis-lock-operator"
	releaseNamespace = "atlantis-locks"
	// electionLease is the leader election Lease of the manager (cmd/main.go), in
	// the release namespace.
	electionLease = "atlantis-lock-operator.locking.runatlantis.io"
)

// Bounds of the waits. They are deadlines for things that take a second or two,
// generous for a busy two-core machine; no test asserts how long anything took.
const (
	// stepTimeout bounds one wait for the operator or kube-controller-manager.
	stepTimeout = time.Minute
	// trafficTimeout bounds the lock clients' traffic, leader failover included
	// (a takeover waits out the 15 s election lease).
	trafficTimeout = 4 * time.Minute
	// pollInterval is how often polled state is read again.
	pollInterval = 100 * time.Millisecond
)

// suite is the installed release on a running control plane.
type suite struct {
	root, bin string
	// dir holds everything of this run: the cluster's state, the managers'
	// configuration, kubeconfigs and logs. It is kept when the test fails.
	dir     string
	cluster *localcluster.Cluster
	// admin is a live client with cluster-admin rights (the person or the
	// Atlantis of the tests).
	admin client.WithWatch
	cs    kubernetes.Interface
	// run is how the chart's Deployment runs the manager, made runnable here.
	run managerRun
	// managers are the manager processes started so far.
	managers []*manager
	// notReady are the spans in which a fault test had the API server restarting
	// and not ready: RBAC denials logged then do not fail the test.
	notReady []window
}

// TestEndToEnd installs the chart on a local control plane, runs two managers as the
// chart's ServiceAccount and goes through the story of docs/install.md and
// docs/locking.md: kubectl, many lock clients across a leader failover, uninstall.
// The steps share the cluster and build on each other, so the first failing step
// ends the test.
func TestEndToEnd(t *testing.T) {
	s := setUp(t)
	runSteps(t, []step{
		{"kubectl", s.testKubectl},
		{"lock clients across a leader failover", s.testFailover},
		{"uninstall", s.testUninstall},
	})
}

// step is a part of a test that shares the cluster with the steps before it.
type step struct {
	name string
	run  func(*testing.T)
}

// runSteps runs steps in order, each as a subtest; the first that fails ends the
// test, since the later ones need the cluster it leaves.
func runSteps(t *testing.T, steps []step) {
	t.Helper()
	for _, st := range steps {
		if !t.Run(st.name, st.run) {
			t.Fatalf("step %q failed; later steps need it", st.name)
		}
	}
}

// setUp starts the control plane, installs the chart and starts two managers, the
// first of which leads. Everything is stopped when the test ends, and the test fails
// if a process of the run is left.
func setUp(t *testing.T) *suite {
	s := installRelease(t)
	ctx := t.Context()
	start := time.Now()
	first := s.startManager(t, "manager-0")
	eventually(ctx, t, "manager-0 leads", func(ctx context.Context) (bool, error) {
		if err := first.exited(); err != nil {
			return false, err
		}
		st, err := first.status(ctx)
		return err == nil && st.Leader, nil
	})
	second := s.startManager(t, "manager-1")
	eventually(ctx, t, "manager-1 is ready", second.ready)
	if st, err := second.status(ctx); err != nil || st.Leader {
		t.Fatalf("manager-1's /status: %+v, %v; want it standing by while manager-0 leads", st, err)
	}
	t.Logf("two managers up, manager-0 leading, in %s", since(start))
	return s
}

// installRelease starts the control plane and installs the chart, and makes the
// managers runnable as the chart's Deployment runs them (s.run), without starting
// any. Everything is stopped when the test ends, and the test fails if a process of
// the run is left.
func installRelease(t *testing.T) *suite {
	// envtest's CRD and control-plane code logs through controller-runtime.
	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{root: root, bin: filepath.Join(root, "bin")}
	for _, tool := range []string{"manager", "helm", "kubectl"} {
		if _, err := os.Stat(filepath.Join(s.bin, tool)); err != nil {
			t.Fatalf("%s: run `make test-e2e`, which builds the tools and the manager first", err)
		}
	}
	s.dir = keptTempDir(t)

	ctx := t.Context()
	start := time.Now()
	s.cluster, err = localcluster.Start(context.Background(), localcluster.Options{BinDir: s.bin, StateDir: filepath.Join(s.dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.cluster.Stop(); err != nil {
			t.Error(err)
		}
		if left := localcluster.ProcessesUsing(s.dir); len(left) > 0 {
			t.Errorf("processes %v of the test (control plane or managers) are still running after it", left)
		}
	})
	t.Cleanup(func() { s.dumpOnFailure(t) })
	t.Cleanup(func() { s.stopManagers(t) })
	t.Logf("control plane up in %s (state in %s)", since(start), s.dir)

	s.cs = kubernetes.NewForConfigOrDie(s.cluster.Config())
	if s.admin, err = client.NewWithWatch(s.cluster.Config(), client.Options{Scheme: lockclient.NewScheme()}); err != nil {
		t.Fatal(err)
	}

	start = time.Now()
	s.helm(t, "install", releaseName, filepath.Join(root, "charts", "atlantis-lock-operator"),
		"--namespace", releaseNamespace, "--create-namespace")
	t.Logf("helm install (default values) in %s", since(start))

	s.run = managerRunOf(ctx, t, s)
	s.run.kubeconfig = s.writeServiceAccountKubeconfig(ctx, t, s.run.serviceAccount)
	return s
}

// keptTempDir makes a temporary directory that is removed when the test passes and
// kept, for its logs, when it fails or E2E_KEEP_STATE is true.
func keptTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "alo-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("E2E_KEEP_STATE") == "true" {
			t.Logf("logs and cluster state kept in %s", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	return dir
}

// writeServiceAccountKubeconfig asks the TokenRequest API for a token of the chart's
// ServiceAccount and writes a kubeconfig with it and the cluster's CA, as a pod's
// projected token would give the manager. It checks that the API server sees the
// ServiceAccount, so that nothing but the chart's RBAC authorizes the managers.
func (s *suite) writeServiceAccountKubeconfig(ctx context.Context, t *testing.T, serviceAccount string) string {
	tr, err := s.cs.CoreV1().ServiceAccounts(releaseNamespace).CreateToken(ctx, serviceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for ServiceAccount %s/%s: %v", releaseNamespace, serviceAccount, err)
	}
	admin := s.cluster.Config()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: admin.CAData}
	cfg.AuthInfos[serviceAccount] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: serviceAccount, Namespace: releaseNamespace}
	cfg.CurrentContext = "e2e"
	path := filepath.Join(s.dir, serviceAccount+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}

	restCfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	review, err := kubernetes.NewForConfigOrDie(restCfg).AuthenticationV1().SelfSubjectReviews().
		Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("who am I with the ServiceAccount token: %v", err)
	}
	want := "system:serviceaccount:" + releaseNamespace + ":" + serviceAccount
	if got := review.Status.UserInfo.Username; got != want {
		t.Fatalf("the managers' kubeconfig authenticates as %q, want %q", got, want)
	}
	return path
}

// createNamespace creates a namespace for the LockRequests of one step.
func (s *suite) createNamespace(ctx context.Context, t *testing.T, name string) {
	if _, err := s.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// dumpOnFailure shows what a failure needs to be understood: the locks and Leases of
// every namespace and the end of each manager's log.
func (s *suite) dumpOnFailure(t *testing.T) {
	if !t.Failed() {
		return
	}
	if out, err := s.kubectlOut(context.Background(), "get", "lr,pl,lease", "-A", "-o", "wide"); err != nil {
		t.Logf("kubectl get lr,pl,lease -A -o wide: %v", err)
	} else {
		t.Logf("kubectl get lr,pl,lease -A -o wide:\n%s", out)
	}
	for _, m := range s.managers {
		t.Logf("%s (%s): errors:\n%s\nlast lines:\n%s", m.name, m.logPath, m.logErrors(10), m.logTail(10))
	}
}

// eventually polls cond until it is true, failing the test with what when stepTimeout
// passes first. cond's error ends the wait at once.
func eventually(ctx context.Context, t *testing.T, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	if err := poll(ctx, cond); err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
}

// poll polls cond until it is true, and returns an error when stepTimeout passes
// first or cond returns one.
func poll(ctx context.Context, cond func(context.Context) (bool, error)) error {
	return wait.PollUntilContextTimeout(ctx, pollInterval, stepTimeout, true, cond)
}

// since is the time since start, rounded for the logs.
func since(start time.Time) time.Duration {
	return time.Since(start).Round(time.Millisecond)
}

// must fails the test on err, naming what was done.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// joinLines indents lines for a readable failure message.
func joinLines(lines []string) string {
	return "\n\t" + strings.Join(lines, "\n\t")
}
