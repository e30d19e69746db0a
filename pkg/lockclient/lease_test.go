package lockclient_test

import (
	"context"
	"errors"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// TestLockReturnsOnTheLeaseGrant plays the operator in a namespace no operator
// serves: the key's Lease is written to name the request, and nothing else. Lock
// returns Acquired with the Lease's resourceVersion as the fencing token and the
// grant shown on the returned request, while the request's status on the server
// still says nothing. Get, meanwhile, reports the grant the Lease shows rather than
// Pending; once the status says Acquired, it reports that.
func TestLockReturnsOnTheLeaseGrant(t *testing.T) {
	ctx := deadline(t)
	c := newClientIn(t, unattendedNamespace)
	r := pullRequest("lease/grant", 1, "alice")
	r.TTL = ptr.To(time.Hour)

	done := lockAsync(ctx, c, r)
	lr := waitCreated(ctx, t, c, r)
	acquired := metav1.NewMicroTime(time.Date(2031, 1, 2, 3, 4, 5, 600000000, time.UTC))
	lease := grantByHand(ctx, t, lr, acquired)

	got := <-done
	if got.err != nil {
		t.Fatalf("Lock: %v", got.err)
	}
	st := got.st
	if st.State != lockclient.StateAcquired || st.FencingToken != lease.ResourceVersion {
		t.Fatalf("Lock = %s with token %q, want Acquired with the Lease's resourceVersion %q", st.State, st.FencingToken, lease.ResourceVersion)
	}
	shown := st.Request.Status
	wantExpiry := time.Date(2031, 1, 2, 4, 4, 6, 0, time.UTC) // acquired + 1h, rounded up
	if shown.FencingToken != lease.ResourceVersion || shown.LockName != lease.Name || shown.Owner != lr.Spec.Owner() ||
		shown.AcquiredTime == nil || !shown.AcquiredTime.Equal(ptr.To(metav1.NewTime(acquired.Time))) ||
		shown.ExpiresTime == nil || !shown.ExpiresTime.Time.Equal(wantExpiry) {
		t.Errorf("the returned request shows %+v; want the grant of the Lease (token %s, lock %s, owner %s, acquired %s, expires %s)",
			shown, lease.ResourceVersion, lease.Name, lr.Spec.Owner(), acquired, wantExpiry)
	}
	onServer := &lockingv1alpha1.LockRequest{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(lr), onServer); err != nil {
		t.Fatal(err)
	}
	if len(onServer.Status.Conditions) != 0 {
		t.Fatalf("the request's status was written (%+v): the test no longer tells the Lease's grant apart", onServer.Status)
	}

	// The status has not caught up (for this client's requests, the operator writes
	// it only once the hold has lasted status_update_interval): Get reports the
	// grant as the Lease shows it, never Pending after Lock said Acquired.
	if st, err := c.Get(ctx, r); err != nil || st.State != lockclient.StateAcquired || st.FencingToken != lease.ResourceVersion {
		t.Errorf("Get while the Lease shows a grant the status does not = %+v, %v; want Acquired with the Lease's token %s", st, err, lease.ResourceVersion)
	}
	onServer.Status = *lr.Status.DeepCopy()
	onServer.Status.FencingToken = lease.ResourceVersion
	onServer.Status.ObservedGeneration = onServer.Generation
	onServer.Status.Conditions = []metav1.Condition{{Type: lockingv1alpha1.ConditionAcquired, Status: metav1.ConditionTrue,
		Reason: lockingv1alpha1.ReasonAcquired, Message: "the lock is held", ObservedGeneration: onServer.Generation,
		LastTransitionTime: metav1.Now()}}
	if err := env.Client.Status().Update(ctx, onServer); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Get(ctx, r); err != nil || st.State != lockclient.StateAcquired || st.FencingToken != lease.ResourceVersion {
		t.Errorf("Get once the status shows the grant = %+v, %v; want Acquired with token %s", st, err, lease.ResourceVersion)
	}
	// A hold seen on the Lease is not lost because an older status said Pending.
	if lost := lockclient.LostHold(st, onServer); lost != nil {
		t.Errorf("the hold is reported lost by its own status: %+v", lost)
	}
}

// TestLeaseHolder: a Lease names its holder request and owner; without the owner
// annotation the request tells holders apart; a free Lease names nobody.
func TestLeaseHolder(t *testing.T) {
	for name, tc := range map[string]struct {
		lease         coordinationv1.Lease
		holder, owner string
	}{
		"held": {coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{lockingv1alpha1.OwnerAnnotation: "acme/infra#1"}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("pr1/u1")}}, "pr1/u1", "acme/infra#1"},
		"no owner recorded": {coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("pr1/u1")}}, "pr1/u1", "pr1/u1"},
		"free, an owner left behind": {coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{lockingv1alpha1.OwnerAnnotation: "acme/infra#1"}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("")}}, "", ""},
		"free": {coordinationv1.Lease{}, "", ""},
	} {
		if holder, owner := lockclient.LeaseHolder(&tc.lease); holder != tc.holder || owner != tc.owner {
			t.Errorf("%s: LeaseHolder = %q, %q; want %q, %q", name, holder, owner, tc.holder, tc.owner)
		}
	}
}

