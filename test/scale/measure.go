package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/managerproc"
)

// managerStopTimeout is how long a manager may take to stop after SIGTERM: more than
// controller-runtime's graceful shutdown of 30 s, so that only a hung one is killed.
const managerStopTimeout = 40 * time.Second

// scaleRun is one measurement in progress: the control plane, the observer and the
// operator process of the moment.
type scaleRun struct {
	opts options
	res  *Results
	env  *benchutil.Env
	obs  *benchutil.Observer
	// tracked holds every request's observations, by name.
	tracked map[string]*benchutil.Tracked
	// managers counts the manager processes started, for their names.
	managers int
}

// measure runs every phase into res, and stops what it started.
func measure(ctx context.Context, opts options, res *Results) (retErr error) {
	env, err := benchutil.StartEnv(ctx, opts.EnvOptions())
	if err != nil {
		return err
	}
	defer env.StopInto(&retErr)
	obsCtx, cancelObs := context.WithCancel(ctx)
	defer cancelObs()
	obs, err := benchutil.StartObserver(obsCtx, env.Client, opts.Namespace)
	if err != nil {
		return err
	}
	r := &scaleRun{opts: opts, res: res, env: env, obs: obs, tracked: map[string]*benchutil.Tracked{}}

	m, name, err := r.startManager()
	if err != nil {
		return err
	}
	defer func() {
		if m != nil {
			retErr = errors.Join(retErr, m.Stop(managerStopTimeout))
		}
	}()
	if err := r.build(ctx, m, name); err != nil {
		return err
	}
	if res.OneLock, err = r.readOneLock(ctx); err != nil {
		return err
	}
	if opts.queued < 2*len(restarts) {
		benchutil.Step("fewer than %d queued requests: no restart to measure", 2*len(restarts))
		return nil
	}
	for i, how := range restarts {
		var rr RestartResult
		rr, m, err = r.restart(ctx, m, how, i)
		res.Restarts = append(res.Restarts, rr)
		if err != nil {
			return err
		}
	}
	return nil
}

// startManager starts the next manager process and waits until it leads.
func (r *scaleRun) startManager() (*managerproc.Manager, string, error) {
	r.managers++
	name := fmt.Sprintf("manager-%d", r.managers)
	m, err := managerproc.Start(managerproc.Options{
		Binary:     r.opts.manager,
		Kubeconfig: r.env.Cluster.KubeconfigPath(),
		Args:       r.res.ManagerArgs,
		Env:        r.res.ManagerEnv,
		LogPath:    r.env.LogPath(name + ".log"),
		Pprof:      true,
	})
	if err != nil {
		return nil, "", err
	}
	benchutil.Step("started %s (pid %d, log %s)", name, m.Pid(), m.LogPath)
	return m, name, nil
}

