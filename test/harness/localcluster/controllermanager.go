package localcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// startControllerManager starts kube-controller-manager beside the API server and
// waits until its /healthz answers.
func (c *Cluster) startControllerManager(ctx context.Context) error {
	// Its own user rather than the admin's kubeconfig file, so that the API server's
	// audit and logs tell the controller manager apart. With
	// --use-service-account-credentials it uses this identity only to create one
	// service account per controller; each controller then acts under its own account
	// and the RBAC roles kube-apiserver bootstraps for it, as in a real cluster.
	user, err := c.AddUser("system:kube-controller-manager", []string{AdminGroup})
	if err != nil {
		return err
	}
	port, err := FreeLoopbackPort()
	if err != nil {
		return fmt.Errorf("localcluster: choosing a port for kube-controller-manager: %w", err)
	}
	logFile, err := c.openLog(ControllerManagerBinary)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(c.opts.BinDir, ControllerManagerBinary),
		controllerManagerArgs(c.dirs, user.KubeconfigPath, port)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if c.kcm, err = StartProcess(cmd); err != nil {
		return fmt.Errorf("localcluster: %w", err)
	}
	if err := waitHealthy(ctx, c.kcm, port, c.opts.StartTimeout); err != nil {
		return fmt.Errorf("localcluster: kube-controller-manager: %w%s", err,
			logTails(c.dirs.logs, ControllerManagerBinary))
	}
	return nil
}

// controllerManagerArgs are the flags of kube-controller-manager. Its defaults would
// listen on all interfaces at a fixed port and look for certificates under /etc.
func controllerManagerArgs(dirs stateDirs, kubeconfig string, port int) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		// Its own HTTPS endpoint (/metrics, /configz) accepts the same client
		// certificates as the API server and asks the API server about tokens and
		// permissions. The lookup of the front-proxy CA in kube-system is skipped: envtest
		// configures no front proxy, and the lookup would fail and retry forever.
		"--authentication-kubeconfig=" + kubeconfig,
		"--authentication-skip-lookup=true",
		"--client-ca-file=" + dirs.clientCA(),
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		// A single instance: leader election would only delay start-up by a lease
		// acquisition.
		"--leader-elect=false",
		// "*" is every controller enabled by default, including garbage-collector-
		// controller (owner references) and namespace-controller (namespace deletion),
		// which the tests rely on. Controllers that need a cloud, node CIDRs or a
		// cluster signing CA turn themselves off.
		"--controllers=*",
		"--use-service-account-credentials=true",
		// The key kube-apiserver verifies service-account tokens with (envtest's
		// sa-signer pair), so that the legacy token controller signs valid tokens.
		"--service-account-private-key-file=" + dirs.saSigningKey(),
		// Published in every namespace's kube-root-ca.crt ConfigMap for clients that
		// verify the API server.
		"--root-ca-file=" + dirs.servingCA(),
		// The default of 20 QPS makes garbage collection and namespace deletion lag
		// behind tests and benchmarks that create thousands of objects.
		"--kube-api-qps=200",
		"--kube-api-burst=400",
	}
}

// FreeLoopbackPort asks the kernel for a free port on 127.0.0.1. The port is released
// again before the caller binds it; the kernel does not hand it out again at once, and
// a lost race shows as a failed start with a clear log.
func FreeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// waitHealthy polls https://127.0.0.1:port/healthz until it answers 200 OK, and gives
// up early when the process exits or ctx is done. The serving certificate is a
// self-signed one kube-controller-manager makes at start-up, so it is not verified;
// nothing but the health status is read over this connection.
func waitHealthy(ctx context.Context, p *Process, port int, timeout time.Duration) error {
	client := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // see above
	}
	defer client.CloseIdleConnections()
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	healthy := func(ctx context.Context) (bool, error) {
		select {
		case <-p.Done():
			return false, fmt.Errorf("exited during start-up: %w", p.Err())
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, nil //nolint:nilerr // not listening yet: keep polling
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, healthy)
	if err != nil && wait.Interrupted(err) && !errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%s not healthy after %s", url, timeout)
	}
	return err
}
