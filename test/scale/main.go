// Command scale measures the operator at DESIGN's scale on the local control plane:
// 10,000 lock keys held and 10,000 requests queued behind them (-held, -queued). The
// operator runs as its own process (bin/manager, built by `make build`), so that its
// memory and CPU, read from /proc, are its own. `make bench-scale` runs it;
// SCALE_ARGS passes flags.
//
// In order, it
//
//  1. starts the local control plane (etcd, kube-apiserver, kube-controller-manager
//     from bin/) in -state-dir, installs the CRDs and creates namespace -namespace;
//  2. starts bin/manager with leader election and, unless -go-defaults, the memory
//     settings the chart gives it by default (chartmemory.Memory), waits until it leads,
//     and reads its resident memory before any lock: the baseline;
//  3. creates -held LockRequests, one per key, from -clients concurrent clients, and
//     waits until every one is observed Acquired; then -queued more, one per key
//     for the first -queued keys, each of another owner, and waits until every one is
//     observed Queued and the operator's work queue is empty. Meanwhile it samples the
//     operator's resident memory, CPU time and reconcile queue depth (workqueue_depth)
//     every -sample-interval;
//  4. reads the operator's memory with all locks in place, and what it sent to the
//     API server (rest_client_requests_total) and reconciled;
//  5. kills the operator with SIGKILL (a crash: the leader election Lease is not
//     released), starts a new one, deletes one holder at once and another once the
//     new operator leads, and times until the new leader has served both hand-offs
//     (the waiters observed Acquired) and until it has rebuilt its whole state
//     (/status shows every hold and waiter, and the work queue is empty); then the
//     same after a SIGTERM (a stop: the Lease is released); then with a second
//     operator started first and warmed up (a standby, as in a rolling update)
//     before the leader gets its SIGTERM;
//  6. prints a table, writes -json, stops the operator and the control plane.
//
// The run is bounded by -timeout; the exit code is 1 when it fails or runs out of time.
// A missed memory target (issue 13's) is reported, not failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/chartmemory"
)

// options are the command-line flags.
type options struct {
	*benchutil.Flags
	held           int
	queued         int
	clients        int
	timeout        time.Duration
	sampleInterval time.Duration
	manager        string
	managerArgs    string
	managerEnv     string
	profileDir     string
	goDefaults     bool
}

func main() { benchutil.Main("scale", run) }

func run(ctx context.Context) error {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, opts.timeout, fmt.Errorf("the run took longer than -timeout %s", opts.timeout))
	defer cancel()

	res := &Results{Run: benchutil.NewRun(opts.Root), Held: opts.held, Queued: opts.queued, Clients: opts.clients}
	if !opts.goDefaults {
		chart, err := chartmemory.Read(opts.Root)
		if err != nil {
			return err
		}
		res.ChartMemory = &chart
	}
	res.ManagerArgs, res.ManagerEnv = managerFlags(opts, res.ChartMemory), managerEnv(opts, res.ChartMemory)
	runErr := measure(ctx, opts, res)
	res.Finish(runErr)
	if err := res.printTable(os.Stdout); err != nil {
		return errors.Join(runErr, err)
	}
	if opts.JSONPath != "" {
		if err := benchutil.WriteJSON(opts.JSONPath, res); err != nil {
			return errors.Join(runErr, fmt.Errorf("writing %s: %w", opts.JSONPath, err))
		}
	}
	return runErr
}

// parseFlags reads the flags; paths default to the repository's bin/ and config/.
func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	common, err := benchutil.RegisterFlags(fs, "scale", "scale")
	if err != nil {
		return options{}, err
	}
	o := options{Flags: common}
	fs.IntVar(&o.held, "held", 10000, "lock keys held, one LockRequest each")
	fs.IntVar(&o.queued, "queued", 10000, "LockRequests queued, one behind each of the first -queued held keys (at most -held)")
	fs.IntVar(&o.clients, "clients", 32, "concurrent clients creating the LockRequests")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "longest the whole run may take")
	fs.DurationVar(&o.sampleInterval, "sample-interval", time.Second, "how often the operator's memory, CPU and queue depth are sampled")
	fs.StringVar(&o.manager, "manager", filepath.Join(common.Root, "bin", "manager"), "the operator's binary (make build)")
	fs.StringVar(&o.managerArgs, "manager-args", "", "extra flags of the manager, space-separated (for example --worker-count=16)")
	fs.StringVar(&o.managerEnv, "manager-env", "", "extra environment of the manager, space-separated (for example GOMEMLIMIT=256MiB)")
	fs.BoolVar(&o.goDefaults, "go-defaults", false, "run the manager with Go's memory defaults rather than the chart's (resources.limits.memory, goMemLimitPercent and goGC of "+chartmemory.ValuesPath+")")
	fs.StringVar(&o.profileDir, "profile-dir", "", "save the operator's heap profiles (after a garbage collection) here: at the baseline, once loaded and after each restart; read them with go tool pprof bin/manager FILE")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.held < 1 || o.queued < 0 || o.queued > o.held || o.clients < 1 || o.timeout <= 0 || o.sampleInterval <= 0 {
		return o, errors.New("-held and -clients must be positive, -queued between 0 and -held, -timeout and -sample-interval positive")
	}
	return o, nil
}

// managerFlags are the manager's flags: leader election in the namespace
// "default" (out of a cluster there is no pod namespace to default to), the
// chart's memory flag unless chart is nil, and -manager-args, which come last and
// so win.
func managerFlags(opts options, chart *chartmemory.Memory) []string {
	flags := []string{"--leader-elect=true", "--leader-election-namespace=default"}
	if chart != nil {
		flags = append(flags, chart.ManagerArgs()...)
	}
	return append(flags, strings.Fields(opts.managerArgs)...)
}

// managerEnv is the manager's environment besides this process's: the chart's
// memory settings unless chart is nil, and -manager-env, which comes last and so
// wins (os/exec keeps the last value of a name given twice).
func managerEnv(opts options, chart *chartmemory.Memory) []string {
	var env []string
	if chart != nil {
		env = chart.ManagerEnv()
	}
	return append(env, strings.Fields(opts.managerEnv)...)
}