// build measures the first operator: the baseline, then while the locks are created
// and queued, then with all of them in place.
func (r *scaleRun) build(ctx context.Context, m *managerproc.Manager, name string) error {
	if err := m.WaitLeader(ctx); err != nil {
		return err
	}
	if _, err := waitQuiet(ctx, m, 0, 0); err != nil {
		return err
	}
	var err error
	if r.res.Baseline, err = r.readMemory(ctx, m, "baseline"); err != nil {
		return err
	}
	benchutil.Step("%s leads; baseline RSS %s", name, mb(r.res.Baseline.RSS))
	before, err := m.Scrape(ctx)
	if err != nil {
		return err
	}
	s := managerproc.StartSampler(ctx, m, managerproc.SamplerOptions{Name: name, Origin: benchutil.Started(), Interval: r.opts.sampleInterval})
	b := &r.res.Build
	began := time.Now()

	benchutil.Step("creating %d holders (one key each) with %d clients", r.opts.held, r.opts.clients)
	if b.HoldersCreated, err = r.create(ctx, r.opts.held, holderName); err != nil {
		return err
	}
	if b.HoldersAcquired, err = r.waitAll(ctx, r.opts.held, holderName, true, began); err != nil {
		return err
	}
	benchutil.Step("all %d holders observed Acquired after %s", r.opts.held, b.HoldersAcquired.Round(time.Millisecond))
	benchutil.Step("creating %d waiters (one behind each of the first %d keys)", r.opts.queued, r.opts.queued)
	waitersBegan := time.Now()
	if b.WaitersCreated, err = r.create(ctx, r.opts.queued, waiterName); err != nil {
		return err
	}
	b.WaitersCreated += waitersBegan.Sub(began)
	if b.WaitersQueued, err = r.waitAll(ctx, r.opts.queued, waiterName, false, began); err != nil {
		return err
	}
	benchutil.Step("all %d waiters observed Queued after %s", r.opts.queued, b.WaitersQueued.Round(time.Millisecond))
	st, err := waitQuiet(ctx, m, r.opts.held, r.opts.queued)
	if err != nil {
		return err
	}
	b.Quiet = time.Since(began)
	benchutil.Step("operator quiet after %s: %d held, %d queued in its /status", b.Quiet.Round(time.Millisecond), st.LocksHeld, st.Queued)
	if r.res.Loaded, err = r.readMemory(ctx, m, "loaded"); err != nil {
		return err
	}
	r.res.Samples = append(r.res.Samples, s.Stop()...)
	after, err := m.Scrape(ctx)
	if err != nil {
		return err
	}
	b.MaxQueueDepth = maxDepth(r.res.Samples)
	b.CPU = r.res.Loaded.CPU - r.res.Baseline.CPU
	b.Requests = requestsSince(before, after)
	b.Reconciles = after.Sum("controller_runtime_reconcile_total", "controller", managerproc.LockQueue) - before.Sum("controller_runtime_reconcile_total", "controller", managerproc.LockQueue)
	b.ReconcileErrors = after.Sum("controller_runtime_reconcile_errors_total", "controller", managerproc.LockQueue) - before.Sum("controller_runtime_reconcile_errors_total", "controller", managerproc.LockQueue)
	benchutil.Step("loaded RSS %s (peak %s), %s CPU, %.0f reconciles", mb(r.res.Loaded.RSS), mb(r.res.Loaded.HWM), b.CPU.Round(time.Millisecond), b.Reconciles)
	return nil
}

func holderName(i int) string { return fmt.Sprintf("h-%05d", i) }
func waiterName(i int) string { return fmt.Sprintf("w-%05d", i) }

// keyOf is the lock key of holder i and waiter i: 100 repositories, a directory each.
func keyOf(i int) lockkey.Key {
	return lockkey.New(fmt.Sprintf("scale/repo-%03d", i%100), fmt.Sprintf("modules/m-%05d", i), "default", "")
}

// atlantisLockAnnotation is the annotation in which pkg/atlantis, the adapter
// Atlantis uses, keeps the whole pull request and user of a lock as JSON.
const atlantisLockAnnotation = "locking.runatlantis.io/atlantis-lock"

