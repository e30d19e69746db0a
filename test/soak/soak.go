package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/managerproc"
)

// managerStopTimeout is how long the manager may take to stop after SIGTERM.
const managerStopTimeout = 40 * time.Second

// cleanupTimeout bounds the wait for the operator and kube-controller-manager to
// remove everything after the requests are deleted.
const cleanupTimeout = 2 * time.Minute

// deadlockInterval is the operator's deadlock_check_interval in the soak: short,
// so that a deliberate deadlock is broken within a second.
const deadlockInterval = time.Second

// soak runs the traffic and the checks into res, and stops what it started.
func soak(ctx context.Context, opts options, res *Results) (retErr error) {
	env, err := benchutil.StartEnv(ctx, opts.EnvOptions())
	if err != nil {
		return err
	}
	defer env.StopInto(&retErr)
	// The watches end before the control plane stops (defers run last first).
	recCtx, stopRecorder := context.WithCancel(ctx)
	defer stopRecorder()
	rec, err := startRecorder(recCtx, env.Client, opts.Namespace)
	if err != nil {
		return err
	}
	res.ManagerArgs = []string{"--leader-elect=true", "--leader-election-namespace=default",
		"--deadlock-check-interval=" + deadlockInterval.String(), fmt.Sprintf("--max-queue-length=%d", opts.maxQueue)}
	m, err := managerproc.Start(managerproc.Options{Binary: opts.manager, Kubeconfig: env.Cluster.KubeconfigPath(),
		Args: res.ManagerArgs, LogPath: env.LogPath("manager.log"), Pprof: true})
	if err != nil {
		return err
	}
	defer func() { retErr = errors.Join(retErr, m.Stop(managerStopTimeout)) }()
	benchutil.Step("started the operator (pid %d, log %s)", m.Pid(), m.LogPath)
	if err := m.WaitLeader(ctx); err != nil {
		return err
	}
	trafficStart := time.Now()
	sampler := managerproc.StartSampler(ctx, m, managerproc.SamplerOptions{Name: "manager", Origin: trafficStart,
		Interval: opts.sampleInterval, LiveHeap: true})
	t := &traffic{lc: lockclient.New(env.Client, opts.Namespace, lockclient.WithFieldManager("soak")), rec: rec,
		namespace: opts.Namespace, maxQueue: opts.maxQueue, outcomes: map[string]int{}}
	// What the traffic did, and the history checks, are reported even when the
	// run fails part way.
	defer func() {
		res.Samples = sampler.Stop()
		res.Memory = memoryOf(res.Samples, res.TrafficTime)
		t.mu.Lock()
		defer t.mu.Unlock()
		res.Outcomes, res.Problems = t.outcomes, append(res.Problems, t.problems...)
		benchutil.Step("checking %d holds and every request's life", len(t.holds))
		res.Exclusion, res.Untimed = exclusion(t.holds, rec)
		all, watchErrs := rec.snapshot()
		res.Lives = lives(all)
		for _, e := range watchErrs {
			res.Problems = append(res.Problems, e.Error())
		}
	}()
	for i := range opts.keys {
		t.sharedKeys = append(t.sharedKeys, lockkey.New("soak/shared", fmt.Sprintf("k%d", i), "default", ""))
	}
	benchutil.Step("traffic: %d workers for %s", opts.clients, opts.duration)
	if err := runTraffic(ctx, opts, t); err != nil {
		return err
	}
	res.TrafficTime = time.Since(trafficStart)
	benchutil.Step("traffic done after %s: %d holds", res.TrafficTime.Round(time.Millisecond), len(t.holds))

	benchutil.Step("queue order: five waiters of different priorities behind one holder")
	order, err := finalQueue(ctx, t)
	if err != nil {
		return err
	}
	res.QueueOrder = order
	if res.QueueOrder, err = checkQueues(ctx, env.Client, opts.Namespace, res.QueueOrder); err != nil {
		return err
	}

	metrics, err := m.Scrape(ctx)
	if err != nil {
		return err
	}
	res.Operator = operatorFigures(metrics)
	sampler.Stop()

	benchutil.Step("cleanup: deleting every LockRequest")
	if res.LeftBehind, err = cleanup(ctx, env.Client, opts.Namespace); err != nil {
		return err
	}

	return nil
}

