// Package managerproc runs the operator's binary (bin/manager) as a process of its
// own, as the scale and soak programs need it: so that its memory and CPU are its
// own and can be read from /proc, so that it can be killed like a crashed pod, and
// so that its /metrics and /status endpoints are what an SRE would scrape.
package managerproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/runatlantis/atlantis-lock-operator/internal/operator"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/localcluster"
)

// Options say how to run the manager.
type Options struct {
	// Binary is the manager's executable (bin/manager; `make build` writes it).
	Binary string
	// Kubeconfig is given to the manager as KUBECONFIG.
	Kubeconfig string
	// Args are the manager's flags, except the metrics and probe addresses, which
	// Start chooses (free loopback ports).
	Args []string
	// Env is added to this process's environment (without its KUBECONFIG), such as
	// GOGC=50 or GOMEMLIMIT=64MiB.
	Env []string
	// LogPath receives the manager's standard output and error.
	LogPath string
	// Pprof serves Go's profiles on a free loopback port (--pprof-bind-address),
	// for HeapProfile.
	Pprof bool
}

// Manager is a running manager process.
type Manager struct {
	// MetricsURL serves /metrics, /metrics/atlantis and /status.
	MetricsURL string
	// HealthURL serves /healthz and /readyz.
	HealthURL string
	// LogPath is the manager's log.
	LogPath string
	// PprofURL serves /debug/pprof when Options.Pprof was set, else "".
	PprofURL string

	proc *localcluster.Process
	http *http.Client
}

// pollInterval is how often Wait* read an endpoint again: a process's start-up
// cannot be watched, only asked.
const pollInterval = 50 * time.Millisecond

// Start starts the manager with its metrics and probes on free loopback ports. The
// process runs in its own process group and dies with this one (localcluster.Process).
func Start(opts Options) (*Manager, error) {
	metricsPort, err := localcluster.FreeLoopbackPort()
	if err != nil {
		return nil, fmt.Errorf("choosing a port for the manager's /metrics: %w", err)
	}
	healthPort, err := localcluster.FreeLoopbackPort()
	if err != nil {
		return nil, fmt.Errorf("choosing a port for the manager's probes: %w", err)
	}
	args := []string{
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", healthPort),
	}
	pprofURL := ""
	if opts.Pprof {
		port, err := localcluster.FreeLoopbackPort()
		if err != nil {
			return nil, fmt.Errorf("choosing a port for the manager's pprof: %w", err)
		}
		args = append(args, fmt.Sprintf("--pprof-bind-address=127.0.0.1:%d", port))
		pprofURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	args = append(args, opts.Args...)
	logFile, err := os.OpenFile(opts.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the manager's log: %w", err)
	}
	defer func() { _ = logFile.Close() }() // the child has its own descriptor

	cmd := exec.Command(opts.Binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KUBECONFIG=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(append(cmd.Env, "KUBECONFIG="+opts.Kubeconfig), opts.Env...)
	proc, err := localcluster.StartProcess(cmd)
	if err != nil {
		return nil, fmt.Errorf("starting %s (run `make build`): %w", opts.Binary, err)
	}
	return &Manager{
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d", metricsPort),
		HealthURL:  fmt.Sprintf("http://127.0.0.1:%d", healthPort),
		LogPath:    opts.LogPath,
		PprofURL:   pprofURL,
		proc:       proc,
		http:       &http.Client{Timeout: 10 * time.Second},
	}, nil
}

// Pid is the manager's process id.
func (m *Manager) Pid() int { return m.proc.Pid() }

// Done is closed when the process has exited.
func (m *Manager) Done() <-chan struct{} { return m.proc.Done() }

// Exited returns an error when the process has exited, naming its exit code and
// log, and nil while it runs.
func (m *Manager) Exited() error {
	select {
	case <-m.proc.Done():
		return fmt.Errorf("the manager (pid %d) exited with code %d; see %s", m.proc.Pid(), m.proc.ExitCode(), m.LogPath)
	default:
		return nil
	}
}

// Status reads the manager's /status.
func (m *Manager) Status(ctx context.Context) (orchestrator.OrchestratorStatus, error) {
	var st orchestrator.OrchestratorStatus
	resp, err := m.get(ctx, m.MetricsURL+operator.StatusPath)
	if err != nil {
		return st, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s: %s", operator.StatusPath, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("%s: %w", operator.StatusPath, err)
	}
	return st, nil
}

// WaitStatus polls /status until ok accepts it, the process exits, or ctx ends; it
// returns the accepted status.
func (m *Manager) WaitStatus(ctx context.Context, ok func(orchestrator.OrchestratorStatus) bool) (orchestrator.OrchestratorStatus, error) {
	var last orchestrator.OrchestratorStatus
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		if err := m.Exited(); err != nil {
			return false, err
		}
		st, err := m.Status(ctx)
		if err != nil {
			return false, nil //nolint:nilerr // not serving yet: ask again
		}
		last = st
		return ok(st), nil
	})
	if err != nil {
		return last, fmt.Errorf("waiting for the manager's %s (last: leader %t, %d held, %d queued): %w",
			operator.StatusPath, last.Leader, last.LocksHeld, last.Queued, err)
	}
	return last, nil
}

// WaitLeader waits until the manager leads (its /status says so).
func (m *Manager) WaitLeader(ctx context.Context) error {
	_, err := m.WaitStatus(ctx, func(st orchestrator.OrchestratorStatus) bool { return st.Leader })
	return err
}

// Scrape reads the manager's /metrics.
func (m *Manager) Scrape(ctx context.Context) (Metrics, error) {
	resp, err := m.get(ctx, m.MetricsURL+"/metrics")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// HeapProfile writes the manager's heap profile to w, taken right after a garbage
// collection (the profile then shows live memory only, and the Go heap's
// go_memstats_heap_alloc_bytes in /metrics is the live heap until it grows again).
// It needs Options.Pprof.
func (m *Manager) HeapProfile(ctx context.Context, w io.Writer) error {
	if m.PprofURL == "" {
		return errors.New("the manager was started without pprof (managerproc.Options.Pprof)")
	}
	resp, err := m.get(ctx, m.PprofURL+"/debug/pprof/heap?gc=1")
	if err != nil {
		return fmt.Errorf("the manager's heap profile: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the manager's heap profile: %s", resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// Usage reads the manager's memory and CPU from /proc.
func (m *Manager) Usage() (Usage, error) {
	return ReadUsage(m.proc.Pid())
}

func (m *Manager) get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// Uncompressed: a gzip writer of the metrics handler's pool is 0.9 MB of the
	// manager's heap, live or not depending on the collections since the last
	// scrape, which made the live heap read right after it jump by that much from
	// one measurement to the next.
	req.Header.Set("Accept-Encoding", "identity")
	return m.http.Do(req)
}

// Kill ends the process with SIGKILL, as a node failure or an OOM kill would (no
// graceful shutdown, no release of the leader election Lease), and waits until it
// is gone.
func (m *Manager) Kill() error {
	if err := m.proc.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-m.proc.Done()
	return nil
}

// Stop stops the process with SIGTERM, and SIGKILL when it has not exited within
// timeout. A manager that had already exited by itself is reported.
func (m *Manager) Stop(timeout time.Duration) error {
	exited := m.Exited()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return errors.Join(exited, m.proc.Stop(ctx))
}
