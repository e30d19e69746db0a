//go:build e2e

// Package e2e runs an unmodified Atlantis v0.47.1 server (bin/atlantis, built by
// `make tools` from hack/tools/atlantis) with --locking-db-type=redis pointed at the
// gateway (bin/redis-gateway), on the local control plane (etcd, kube-apiserver,
// kube-controller-manager from bin/) with the operator (bin/manager) running. The
// gateway authenticates as Atlantis's ServiceAccount with the RBAC that the chart
// renders for it (atlantis.redisGateway.enabled), and runs with the arguments of
// the chart's sidecar snippet. Atlantis has no VCS here: its GitHub host is a
// loopback address, so that nothing it does leaves the machine.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/test/httpcheck"
	"github.com/runatlantis/atlantis-lock-operator/pkg/atlantis"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/localcluster"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/managerproc"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

const (
	release   = "alo"
	releaseNS = "atlantis-locks"
	// atlantisNS is Atlantis's namespace, its ServiceAccount's and its locks'.
	atlantisNS = "atlantis"
	atlantisSA = "atlantis"
	// lockKey is the lock the test takes with kubectl.
	lockKey = "acme/infra/modules/vpc/default/"
)

// env is what the test runs in.
type env struct {
	root, bin, dir string
	cluster        *localcluster.Cluster
	http           *http.Client
}

