// Command bench measures the lock operator against issue 13's targets (ratios to raw
// Lease writes and to a "CR floor" measured in the same run) and DESIGN's Performance
// targets, on a local control plane (etcd, kube-apiserver and kube-controller-manager
// from bin/). `make bench` runs it; BENCH_ARGS passes flags.
//
// In order, it
//
//  1. times the in-memory deadlock scan over 10,000 waiting requests, and the event
//     bus's throughput with 1 and 8 subscribers (before the control plane starts,
//     so that nothing competes for the CPU);
//  2. starts the control plane in -state-dir, installs the CRDs, creates a namespace;
//  3. measures the baseline: -clients goroutines each creating -cycles Leases and
//     updating each by compare-and-swap, then deleting them; then the CR floor:
//     LockRequest create, one Lease compare-and-swap and LockRequest delete per
//     cycle, with no operator; then both again with -high-clients clients;
//  4. starts the operator (-manager, bin/manager) as a process of its own, as the
//     chart runs it (config.Default(), the chart's memory settings, no leader
//     election, watching the namespace), and watches LockRequests to timestamp
//     what clients observe;
//  5. measures uncontended acquires (LockRequest created → Acquired observed) on fresh
//     keys, hand-offs (holder deleted → next waiter Acquired observed) to waiters
//     made as TryLock makes them on one key and as the blocking Lock makes them on
//     another, each beside one of the hand-off floor (the same, decided by a bare
//     arbiter in this process in a namespace of its own: a watch of the requests
//     and one Lease compare-and-swap each), with a serial Lease write timed after
//     each acquire and each round of hand-offs (the unit of their targets, at the
//     same moments),
//     and lock cycles per second of -clients (then -high-clients) clients over -keys
//     keys, checking that grants of one key never overlap and that their fencing
//     tokens increase; right before and right after each throughput run it measures
//     the baseline and the CR floor again at the run's client count, in the
//     hand-off floor's namespace (watched by neither the operator nor the observer),
//     and compares the run with their mean, since the machine's pace drifts over a
//     run;
//  6. stops the operator;
//  7. starts the operator again with enable_events: false, and measures
//     hand-offs again (beside the hand-off floor, as in 5.): the cost of events on
//     the lock path; then once more with the audit trail on;
//  8. prints a table against the targets, stops everything and checks that no process
//     of the control plane is left.
//
// This process, whose clients, observer and baselines time everything, runs with
// GOGC -gc-percent (400) so that its own garbage collections pause those timers
// less; the operator keeps the chart's. The operator counts its API requests and
// reconciles in its /metrics, which the bench reads. Every client of this process
// runs with QPS 1000 and burst 2000 instead of client-go's 5 and 10 (the operator,
// as deployed, with none). The operator's logs go to STATE_DIR/logs/manager.log
// (manager-handoff-quiet.log and manager-handoff-audit.log for the later phases),
// this process's client-go logs to clients.log. The exit code is 1 when the run fails or a grant
// violates mutual exclusion; missed performance targets are reported, not failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
)

// options are the command-line flags.
type options struct {
	*benchutil.Flags
	clients int
	keys    int
	cycles  int
	samples int
	warmup  int
	timeout time.Duration
	// highClients is the client count of the second, heavier load.
	highClients int
	// cpuProfile, if set, is where the CPU profile of this process (the clients,
	// their observer) during the first throughput run is written.
	cpuProfile string
	// manager is the operator's binary.
	manager string
	// gcPercent is this process's GOGC: the clients, the observer and the
	// baselines time everything the bench reports, and each of their garbage
	// collections can pause a timer.
	gcPercent int
}

// defaultGCPercent is -gc-percent's default. With Go's default (100), this
// process's collections lengthened the tail of every hand-off it timed, the bare
// arbiter's too: in two pairs of runs GOGC=400 took the floor's P99 from 8.7× and
// 6.1× the serial write to 4.9× and 4.1×, the P50s unchanged
// (docs/benchmarks-issue13.md, step 32).
const defaultGCPercent = 400

// highCycles is the cycles per client of the second load: a quarter of -cycles, so
// that it takes about as long as the first.
func (o options) highCycles() int { return max(1, o.cycles/4) }

func main() { benchutil.Main("bench", run) }

