package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// The methods below take parts of a running cluster down and bring them back, for
// the fault tests: an API server restarted during a rolling upgrade, etcd gone for a
// few seconds. Each part comes back on the same address with the same data and
// certificates, so clients holding the admin config, a user's kubeconfig or a
// service-account token reconnect by themselves, as they would in a real cluster.
// kube-controller-manager keeps running throughout and reconnects too, once it is
// through its start-up: it exits if the API server goes away while it is still
// building its controllers, in its first seconds after Start.
//
// They are serialized with each other and with Stop; after Stop they return an error.

// errStopped is returned by the fault methods once the cluster is stopped.
var errStopped = errors.New("localcluster: the cluster is stopped")

// RestartAPIServer restarts kube-apiserver as a kubelet restarts a static pod:
// SIGTERM, and SIGKILL if it has not exited after grace. It then starts it again
// on the same port, with the same serving certificate, client CA and
// service-account signing key and the same etcd, and returns when its /healthz
// answers again. Objects, users and tokens stay valid.
//
// kube-apiserver stops listening at once on SIGTERM, but its graceful shutdown
// waits for the connections of open watches to go idle, which clients that keep
// watching (kube-controller-manager, an operator) never let happen before its own
// timeout of a minute; grace bounds that wait, as terminationGracePeriodSeconds
// does in a cluster. ctx is checked before the start; the start itself is bounded
// by Options.StartTimeout.
func (c *Cluster) RestartAPIServer(ctx context.Context, grace time.Duration) error {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	if c.stopped {
		return errStopped
	}
	if err := c.terminate(ctx, c.plane.APIServer.Path, grace); err != nil {
		return err
	}
	// envtest's Stop is not needed: its Start begins with a fresh process state.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("localcluster: restart of kube-apiserver aborted (it is stopped): %w", err)
	}
	// envtest keeps the port, CertDir (certificates found there are reused) and
	// the client-certificate authority of the first start.
	if err := c.plane.APIServer.Start(); err != nil {
		return fmt.Errorf("localcluster: starting kube-apiserver again: %w%s", err, logTails(c.dirs.logs, APIServerBinary))
	}
	return c.recordPIDs(ctx)
}

// StopEtcd stops etcd, SIGTERM and SIGKILL if it is still there after grace, and
// leaves kube-apiserver running without its storage: requests that need etcd fail
// or wait, and the API server's /readyz fails, until StartEtcd. etcd closes its
// listeners at once on SIGTERM, then waits for the API server's watch streams to
// end; grace bounds that wait, so that the outage lasts as long as the caller
// means. Stopping a stopped etcd is not an error.
func (c *Cluster) StopEtcd(ctx context.Context, grace time.Duration) error {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	if c.stopped {
		return errStopped
	}
	if c.etcdDown {
		return nil
	}
	if err := c.terminate(ctx, c.plane.Etcd.Path, grace); err != nil {
		return err
	}
	c.etcdDown = true
	return c.recordPIDs(context.Background())
}

// StartEtcd starts etcd again after StopEtcd, on the same client URL with the same
// data directory (writes survive a SIGKILL of the process), and returns when its
// /health answers; kube-apiserver reconnects
// by itself. Starting a running etcd is not an error. ctx is checked before the
// start; the start itself is bounded by Options.StartTimeout.
func (c *Cluster) StartEtcd(ctx context.Context) error {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	if c.stopped {
		return errStopped
	}
	if !c.etcdDown {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("localcluster: start of etcd aborted (it is stopped): %w", err)
	}
	// envtest keeps the client URL and DataDir of the first start; only the peer
	// port is chosen afresh, which a single-member cluster does not mind.
	if err := c.plane.Etcd.Start(); err != nil {
		return fmt.Errorf("localcluster: starting etcd again: %w%s", err, logTails(c.dirs.logs, EtcdBinary))
	}
	c.etcdDown = false
	return c.recordPIDs(ctx)
}

// terminate sends SIGTERM to the cluster's process running binary, then SIGKILL
// if it is still there after grace, and waits until it is gone.
func (c *Cluster) terminate(ctx context.Context, binary string, grace time.Duration) error {
	pid, err := c.pidOf(binary)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("localcluster: signalling %s (pid %d): %w", filepath.Base(binary), pid, err)
	}
	gone := func(context.Context) (bool, error) { return !usesDir(pid, c.dirs.root), nil }
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, grace, true, gone); err == nil {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("localcluster: killing %s (pid %d): %w", filepath.Base(binary), pid, err)
	}
	// A killed process is gone at once; the bound only guards against a stuck
	// kernel.
	if err := wait.PollUntilContextTimeout(context.WithoutCancel(ctx), 20*time.Millisecond, c.opts.StopTimeout, true, gone); err != nil {
		return fmt.Errorf("localcluster: %s (pid %d) is still there after SIGKILL: %w", filepath.Base(binary), pid, err)
	}
	return nil
}

// pidOf finds the child process of the cluster that runs binary. envtest does not
// expose the ids of the processes it starts.
func (c *Cluster) pidOf(binary string) (int, error) {
	for _, pid := range childrenUsing(c.dirs.root) {
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			continue
		}
		if argv0, _, _ := bytes.Cut(cmdline, []byte{0}); string(argv0) == binary {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("localcluster: no running process of %s found among the cluster's", binary)
}

// ProcessIDs returns the process ids of the cluster's etcd, kube-apiserver and
// kube-controller-manager, by binary name (EtcdBinary, APIServerBinary,
// ControllerManagerBinary, when it runs), so that a measurement can read what each costs. They
// change when the fault methods restart a process. It reads /proc (Linux).
func (c *Cluster) ProcessIDs() (map[string]int, error) {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	pids := map[string]int{}
	if c.kcm != nil {
		pids[ControllerManagerBinary] = c.kcm.Pid()
	}
	for name, path := range map[string]string{EtcdBinary: c.plane.Etcd.Path, APIServerBinary: c.plane.APIServer.Path} {
		pid, err := c.pidOf(path)
		if err != nil {
			return nil, err
		}
		pids[name] = pid
	}
	return pids, nil
}