// lockRequest is request i as pkg/atlantis creates it for Atlantis: the spec with
// the pull's URL, author and head commit and the user's teams, the key's label,
// and the annotation with the pull request as Atlantis describes it (about 800
// bytes). Holders are pulls 1..N, waiters pulls 100001..: every request has an
// owner of its own.
func (r *scaleRun) lockRequest(i int, name string) *lockingv1alpha1.LockRequest {
	key := keyOf(i)
	pull := int32(i + 1)
	if name == waiterName(i) {
		pull += 100000
	}
	url := fmt.Sprintf("https://github.com/%s/pull/%d", key.Repository, pull)
	author := fmt.Sprintf("user-%d", pull%500)
	commit := fmt.Sprintf("%040x", uint64(pull)*0x9e3779b97f4a7c15)
	annotation := fmt.Sprintf(`{"Pull":{"Num":%d,"HeadCommit":%q,"URL":%q,"HeadBranch":"feature/change-%d",`+
		`"BaseBranch":"main","Author":%q,"State":0,"BaseRepo":{"FullName":%q,"Owner":"scale","Name":%q,`+
		`"CloneURL":"","SanitizedCloneURL":"https://github.com/%s.git","VCSHost":{"Hostname":"github.com","Type":0}}},`+
		`"User":{"Username":%q,"Teams":["platform","infra-reviewers"]},"Time":"2026-11-25T10:00:00.123456789Z"}`,
		pull, commit, url, pull, author, key.Repository, key.Repository[len("scale/"):], key.Repository, author)
	return &lockingv1alpha1.LockRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.opts.Namespace, Name: name,
			Labels:      map[string]string{lockingv1alpha1.LockNameLabel: key.ObjectName()},
			Annotations: map[string]string{atlantisLockAnnotation: annotation}},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project:   lockingv1alpha1.ProjectRef{Repository: key.Repository, Path: key.Path},
			Workspace: key.Workspace,
			Pull:      &lockingv1alpha1.PullRequestRef{Number: pull, URL: url, Author: author, HeadCommit: commit},
			User:      lockingv1alpha1.UserRef{Username: author, Teams: []string{"platform", "infra-reviewers"}},
			Priority:  lockingv1alpha1.PriorityNormal,
		},
	}
}

// create creates requests 0..n-1 named by name with the run's concurrent clients and
// returns how long that took. Transient API errors (the API server or etcd
// overloaded) are retried; AlreadyExists after a retry is the earlier attempt's.
func (r *scaleRun) create(ctx context.Context, n int, name func(int) string) (time.Duration, error) {
	for i := range n {
		r.tracked[name(i)] = r.obs.Track(name(i))
	}
	began := time.Now()
	var next atomic.Int64
	err := benchutil.Parallel(ctx, r.opts.clients, func(ctx context.Context, _ int) error {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return nil
			}
			if i > 0 && i%2000 == 0 {
				benchutil.Step("  %d created", i)
			}
			lr := r.lockRequest(i, name(i))
			err := retry.OnError(retry.DefaultBackoff, transient, func() error {
				err := r.env.Client.Create(ctx, lr.DeepCopy())
				if apierrors.IsAlreadyExists(err) {
					return nil
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("creating LockRequest %s: %w", lr.Name, err)
			}
		}
	})
	return time.Since(began), err
}

// transient reports whether an API error is worth retrying.
func transient(err error) bool {
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err)
}

// waitAll waits until requests 0..n-1 are observed Acquired (acquired) or Queued,
// and returns when the last of them was, measured from began.
func (r *scaleRun) waitAll(ctx context.Context, n int, name func(int) string, acquired bool, began time.Time) (time.Duration, error) {
	var last time.Time
	for i := range n {
		t := r.tracked[name(i)]
		var at time.Time
		var err error
		if acquired {
			at, _, err = r.obs.WaitAcquired(ctx, t, r.opts.timeout, name(i))
		} else {
			at, err = r.obs.Wait(ctx, t.Queued, r.opts.timeout, "Queued=True of LockRequest "+name(i))
		}
		if err != nil {
			return 0, err
		}
		if at.After(last) {
			last = at
		}
	}
	return last.Sub(began), nil
}

