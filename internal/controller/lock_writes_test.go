package controller_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/apicalls"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/leasebackend"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// TestALockCycleWritesThree counts the operator's API writes over lock cycles on
// fresh keys, made as kubectl makes them (no finalizer, the grant learned from
// the status; pkg/lockclient's: TestALockCycleLearnedFromTheLeaseWritesTwo): a grant is the
// Lease create and the request's status, a release the Lease's delete, and nothing
// else: no ProjectLock for a hold shorter than project_lock_delay (here an hour, so
// that a slow machine cannot make a hold outlast it), no finalizer to remove, and
// no write repeated because the cache still shows the object before the last
// write; and no read past the cache to confirm the released holder gone. `make
// bench` counts the same in its uncontended run (issue 13: at most 3).
func TestALockCycleWritesThree(t *testing.T) {
	writes, calls := countCycleWrites(t, false)
	want := map[string]int{
		"create leases":              cycleCount,
		"update lockrequests/status": cycleCount,
		"delete leases":              cycleCount,
	}
	if diff := cmp.Diff(want, writes); diff != "" {
		t.Errorf("operator writes over %d uncontended lock cycles (-want +got):\n%s\nin order: %v", cycleCount, diff, calls)
	}
}

// TestALockCycleLearnedFromTheLeaseWritesTwo: a request made as pkg/lockclient
// makes it learns of its grant from the Lease (GrantNoticeAnnotation), so a hold
// shorter than status_update_interval (here an hour) costs no status write: the
// Lease's create and delete are the whole cycle.
func TestALockCycleLearnedFromTheLeaseWritesTwo(t *testing.T) {
	writes, calls := countCycleWrites(t, true)
	want := map[string]int{
		"create leases": cycleCount,
		"delete leases": cycleCount,
	}
	if diff := cmp.Diff(want, writes); diff != "" {
		t.Errorf("operator writes over %d uncontended lock cycles learned from the Lease (-want +got):\n%s\nin order: %v", cycleCount, diff, calls)
	}
}

// cycleCount is how many lock cycles countCycleWrites runs.
const cycleCount = 10

// countCycleWrites runs cycleCount lock cycles on fresh keys against an operator of
// its own and returns the operator's writes by verb and resource, and every write
// with its answer in order (for a failure's message). With leaseNotice, the
// requests carry GrantNoticeAnnotation and each grant is waited for on the Lease,
// with a status_update_interval of an hour; without it, on the status.
func countCycleWrites(t *testing.T, leaseNotice bool) (map[string]int, []string) {
	t.Helper()
	ns := isolatedNamespace(t)
	log, restCfg := recordCalls()
	mu, writes, reads, calls := &log.mu, log.writes, log.reads, &log.calls
	startIsolatedOperatorOn(t, restCfg, ns, clock.RealClock{}, orchestrator.DefaultConfig(),
		func(c *config.Config) {
			c.ProjectLockDelay = time.Hour
			if leaseNotice {
				// No hold here may outlast it, however slow the machine.
				c.StatusUpdateInterval = time.Hour
			}
		})

	for i := range cycleCount {
		lr := makeLR(ns, fmt.Sprintf("cycle-%d", i)).path(fmt.Sprintf("k%d", i)).obj()
		if leaseNotice {
			lr.Annotations = map[string]string{lockingv1alpha1.GrantNoticeAnnotation: lockingv1alpha1.GrantNoticeLease}
		}
		if err := k8s.Create(context.Background(), lr); err != nil {
			t.Fatal(err)
		}
		name := lockNameOf(lr)
		if leaseNotice {
			waitLeaseHolder(t, ns, name, lr)
		} else {
			waitAcquired(t, ns, lr.Name)
		}
		if err := k8s.Delete(context.Background(), lr); err != nil {
			t.Fatal(err)
		}
		waitLRGone(t, ns, lr.Name)
		waitGone(t, "Lease "+name, func() error { _, err := getLease(ns, name); return err })
		// The Lease is gone on the server a moment before the operator's transport
		// returns from the delete and records it: wait for the record too, or the
		// last cycle's delete may not be counted yet.
		eventually(t, fmt.Sprintf("the operator's Lease delete of cycle %d is recorded", i), func() error {
			mu.Lock()
			defer mu.Unlock()
			if n := writes["delete leases"]; n < i+1 {
				return fmt.Errorf("%d Lease deletes recorded", n)
			}
			return nil
		})
	}

	mu.Lock()
	defer mu.Unlock()
	t.Logf("operator writes over %d cycles: %v", cycleCount, writes)
	// The release needs no read past the cache either: the informer saw the holder's
	// delete, and a deleted UID never comes back.
	if n := reads["get lockrequests"]; n != 0 {
		t.Errorf("the operator read %d LockRequests past its cache over %d cycles, want none: %v", n, cycleCount, reads)
	}
	return maps.Clone(writes), slices.Clone(*calls)
}

