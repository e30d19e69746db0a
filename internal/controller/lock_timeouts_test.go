package controller_test

// Queue timeouts and ttl expiry, on a manager of their own with a fake clock. The
// work queue's RequeueAfter runs on a real timer that never reaches the fake
// deadline, so each test steps the clock and then wakes the key, as the deadlock
// detector does. Before each deadline a new waiter acts as a barrier: its status
// proves that a decision was made at the stepped time without ending the request
// under test.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// fakeClockOperator starts an isolated operator on a fake clock that starts on a
// whole second (status times keep whole seconds).
func fakeClockOperator(t *testing.T, ns string) (*runningOperator, *testingclock.FakeClock) {
	t.Helper()
	fc := testingclock.NewFakeClock(time.Now().Truncate(time.Second))
	op := startIsolatedOperator(t, ns, fc, orchestrator.Config{
		DefaultQueueTimeout:   orchestrator.NoQueueTimeout,
		MaxQueueLength:        10,
		DeadlockCheckInterval: time.Hour,
	}, func(c *config.Config) {
		// The ProjectLock with the first grant, the Lease gone with the release and
		// every status change written at once: on a fake clock, a hold's age, a
		// retention and an interval only grow when the test steps it.
		c.ProjectLockDelay, c.IdleLeaseRetention, c.StatusUpdateInterval = 0, 0, 0
	})
	return op, fc
}

func checkExpiresAt(lr *lockingv1alpha1.LockRequest, want time.Time) error {
	if lr.Status.ExpiresTime == nil || !lr.Status.ExpiresTime.Time.Equal(want) {
		return fmt.Errorf("%s: expiresTime %v, want %v", lr.Name, lr.Status.ExpiresTime, want.UTC())
	}
	return nil
}

// 6a. A waiter whose queueTimeout passes ends with QueueTimeout, leaves the queue,
// and is never granted afterwards.
func TestQueueTimeout(t *testing.T) {
	ns := isolatedNamespace(t)
	op, fc := fakeClockOperator(t, ns)
	t0 := fc.Now()

	holder := makeLR(ns, "holder").pull(1).create(t)
	waitHeld(t, ns, holder.Name)
	name := lockNameOf(holder)
	history := watchRequest(t, ns, "impatient")
	makeLR(ns, "impatient").pull(2).queueTimeout("10m").create(t)
	imp := waitQueued(t, ns, "impatient", 1)
	if imp.Status.EnqueuedTime == nil || !imp.Status.EnqueuedTime.Time.Equal(t0) {
		t.Fatalf("enqueuedTime %v, want the fake clock's %v", imp.Status.EnqueuedTime, t0)
	}
	makeLR(ns, "patient").pull(3).create(t)
	waitQueued(t, ns, "patient", 2)
	waitPL(t, ns, name, plHeldBy(holder.Name, "impatient", "patient"))

	// One second before the deadline the request still waits.
	fc.Step(10*time.Minute - time.Second)
	makeLR(ns, "barrier").pull(4).create(t)
	waitQueued(t, ns, "barrier", 3)
	if err := checkQueued(mustGetLR(t, ns, "impatient"), 1); err != nil {
		t.Fatalf("timed out early: %v", err)
	}

	fc.Step(time.Second)
	op.wakeLock(ns, name)
	got := waitEnded(t, ns, "impatient", lockingv1alpha1.ReasonQueueTimeout)
	if got.Status.Position != 0 || got.Status.BlockedBy != nil {
		t.Errorf("timed-out request still shows a place in the queue: position %d blockedBy %+v", got.Status.Position, got.Status.BlockedBy)
	}
	waitQueued(t, ns, "patient", 1)
	waitQueued(t, ns, "barrier", 2)
	waitPL(t, ns, name, plHeldBy(holder.Name, "patient", "barrier"))

	// Terminal: when the lock moves on, the timed-out request is passed over.
	deleteObj(t, holder)
	waitHeld(t, ns, "patient")
	waitQueued(t, ns, "barrier", 1)
	if err := checkEnded(mustGetLR(t, ns, "impatient"), lockingv1alpha1.ReasonQueueTimeout); err != nil {
		t.Error(err)
	}
	if v := history.acquiredEver(); v != nil {
		t.Errorf("the timed-out request was Acquired at some point (history %v)", history.reasonsSeen())
	}
	if v := history.changedAfterEnd(); v != nil {
		t.Errorf("the timed-out request changed after it ended: %+v (history %v)", v.Status, history.reasonsSeen())
	}
}