func run(ctx context.Context) error {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		return err
	}
	// Set before anything is timed; the operator, a process of its own, keeps the
	// chart's setting.
	debug.SetGCPercent(opts.gcPercent)
	res := &Results{Run: benchutil.NewRun(opts.Root), GCPercent: opts.gcPercent}
	if err := measure(ctx, opts, res); err != nil {
		return err
	}
	res.Finish(nil)
	res.Targets = res.rows()
	if err := res.printTable(os.Stdout); err != nil {
		return err
	}
	if opts.JSONPath != "" {
		if err := benchutil.WriteJSON(opts.JSONPath, res); err != nil {
			return fmt.Errorf("writing %s: %w", opts.JSONPath, err)
		}
	}
	if n := len(res.violations()); n > 0 {
		return fmt.Errorf("%d mutual-exclusion violations", n)
	}
	return nil
}

// parseFlags reads the flags; paths default to the repository's bin/ and config/.
func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	common, err := benchutil.RegisterFlags(fs, "bench", "bench")
	if err != nil {
		return options{}, err
	}
	o := options{Flags: common}
	fs.IntVar(&o.clients, "clients", 8, "concurrent clients of the baseline and the throughput run")
	fs.IntVar(&o.keys, "keys", 16, "lock keys the throughput clients pick from at random")
	fs.IntVar(&o.cycles, "cycles", 50, "cycles per client, of the baseline and of the throughput run")
	fs.IntVar(&o.samples, "samples", 100, "samples of uncontended acquire, of hand-off and of serial Lease write latency")
	fs.IntVar(&o.warmup, "warmup", 5, "untimed lock cycles before the operator is measured")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "longest wait for any one observation")
	fs.IntVar(&o.highClients, "high-clients", 32, "clients of the second baseline, CR floor and throughput run, each doing a quarter of -cycles (0: no second run)")
	fs.StringVar(&o.cpuProfile, "cpu-profile", "", "write the CPU profile of this process (the clients, their observer; the operator is a process of its own) during the -clients throughput run to this file")
	fs.StringVar(&o.manager, "manager", defaultManager(common.Root), "the operator's binary (make build), run with the chart's memory settings")
	fs.IntVar(&o.gcPercent, "gc-percent", defaultGCPercent, "GOGC of this process, whose clients and observer time the operator (not of the operator, which runs with the chart's goGC)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.clients < 1 || o.keys < 1 || o.cycles < 1 || o.samples < 1 || o.warmup < 0 || o.timeout <= 0 || o.highClients < 0 {
		return o, errors.New("-clients, -keys, -cycles, -samples and -timeout must be positive, -warmup and -high-clients not negative")
	}
	return o, nil
}

// measure runs every measurement into res, and stops what it started.
func measure(ctx context.Context, opts options, res *Results) (retErr error) {
	var err error
	benchutil.Step("deadlock scan of %d waiting requests", deadlockEdges)
	if res.Deadlock, err = runDeadlockScan(); err != nil {
		return err
	}
	benchutil.Step("event bus: %d events to 1 and to %d subscribers", busEvents, busSubscribersMany)
	if res.EventBus, err = runEventBus(); err != nil {
		return err
	}

	e, err := benchutil.StartEnv(ctx, opts.EnvOptions())
	if err != nil {
		return err
	}
	defer e.StopInto(&retErr)
	meter := newCPUMeter(e.Cluster)

	benchutil.Step("baseline: %d serial Lease create+update, then %d clients × %d, then delete", opts.samples, opts.clients, opts.cycles)
	if res.Baseline, err = runBaseline(ctx, e.Client, opts.Namespace, opts.clients, opts.cycles, opts.samples); err != nil {
		return err
	}

	benchutil.Step("CR floor: %d clients × %d LockRequest create + Lease compare-and-swap + LockRequest delete, no operator", opts.clients, opts.cycles)
	if res.Floor, err = runFloor(ctx, e.Client, opts.Namespace, opts.clients, opts.cycles, meter); err != nil {
		return err
	}
	if opts.highClients > 0 {
		high := &HighLoad{Clients: opts.highClients}
		benchutil.Step("baseline and CR floor again with %d clients × %d", opts.highClients, opts.highCycles())
		if high.Baseline, err = runBaseline(ctx, e.Client, opts.Namespace, opts.highClients, opts.highCycles(), 1); err != nil {
			return err
		}
		if high.Floor, err = runFloor(ctx, e.Client, opts.Namespace, opts.highClients, opts.highCycles(), meter); err != nil {
			return err
		}
		res.High = high
	}

	op, err := startOperator(ctx, opts, e, config.Default(), "manager")
	if err != nil {
		return err
	}
	benchutil.Step("started the operator (%s, pid %d, log %s)", opts.manager, op.pid(), op.m.LogPath)
	res.Workers = op.workers
	meter.add(operatorProcess, op.pid())
	if err := measureOperator(ctx, opts, e, op, meter, res); err != nil {
		return errors.Join(err, op.stop())
	}
	benchutil.Step("stopping the operator")
	meter.drop(operatorProcess)
	if err := op.stop(); err != nil {
		return err
	}
	if err := measureEventsOff(ctx, opts, e, res); err != nil {
		return err
	}
	return measureAuditOn(ctx, opts, e, res)
}

