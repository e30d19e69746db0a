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
	rec := apicalls.NewRecorder(clock.RealClock{})
	var mu sync.Mutex
	writes, reads := map[string]int{}, map[string]int{}
	var calls []string
	rec.AddObserver(apicalls.ObserverFunc(func(c apicalls.Call) {
		switch c.Verb {
		case "create", "update", "patch", "delete":
			mu.Lock()
			writes[c.String()]++
			calls = append(calls, fmt.Sprintf("%s %d", c, c.Code))
			mu.Unlock()
		case "get":
			mu.Lock()
			reads[c.String()]++
			mu.Unlock()
		}
	}))
	restCfg := rest.CopyConfig(env.Config)
	restCfg.Wrap(rec.Wrap)
	ocfg := orchestrator.DefaultConfig()
	if leaseNotice {
		// No hold here may outlast it, however slow the machine.
		ocfg.GrantStatusDelay = time.Hour
	}
	startIsolatedOperatorOn(t, restCfg, ns, clock.RealClock{}, ocfg,
		func(c *config.Config) { c.ProjectLockDelay = time.Hour })

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
	return maps.Clone(writes), slices.Clone(calls)
}

// TestALeaseNoticeGrantIsShownAfterTheInterval: a hold learned from the Lease that
// lasts gets its Acquired status once it has lasted status_update_interval, with the
// fencing token of the Lease write that granted it and that write's time.
func TestALeaseNoticeGrantIsShownAfterTheInterval(t *testing.T) {
	ns := isolatedNamespace(t)
	ocfg := orchestrator.DefaultConfig()
	ocfg.GrantStatusDelay = 300 * time.Millisecond
	startIsolatedOperator(t, ns, clock.RealClock{}, ocfg)

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
