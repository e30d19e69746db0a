//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/lockcheck"
)

// The traffic: Atlantis-like clients, each locking, briefly holding and unlocking a
// few keys in turn, so that every key is contended by several clients at once.
const (
	trafficNamespace = "e2e-traffic"
	clients          = 50
	keys             = 10
	cycles           = 4
	// killAfter is how many holds are done when the leader is killed: a third of the
	// traffic, so that grants happen both before and after the failover.
	killAfter = clients * cycles / 3
)

// testFailover runs the clients of pkg/lockclient, kills the leading manager with
// SIGKILL a third of the way through, and checks that the standby took over, that no
// key was ever held twice, that fencing tokens grew, that every request was granted
// and released, and that the survivor's metrics and /status tell the same story.
func (s *suite) testFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), trafficTimeout)
	defer cancel()
	s.createNamespace(ctx, t, trafficNamespace)
	holders := watchElectionLease(ctx, t, s)
	first := <-holders
	leader, err := s.leader(ctx)
	must(t, "the leader before the traffic", err)
	t.Logf("%s leads as %s", leader.name, first.holder)

	var history lockcheck.History
	killNow := make(chan struct{})
	var killOnce sync.Once
	onHold := func(n int) {
		if n >= killAfter {
			killOnce.Do(func() { close(killNow) })
		}
	}
	lc := lockclient.New(s.admin, trafficNamespace, lockclient.WithFieldManager("e2e-atlantis"))
	start := time.Now()
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() { errs <- runClient(ctx, lc, s.admin, &history, onHold, c) })
	}
	trafficDone := make(chan struct{})
	go func() { wg.Wait(); close(trafficDone) }()
	// When the test fails half-way, the clients give up (and withdraw their requests)
	// before the managers and the cluster stop.
	defer func() { cancel(); <-trafficDone }()

	select {
	case <-killNow:
	case <-trafficDone:
		t.Fatalf("the traffic ended before %d holds were done; nothing to fail over during", killAfter)
	}
	leader.kill(t)
	killed := time.Now()
	t.Logf("killed %s (SIGKILL) after %d holds, %s into the traffic", leader.name, len(history.Holds()), killed.Sub(start).Round(time.Millisecond))

	takeover := waitForNewHolder(ctx, t, holders, first.holder)
	// The standby takes over once the 15 s lease has run out since it last saw the
	// leader renew, at its next try (every 2 s plus up to 2.4 s of jitter): from
	// about 15 s to about 24 s after the kill. Reported, not asserted.
	t.Logf("election Lease taken over by %s %s after the kill", takeover.holder, takeover.seen.Sub(killed).Round(time.Millisecond))

	select {
	case <-trafficDone:
	case <-ctx.Done():
		t.Fatalf("the clients did not finish within %s: %v", trafficTimeout, ctx.Err())
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	duration := time.Since(start)

	// Mutual exclusion and fencing over all grants, before and after the failover.
	res := history.Check()
	for _, v := range res.Violations {
		t.Error(v)
	}
	if res.Grants != clients*cycles {
		t.Errorf("%d grants, want %d: every cycle of every client acquires once", res.Grants, clients*cycles)
	}
	// Grants whose fencing token (the resourceVersion of the grant's Lease write)
	// is newer than the takeover's write were made by the new leader: the old one
	// was dead by then.
	var after int
	var firstAfter time.Time
	for _, h := range history.Holds() {
		token, err := strconv.ParseInt(h.Token, 10, 64)
		if err == nil && token > takeover.resourceVersion {
			after++
			if firstAfter.IsZero() || h.Acquired.Before(firstAfter) {
				firstAfter = h.Acquired
			}
		}
	}
	if after == 0 {
		t.Fatalf("no grant after the takeover: the failover happened after the traffic, and proved nothing")
	}
	t.Logf("traffic: %d clients, %d keys, %d grants (%d by the new leader, the first observed %s after the kill, %s after the takeover) in %s, %d successions checked",
		clients, keys, res.Grants, after, firstAfter.Sub(killed).Round(time.Millisecond), firstAfter.Sub(takeover.seen).Round(time.Millisecond),
		duration.Round(time.Millisecond), res.Successions)

	s.checkNothingLeft(ctx, t, trafficNamespace)
	// The one manager left must lead (s.leader asks the running managers only).
	survivor, err := s.leader(ctx)
	must(t, "the leader after the failover", err)
	s.checkSurvivorMetrics(ctx, t, survivor, after)
}