// callLog is what an operator sent to the API server: writes and gets by verb and
// resource, and every write with its answer, in order.
type callLog struct {
	mu            sync.Mutex
	writes, reads map[string]int
	calls         []string
}

// recordCalls returns a callLog and a copy of the suite's REST config that
// records into it, for an operator of its own.
func recordCalls() (*callLog, *rest.Config) {
	log := &callLog{writes: map[string]int{}, reads: map[string]int{}}
	rec := apicalls.NewRecorder(clock.RealClock{})
	rec.AddObserver(apicalls.ObserverFunc(func(c apicalls.Call) {
		log.mu.Lock()
		defer log.mu.Unlock()
		switch c.Verb {
		case "create", "update", "patch", "delete":
			log.writes[c.String()]++
			log.calls = append(log.calls, fmt.Sprintf("%s %d", c, c.Code))
		case "get":
			log.reads[c.String()]++
		}
	}))
	restCfg := rest.CopyConfig(env.Config)
	restCfg.Wrap(rec.Wrap)
	return log, restCfg
}

// TestABlockingLockHandOffWritesOnlyTheLease: requests made as pkg/lockclient's
// Lock makes them (GrantNoticeLeaseOnly) need no word while they wait, so a
// holder, a waiter queued behind it and the hand-off between them, all shorter
// than status_update_interval (here an hour), write no request status at all:
// the Lease's writes are the whole of it.
func TestABlockingLockHandOffWritesOnlyTheLease(t *testing.T) {
	ns := isolatedNamespace(t)
	log, restCfg := recordCalls()
	op := startIsolatedOperatorOn(t, restCfg, ns, clock.RealClock{}, orchestrator.DefaultConfig(),
		func(c *config.Config) { c.StatusUpdateInterval, c.ProjectLockDelay = time.Hour, time.Hour })
	// The orchestrator's notices say when it has queued the waiter: nothing on the
	// API server does, which is the point.
	var mu sync.Mutex
	queued := map[string]bool{}
	op.orch.AddObserver(orchestrator.ObserverFunc(func(n orchestrator.Notice) {
		if n.Kind == orchestrator.NoticeQueued {
			mu.Lock()
			queued[n.Request.ID] = true
			mu.Unlock()
		}
	}))

	holder := makeLR(ns, "holder").path("handoff").pull(1).notice(lockingv1alpha1.GrantNoticeLeaseOnly).create(t)
	name := lockNameOf(holder)
	waitLeaseHolder(t, ns, name, holder)
	waiter := makeLR(ns, "waiter").path("handoff").pull(2).notice(lockingv1alpha1.GrantNoticeLeaseOnly).create(t)
	eventually(t, "the operator queues the waiter", func() error {
		mu.Lock()
		defer mu.Unlock()
		if !queued[waiter.Name] {
			return fmt.Errorf("not queued yet")
		}
		return nil
	})
	deleteObj(t, holder)
	waitLeaseHolder(t, ns, name, waiter)
	if got, err := getLR(ns, waiter.Name); err != nil {
		t.Fatal(err)
	} else if len(got.Status.Conditions) != 0 {
		t.Errorf("the new holder shows conditions %v, want none written within the interval", got.Status.Conditions)
	}

	log.mu.Lock()
	defer log.mu.Unlock()
	want := map[string]int{"create leases": 1, "update leases": 1}
	if diff := cmp.Diff(want, log.writes); diff != "" {
		t.Errorf("the operator's writes for a hold, a wait and a hand-off all shorter than the interval (-want +got):\n%s\nin order: %v", diff, log.calls)
	}
}