// measureAuditOn measures hand-offs again with the audit trail on, written to a
// file synchronously on the decision path as the operator writes it: against the
// hand-offs with events on (and no trail), its cost on the lock path.
func measureAuditOn(ctx context.Context, opts options, e *benchutil.Env, res *Results) error {
	cfg := config.Default()
	cfg.AuditLog = e.LogPath("audit.jsonl")
	var err error
	res.HandoffAuditOn, res.HandoffAuditOnFloor, err = measureHandoffWith(ctx, opts, e, cfg, "audit trail on (file "+cfg.AuditLog+")", "handoff-audit")
	return err
}

// measureEventsOff measures hand-offs again with an operator whose event bus has
// no subscribers but metrics (enable_events: false): no Kubernetes Events written,
// no event logs. Against the hand-offs measured with events on, it is the cost of
// events on the lock path.
func measureEventsOff(ctx context.Context, opts options, e *benchutil.Env, res *Results) error {
	cfg := config.Default()
	cfg.EnableEvents = false
	var err error
	res.HandoffEventsOff, res.HandoffEventsOffFloor, err = measureHandoffWith(ctx, opts, e, cfg, "enable_events: false", "handoff-quiet")
	return err
}

// measureHandoffWith starts an operator with cfg and measures hand-offs on the key
// name, and the hand-off floor beside them; what says how cfg differs, for the log.
func measureHandoffWith(ctx context.Context, opts options, e *benchutil.Env, cfg config.Config, what, name string) (_, _ Summary, retErr error) {
	op, err := startOperator(ctx, opts, e, cfg, "manager-"+name)
	if err != nil {
		return Summary{}, Summary{}, err
	}
	benchutil.Step("started the operator again with %s (pid %d, log %s)", what, op.pid(), op.m.LogPath)
	defer func() {
		benchutil.Step("stopping the operator")
		retErr = errors.Join(retErr, op.stop())
	}()
	obsCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	obs, err := benchutil.StartObserver(obsCtx, e.Client, opts.Namespace)
	if err != nil {
		return Summary{}, Summary{}, err
	}
	l := &lockClient{c: e.Client, obs: obs, namespace: opts.Namespace, timeout: opts.timeout}
	benchutil.Step("hand-off with %s: %d hand-offs on one key, each beside one of the hand-off floor", what, opts.samples)
	run, err := measureHandoffBesideFloor(ctx, e.Client, opts, l, name, false)
	if err != nil {
		return Summary{}, Summary{}, fmt.Errorf("hand-off with %s: %w", what, err)
	}
	return Summarize(run.tryLock.total), Summarize(run.floor.total), nil
}

// measureOperator runs the lock measurements against the running operator.
func measureOperator(ctx context.Context, opts options, e *benchutil.Env, op *runningOperator, meter *cpuMeter, res *Results) error {
	obsCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	obs, err := benchutil.StartObserver(obsCtx, e.Client, opts.Namespace)
	if err != nil {
		return err
	}
	l := &lockClient{c: e.Client, obs: obs, namespace: opts.Namespace, timeout: opts.timeout}

	benchutil.Step("warm-up: %d lock cycles", opts.warmup)
	if _, err := measureAcquire(ctx, l, "warmup", opts.warmup, nil); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if err := settle(ctx, e.Client, opts.Namespace); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	benchutil.Step("uncontended acquire: %d fresh keys", opts.samples)
	before, err := op.requests(ctx)
	if err != nil {
		return err
	}
	beside := newSerialBeside(e.Client, opts.Namespace, "acquire-serial")
	acquire, err := measureAcquire(ctx, l, "acquire", opts.samples, beside)
	if err != nil {
		return fmt.Errorf("uncontended acquire: %w", err)
	}
	res.AcquireSerial = beside.summary()
	if err := settle(ctx, e.Client, opts.Namespace); err != nil {
		return fmt.Errorf("uncontended acquire: %w", err)
	}
	if res.AcquireOperator, err = op.requestsSince(ctx, before); err != nil {
		return err
	}
	res.Acquire, res.AcquireCreate = Summarize(acquire.acquire), Summarize(acquire.create)

	benchutil.Step("hand-off: %d hand-offs to TryLock's waiters on one key, %d to blocking Lock's on another, each beside one of the hand-off floor (namespace %s)",
		opts.samples, opts.samples, floorNamespace(opts))
	if before, err = op.requests(ctx); err != nil {
		return err
	}
	run, err := measureHandoffBesideFloor(ctx, e.Client, opts, l, "handoff", true)
	if err != nil {
		return err
	}
	if res.HandoffOperator, err = op.requestsSince(ctx, before); err != nil {
		return err
	}
	res.HandoffSerial = run.serial
	res.Handoff, res.HandoffParts = Summarize(run.tryLock.total), run.tryLock.parts()
	res.HandoffBlocking, res.HandoffBlockingParts = Summarize(run.blocking.total), run.blocking.parts()
	res.HandoffFloor, res.HandoffFloorParts = Summarize(run.floor.total), run.floor.parts()

	if res.Through, err = measureThroughput(ctx, opts, opts.clients, opts.cycles, l, op, meter); err != nil {
		return err
	}
	if res.High != nil {
		res.High.Through, err = measureThroughput(ctx, opts, opts.highClients, opts.highCycles(), l, op, meter)
	}
	return err
}