func TestUnmodifiedAtlantis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{root: root, bin: filepath.Join(root, "bin"), dir: t.TempDir(), http: &http.Client{Timeout: 20 * time.Second}}
	for _, b := range []string{"atlantis", "redis-gateway", "manager", "kubectl", "helm"} {
		if _, err := os.Stat(filepath.Join(e.bin, b)); err != nil {
			t.Fatalf("bin/%s is missing: run `make tools build` (%v)", b, err)
		}
	}
	e.cluster, err = localcluster.Start(ctx, localcluster.Options{BinDir: e.bin, StateDir: filepath.Join(e.dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.cluster.Stop(); err != nil {
			t.Errorf("stopping the cluster: %v", err)
		}
	})

	// The chart, with the gateway's RBAC for Atlantis's ServiceAccount. There is no
	// kubelet: its operator pods never run, so the test runs bin/manager itself.
	e.run(t, nil, "kubectl", "create", "namespace", atlantisNS)
	e.run(t, nil, "kubectl", "-n", atlantisNS, "create", "serviceaccount", atlantisSA)
	e.helm(t, "install", release, filepath.Join(root, "charts", "atlantis-lock-operator"), "-n", releaseNS, "--create-namespace",
		"--set", "atlantis.redisGateway.enabled=true",
		"--set", "atlantis.serviceAccount.name="+atlantisSA, "--set", "atlantis.serviceAccount.namespace="+atlantisNS)
	manager, err := managerproc.Start(managerproc.Options{
		Binary: filepath.Join(e.bin, "manager"), Kubeconfig: e.cluster.KubeconfigPath(),
		Args: []string{"--leader-elect=false"}, LogPath: filepath.Join(e.dir, "manager.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = manager.Stop(20 * time.Second) })
	if err := manager.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}

	// The Deployment-with-a-Service example of docs/redis-gateway.md is valid.
	e.run(t, nil, "kubectl", "apply", "--dry-run=server", "-f", filepath.Join(root, "docs", "examples", "redis-gateway-deployment.yaml"))

	gwPort, gwHTTP := e.startGateway(ctx, t)
	atlantisURL := e.startAtlantis(ctx, t, gwPort)

	t.Run("a lock taken with kubectl apply is on Atlantis's lock list", func(t *testing.T) {
		manifest := `apiVersion: locking.runatlantis.io/v1alpha1
kind: LockRequest
metadata: {name: infra-vpc-pr42, namespace: atlantis}
spec:
  project: {repository: acme/infra, path: modules/vpc}
  workspace: default
  pull: {number: 42, url: "https://github.com/acme/infra/pull/42", author: alice}
  user: {username: alice}
`
		e.runStdin(t, manifest, "kubectl", "apply", "-f", "-")
		e.run(t, nil, "kubectl", "-n", atlantisNS, "wait", "--for=condition=Acquired", "lockrequest/infra-vpc-pr42", "--timeout=60s")

		var got struct {
			Locks []struct {
				Name, ProjectName, ProjectRepo, ProjectRepoPath, PullID, PullURL, User, Workspace string
				Time                                                                              time.Time
			}
		}
		body := e.get(ctx, t, atlantisURL+"/api/locks")
		// For docs/usage.md: what a person sees on both sides.
		t.Logf("kubectl -n %s get projectlocks:\n%s", atlantisNS, e.run(t, nil, "kubectl", "-n", atlantisNS, "get", "projectlocks"))
		t.Logf("GET /api/locks: %s", body)
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("GET /api/locks: %v\n%s", err, body)
		}
		if len(got.Locks) != 1 {
			t.Fatalf("GET /api/locks: %d locks, want 1:\n%s", len(got.Locks), body)
		}
		l := got.Locks[0]
		if l.Name != lockKey || l.ProjectRepo != "acme/infra" || l.ProjectRepoPath != "modules/vpc" || l.PullID != "42" ||
			l.PullURL != "https://github.com/acme/infra/pull/42" || l.User != "alice" || l.Workspace != "default" || l.Time.IsZero() {
			t.Errorf("GET /api/locks: %+v", l)
		}
		// Atlantis's own pages: the index lists the lock, the lock page shows its pull.
		if index := e.get(ctx, t, atlantisURL+"/"); !strings.Contains(index, "acme/infra") {
			t.Errorf("Atlantis's index page does not list the lock of acme/infra")
		}
		if page := e.get(ctx, t, atlantisURL+"/lock?id="+url.QueryEscape(lockKey)); !strings.Contains(page, "https://github.com/acme/infra/pull/42") {
			t.Errorf("Atlantis's lock page does not link pull 42:\n%s", page)
		}
	})

	t.Run("a lock Atlantis takes is in kubectl get projectlocks", func(t *testing.T) {
		if body := e.do(ctx, t, http.MethodPost, atlantisURL+"/apply/lock", http.StatusOK); !strings.Contains(body, "Apply Lock is acquired") {
			t.Errorf("POST /apply/lock: %s", body)
		}
		// The operator creates the ProjectLock once the hold has lasted
		// project_lock_delay (1s).
		applyLock := "projectlock/" + lockkey.New(atlantis.DefaultApplyLockProject.Repository, atlantis.DefaultApplyLockProject.Path,
			"default", atlantis.DefaultApplyLockProject.Name).ObjectName()
		e.run(t, nil, "kubectl", "-n", atlantisNS, "wait", "--for=create", applyLock, "--timeout=60s")
		table := e.run(t, nil, "kubectl", "-n", atlantisNS, "get", "projectlocks")
		if !strings.Contains(table, "runatlantis.io/global-apply-lock") || !strings.Contains(table, "atlantis-global-apply-lock") {
			t.Errorf("kubectl get projectlocks does not show Atlantis's global apply lock:\n%s", table)
		}
		// A second replica (or a second click) cannot take it again.
		if body := e.do(ctx, t, http.MethodPost, atlantisURL+"/apply/lock", http.StatusInternalServerError); !strings.Contains(body, "lock already exists") {
			t.Errorf("POST /apply/lock again: %s", body)
		}
		if body := e.do(ctx, t, http.MethodDelete, atlantisURL+"/apply/unlock", http.StatusOK); !strings.Contains(body, "Deleted apply lock") {
			t.Errorf("DELETE /apply/unlock: %s", body)
		}
		// The ProjectLock of the idle key goes once it has been idle project_lock_delay.
		e.run(t, nil, "kubectl", "-n", atlantisNS, "wait", "--for=delete", applyLock, "--timeout=60s")
		if table := e.run(t, nil, "kubectl", "-n", atlantisNS, "get", "projectlocks"); strings.Contains(table, "global-apply-lock") {
			t.Errorf("the global apply lock is still there after Atlantis released it:\n%s", table)
		}
	})

	t.Run("Atlantis's unlock releases the kubectl lock", func(t *testing.T) {
		e.do(ctx, t, http.MethodDelete, atlantisURL+"/locks?id="+url.QueryEscape(lockKey), http.StatusOK)
		e.run(t, nil, "kubectl", "-n", atlantisNS, "wait", "--for=delete", "lockrequest/infra-vpc-pr42", "--timeout=60s")
		if body := e.get(ctx, t, atlantisURL+"/api/locks"); strings.Contains(body, lockKey) {
			t.Errorf("GET /api/locks still lists %s:\n%s", lockKey, body)
		}
	})

	// Atlantis never failed a database call, but for the second apply lock the
	// test asked for. (Its comment on the deleted lock's pull fails: its GitHub is
	// a closed loopback port.)
	atlantisLog, err := os.ReadFile(filepath.Join(e.dir, "atlantis.log"))
	if err != nil {
		t.Fatal(err)
	}
	failed := strings.Split(grep(strings.ToLower(string(atlantisLog)), "db transaction failed"), "\n")
	if len(failed) != 1 || !strings.Contains(failed[0], "creating apply lock failed with: db transaction failed: lock already exists") {
		t.Errorf("Atlantis's database calls failed:\n%s", strings.Join(failed, "\n"))
	}

	metrics := e.get(ctx, t, "http://"+gwHTTP+"/metrics")
	for _, want := range []string{`atlantis_gateway_commands_total{command="set",result="ok"}`, `atlantis_gateway_commands_total{command="scan",result="ok"}`, `atlantis_gateway_commands_total{command="hello",result="ok"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("the gateway's /metrics has no %s", want)
		}
	}
	if strings.Contains(metrics, `kind="backend"`) {
		t.Errorf("the gateway answered a backend error (see its log %s):\n%s", filepath.Join(e.dir, "gateway.log"), grep(metrics, "atlantis_gateway_command_errors_total"))
	}
}

// startGateway runs bin/redis-gateway as Atlantis's ServiceAccount with the
// arguments of the chart's sidecar snippet, on free loopback ports, and returns its
// RESP port and HTTP address once it is ready.
func (e *env) startGateway(ctx context.Context, t *testing.T) (int, string) {
	t.Helper()
	user, err := e.cluster.AddUser("system:serviceaccount:"+atlantisNS+":"+atlantisSA, []string{"system:serviceaccounts", "system:serviceaccounts:" + atlantisNS})
	if err != nil {
		t.Fatal(err)
	}
	snippet := e.run(t, nil, "kubectl", "-n", releaseNS, "get", "configmap", release+"-atlantis-lock-operator-redis-gateway-sidecar", "-o", "jsonpath={.data.atlantis-values\\.yaml}")
	var values struct {
		Environment     map[string]string
		ExtraContainers []struct {
			Name    string
			Command []string
			Args    []string
		} `json:"extraContainers"`
	}
	if err := yaml.Unmarshal([]byte(snippet), &values); err != nil {
		t.Fatalf("the chart's sidecar snippet: %v\n%s", err, snippet)
	}
	if len(values.ExtraContainers) != 1 || values.Environment["ATLANTIS_LOCKING_DB_TYPE"] != "redis" {
		t.Fatalf("the chart's sidecar snippet: %+v", values)
	}
	port, httpPort := freePort(t), freePort(t)
	var args []string
	for _, a := range values.ExtraContainers[0].Args {
		switch {
		case strings.HasPrefix(a, "--listen="):
			a = fmt.Sprintf("--listen=127.0.0.1:%d", port)
		case strings.HasPrefix(a, "--http-address="):
			a = fmt.Sprintf("--http-address=127.0.0.1:%d", httpPort)
		}
		args = append(args, a)
	}
	// --kubeconfig, not $KUBECONFIG: the file's name has the user's colons, and
	// KUBECONFIG is a colon-separated list.
	e.start(t, "gateway.log", nil, "redis-gateway", append(args, "--kubeconfig="+user.KubeconfigPath)...)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	e.waitOK(ctx, t, "http://"+httpAddr+"/readyz", "gateway.log")
	return port, httpAddr
}

// startAtlantis runs bin/atlantis, unmodified, with the gateway as its Redis, and
// returns its URL once it is healthy.
func (e *env) startAtlantis(ctx context.Context, t *testing.T, gwPort int) string {
	t.Helper()
	// Atlantis's GitHub: a loopback port where nothing answers (a closed
	// listener), so that its VCS calls (a comment when a lock is deleted) fail
	// here instead of reaching a network.
	ghHost := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	port := freePort(t)
	atlantisURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	e.start(t, "atlantis.log", nil, "atlantis", "server",
		"--atlantis-url="+atlantisURL, "--port="+strconv.Itoa(port), "--data-dir="+filepath.Join(e.dir, "atlantis-data"),
		"--gh-user=atlantis-e2e", "--gh-token=not-a-token", "--gh-hostname="+ghHost, "--repo-allowlist="+ghHost+"/acme/*",
		// No terraform on the machine and no download: Atlantis starts without it.
		"--default-tf-version=1.9.8", "--tf-download=false",
		"--locking-db-type=redis", "--redis-host=127.0.0.1", "--redis-port="+strconv.Itoa(gwPort))
	e.waitOK(ctx, t, atlantisURL+"/healthz", "atlantis.log")
	return atlantisURL
}

// start runs a binary of bin/ until the test ends, its output in the test's
// directory.
func (e *env) start(t *testing.T, logName string, env []string, name string, args ...string) {
	t.Helper()
	logFile, err := os.Create(filepath.Join(e.dir, logName))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = logFile.Close() }()
	cmd := exec.Command(filepath.Join(e.bin, name), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	proc, err := localcluster.StartProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = proc.Signal(15)
		<-proc.Done()
		if t.Failed() {
			if data, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("%s:\n%s", logName, tail(string(data), 60))
			}
		}
	})
}

// waitOK polls url until it answers 200 (a process's start can only be asked), for
// at most a minute.
func (e *env) waitOK(ctx context.Context, t *testing.T, u, logName string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return false, err
		}
		res, err := e.http.Do(req)
		if err != nil {
			return false, nil //nolint:nilerr // not serving yet
		}
		_ = res.Body.Close()
		return res.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		data, _ := os.ReadFile(filepath.Join(e.dir, logName))
		t.Fatalf("%s never answered 200: %v\n%s:\n%s", u, err, logName, tail(string(data), 60))
	}
}

// get GETs u and fails the test unless it answers 200.
func (e *env) get(ctx context.Context, t *testing.T, u string) string {
	t.Helper()
	return e.do(ctx, t, http.MethodGet, u, http.StatusOK)
}

// do makes an HTTP request and fails the test unless it answers want.
func (e *env) do(ctx context.Context, t *testing.T, method, u string, want int) string {
	t.Helper()
	return httpcheck.Do(ctx, t, e.http, method, u, want)
}

// run runs a binary of bin/ (kubectl as the cluster admin) and returns its output.
func (e *env) run(t *testing.T, stdin io.Reader, name string, args ...string) string {
	t.Helper()
	if name == "kubectl" {
		args = append([]string{"--kubeconfig", e.cluster.KubeconfigPath()}, args...)
	}
	cmd := exec.Command(filepath.Join(e.bin, name), args...)
	cmd.Dir, cmd.Stdin = e.root, stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func (e *env) runStdin(t *testing.T, stdin, name string, args ...string) string {
	t.Helper()
	return e.run(t, strings.NewReader(stdin), name, args...)
}

// helm runs bin/helm against the cluster with its state in the test's directory.
func (e *env) helm(t *testing.T, args ...string) {
	t.Helper()
	home := filepath.Join(e.dir, "helm")
	cmd := exec.Command(filepath.Join(e.bin, "helm"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.cluster.KubeconfigPath(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := localcluster.FreeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