// TestLeaseGrantPassedWithinAnOwnerIsLeftToTheStatus: a Lease that passes the hold
// from one request of an owner to another of the same owner does not grant the
// later one (its grant was an earlier, re-entrant write with a token of its own), so
// Lock waits for the request's status, and returns the token the status shows.
func TestLeaseGrantPassedWithinAnOwnerIsLeftToTheStatus(t *testing.T) {
	ctx := deadline(t)
	c := newClientIn(t, unattendedNamespace)
	r := pullRequest("lease/reentrant", 7, "alice")
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: unattendedNamespace, Name: r.Key().ObjectName(),
			Labels:      map[string]string{lockingv1alpha1.LockNameLabel: r.Key().ObjectName()},
			Annotations: map[string]string{lockingv1alpha1.OwnerAnnotation: r.Owner()}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("earlier/u0")},
	}
	if err := env.Client.Create(ctx, lease); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), lease) })

	done := lockAsync(ctx, c, r)
	lr := waitCreated(ctx, t, c, r)
	lease.Spec.HolderIdentity = ptr.To(lr.Name + "/" + string(lr.UID))
	if err := env.Client.Update(ctx, lease); err != nil {
		t.Fatal(err)
	}
	lr.Status = lockingv1alpha1.LockRequestStatus{FencingToken: "41", ObservedGeneration: lr.Generation,
		Conditions: []metav1.Condition{{Type: lockingv1alpha1.ConditionAcquired, Status: metav1.ConditionTrue,
			Reason: lockingv1alpha1.ReasonAcquired, Message: "the lock is held", ObservedGeneration: lr.Generation,
			LastTransitionTime: metav1.Now()}}}
	if err := env.Client.Status().Update(ctx, lr); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err != nil || got.st.FencingToken != "41" {
		t.Fatalf("Lock = %+v, %v; want Acquired with the status's token 41, not the Lease's version %s", got.st, got.err, lease.ResourceVersion)
	}
}

// waitCreated waits on a watch until r's request exists, and returns it.
func waitCreated(ctx context.Context, t *testing.T, c *lockclient.Client, r lockclient.Request) *lockingv1alpha1.LockRequest {
	t.Helper()
	lr, err := lockclient.WaitFor(ctx, c, lockclient.RequestName(r), func(lr *lockingv1alpha1.LockRequest) (bool, error) {
		return lr != nil, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s to be created: %v", lockclient.RequestName(r), err)
	}
	return lr
}

// TestGrantsAnew: a Lease write grants the request it names when the owner changed
// (from nobody or from another owner), or when the same owner's request is named
// with a new acquireTime (a Lease kept after the release of the owner's earlier
// request), not when the hold passed within one owner (acquireTime kept).
func TestGrantsAnew(t *testing.T) {
	t1, t2 := metav1.NewMicroTime(time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)), metav1.NewMicroTime(time.Date(2031, 1, 2, 3, 4, 6, 0, time.UTC))
	lease := func(holder, owner string, at metav1.MicroTime) *coordinationv1.Lease {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{lockingv1alpha1.OwnerAnnotation: owner}}}
		if holder != "" {
			l.Spec.HolderIdentity = ptr.To(holder)
			l.Spec.AcquireTime = &at
		}
		return l
	}
	for _, tc := range []struct {
		name   string
		before *coordinationv1.Lease
		lease  *coordinationv1.Lease
		grant  bool
	}{
		{"from free", nil, lease("b/u2", "acme/infra#2", t1), true},
		{"from a free Lease", lease("", "", t1), lease("b/u2", "acme/infra#2", t1), true},
		{"from another owner", lease("a/u1", "acme/infra#1", t1), lease("b/u2", "acme/infra#2", t2), true},
		{"within one owner", lease("a/u1", "acme/infra#2", t1), lease("b/u2", "acme/infra#2", t1), false},
		{"one owner's next request on a kept Lease", lease("a/u1", "acme/infra#2", t1), lease("b/u2", "acme/infra#2", t2), true},
		{"renewed", lease("b/u2", "acme/infra#2", t1), lease("b/u2", "acme/infra#2", t1), false},
		{"another request named", nil, lease("c/u3", "acme/infra#3", t1), false},
		{"freed", lease("b/u2", "acme/infra#2", t1), lease("", "", t1), false},
	} {
		if grant := lockclient.GrantsAnew(tc.before, tc.lease, "b/u2"); grant != tc.grant {
			t.Errorf("%s: GrantsAnew = %t, want %t", tc.name, grant, tc.grant)
		}
	}
}