// paceBaselineFactor multiplies the cycles per client of the baseline that
// measurePace runs.
const paceBaselineFactor = 2

// measurePace measures the Lease baseline and the CR floor with the given number of
// clients in the hand-off floor's namespace, which neither the operator nor the
// observer watches: while the operator runs, what it and the observer cost the API
// server and this process is then the throughput run's alone.
func measurePace(ctx context.Context, c client.Client, opts options, clients, cycles int, meter *cpuMeter, when string) (Pace, error) {
	namespace, err := ensureFloorNamespace(ctx, c, opts)
	if err != nil {
		return Pace{}, err
	}
	benchutil.Step("baseline (%d clients × %d) and CR floor (× %d) %s the throughput run (namespace %s)", clients, paceBaselineFactor*cycles, cycles, when, namespace)
	// Twice the cycles for the baseline, whose cycle is about two and a half times
	// as fast as a lock cycle: a measurement much shorter than the run it divides
	// would be as long as one of the API server's garbage collections.
	b, err := runBaseline(ctx, c, namespace, clients, paceBaselineFactor*cycles, 1)
	if err != nil {
		return Pace{}, err
	}
	f, err := runFloor(ctx, c, namespace, clients, cycles, meter)
	return Pace{Baseline: b, Floor: f}, err
}

// measureThroughput runs the throughput clients, between a measurement of the Lease
// baseline and the CR floor right before and one right after (measurePace), and
// adds what the operator sent to the API server meanwhile, and the ratios to the
// mean of the two measurements.
func measureThroughput(ctx context.Context, opts options, clients, cycles int, l *lockClient, op *runningOperator, meter *cpuMeter) (ThroughputResult, error) {
	before, err := measurePace(ctx, l.c, opts, clients, cycles, meter, "right before")
	if err != nil {
		return ThroughputResult{}, err
	}
	keys := opts.keys
	benchutil.Step("throughput: %d clients × %d lock cycles over %d keys", clients, cycles, keys)
	requestsBefore, err := op.requests(ctx)
	if err != nil {
		return ThroughputResult{}, err
	}
	reconcilesBefore, err := op.reconciles(ctx)
	if err != nil {
		return ThroughputResult{}, err
	}
	stopProfile, err := startCPUProfile(opts.cpuProfile, clients == opts.clients)
	if err != nil {
		return ThroughputResult{}, err
	}
	t, err := runThroughput(ctx, l, clients, keys, cycles, meter)
	if err = errors.Join(err, stopProfile()); err != nil {
		return t, err
	}
	if err := settle(ctx, l.c, l.namespace); err != nil {
		return t, fmt.Errorf("throughput: %w", err)
	}
	reconcilesAfter, err := op.reconciles(ctx)
	if err != nil {
		return t, err
	}
	if t.Operator, err = op.requestsSince(ctx, requestsBefore); err != nil {
		return t, err
	}
	done := float64(t.Cycles)
	t.OperatorWritesPerCycle = float64(t.Operator.Writes) / done
	t.OperatorReadsPerCycle = float64(t.Operator.Reads) / done
	t.ReconcilesPerCycle = (reconcilesAfter - reconcilesBefore) / done
	after, err := measurePace(ctx, l.c, opts, clients, cycles, meter, "right after")
	if err != nil {
		return t, err
	}
	t.Before, t.After = before, after
	t.compare(pacesOf(before, after))
	return t, nil
}