// 6b. A hold with a ttl that is not renewed ends with Expired, and the next waiter
// is served.
func TestTTLExpiryHandsOff(t *testing.T) {
	ns := isolatedNamespace(t)
	op, fc := fakeClockOperator(t, ns)
	t0 := fc.Now()

	holder := makeLR(ns, "holder").pull(1).ttl("1m").create(t)
	holder = waitHeld(t, ns, holder.Name)
	if err := checkExpiresAt(holder, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	name := lockNameOf(holder)
	lease, err := getLease(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.LeaseDurationSeconds == nil || *lease.Spec.LeaseDurationSeconds != 60 {
		t.Errorf("Lease leaseDurationSeconds %v, want 60", lease.Spec.LeaseDurationSeconds)
	}
	pl := waitPL(t, ns, name, plHeldBy(holder.Name))
	if pl.Status.Holder.ExpiresTime == nil || !pl.Status.Holder.ExpiresTime.Time.Equal(t0.Add(time.Minute)) {
		t.Errorf("ProjectLock holder expiresTime %v, want %v", pl.Status.Holder.ExpiresTime, t0.Add(time.Minute))
	}
	makeLR(ns, "waiter").pull(2).create(t)
	waitQueued(t, ns, "waiter", 1)

	fc.Step(time.Minute - time.Second)
	makeLR(ns, "barrier").pull(3).create(t)
	waitQueued(t, ns, "barrier", 2)
	if err := checkAcquired(mustGetLR(t, ns, holder.Name)); err != nil {
		t.Fatalf("expired early: %v", err)
	}

	fc.Step(time.Second)
	op.wakeLock(ns, name)
	waitEnded(t, ns, holder.Name, lockingv1alpha1.ReasonExpired)
	next := waitHeld(t, ns, "waiter")
	if fencingToken(t, next) <= fencingToken(t, holder) {
		t.Errorf("fencing token %s after expiry is not greater than %s", next.Status.FencingToken, holder.Status.FencingToken)
	}
	waitQueued(t, ns, "barrier", 1)
	waitPL(t, ns, name, plHeldBy("waiter", "barrier"))
	eventually(t, "the Lease names the new holder", func() error {
		l, err := getLease(ns, name)
		if err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != holderID(next) {
			return fmt.Errorf("holderIdentity %v", l.Spec.HolderIdentity)
		}
		if l.Spec.LeaseDurationSeconds != nil {
			return fmt.Errorf("leaseDurationSeconds %d for a holder without ttl", *l.Spec.LeaseDurationSeconds)
		}
		return nil
	})
}

// 6b'. A holder that keeps moving spec.renewTime keeps the lock past its first
// expiry; each renewal moves status.expiresTime to ttl after it was observed.
func TestTTLRenewalKeepsHold(t *testing.T) {
	ns := isolatedNamespace(t)
	op, fc := fakeClockOperator(t, ns)
	t0 := fc.Now()

	holder := makeLR(ns, "holder").pull(1).ttl("1m").create(t)
	holder = waitHeld(t, ns, holder.Name)
	if err := checkExpiresAt(holder, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	name := lockNameOf(holder)

	renew := func() metav1.MicroTime {
		t.Helper()
		lr := mustGetLR(t, ns, holder.Name)
		rt := metav1.NewMicroTime(fc.Now())
		lr.Spec.RenewTime = &rt
		if err := k8s.Update(context.Background(), lr); err != nil {
			t.Fatalf("renewing: %v", err)
		}
		return rt
	}
	waitRenewed := func(rt metav1.MicroTime, expires time.Time) {
		t.Helper()
		lr := waitLR(t, ns, holder.Name, func(lr *lockingv1alpha1.LockRequest) error {
			if err := checkAcquired(lr); err != nil {
				return err
			}
			if lr.Status.ObservedRenewTime == nil || !lr.Status.ObservedRenewTime.Equal(&rt) {
				return fmt.Errorf("observedRenewTime %v, want %v", lr.Status.ObservedRenewTime, rt)
			}
			return checkExpiresAt(lr, expires)
		})
		if lr.Status.FencingToken != holder.Status.FencingToken {
			t.Errorf("a renewal changed the fencing token %s → %s", holder.Status.FencingToken, lr.Status.FencingToken)
		}
		if c := meta.FindStatusCondition(lr.Status.Conditions, lockingv1alpha1.ConditionAcquired); c.ObservedGeneration != lr.Generation {
			t.Errorf("Acquired observedGeneration %d after a renewal, generation %d", c.ObservedGeneration, lr.Generation)
		}
	}

	// Renew 50s in: the hold now runs to 1m50s.
	fc.Step(50 * time.Second)
	rt := renew()
	waitRenewed(rt, t0.Add(110*time.Second))
	eventually(t, "the Lease's renewTime follows the renewal", func() error {
		l, err := getLease(ns, name)
		if err != nil {
			return err
		}
		if l.Spec.RenewTime == nil || !l.Spec.RenewTime.Equal(&rt) {
			return fmt.Errorf("Lease renewTime %v, want %v", l.Spec.RenewTime, rt)
		}
		return nil
	})

	// 1m10s in, past the first expiry, a decision keeps the hold.
	fc.Step(20 * time.Second)
	makeLR(ns, "waiter").pull(2).create(t)
	w := waitQueued(t, ns, "waiter", 1)
	if err := checkBlockedBy(w, holder); err != nil {
		t.Error(err)
	}
	if err := checkAcquired(mustGetLR(t, ns, holder.Name)); err != nil {
		t.Fatalf("expired although renewed: %v", err)
	}

	// Renew again 1m40s in: the hold runs to 2m40s.
	fc.Step(30 * time.Second)
	rt = renew()
	waitRenewed(rt, t0.Add(160*time.Second))

	// 2m39s in it still holds; at 2m40s, not renewed again, it expires.
	fc.Step(59 * time.Second)
	makeLR(ns, "barrier").pull(3).create(t)
	waitQueued(t, ns, "barrier", 2)
	if err := checkAcquired(mustGetLR(t, ns, holder.Name)); err != nil {
		t.Fatalf("expired early: %v", err)
	}
	fc.Step(time.Second)
	op.wakeLock(ns, name)
	waitEnded(t, ns, holder.Name, lockingv1alpha1.ReasonExpired)
	waitHeld(t, ns, "waiter")
	waitPL(t, ns, name, plHeldBy("waiter", "barrier"))
}