// runClient is one Atlantis-like client c: for each cycle it locks a key (waiting in
// the queue as long as it takes), checks the Lease while holding it, and unlocks,
// recording the hold into history.
func runClient(ctx context.Context, lc *lockclient.Client, c client.Reader, history *lockcheck.History, onHold func(int), n int) error {
	for i := range cycles {
		key := fmt.Sprintf("modules/k%d", (n+i)%keys)
		r := lockclient.Request{
			Project: lockingv1alpha1.ProjectRef{Repository: "acme/e2e", Path: key},
			User:    lockingv1alpha1.UserRef{Username: fmt.Sprintf("atlantis-%02d", n)},
		}
		st, err := lc.Lock(ctx, r)
		if err != nil {
			return fmt.Errorf("client %d, cycle %d: locking %s: %w", n, i, key, err)
		}
		acquired := time.Now()
		// The work under the lock: what a fenced system would check.
		if err := lockcheck.LeaseHeldBy(ctx, c, st.Request); err != nil {
			return fmt.Errorf("client %d, cycle %d: %w", n, i, err)
		}
		onHold(history.Add(lockcheck.Hold{Key: key, Holder: st.Name(), Token: st.FencingToken, Acquired: acquired, Released: time.Now()}))
		if err := lc.Unlock(ctx, r); err != nil {
			return fmt.Errorf("client %d, cycle %d: unlocking %s: %w", n, i, key, err)
		}
	}
	return nil
}

// holderChange is a holder of the election Lease, as the watch saw it.
type holderChange struct {
	holder string
	// resourceVersion is the Lease write that made holder the holder.
	resourceVersion int64
	// seen is when the watch delivered it.
	seen time.Time
}

// watchElectionLease watches the manager's election Lease and sends its holder, then
// every change of holder, until ctx ends.
func watchElectionLease(ctx context.Context, t *testing.T, s *suite) <-chan holderChange {
	leases := s.cs.CoordinationV1().Leases(releaseNamespace)
	selector := fields.OneTermEqualSelector("metadata.name", electionLease).String()
	lease, err := leases.Get(ctx, electionLease, metav1.GetOptions{})
	must(t, "the election Lease", err)
	// A RetryWatcher resumes after a closed watch from the last resourceVersion, so
	// that no write is missed.
	w, err := watchtools.NewRetryWatcherWithContext(ctx, lease.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			return leases.Watch(ctx, opts)
		},
	})
	must(t, "watching the election Lease", err)
	out := make(chan holderChange, 16)
	out <- holderChange{holder: holderOf(lease), resourceVersion: resourceVersion(lease), seen: time.Now()}
	go func() {
		defer w.Stop()
		defer close(out)
		last := holderOf(lease)
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				l, ok := ev.Object.(*coordinationv1.Lease)
				if !ok || holderOf(l) == last {
					continue
				}
				last = holderOf(l)
				out <- holderChange{holder: last, resourceVersion: resourceVersion(l), seen: time.Now()}
			}
		}
	}()
	return out
}

// waitForNewHolder waits until the election Lease names a holder other than old.
func waitForNewHolder(ctx context.Context, t *testing.T, holders <-chan holderChange, old string) holderChange {
	for {
		select {
		case c, ok := <-holders:
			if !ok {
				t.Fatalf("the watch of the election Lease ended before another manager took over from %s: %v", old, ctx.Err())
			}
			if c.holder != "" && c.holder != old {
				return c
			}
		case <-ctx.Done():
			t.Fatalf("no manager took over from %s: %v", old, ctx.Err())
		}
	}
}