// TestAGrantByCompareAndSwapLeavesTheLeaseWithoutFieldOwnership: the operator's
// compare-and-swaps clear the Lease's managedFields (see leasebackend's
// untrackedFields), so that the API server tracks no field ownership on the
// grant's write; the create still records the operator's, and the hand-off after
// the clearing is as exclusive and as fenced as the one before it.
func TestAGrantByCompareAndSwapLeavesTheLeaseWithoutFieldOwnership(t *testing.T) {
	ns := isolatedNamespace(t)
	startIsolatedOperator(t, ns, clock.RealClock{}, orchestrator.DefaultConfig())

	first := makeLR(ns, "first").path("owned").pull(1).notice(lockingv1alpha1.GrantNoticeLease).create(t)
	name := lockNameOf(first)
	waitLeaseHolder(t, ns, name, first)
	created, err := getLease(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(created.ManagedFields) != 1 || created.ManagedFields[0].Manager != lockingv1alpha1.FieldManager {
		t.Fatalf("the created Lease's managedFields are %+v, want the operator's one entry", created.ManagedFields)
	}

	tokens := []string{created.ResourceVersion}
	holder := first
	for i := 2; i <= 3; i++ {
		// Told Queued at once (as TryLock's are), so that the hand-off is a
		// compare-and-swap of the held Lease, not a release and a new Lease.
		next := makeLR(ns, fmt.Sprintf("next-%d", i)).path("owned").pull(int32(i)).notice(lockingv1alpha1.GrantNoticeLease).create(t)
		waitQueued(t, ns, next.Name, 1)
		deleteObj(t, holder)
		waitLeaseHolder(t, ns, name, next)
		lease, err := getLease(ns, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(lease.ManagedFields) != 0 {
			t.Errorf("after hand-off %d the Lease's managedFields are %+v, want none", i-1, lease.ManagedFields)
		}
		if !leasebackend.Newer(lease.ResourceVersion, tokens[len(tokens)-1]) {
			t.Errorf("hand-off %d: fencing token %s after %v, want it later", i-1, lease.ResourceVersion, tokens)
		}
		tokens = append(tokens, lease.ResourceVersion)
		holder = next
	}
}

// TestABlockingLockWaitIsShownAfterTheInterval: a wait of a blocking lock that
// lasts gets its Queued status, with its position, once it has lasted
// status_update_interval, and keeps its place ahead of a try-lock that came after
// it and was told at once.
func TestABlockingLockWaitIsShownAfterTheInterval(t *testing.T) {
	ns := isolatedNamespace(t)
	startIsolatedOperator(t, ns, clock.RealClock{}, orchestrator.DefaultConfig(),
		func(c *config.Config) { c.StatusUpdateInterval = 300 * time.Millisecond })

	holder := makeLR(ns, "holder").path("lasting").pull(1).create(t)
	waitAcquired(t, ns, holder.Name)
	blocking := makeLR(ns, "blocking").path("lasting").pull(2).notice(lockingv1alpha1.GrantNoticeLeaseOnly).create(t)
	// Nothing but the time passing wakes the key: the decision that queued it
	// asked to be woken when the interval is over.
	shown := waitQueued(t, ns, blocking.Name, 1)
	try := makeLR(ns, "try").path("lasting").pull(3).notice(lockingv1alpha1.GrantNoticeLease).create(t)
	waitQueued(t, ns, try.Name, 2)
	if shown.Status.EnqueuedTime == nil || shown.Status.EnqueuedTime.Time.Before(holder.CreationTimestamp.Time) {
		t.Errorf("the blocking lock's enqueuedTime is %v, want one after the holder's creation %v", shown.Status.EnqueuedTime, holder.CreationTimestamp)
	}
	deleteObj(t, holder)
	waitLeaseHolder(t, ns, lockNameOf(holder), blocking)
}

// TestALeaseNoticeGrantIsShownAfterTheInterval: a hold learned from the Lease that
// lasts gets its Acquired status once it has lasted status_update_interval, with the
// fencing token of the Lease write that granted it and that write's time.
func TestALeaseNoticeGrantIsShownAfterTheInterval(t *testing.T) {
	ns := isolatedNamespace(t)
	startIsolatedOperator(t, ns, clock.RealClock{}, orchestrator.DefaultConfig(),
		func(c *config.Config) { c.StatusUpdateInterval = 300 * time.Millisecond })

	lr := makeLR(ns, "lasting").path("lasting").obj()
	lr.Annotations = map[string]string{lockingv1alpha1.GrantNoticeAnnotation: lockingv1alpha1.GrantNoticeLease}
	if err := k8s.Create(context.Background(), lr); err != nil {
		t.Fatal(err)
	}
	name := lockNameOf(lr)
	waitLeaseHolder(t, ns, name, lr)
	lease, err := getLease(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing but the time passing wakes the key: the grant's reconcile asked to be
	// woken when the interval is over.
	got := waitAcquired(t, ns, lr.Name)
	if got.Status.FencingToken != lease.ResourceVersion {
		t.Errorf("status fencing token %q, want %q: the Lease write that granted it", got.Status.FencingToken, lease.ResourceVersion)
	}
	if got.Status.AcquiredTime == nil || lease.Spec.AcquireTime == nil ||
		!got.Status.AcquiredTime.Time.Equal(lease.Spec.AcquireTime.Truncate(time.Second)) {
		t.Errorf("status acquiredTime %v, want the Lease's acquireTime %v (to the second)", got.Status.AcquiredTime, lease.Spec.AcquireTime)
	}
}

// TestProjectLockShowsLastingHoldsAndQueues: the ProjectLock, which a short hold
// or wait never gets, is created for a hold or a wait once it has lasted
// project_lock_delay; it goes when the key is idle.
func TestProjectLockShowsLastingHoldsAndQueues(t *testing.T) {
	ns := isolatedNamespace(t)
	startIsolatedOperator(t, ns, clock.RealClock{}, orchestrator.DefaultConfig(),
		func(c *config.Config) { c.ProjectLockDelay = 200 * time.Millisecond })

	lasting := makeLR(ns, "lasting").path("lasting").pull(1).create(t)
	lasting = waitAcquired(t, ns, lasting.Name)
	// Nothing but the time passing wakes the key: the grant's reconcile asked to be
	// woken at the hold's age of project_lock_delay.
	waitPL(t, ns, lockNameOf(lasting), plHeldBy(lasting.Name))

	// A queue that lasts is shown with its waiters.
	queued := makeLR(ns, "queued").path("lasting").pull(2).create(t)
	waitQueued(t, ns, queued.Name, 1)
	waitPL(t, ns, lockNameOf(lasting), plHeldBy(lasting.Name, queued.Name))

	// A second key, decided by an operator that would wait an hour: neither the
	// hold nor the wait, nor the hand-off between them, makes a ProjectLock.
	ns2 := isolatedNamespace(t)
	startIsolatedOperator(t, ns2, clock.RealClock{}, orchestrator.DefaultConfig(),
		func(c *config.Config) { c.ProjectLockDelay = time.Hour })
	holder := makeLR(ns2, "holder").path("queued").pull(1).create(t)
	holder = waitAcquired(t, ns2, holder.Name)
	waiter := makeLR(ns2, "waiter").path("queued").pull(2).create(t)
	waitQueued(t, ns2, waiter.Name, 1)
	deleteObj(t, holder)
	waitAcquired(t, ns2, waiter.Name)
	name := lockNameOf(holder)
	// The decision that granted the waiter came after the one that queued it: a
	// ProjectLock made for the queue would be there now.
	if _, err := getPL(ns2, name); !apierrors.IsNotFound(err) {
		t.Errorf("a hold and a wait younger than project_lock_delay have a ProjectLock (err %v)", err)
	}
	deleteObj(t, waiter)

	// Idle again: the lasting key's ProjectLock goes with its last request.
	deleteObj(t, lasting)
	waitAcquired(t, ns, queued.Name)
	deleteObj(t, queued)
	waitGone(t, "ProjectLock "+lockNameOf(lasting), func() error { _, err := getPL(ns, lockNameOf(lasting)); return err })
}