// waitWarm waits until a manager that does not lead has listed everything and
// queued every key (its lock work queue holds at least keys items), as the
// controller warm-up does, or ctx ends.
func waitWarm(ctx context.Context, m *managerproc.Manager, keys int) error {
	tick := time.NewTicker(quietPoll)
	defer tick.Stop()
	var depth float64
	for {
		if err := m.Exited(); err != nil {
			return err
		}
		if metrics, err := m.Scrape(ctx); err == nil {
			if depth = metrics.Sum("workqueue_depth", "name", managerproc.LockQueue); depth >= float64(keys) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the standby to queue %d keys (last: %.0f): %w", keys, depth, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// quietPoll is how often waitQuiet reads /status and /metrics.
const quietPoll = 250 * time.Millisecond

// waitQuiet waits until the operator's /status shows held keys and queued waiters
// and its lock work queue is empty: every key has been decided about and nothing is
// left to do.
func waitQuiet(ctx context.Context, m *managerproc.Manager, held, queued int) (orchestrator.OrchestratorStatus, error) {
	tick := time.NewTicker(quietPoll)
	defer tick.Stop()
	var last orchestrator.OrchestratorStatus
	var depth float64
	for {
		if err := m.Exited(); err != nil {
			return last, err
		}
		st, err := m.Status(ctx)
		if err == nil {
			last = st
			if metrics, err := m.Scrape(ctx); err == nil {
				depth = metrics.Sum("workqueue_depth", "name", managerproc.LockQueue)
				if st.Leader && st.LocksHeld == held && st.Queued == queued && depth == 0 {
					return st, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("waiting for the operator to show %d held and %d queued with an empty queue (last: %d held, %d queued, depth %.0f): %w",
				held, queued, last.LocksHeld, last.Queued, depth, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// Memory is the operator's memory at one moment: the process's, from /proc, and
// the Go runtime's, from its /metrics.
type Memory struct {
	managerproc.Usage
	// HeapAlloc is go_memstats_heap_alloc_bytes: live and not yet collected objects.
	HeapAlloc float64 `json:"heapAllocBytes"`
	// HeapInuse is go_memstats_heap_inuse_bytes: heap spans in use.
	HeapInuse float64 `json:"heapInuseBytes"`
	// GoSys is go_memstats_sys_bytes: everything the Go runtime got from the OS.
	GoSys float64 `json:"goSysBytes"`
	// LiveHeap is go_memstats_heap_alloc_bytes right after a forced garbage
	// collection (read after the figures above): the memory the operator's data
	// really takes, whatever the garbage collector's headroom.
	LiveHeap float64 `json:"liveHeapBytes"`
}

// readMemory reads the operator's memory; then it forces a garbage collection with
// a heap profile (saved as -profile-dir/heap-NAME.pb.gz when set) and reads the
// live heap.
func (r *scaleRun) readMemory(ctx context.Context, m *managerproc.Manager, name string) (Memory, error) {
	u, err := m.Usage()
	if err != nil {
		return Memory{}, err
	}
	metrics, err := m.Scrape(ctx)
	if err != nil {
		return Memory{}, err
	}
	mem := Memory{Usage: u, HeapAlloc: metrics.Sum("go_memstats_heap_alloc_bytes"),
		HeapInuse: metrics.Sum("go_memstats_heap_inuse_bytes"), GoSys: metrics.Sum("go_memstats_sys_bytes")}
	profile := io.Discard
	if r.opts.profileDir != "" {
		if err := os.MkdirAll(r.opts.profileDir, 0o755); err != nil {
			return mem, err
		}
		path := filepath.Join(r.opts.profileDir, "heap-"+name+".pb.gz")
		f, err := os.Create(path)
		if err != nil {
			return mem, err
		}
		defer func() { _ = f.Close() }()
		profile = f
		benchutil.Step("heap profile: %s", path)
	}
	if err := m.HeapProfile(ctx, profile); err != nil {
		return mem, err
	}
	if metrics, err = m.Scrape(ctx); err != nil {
		return mem, err
	}
	mem.LiveHeap = metrics.Sum("go_memstats_heap_alloc_bytes")
	return mem, nil
}

// requestsSince returns the operator's API requests between two scrapes of
// rest_client_requests_total, by "METHOD code" (client-go labels its requests by
// HTTP method and status code only: GET covers get, list and watch).
func requestsSince(before, after managerproc.Metrics) map[string]float64 {
	count := func(m managerproc.Metrics) map[string]float64 {
		out := map[string]float64{}
		for _, s := range m["rest_client_requests_total"] {
			out[s.Labels["method"]+" "+s.Labels["code"]] += s.Value
		}
		return out
	}
	b, a := count(before), count(after)
	out := map[string]float64{}
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if d := a[k] - b[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// restartKind is how one restart goes.
type restartKind struct {
	// Signal ends the leading operator: SIGKILL (a crash: the leader election
	// Lease stays taken until it expires) or SIGTERM (a stop, which releases it).
	Signal string
	// Standby starts the next operator before the leader ends, and waits until it
	// has warmed up (listed and queued every key, without deciding): a second
	// replica taking over, as in a rolling update. Without it the next operator
	// starts after the leader has ended: a single replica restarting.
	Standby bool
}

// String names the restart in the report.
func (k restartKind) String() string {
	if k.Standby {
		return k.Signal + " with a warm standby"
	}
	return k.Signal
}

// restarts are the restarts measured, in order.
var restarts = []restartKind{{Signal: "SIGKILL"}, {Signal: "SIGTERM"}, {Signal: "SIGTERM", Standby: true}}

// RestartResult is one restart of the operator with locks in place.
type RestartResult struct {
	// Signal ended the previous operator: SIGKILL (a crash) or SIGTERM (a stop,
	// which releases the leader election Lease).
	Signal string `json:"signal"`
	// Standby is true when the next operator ran, warmed up, before the leader
	// ended; the times then run from the leader's end.
	Standby bool `json:"standby"`
	// Leader is from the new process's start (or the leader's end, with a
	// standby) to its /status showing it leads.
	Leader time.Duration `json:"leaderNanoseconds"`
	// Handoff is from the same moment to the waiter of the holder deleted then
	// observed Acquired: the next hand-off served.
	Handoff time.Duration `json:"handoffNanoseconds"`
	// HandoffAfterLeader is Handoff minus Leader.
	HandoffAfterLeader time.Duration `json:"handoffAfterLeaderNanoseconds"`
	// HandoffLive is from the deletion of another holder, right after the new
	// process led (its key changed after the initial list), to its waiter observed
	// Acquired.
	HandoffLive time.Duration `json:"handoffLiveNanoseconds"`
	// Rebuilt is from the start until the new leader's /status shows every hold and
	// waiter and its work queue is empty.
	Rebuilt time.Duration `json:"rebuiltNanoseconds"`
	// Memory is the new operator's memory once rebuilt.
	Memory Memory `json:"memory"`
	// Requests are the new operator's API requests until rebuilt, by method and
	// code: its lists and watches, and the hand-off's writes.
	Requests map[string]float64 `json:"requests"`
}

// restart ends old as how says, with a new operator started after it or, with a
// standby, before it; deletes holder i at once and holder queued-1-i once the new
// operator leads; and times the new leader's hand-offs to their waiters and the
// rebuild of its whole state.
func (r *scaleRun) restart(ctx context.Context, old *managerproc.Manager, how restartKind, i int) (RestartResult, *managerproc.Manager, error) {
	rr := RestartResult{Signal: how.Signal, Standby: how.Standby}
	benchutil.Step("restart %d: %s", i+1, how)
	var m *managerproc.Manager
	var name string
	var err error
	if how.Standby {
		if m, name, err = r.startManager(); err != nil {
			return rr, nil, err
		}
		if err := waitWarm(ctx, m, r.opts.held); err != nil {
			return rr, m, err
		}
		benchutil.Step("  %s has warmed up", name)
	}
	if how.Signal == "SIGKILL" {
		err = old.Kill()
	} else {
		err = old.Stop(managerStopTimeout)
	}
	if err != nil {
		return rr, m, err
	}
	if !how.Standby {
		if m, name, err = r.startManager(); err != nil {
			return rr, nil, err
		}
	}
	started := time.Now()
	holder := r.lockRequest(i, holderName(i))
	if err := r.env.Client.Delete(ctx, holder); err != nil {
		return rr, m, fmt.Errorf("deleting holder %s: %w", holder.Name, err)
	}
	s := managerproc.StartSampler(ctx, m, managerproc.SamplerOptions{Name: name, Origin: benchutil.Started(), Interval: r.opts.sampleInterval})
	defer func() { r.res.Samples = append(r.res.Samples, s.Stop()...) }()
	if err := m.WaitLeader(ctx); err != nil {
		return rr, m, err
	}
	rr.Leader = time.Since(started)
	benchutil.Step("  %s leads after %s", name, rr.Leader.Round(time.Millisecond))
	// A second holder, from the other end, deleted now that the new leader runs:
	// its key is not among the initial ones.
	live := r.opts.queued - 1 - i
	liveHolder := r.lockRequest(live, holderName(live))
	deleted := time.Now()
	if err := r.env.Client.Delete(ctx, liveHolder); err != nil {
		return rr, m, fmt.Errorf("deleting holder %s: %w", liveHolder.Name, err)
	}
	at, _, err := r.obs.WaitAcquired(ctx, r.tracked[waiterName(i)], r.opts.timeout, waiterName(i))
	if err != nil {
		return rr, m, err
	}
	rr.Handoff = at.Sub(started)
	rr.HandoffAfterLeader = rr.Handoff - rr.Leader
	benchutil.Step("  hand-off %s → %s served %s after the start", holderName(i), waiterName(i), rr.Handoff.Round(time.Millisecond))
	at, _, err = r.obs.WaitAcquired(ctx, r.tracked[waiterName(live)], r.opts.timeout, waiterName(live))
	if err != nil {
		return rr, m, err
	}
	rr.HandoffLive = at.Sub(deleted)
	benchutil.Step("  hand-off %s → %s, deleted after the new leader led, served in %s", holderName(live), waiterName(live), rr.HandoffLive.Round(time.Millisecond))
	if _, err := waitQuiet(ctx, m, r.opts.held, r.opts.queued-2*(i+1)); err != nil {
		return rr, m, err
	}
	rr.Rebuilt = time.Since(started)
	if rr.Memory, err = r.readMemory(ctx, m, fmt.Sprintf("rebuilt-%d", i+1)); err != nil {
		return rr, m, err
	}
	metrics, err := m.Scrape(ctx)
	if err != nil {
		return rr, m, err
	}
	rr.Requests = requestsSince(nil, metrics)
	benchutil.Step("  state rebuilt %s after the start; RSS %s", rr.Rebuilt.Round(time.Millisecond), mb(rr.Memory.RSS))
	return rr, m, nil
}

// oneLockSamples is how many single locks readOneLock reads.
const oneLockSamples = 20

// readOneLock reads single locks among all the run's, by their key's text, as
// pkg/atlantis's Unlock and GetLock do (lockclient.GetLockText), and then the whole
// namespace once (lockclient.List), which is how pkg/atlantis read one lock before.
func (r *scaleRun) readOneLock(ctx context.Context) (OneLockResult, error) {
	benchutil.Step("reading %d single locks by their key's text among all, then the namespace's locks once", oneLockSamples)
	c := lockclient.New(r.env.Client, r.opts.Namespace)
	var res OneLockResult
	var took []time.Duration
	for i := range oneLockSamples {
		key := keyOf(i * max(1, r.opts.held/oneLockSamples) % max(1, r.opts.held))
		began := time.Now()
		info, err := c.GetLockText(ctx, key.String())
		took = append(took, time.Since(began))
		if err != nil {
			return res, err
		}
		if info == nil || info.Holder == nil {
			return res, fmt.Errorf("the lock of %s reads free; want held", key)
		}
	}
	res.ByText = benchutil.Summarize(took)
	began := time.Now()
	infos, err := c.List(ctx)
	res.List = time.Since(began)
	if err != nil {
		return res, err
	}
	res.Listed = len(infos)
	benchutil.Step("one lock read by text P50 %s; the namespace's %d locks listed in %s", res.ByText.P50.Round(time.Millisecond), res.Listed, res.List.Round(time.Millisecond))
	return res, nil
}