// lockResult is what a Lock call returned.
type lockResult struct {
	st  *lockclient.Status
	err error
}

// lockAsync calls Lock in a goroutine; the channel receives what it returned.
func lockAsync(ctx context.Context, c *lockclient.Client, r lockclient.Request) <-chan lockResult {
	done := make(chan lockResult, 1)
	go func() {
		st, err := c.Lock(ctx, r)
		done <- lockResult{st, err}
	}()
	return done
}

// TestAwaitReleaseWaitsUntilTheLeaseNamesAnotherRequest: after the holder's request is
// deleted, AwaitRelease waits while the key's Lease still names it (no operator
// serves this namespace, so nothing hands the key on), returns once the Lease names
// another request, and at once when the Lease is gone.
func TestAwaitReleaseWaitsUntilTheLeaseNamesAnotherRequest(t *testing.T) {
	ctx := deadline(t)
	c := newClientIn(t, unattendedNamespace)
	r := pullRequest("lease/await", 1, "alice")

	done := lockAsync(ctx, c, r)
	lr := waitCreated(ctx, t, c, r)
	lease := grantByHand(ctx, t, lr, metav1.NewMicroTime(time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)))
	got := <-done
	if got.err != nil {
		t.Fatalf("Lock: %v", got.err)
	}
	if err := c.Release(ctx, got.st); err != nil {
		t.Fatal(err)
	}

	// Nothing hands the key on: the wait lasts until its context ends.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := c.AwaitRelease(short, got.st)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AwaitRelease while the Lease names the released request = %v, want the context's deadline", err)
	}

	awaited := make(chan error, 1)
	go func() { awaited <- c.AwaitRelease(ctx, got.st) }()
	lease.Spec.HolderIdentity = ptr.To("next/some-uid")
	if err := env.Client.Update(ctx, lease); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-awaited:
		if err != nil {
			t.Fatalf("AwaitRelease once the Lease names another request = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("AwaitRelease did not return once the Lease named another request")
	}

	lease.Spec.HolderIdentity = ptr.To(lr.Name + "/" + string(lr.UID))
	if err := env.Client.Update(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if err := c.AwaitRelease(ctx, got.st); err != nil {
		t.Fatalf("AwaitRelease once the Lease is gone = %v", err)
	}
}

// grantByHand grants lr its key as the operator would, by creating the key's Lease
// naming it, acquired at acquired, in the namespace no operator serves.
func grantByHand(ctx context.Context, t *testing.T, lr *lockingv1alpha1.LockRequest, acquired metav1.MicroTime) *coordinationv1.Lease {
	t.Helper()
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: unattendedNamespace, Name: lr.Spec.Key().ObjectName(),
			Labels:      map[string]string{lockingv1alpha1.LockNameLabel: lr.Spec.Key().ObjectName()},
			Annotations: map[string]string{lockingv1alpha1.OwnerAnnotation: lr.Spec.Owner()}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(lr.Name + "/" + string(lr.UID)), AcquireTime: &acquired},
	}
	if err := env.Client.Create(ctx, lease); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), lease) })
	return lease
}