func holderOf(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func resourceVersion(l *coordinationv1.Lease) int64 {
	rv, _ := strconv.ParseInt(l.ResourceVersion, 10, 64)
	return rv
}

// checkNothingLeft waits until the namespace has no LockRequest (the clients deleted
// theirs), no ProjectLock (the operator deletes a lock nobody holds or waits for)
// and no lock Lease (garbage collected with its ProjectLock).
func (s *suite) checkNothingLeft(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	var requests lockingv1alpha1.LockRequestList
	if err := s.admin.List(ctx, &requests, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, lr := range requests.Items {
		t.Errorf("LockRequest %s left after its client unlocked: %v", lr.Name, lockclient.StatusOf(&lr))
	}
	eventually(ctx, t, "no ProjectLock and no lock Lease is left in "+ns, func(ctx context.Context) (bool, error) {
		var locks lockingv1alpha1.ProjectLockList
		if err := s.admin.List(ctx, &locks, client.InNamespace(ns)); err != nil {
			return false, err
		}
		var leases coordinationv1.LeaseList
		if err := s.admin.List(ctx, &leases, client.InNamespace(ns), client.HasLabels{lockingv1alpha1.LockNameLabel}); err != nil {
			return false, err
		}
		return len(locks.Items) == 0 && len(leases.Items) == 0, nil
	})
}

// checkSurvivorMetrics checks the new leader's /status and /metrics against the
// traffic: it leads, it counted at least the grants it made, and its gauges of held
// locks and queued requests match the ProjectLocks now that every client has
// unlocked.
func (s *suite) checkSurvivorMetrics(ctx context.Context, t *testing.T, m *manager, grantsAfterTakeover int) {
	t.Helper()
	st, err := m.status(ctx)
	must(t, m.name+" /status", err)
	if !st.Leader {
		t.Errorf("%s /status: leader false, want true", m.name)
	}
	// The gauges count every namespace's locks, the samples' lock still held in
	// the kubectl step's namespace included: they must match the ProjectLocks.
	var last promMetrics
	var held, queued, wantHeld, wantQueued float64
	err = poll(ctx, func(ctx context.Context) (bool, error) {
		if last, err = m.metrics(ctx); err != nil {
			return false, err
		}
		held, _ = last.value("atlantis_locks_held")
		queued, _ = last.value("atlantis_lock_queue_depth")
		var locks lockingv1alpha1.ProjectLockList
		if err := s.admin.List(ctx, &locks); err != nil {
			return false, err
		}
		wantHeld, wantQueued = 0, 0
		for _, pl := range locks.Items {
			if pl.Status.Holder != nil {
				wantHeld++
			}
			wantQueued += float64(pl.Status.QueueLength)
		}
		return held == wantHeld && queued == wantQueued, nil
	})
	if err != nil {
		t.Fatalf("%s: atlantis_locks_held %v and atlantis_lock_queue_depth %v, want %v and %v as the ProjectLocks say: %v",
			m.name, held, queued, wantHeld, wantQueued, err)
	}
	acquired, ok := last.value("atlantis_lock_requests_total", "result", "acquired")
	if !ok || acquired < float64(grantsAfterTakeover) {
		t.Errorf(`%s: atlantis_lock_requests_total{result="acquired"} = %v (served: %v), want at least the %d grants it made after the takeover`,
			m.name, acquired, ok, grantsAfterTakeover)
	}
	for _, result := range []string{"conflict", "queue_timeout", "queue_full", "deadlock_victim"} {
		if v, _ := last.value("atlantis_lock_requests_total", "result", result); v != 0 {
			t.Errorf(`%s: atlantis_lock_requests_total{result=%q} = %v, want 0: every request of the traffic was granted`, m.name, result, v)
		}
	}
	handoffs, _ := last.value("atlantis_lock_handoffs_total")
	if handoffs == 0 {
		t.Errorf("%s: atlantis_lock_handoffs_total = 0, want hand-offs: every key had several waiters", m.name)
	}
	t.Logf(`%s after the traffic: atlantis_lock_requests_total{result="acquired"} %v, atlantis_lock_handoffs_total %v, atlantis_locks_held %v, atlantis_lock_queue_depth %v; /status leader %v`,
		m.name, acquired, handoffs, held, queued, st.Leader)
}