// runTraffic runs the workers until the duration has passed; a scenario under way
// then finishes. The first error stops every worker.
func runTraffic(ctx context.Context, opts options, t *traffic) error {
	deadline := time.Now().Add(opts.duration)
	return benchutil.Parallel(ctx, opts.clients, func(ctx context.Context, id int) error {
		w := &worker{id: id, rnd: rand.New(rand.NewPCG(opts.seed, uint64(id)))}
		for time.Now().Before(deadline) {
			s := pickScenario(w.rnd)
			sctx, cancel := context.WithTimeout(ctx, scenarioTimeout)
			err := s.run(sctx, t, w)
			cancel()
			if err != nil {
				return fmt.Errorf("worker %d, scenario %s: %w", id, s.name, err)
			}
			t.count("scenario " + s.name)
		}
		return nil
	})
}

// finalQueue queues five waiters of different priorities behind one holder, one
// after the other, and checks that they wait in the order the operator promises:
// Critical, then the two High in the order they came, then Normal, then Low.
func finalQueue(ctx context.Context, t *traffic) (QueueResult, error) {
	res := QueueResult{Problems: []string{}}
	key := lockkey.New("soak/final", "order", "default", "")
	holder := t.request(key)
	if _, err := t.lc.Lock(ctx, holder); err != nil {
		return res, fmt.Errorf("the final queue's holder: %w", err)
	}
	priorities := []lockingv1alpha1.Priority{lockingv1alpha1.PriorityLow, lockingv1alpha1.PriorityHigh,
		lockingv1alpha1.PriorityNormal, lockingv1alpha1.PriorityHigh, lockingv1alpha1.PriorityCritical}
	names := make([]string, len(priorities))
	for i, p := range priorities {
		r := t.request(key)
		r.Priority = p
		st, err := t.lc.TryLock(ctx, r)
		if err != nil {
			return res, fmt.Errorf("the final queue's waiter %d: %w", i, err)
		}
		if st.State != lockclient.StateQueued {
			res.Problems = append(res.Problems, fmt.Sprintf("final waiter %s (%s): %s, want Queued", st.Name(), p, st.State))
		}
		names[i] = st.Name()
	}
	want := []string{names[4], names[1], names[3], names[2], names[0]}
	// The positions, then the ProjectLock, settle as the operator decides (a
	// waiter's position can lag its first status_update_interval in the queue);
	// wait until they show the five waiters at positions 1..5 (or the deadline),
	// then check the order.
	var got []string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		info, err := t.lc.GetLock(ctx, key)
		if err != nil || info == nil {
			return false, err
		}
		got = got[:0]
		for _, lr := range info.Queue {
			got = append(got, fmt.Sprintf("%s@%d", lr.Name, lr.Status.Position))
		}
		if len(info.Queue) != len(want) || info.Lock == nil || int(info.Lock.Status.QueueLength) != len(want) {
			return false, nil
		}
		for i, lr := range info.Queue {
			if lr.Status.Position != int32(i+1) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return res, fmt.Errorf("the final queue never showed %d positions (last %v): %w", len(want), got, err)
	}
	for i, name := range want {
		if w := fmt.Sprintf("%s@%d", name, i+1); got[i] != w {
			res.Problems = append(res.Problems, fmt.Sprintf("final queue %v, want %v", got, want))
			break
		}
	}
	res.Final = got
	return res, nil
}

// queueSettle bounds the wait for the ProjectLocks' statuses to catch up with the
// requests' after the traffic: the operator writes a ProjectLock's status after
// its requests'.
const queueSettle = 30 * time.Second

// checkQueues checks every key's queue as the API shows it (see queueOrder), once
// the ProjectLocks agree with the requests or queueSettle has passed.
func checkQueues(ctx context.Context, c client.Client, namespace string, res QueueResult) (QueueResult, error) {
	var problems []string
	var keys, queued int
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, queueSettle, true, func(ctx context.Context) (bool, error) {
		var lrs lockingv1alpha1.LockRequestList
		if err := c.List(ctx, &lrs, client.InNamespace(namespace)); err != nil {
			return false, err
		}
		var pls lockingv1alpha1.ProjectLockList
		if err := c.List(ctx, &pls, client.InNamespace(namespace)); err != nil {
			return false, err
		}
		byLock := map[string][]lockingv1alpha1.LockRequest{}
		problems, keys, queued = nil, 0, 0
		for _, lr := range lrs.Items {
			byLock[lr.Status.LockName] = append(byLock[lr.Status.LockName], lr)
			if lr.Status.Position > 0 {
				queued++
			}
		}
		for name, reqs := range byLock {
			var pl *lockingv1alpha1.ProjectLock
			for i := range pls.Items {
				if pls.Items[i].Name == name {
					pl = &pls.Items[i]
				}
			}
			keys++
			problems = append(problems, queueOrder(pl, reqs)...)
		}
		return len(problems) == 0, nil
	})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return res, err
	}
	res.Keys, res.Queued = keys, queued
	res.Problems = append(res.Problems, problems...)
	return res, nil
}

