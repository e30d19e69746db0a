package controller_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// 1. A request for a free key is granted: conditions, lock key and name, the
// ProjectLock, the Lease and its fencing token, the finalizer.
func TestGrantFreeKey(t *testing.T) {
	ns := newNamespace(t)
	created := makeLR(ns, "infra-vpc-pr42").repo("acme/infra").path("modules/vpc").pull(42).user("alice").create(t)
	name := lockNameOf(created)

	lr := waitHeld(t, ns, created.Name)

	if got, want := lr.Status.LockKey, "acme/infra/modules/vpc/default/"; got != want {
		t.Errorf("status.lockKey = %q, want %q", got, want)
	}
	if lr.Status.LockName != name {
		t.Errorf("status.lockName = %q, want %q", lr.Status.LockName, name)
	}
	if got, want := lr.Status.Owner, "acme/infra#42"; got != want {
		t.Errorf("status.owner = %q, want %q", got, want)
	}
	if lr.Status.AcquiredTime == nil {
		t.Error("status.acquiredTime is not set")
	}
	if lr.Status.ExpiresTime != nil {
		t.Errorf("status.expiresTime = %v for a hold without ttl", lr.Status.ExpiresTime)
	}
	if lr.Status.ObservedGeneration != lr.Generation {
		t.Errorf("status.observedGeneration = %d, want %d", lr.Status.ObservedGeneration, lr.Generation)
	}
	for _, typ := range []string{lockingv1alpha1.ConditionAcquired, lockingv1alpha1.ConditionQueued} {
		c := meta.FindStatusCondition(lr.Status.Conditions, typ)
		if c.ObservedGeneration != lr.Generation {
			t.Errorf("condition %s observedGeneration = %d, want %d", typ, c.ObservedGeneration, lr.Generation)
		}
		if c.Message == "" || c.LastTransitionTime.IsZero() {
			t.Errorf("condition %s lacks a message or transition time: %+v", typ, c)
		}
	}
	token := fencingToken(t, lr)

	pl := waitPL(t, ns, name, plHeldBy(lr.Name))
	if pl.Status.Holder.Owner != "acme/infra#42" || pl.Status.Holder.User != "alice" ||
		pl.Status.Holder.Pull == nil || pl.Status.Holder.Pull.Number != 42 {
		t.Errorf("ProjectLock holder = %+v, want pull 42 of alice", pl.Status.Holder)
	}
	if pl.Status.Holder.FencingToken != lr.Status.FencingToken {
		t.Errorf("ProjectLock holder fencing token %q, the request's %q", pl.Status.Holder.FencingToken, lr.Status.FencingToken)
	}
	if pl.Status.LockKey != lr.Status.LockKey || pl.Status.LeaseName != name {
		t.Errorf("ProjectLock lockKey %q leaseName %q, want %q and %q", pl.Status.LockKey, pl.Status.LeaseName, lr.Status.LockKey, name)
	}
	if pl.Spec.Project.Repository != "acme/infra" || pl.Spec.Project.Path != "modules/vpc" || pl.Spec.Workspace != "default" {
		t.Errorf("ProjectLock spec = %+v", pl.Spec)
	}
	if !controllerutil.ContainsFinalizer(pl, lockingv1alpha1.ReleaseFinalizer) {
		t.Errorf("ProjectLock finalizers %v lack %s", pl.Finalizers, lockingv1alpha1.ReleaseFinalizer)
	}

	lease, err := getLease(ns, name)
	if err != nil {
		t.Fatalf("reading the Lease: %v", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != holderID(lr) {
		t.Errorf("Lease holderIdentity = %v, want %q", lease.Spec.HolderIdentity, holderID(lr))
	}
	if lease.Spec.AcquireTime == nil || lease.Spec.RenewTime == nil {
		t.Errorf("Lease acquireTime %v renewTime %v, want both set", lease.Spec.AcquireTime, lease.Spec.RenewTime)
	}
	if lease.Spec.LeaseDurationSeconds != nil {
		t.Errorf("Lease leaseDurationSeconds = %d for a hold without ttl", *lease.Spec.LeaseDurationSeconds)
	}
	if lease.Labels[lockingv1alpha1.LockNameLabel] != name {
		t.Errorf("Lease labels %v lack %s=%s", lease.Labels, lockingv1alpha1.LockNameLabel, name)
	}
	// Nothing rewrote the Lease since the grant: its resourceVersion is the token.
	if parseToken(t, "Lease resourceVersion", lease.ResourceVersion) != token {
		t.Errorf("fencing token %d, but the Lease's resourceVersion is %s", token, lease.ResourceVersion)
	}
}

// 2. Requests of the same pull are re-entrant; the lock stays with the pull until
// its last request goes.
func TestReentrantSamePull(t *testing.T) {
	ns := newNamespace(t)
	first := makeLR(ns, "pr42-plan-a").pull(42).user("alice").create(t)
	waitHeld(t, ns, first.Name)
	name := lockNameOf(first)

	second := makeLR(ns, "pr42-plan-b").pull(42).user("alice").create(t)
	second = waitHeld(t, ns, second.Name)
	fencingToken(t, second)

	waiter := makeLR(ns, "pr7").pull(7).user("bob").create(t)
	w := waitQueued(t, ns, waiter.Name, 1)
	if w.Status.BlockedBy == nil || w.Status.BlockedBy.Owner != "acme/infra#42" || w.Status.BlockedBy.Pull != 42 {
		t.Errorf("waiter blockedBy = %+v, want pull 42", w.Status.BlockedBy)
	}

	deleteObj(t, first)
	waitLRGone(t, ns, first.Name)
	waitLeaseHolder(t, ns, name, second)
	waitLR(t, ns, waiter.Name, func(lr *lockingv1alpha1.LockRequest) error {
		if err := checkQueued(lr, 1); err != nil {
			return err
		}
		return checkBlockedBy(lr, second)
	})
	if err := checkAcquired(mustGetLR(t, ns, second.Name)); err != nil {
		t.Errorf("the remaining request lost the lock: %v", err)
	}
	waitPL(t, ns, name, plHeldBy(second.Name, waiter.Name))

	deleteObj(t, second)
	w = waitHeld(t, ns, waiter.Name)
	if fencingToken(t, w) <= fencingToken(t, second) {
		t.Errorf("waiter's fencing token %s is not greater than %s", w.Status.FencingToken, second.Status.FencingToken)
	}
	waitPL(t, ns, name, plHeldBy(waiter.Name))
}

// 3. Waiters queue by priority, then enqueue time; positions and blockedBy stay
// current when the lock moves on. The shared manager allows only 3 waiters, so
// this test runs a manager of its own with room for more.
func TestQueueOrderAndPositions(t *testing.T) {
	ns := isolatedNamespace(t)
	startIsolatedOperator(t, ns, clock.RealClock{}, orchestrator.Config{
		DefaultQueueTimeout:   orchestrator.NoQueueTimeout,
		MaxQueueLength:        10,
		DeadlockCheckInterval: time.Second,
	})

	holder := makeLR(ns, "holder").pull(1).user("alice").create(t)
	waitHeld(t, ns, holder.Name)
	name := lockNameOf(holder)

	// One after another, each queued before the next arrives.
	waiters := []struct {
		name, prio string
		pull       int32
	}{
		{"low", "Low", 2},
		{"normal", "Normal", 3},
		{"high", "High", 4},
		{"critical", "Critical", 5},
		{"normal-later", "Normal", 6},
	}
	for _, w := range waiters {
		makeLR(ns, w.name).pull(w.pull).user("user-" + w.name).prio(w.prio).create(t)
		waitQueued(t, ns, w.name, 0)
	}

	order := []string{"critical", "high", "normal", "normal-later", "low"}
	for i, n := range order {
		lr := waitQueued(t, ns, n, int32(i+1))
		if err := checkBlockedBy(lr, holder); err != nil {
			t.Error(err)
		}
		if lr.Status.EnqueuedTime == nil {
			t.Errorf("%s: no enqueuedTime", n)
		}
	}
	pl := waitPL(t, ns, name, plHeldBy(holder.Name, order...))
	for _, e := range pl.Status.Queue {
		if e.Request == "critical" && (e.Priority != lockingv1alpha1.PriorityCritical || e.Pull != 5 || e.User != "user-critical") {
			t.Errorf("ProjectLock queue entry %+v", e)
		}
	}

	deleteObj(t, holder)
	critical := waitHeld(t, ns, "critical")
	for i, n := range order[1:] {
		waitLR(t, ns, n, func(lr *lockingv1alpha1.LockRequest) error {
			if err := checkQueued(lr, int32(i+1)); err != nil {
				return err
			}
			return checkBlockedBy(lr, critical)
		})
	}
	waitPL(t, ns, name, plHeldBy("critical", order[1:]...))
}

// 4. queueTimeout 0s on a held key fails at once with Conflict, and touches
// nobody else.
func TestFailFastConflict(t *testing.T) {
	ns := newNamespace(t)
	holder := makeLR(ns, "holder").pull(1).user("alice").create(t)
	holder = waitHeld(t, ns, holder.Name)
	waiter := makeLR(ns, "waiter").pull(2).user("bob").create(t)
	waiter = waitQueued(t, ns, waiter.Name, 1)
	name := lockNameOf(holder)
	pl := waitPL(t, ns, name, plHeldBy(holder.Name, waiter.Name))
	lease, err := getLease(ns, name)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	tryLock := makeLR(ns, "trylock").pull(3).user("carol").queueTimeout("0s").create(t)
	got := waitEnded(t, ns, tryLock.Name, lockingv1alpha1.ReasonConflict)
	t.Logf("Conflict reported %v after creation", time.Since(start).Round(time.Millisecond))
	if got.Status.Position != 0 || got.Status.FencingToken != "" || got.Status.AcquiredTime != nil {
		t.Errorf("Conflict request status %+v", got.Status)
	}
	if err := checkBlockedBy(got, holder); err != nil {
		t.Errorf("Conflict should name who holds: %v", err)
	}
	if controllerutil.ContainsFinalizer(got, lockingv1alpha1.ReleaseFinalizer) {
		t.Error("a request that never held got the release finalizer")
	}

	// The holder, the waiter, the ProjectLock and the Lease were not written.
	if h := mustGetLR(t, ns, holder.Name); h.ResourceVersion != holder.ResourceVersion {
		t.Errorf("holder was written (resourceVersion %s → %s): %+v", holder.ResourceVersion, h.ResourceVersion, h.Status)
	}
	if w := mustGetLR(t, ns, waiter.Name); w.ResourceVersion != waiter.ResourceVersion {
		t.Errorf("waiter was written (resourceVersion %s → %s): %+v", waiter.ResourceVersion, w.ResourceVersion, w.Status)
	}
	if p, err := getPL(ns, name); err != nil || p.ResourceVersion != pl.ResourceVersion {
		t.Errorf("ProjectLock was written (resourceVersion %s → %v, %v)", pl.ResourceVersion, p.ResourceVersion, err)
	}
	if l, err := getLease(ns, name); err != nil || l.ResourceVersion != lease.ResourceVersion {
		t.Errorf("Lease was written (resourceVersion %s → %v, %v)", lease.ResourceVersion, l.ResourceVersion, err)
	}
}

// 5. Deleting the holder hands the lock to the next waiter with a greater fencing
// token, and the deleted request goes once its finalizer is removed.
func TestHandOffOnDelete(t *testing.T) {
	ns := newNamespace(t)
	holder := makeLR(ns, "holder").pull(1).user("alice").create(t)
	holder = waitHeld(t, ns, holder.Name)
	waiter := makeLR(ns, "waiter").pull(2).user("bob").create(t)
	waitQueued(t, ns, waiter.Name, 1)
	name := lockNameOf(holder)
	before, err := getLease(ns, name)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	deleteObj(t, holder)
	next := waitAcquired(t, ns, waiter.Name)
	t.Logf("hand-off observed %v after the delete", time.Since(start).Round(time.Millisecond))
	if old, cur := fencingToken(t, holder), fencingToken(t, next); cur <= old {
		t.Errorf("fencing token after the hand-off %d is not greater than the previous holder's %d", cur, old)
	}
	waitLRGone(t, ns, holder.Name)
	waitHeld(t, ns, waiter.Name)
	waitPL(t, ns, name, plHeldBy(waiter.Name))
	lease, err := getLease(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != holderID(next) {
		t.Errorf("Lease holderIdentity %v, want %s", lease.Spec.HolderIdentity, holderID(next))
	}
	if before.Spec.LeaseTransitions == nil || lease.Spec.LeaseTransitions == nil ||
		*lease.Spec.LeaseTransitions != *before.Spec.LeaseTransitions+1 {
		t.Errorf("Lease leaseTransitions %v → %v, want one more", before.Spec.LeaseTransitions, lease.Spec.LeaseTransitions)
	}
}

// 6c. With MaxQueueLength 3, a fourth waiter is refused with QueueFull.
func TestQueueFull(t *testing.T) {
	ns := newNamespace(t)
	holder := makeLR(ns, "holder").pull(1).create(t)
	waitHeld(t, ns, holder.Name)
	for i := range mainMaxQueueLength {
		n := fmt.Sprintf("waiter-%d", i+1)
		makeLR(ns, n).pull(int32(i + 2)).create(t)
		waitQueued(t, ns, n, int32(i+1))
	}
	extra := makeLR(ns, "one-too-many").pull(99).prio("Critical").create(t)
	got := waitEnded(t, ns, extra.Name, lockingv1alpha1.ReasonQueueFull)
	if got.Status.Position != 0 {
		t.Errorf("QueueFull request has position %d", got.Status.Position)
	}
	pl := waitPL(t, ns, lockNameOf(holder), plHeldBy(holder.Name, "waiter-1", "waiter-2", "waiter-3"))
	if pl.Status.QueueLength != mainMaxQueueLength {
		t.Errorf("queueLength %d, want %d", pl.Status.QueueLength, mainMaxQueueLength)
	}

	// A slot that frees up does not revive the refused request.
	deleteObj(t, holder)
	waitHeld(t, ns, "waiter-1")
	waitQueued(t, ns, "waiter-3", 2)
	if err := checkEnded(mustGetLR(t, ns, extra.Name), lockingv1alpha1.ReasonQueueFull); err != nil {
		t.Error(err)
	}
}

// 7. Deleting a held ProjectLock force-unlocks: the holder is Revoked, the next
// waiter served, a fresh ProjectLock shows it; once every request is gone, so are
// the ProjectLock and the Lease.
func TestForceUnlock(t *testing.T) {
	ns := newNamespace(t)
	holder := makeLR(ns, "holder").pull(1).user("alice").create(t)
	holder = waitHeld(t, ns, holder.Name)
	waiter := makeLR(ns, "waiter").pull(2).user("bob").create(t)
	waitQueued(t, ns, waiter.Name, 1)
	name := lockNameOf(holder)
	old := waitPL(t, ns, name, plHeldBy(holder.Name, waiter.Name))
	history := watchRequest(t, ns, holder.Name)

	deleteObj(t, old) // kubectl delete projectlock NAME

	revoked := waitEnded(t, ns, holder.Name, lockingv1alpha1.ReasonRevoked)
	next := waitHeld(t, ns, waiter.Name)
	if fencingToken(t, next) <= fencingToken(t, holder) {
		t.Errorf("new holder's fencing token %s is not greater than the revoked one's %s",
			next.Status.FencingToken, holder.Status.FencingToken)
	}
	fresh := waitPL(t, ns, name, func(pl *lockingv1alpha1.ProjectLock) error {
		if pl.UID == old.UID {
			return fmt.Errorf("still the force-unlocked ProjectLock (deletionTimestamp %v)", pl.DeletionTimestamp)
		}
		return plHeldBy(waiter.Name)(pl)
	})
	if fresh.DeletionTimestamp != nil {
		t.Errorf("the fresh ProjectLock is being deleted")
	}
	waitLeaseHolder(t, ns, name, next)

	// Revoked is terminal: later decisions about the key keep it False.
	deleteObj(t, next)
	waitLRGone(t, ns, next.Name)
	waitGone(t, "ProjectLock", func() error { _, err := getPL(ns, name); return err })
	if err := checkEnded(mustGetLR(t, ns, revoked.Name), lockingv1alpha1.ReasonRevoked); err != nil {
		t.Error(err)
	}
	if v := history.changedAfterEnd(); v != nil {
		t.Errorf("the revoked request changed after it ended: %+v (history %v)", v.Status, history.reasonsSeen())
	}

	// Every request of the key gone: so are the ProjectLock and the Lease.
	deleteObj(t, revoked)
	waitLRGone(t, ns, revoked.Name)
	waitGone(t, "ProjectLock", func() error { _, err := getPL(ns, name); return err })
	waitGone(t, "Lease", func() error { _, err := getLease(ns, name); return err })
}

// Deleting every request of a held key with waiters removes the ProjectLock and
// the Lease.
func TestReleaseAllRemovesLockObjects(t *testing.T) {
	ns := newNamespace(t)
	holder := makeLR(ns, "holder").pull(1).create(t)
	waitHeld(t, ns, holder.Name)
	makeLR(ns, "waiter").pull(2).create(t)
	waitQueued(t, ns, "waiter", 1)
	name := lockNameOf(holder)
	if _, err := getLease(ns, name); err != nil {
		t.Fatal(err)
	}
	if err := k8s.DeleteAllOf(context.Background(), &lockingv1alpha1.LockRequest{}, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	waitLRGone(t, ns, holder.Name)
	waitLRGone(t, ns, "waiter")
	waitGone(t, "ProjectLock", func() error { _, err := getPL(ns, name); return err })
	waitGone(t, "Lease", func() error { _, err := getLease(ns, name); return err })
}

// Terminal reasons never flip back: a Conflict request is not granted when the
// holder goes, nor when the key becomes free.
func TestTerminalReasonIsFinal(t *testing.T) {
	ns := newNamespace(t)
	holder := makeLR(ns, "holder").pull(1).create(t)
	waitHeld(t, ns, holder.Name)
	waiter := makeLR(ns, "waiter").pull(2).create(t)
	waitQueued(t, ns, waiter.Name, 1)
	history := watchRequest(t, ns, "trylock")
	makeLR(ns, "trylock").pull(3).queueTimeout("0s").create(t)
	waitEnded(t, ns, "trylock", lockingv1alpha1.ReasonConflict)
	name := lockNameOf(holder)

	deleteObj(t, holder)
	waitHeld(t, ns, waiter.Name) // a decision about the key after the holder left
	if err := checkEnded(mustGetLR(t, ns, "trylock"), lockingv1alpha1.ReasonConflict); err != nil {
		t.Error(err)
	}
	deleteObj(t, waiter)
	waitGone(t, "ProjectLock", func() error { _, err := getPL(ns, name); return err })
	waitGone(t, "Lease", func() error { _, err := getLease(ns, name); return err })
	tl := mustGetLR(t, ns, "trylock")
	if err := checkEnded(tl, lockingv1alpha1.ReasonConflict); err != nil {
		t.Error(err)
	}
	if v := history.acquiredEver(); v != nil {
		t.Errorf("the Conflict request was Acquired at some point: %+v (history %v)", v.Status, history.reasonsSeen())
	}
	if v := history.changedAfterEnd(); v != nil {
		t.Errorf("the Conflict request changed after it ended: %+v (history %v)", v.Status, history.reasonsSeen())
	}
	if seen := history.reasonsSeen(); len(seen) == 0 {
		t.Error("the watch saw no version of the Conflict request")
	}
	if tl.Status.FencingToken != "" {
		t.Errorf("the Conflict request has fencing token %q", tl.Status.FencingToken)
	}
}

// A change to the spec (renewTime, the one mutable field) is observed: the status
// and its conditions report the new generation, as for any Kubernetes object.
func TestObservedGenerationFollowsSpec(t *testing.T) {
	ns := newNamespace(t)
	holder := makeLR(ns, "holder").pull(1).create(t)
	waitHeld(t, ns, holder.Name)
	makeLR(ns, "waiter").pull(2).create(t)
	waitQueued(t, ns, "waiter", 1)

	for _, n := range []string{holder.Name, "waiter"} {
		lr := mustGetLR(t, ns, n)
		now := metav1.NewMicroTime(time.Now())
		lr.Spec.RenewTime = &now
		if err := k8s.Update(context.Background(), lr); err != nil {
			t.Fatalf("renewing %s: %v", n, err)
		}
		if lr.Generation != 2 {
			t.Fatalf("%s: generation %d after the spec change, want 2", n, lr.Generation)
		}
	}
	err := poll(func() error {
		var errs []error
		for _, n := range []string{holder.Name, "waiter"} {
			lr, err := getLR(ns, n)
			if err != nil {
				return err
			}
			if lr.Status.ObservedGeneration != lr.Generation {
				errs = append(errs, fmt.Errorf("%s: status.observedGeneration %d, generation %d", n, lr.Status.ObservedGeneration, lr.Generation))
			}
			for _, c := range lr.Status.Conditions {
				if c.ObservedGeneration != lr.Generation {
					errs = append(errs, fmt.Errorf("%s: condition %s observedGeneration %d, generation %d", n, c.Type, c.ObservedGeneration, lr.Generation))
				}
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatalf("spec change never observed within %s:\n%v", pollTimeout, err)
	}
}

// A ttl that is not a whole number of seconds (the Lease keeps whole seconds, so its
// record never equals the decided one) must not make the Lease change after the
// grant: no new resourceVersion, no watch event, no reconcile loop.
func TestSubSecondTTLLeaseIsStable(t *testing.T) {
	ns := newNamespace(t)
	holder := makeLR(ns, "holder").pull(1).ttl("1h500ms").create(t)
	holder = waitHeld(t, ns, holder.Name)
	token := fencingToken(t, holder)
	name := lockNameOf(holder)

	// Let the operator run for a while: several deadlock scans.
	waitScans(t, 3)
	lease, err := getLease(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	rv, err := strconv.ParseUint(lease.ResourceVersion, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if rv != token {
		t.Errorf("the Lease was rewritten after the grant: fencing token %d, Lease resourceVersion now %d", token, rv)
	}
	if lease.Spec.LeaseDurationSeconds == nil || *lease.Spec.LeaseDurationSeconds != 3601 {
		t.Errorf("Lease leaseDurationSeconds = %v, want 3601 (ttl rounded up)", lease.Spec.LeaseDurationSeconds)
	}
	if h := mustGetLR(t, ns, holder.Name); h.ResourceVersion != holder.ResourceVersion {
		t.Errorf("the holder was rewritten after its grant: %+v", h.Status)
	}
}

// TestGrantKeepsTheSpecAsWritten takes a lock with durations written the way
// people write them ("8h", not Go's "8h0m0s"): the grant, including its
// finalizer, must not rewrite the spec, or the generation would grow without
// anyone changing what was asked.
func TestGrantKeepsTheSpecAsWritten(t *testing.T) {
	ns := newNamespace(t)
	raw := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": lockingv1alpha1.GroupVersion.String(),
		"kind":       "LockRequest",
		"metadata":   map[string]any{"namespace": ns, "name": "written-by-hand"},
		"spec": map[string]any{
			"project":      map[string]any{"repository": "acme/infra", "path": "modules/dns"},
			"user":         map[string]any{"username": "carol"},
			"ttl":          "8h",
			"queueTimeout": "30m",
		},
	}}
	if err := k8s.Create(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	lr := waitHeld(t, ns, "written-by-hand")
	if lr.Generation != 1 || lr.Status.ObservedGeneration != 1 {
		t.Errorf("generation %d, observedGeneration %d after the grant; want 1 and 1: nobody changed the spec",
			lr.Generation, lr.Status.ObservedGeneration)
	}
	stored := &unstructured.Unstructured{}
	stored.SetGroupVersionKind(lockingv1alpha1.GroupVersion.WithKind("LockRequest"))
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(raw), stored); err != nil {
		t.Fatal(err)
	}
	if ttl, _, _ := unstructured.NestedString(stored.Object, "spec", "ttl"); ttl != "8h" {
		t.Errorf("spec.ttl is %q after the grant, want it as written: 8h", ttl)
	}
	releaseAll(t, ns)
}