// cleanup deletes every LockRequest (the operator releases and hands off as they
// go) and waits until no LockRequest, ProjectLock or Lease of a lock is left; it
// returns what is left at the deadline.
func cleanup(ctx context.Context, c client.Client, namespace string) (map[string]int, error) {
	if err := c.DeleteAllOf(ctx, &lockingv1alpha1.LockRequest{}, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("deleting the LockRequests: %w", err)
	}
	left := map[string]int{}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, cleanupTimeout, true, func(ctx context.Context) (bool, error) {
		var lrs lockingv1alpha1.LockRequestList
		var pls lockingv1alpha1.ProjectLockList
		var leases coordinationv1.LeaseList
		for _, l := range []client.ObjectList{&lrs, &pls} {
			if err := c.List(ctx, l, client.InNamespace(namespace)); err != nil {
				return false, err
			}
		}
		if err := c.List(ctx, &leases, client.InNamespace(namespace), client.HasLabels{lockingv1alpha1.LockNameLabel}); err != nil {
			return false, err
		}
		left = map[string]int{"LockRequests": len(lrs.Items), "ProjectLocks": len(pls.Items), "Leases": len(leases.Items)}
		return len(lrs.Items)+len(pls.Items)+len(leases.Items) == 0, nil
	})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return left, err
	}
	return left, nil
}

// operatorFigures picks what the operator's /metrics say about the run.
func operatorFigures(m managerproc.Metrics) map[string]float64 {
	out := map[string]float64{
		"reconciles":       m.Sum("controller_runtime_reconcile_total", "controller", managerproc.LockQueue),
		"reconcile errors": m.Sum("controller_runtime_reconcile_errors_total", "controller", managerproc.LockQueue),
		"deadlocks":        m.Sum("atlantis_lock_deadlocks_detected_total"),
		"events dropped":   m.Sum("atlantis_lock_events_dropped_total"),
		"API requests":     m.Sum("rest_client_requests_total"),
	}
	for _, s := range m["atlantis_lock_requests_total"] {
		out["requests "+s.Labels["result"]] += s.Value
	}
	for _, s := range m["atlantis_lock_timeouts_total"] {
		out["timeouts "+s.Labels["kind"]] += s.Value
	}
	return out
}

// eventCacheWarmup is how long the operator's memory grows under steady traffic
// before it levels off: client-go's event broadcaster keeps every event it sent in a
// cache (for event series) and drops those older than 6 minutes every 6 minutes,
// so it holds up to 12 minutes of events; a minute more lets the Go heap settle.
const eventCacheWarmup = 13 * time.Minute

// minJudged is the least time after the warm-up over which a trend is judged.
const minJudged = 3 * time.Minute

// memoryOf summarizes the samples taken during traffic of the given length. The
// trend is judged over the samples after eventCacheWarmup, when the traffic ran
// long enough.
func memoryOf(samples []managerproc.Sample, traffic time.Duration) Memory {
	mem := Memory{Samples: len(samples), Warmup: eventCacheWarmup}
	if len(samples) == 0 {
		return mem
	}
	mem.First, mem.Last = samples[0].RSS, samples[len(samples)-1].RSS
	mem.FirstLive, mem.LastLive = samples[0].LiveHeap, samples[len(samples)-1].LiveHeap
	var xs, rss, live, xsAfter, liveAfter []float64
	for _, s := range samples {
		mem.Max = max(mem.Max, s.RSS)
		mem.MaxLive = max(mem.MaxLive, s.LiveHeap)
		xs = append(xs, s.At.Minutes())
		rss = append(rss, float64(s.RSS)/1e6)
		live = append(live, s.LiveHeap/1e6)
		if s.At >= eventCacheWarmup && s.At <= traffic {
			xsAfter = append(xsAfter, s.At.Minutes())
			liveAfter = append(liveAfter, s.LiveHeap/1e6)
		}
	}
	mem.SlopeRSS = slope(xs, rss)
	mem.SlopeLive = slope(xs, live)
	if traffic >= eventCacheWarmup+minJudged && len(xsAfter) >= 2 {
		s := slope(slices.Clone(xsAfter), slices.Clone(liveAfter))
		mem.SlopeAfterWarmup = &s
	}
	return mem
}
