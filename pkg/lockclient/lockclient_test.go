package lockclient_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// pullRequest asks for acme/infra at path, workspace default, for a pull.
func pullRequest(path string, pull int32, user string) lockclient.Request {
	return lockclient.Request{
		Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: path},
		Pull:    &lockingv1alpha1.PullRequestRef{Number: pull},
		User:    lockingv1alpha1.UserRef{Username: user},
	}
}

// waitState waits on a watch until r's request is in state (and, when position > 0,
// at that position).
func waitState(ctx context.Context, t *testing.T, c *lockclient.Client, r lockclient.Request, state lockclient.State, position int32) *lockclient.Status {
	t.Helper()
	var st *lockclient.Status
	_, err := lockclient.WaitFor(ctx, c, lockclient.RequestName(r), func(lr *lockingv1alpha1.LockRequest) (bool, error) {
		if lr == nil {
			return false, nil
		}
		st = lockclient.StatusOf(lr)
		return st.State == state && (position == 0 || st.Position == position), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s to be %s at position %d: %v (last: %+v)", lockclient.RequestName(r), state, position, err, st)
	}
	return st
}

func mustLock(ctx context.Context, t *testing.T, c *lockclient.Client, r lockclient.Request) *lockclient.Status {
	t.Helper()
	st, err := c.Lock(ctx, r)
	if err != nil {
		t.Fatalf("Lock(%s): %v", r.Owner(), err)
	}
	if st.State != lockclient.StateAcquired {
		t.Fatalf("Lock(%s) = %s (%s), want Acquired", r.Owner(), st.State, st.Reason)
	}
	return st
}

func mustNotExist(ctx context.Context, t *testing.T, c *lockclient.Client, r lockclient.Request) {
	t.Helper()
	st, err := c.Get(ctx, r)
	if !apierrors.IsNotFound(err) {
		t.Fatalf("Get(%s) = %+v, %v; want NotFound", lockclient.RequestName(r), st, err)
	}
}

func token(t *testing.T, st *lockclient.Status) int64 {
	t.Helper()
	n, err := strconv.ParseInt(st.FencingToken, 10, 64)
	if err != nil {
		t.Fatalf("fencing token %q of %s: %v", st.FencingToken, st.Name(), err)
	}
	return n
}

func TestLockAcquiresAndUnlockReleases(t *testing.T) {
	ctx := deadline(t)
	c := newClient(t)
	r := pullRequest("modules/vpc", 1, "alice")

	st := mustLock(ctx, t, c, r)
	if st.Name() != lockclient.RequestName(r) {
		t.Errorf("request name %q, want RequestName %q", st.Name(), lockclient.RequestName(r))
	}
	if st.FencingToken == "" || st.Reason != lockingv1alpha1.ReasonAcquired {
		t.Errorf("status %+v: want reason Acquired and a fencing token", st)
	}
	if got, want := st.Request.Labels[lockingv1alpha1.LockNameLabel], r.Key().ObjectName(); got != want {
		t.Errorf("label %s = %q, want %q", lockingv1alpha1.LockNameLabel, got, want)
	}
	if len(st.Request.Finalizers) != 0 {
		t.Errorf("a held request has finalizers %v, want none", st.Request.Finalizers)
	}

	got, err := c.Get(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != lockclient.StateAcquired || got.FencingToken != st.FencingToken {
		t.Errorf("Get = %s token %q, want Acquired token %q", got.State, got.FencingToken, st.FencingToken)
	}

	if err := c.Unlock(ctx, r); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	// Unlock waits until the operator let the object go.
	mustNotExist(ctx, t, c, r)
	if err := c.Unlock(ctx, r); err != nil {
		t.Errorf("Unlock of a released lock: %v, want nil", err)
	}
	info, err := c.GetLock(ctx, r.Key())
	if err != nil || info != nil {
		t.Errorf("GetLock of a released key = %+v, %v; want nil, nil", info, err)
	}
}

func TestWaitingLockGetsTheHandOff(t *testing.T) {
	ctx := deadline(t)
	c := newClient(t)
	first, second := pullRequest("modules/vpc", 1, "alice"), pullRequest("modules/vpc", 2, "bob")
	held := mustLock(ctx, t, c, first)

	type result struct {
		st  *lockclient.Status
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := c.Lock(ctx, second)
		done <- result{st, err}
	}()
	// A blocking Lock asks to be told nothing while it waits: its Queued status
	// comes once it has waited status_update_interval.
	queued := waitState(ctx, t, c, second, lockclient.StateQueued, 1)
	if got := queued.Request.Annotations[lockingv1alpha1.GrantNoticeAnnotation]; got != lockingv1alpha1.GrantNoticeLeaseOnly {
		t.Errorf("Lock's request has grant notice %q, want %q", got, lockingv1alpha1.GrantNoticeLeaseOnly)
	}
	if queued.BlockedBy == nil || queued.BlockedBy.Owner != first.Owner() || queued.BlockedBy.Request != held.Name() {
		t.Errorf("queued request blocked by %+v, want %s (%s)", queued.BlockedBy, first.Owner(), held.Name())
	}
	select {
	case res := <-done:
		t.Fatalf("Lock returned while its request was queued: %+v, %v", res.st, res.err)
	default:
	}

	if err := c.Unlock(ctx, first); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil {
		t.Fatalf("waiting Lock: %v", res.err)
	}
	if res.st.State != lockclient.StateAcquired {
		t.Fatalf("waiting Lock = %s, want Acquired", res.st.State)
	}
	if token(t, res.st) <= token(t, held) {
		t.Errorf("fencing token after the hand-off %s, want more than the first holder's %s", res.st.FencingToken, held.FencingToken)
	}
}

func TestTryLockAnswersAtOnce(t *testing.T) {
	ctx := deadline(t)
	c := newClient(t)
	holder := pullRequest(".", 1, "alice")

	st, err := c.TryLock(ctx, holder)
	if err != nil || st.State != lockclient.StateAcquired || st.FencingToken == "" {
		t.Fatalf("TryLock of a free key = %+v, %v; want Acquired with a fencing token", st, err)
	}

	failFast := pullRequest(".", 2, "bob")
	failFast.QueueTimeout = ptr.To(time.Duration(0))
	st, err = c.TryLock(ctx, failFast)
	if err != nil {
		t.Fatalf("TryLock with queueTimeout 0: %v", err)
	}
	if st.State != lockclient.StateEnded || st.Reason != lockingv1alpha1.ReasonConflict {
		t.Errorf("TryLock with queueTimeout 0 on a held key = %s %s, want Ended Conflict", st.State, st.Reason)
	}
	if st.BlockedBy == nil || st.BlockedBy.Owner != holder.Owner() {
		t.Errorf("Conflict blocked by %+v, want owner %s", st.BlockedBy, holder.Owner())
	}
	// The ended request was withdrawn: nothing piles up.
	mustNotExist(ctx, t, c, failFast)

	waiter := pullRequest(".", 3, "carol")
	st, err = c.TryLock(ctx, waiter)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != lockclient.StateQueued || st.Position != 1 || st.BlockedBy == nil || st.BlockedBy.Owner != holder.Owner() {
		t.Errorf("TryLock on a held key = %s position %d blocked by %+v; want Queued 1 behind %s", st.State, st.Position, st.BlockedBy, holder.Owner())
	}
	// A higher priority waiter goes ahead; the first one stays queued, now second.
	urgent := pullRequest(".", 4, "dave")
	urgent.Priority = lockingv1alpha1.PriorityHigh
	st, err = c.TryLock(ctx, urgent)
	if err != nil || st.State != lockclient.StateQueued || st.Position != 1 {
		t.Errorf("TryLock with priority High = %+v, %v; want Queued at position 1", st, err)
	}
	waitState(ctx, t, c, waiter, lockclient.StateQueued, 2)
}

func TestRetriesFindTheSameRequest(t *testing.T) {
	ctx := deadline(t)
	c := newClient(t)
	holder, waiter := pullRequest("envs/prod", 1, "alice"), pullRequest("envs/prod", 2, "bob")

	first := mustLock(ctx, t, c, holder)
	again := mustLock(ctx, t, c, holder)
	if again.Request.UID != first.Request.UID || again.FencingToken != first.FencingToken {
		t.Errorf("a retried Lock made %s token %s; want the first request %s token %s",
			again.Request.UID, again.FencingToken, first.Request.UID, first.FencingToken)
	}

	q1, err := c.TryLock(ctx, waiter)
	if err != nil {
		t.Fatal(err)
	}
	// Another user planning the same pull is the same owner: the same request.
	waiterByOther := waiter
	waiterByOther.User = lockingv1alpha1.UserRef{Username: "carol"}
	q2, err := c.TryLock(ctx, waiterByOther)
	if err != nil {
		t.Fatal(err)
	}
	if q1.Request.UID != q2.Request.UID || q2.State != lockclient.StateQueued {
		t.Errorf("a retried TryLock made %s (%s); want the queued request %s", q2.Request.UID, q2.State, q1.Request.UID)
	}

	// A retry with another policy cannot reuse the immutable request.
	other := waiter
	other.Priority = lockingv1alpha1.PriorityCritical
	_, err = c.TryLock(ctx, other)
	var mismatch *lockclient.SpecMismatchError
	if !errors.As(err, &mismatch) || mismatch.Field != "spec.priority" {
		t.Errorf("TryLock with another priority: %v; want a SpecMismatchError on spec.priority", err)
	}

	// Concurrent retries of one Lock: one creates, the other adopts.
	free := pullRequest("envs/dev", 7, "erin")
	results := make(chan *lockclient.Status, 2)
	for range 2 {
		go func() {
			st, err := c.Lock(ctx, free)
			if err != nil {
				t.Errorf("concurrent Lock: %v", err)
			}
			results <- st
		}()
	}
	a, b := <-results, <-results
	if a == nil || b == nil || a.Request.UID != b.Request.UID {
		t.Fatalf("concurrent Locks of one request got different objects: %+v and %+v", a, b)
	}

	infos, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, info := range infos {
		if info.Holder != nil {
			count++
		}
		count += len(info.Queue)
	}
	if count != 3 {
		t.Errorf("%d requests in the namespace, want 3 (two holders, one waiter)", count)
	}
}

// TestAnEndedRequestIsReplaced: an ended request of the same name (left by a caller
// that crashed before deleting it) is deleted and made anew, not adopted.
func TestAnEndedRequestIsReplaced(t *testing.T) {
	ctx := deadline(t)
	c := newClient(t)
	holder := pullRequest("modules/dns", 1, "alice")
	retried := pullRequest("modules/dns", 2, "bob")
	retried.QueueTimeout = ptr.To(time.Duration(0))
	mustLock(ctx, t, c, holder)

	// What an earlier TryLock left behind: a request of the same name that failed fast.
	stale := &lockingv1alpha1.LockRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace(), Name: lockclient.RequestName(retried)},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project:      retried.Project,
			Pull:         retried.Pull,
			User:         retried.User,
			QueueTimeout: &metav1.Duration{},
		},
	}
	if err := env.Client.Create(ctx, stale); err != nil {
		t.Fatal(err)
	}
	ended := waitState(ctx, t, c, retried, lockclient.StateEnded, 0)
	if ended.Reason != lockingv1alpha1.ReasonConflict {
		t.Fatalf("the stale request ended with %s, want Conflict", ended.Reason)
	}

	if err := c.Unlock(ctx, holder); err != nil {
		t.Fatal(err)
	}
	st, err := c.TryLock(ctx, retried)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != lockclient.StateAcquired || st.Request.UID == stale.UID {
		t.Errorf("TryLock over an ended request = %s, uid %s (stale uid %s); want Acquired by a new request", st.State, st.Request.UID, stale.UID)
	}
}

func TestCancelledLockWithdrawsItsRequest(t *testing.T) {
	ctx := deadline(t)
	c := newClient(t)
	holder, waiter := pullRequest("modules/vpc", 1, "alice"), pullRequest("modules/vpc", 2, "bob")
	mustLock(ctx, t, c, holder)

	lockCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Lock(lockCtx, waiter)
		done <- err
	}()
	waitState(ctx, t, c, waiter, lockclient.StateQueued, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Lock returned %v, want context.Canceled", err)
	}
	mustNotExist(ctx, t, c, waiter)
	info, err := c.GetLock(ctx, holder.Key())
	if err != nil {
		t.Fatal(err)
	}
	if info == nil || info.Holder == nil || info.Holder.Name != lockclient.RequestName(holder) || len(info.Queue) != 0 {
		t.Errorf("after the cancelled Lock: %+v; want %s holding with an empty queue", info, lockclient.RequestName(holder))
	}
}

func TestTryLockWithoutAnOperatorWithdraws(t *testing.T) {
	ctx := deadline(t)
	c := newClientIn(t, unattendedNamespace, lockclient.WithDecisionTimeout(500*time.Millisecond))
	r := pullRequest(".", 1, "alice")
	_, err := c.TryLock(ctx, r)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "is atlantis-lock-operator running") {
		t.Fatalf("TryLock with nobody deciding: %v; want a deadline error that asks whether the operator runs", err)
	}
	mustNotExist(ctx, t, c, r)
}

func TestRenew(t *testing.T) {
	ctx := deadline(t)
	renewAt := time.Date(2031, 1, 2, 3, 4, 5, 6000, time.UTC)
	c := newClient(t, lockclient.WithClock(clocktesting.NewFakePassiveClock(renewAt)))
	r := pullRequest("modules/vpc", 1, "alice")
	r.TTL = ptr.To(time.Hour)

	held := mustLock(ctx, t, c, r)
	firstExpiry := held.Request.Status.ExpiresTime
	if firstExpiry == nil {
		t.Fatal("a hold with a ttl has no expiresTime")
	}
	st, err := c.Renew(ctx, r)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if got := st.Request.Spec.RenewTime; got == nil || !got.Time.Equal(renewAt) {
		t.Errorf("spec.renewTime = %v, want %v", got, renewAt)
	}
	if got := st.Request.Status.ObservedRenewTime; got == nil || !got.Time.Equal(renewAt) {
		t.Errorf("Renew returned before the operator observed the renewal: status.observedRenewTime = %v, want %v", got, renewAt)
	}
	if exp := st.Request.Status.ExpiresTime; exp == nil || exp.Before(firstExpiry) {
		t.Errorf("expiresTime after renewal %v, want not before %v", exp, firstExpiry)
	}
	if st.State != lockclient.StateAcquired || st.FencingToken != held.FencingToken {
		t.Errorf("after Renew: %s token %s, want still Acquired with token %s", st.State, st.FencingToken, held.FencingToken)
	}

	// Force unlock: the hold is Revoked and can no longer be renewed. The hold is
	// younger than project_lock_delay, so ForceUnlock makes its ProjectLock first.
	if _, err := c.ForceUnlock(ctx, r.Key()); err != nil {
		t.Fatal(err)
	}
	waitState(ctx, t, c, r, lockclient.StateEnded, 0)
	_, err = c.Renew(ctx, r)
	var ended *lockclient.EndedError
	if !errors.As(err, &ended) || ended.Status.Reason != lockingv1alpha1.ReasonRevoked {
		t.Fatalf("Renew of a revoked hold: %v; want an EndedError with reason Revoked", err)
	}
	if err := c.Unlock(ctx, r); err != nil {
		t.Fatal(err)
	}
	mustNotExist(ctx, t, c, r)
}

func TestGetLockAndListShowHoldersAndQueues(t *testing.T) {
	ctx := deadline(t)
	c := newClient(t)
	holder := pullRequest("modules/vpc", 1, "alice")
	normal := pullRequest("modules/vpc", 2, "bob")
	high := pullRequest("modules/vpc", 3, "carol")
	high.Priority = lockingv1alpha1.PriorityHigh
	manual := lockclient.Request{
		Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "modules/db"},
		User:    lockingv1alpha1.UserRef{Username: "dave"},
	}

	mustLock(ctx, t, c, holder)
	mustLock(ctx, t, c, manual)
	for _, r := range []lockclient.Request{normal, high} {
		if _, err := c.TryLock(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// carol's High priority put her ahead of bob, who came first.
	waitState(ctx, t, c, normal, lockclient.StateQueued, 2)
	// The key's ProjectLock comes once requests wait, after their statuses.
	if _, err := lockclient.WaitForLock(ctx, c, holder.Key().ObjectName(), func(pl *lockingv1alpha1.ProjectLock) (bool, error) {
		return pl != nil && pl.Status.QueueLength == 2, nil
	}); err != nil {
		t.Fatal(err)
	}

	wantVPC := []string{lockclient.RequestName(high), lockclient.RequestName(normal)}
	check := func(what string, info *lockclient.LockInfo, key lockkey.Key, holder lockclient.Request, queue []string) {
		t.Helper()
		if info == nil {
			t.Fatalf("%s: no lock, want %s", what, key)
		}
		if info.Key != key {
			t.Errorf("%s: key %s, want %s", what, info.Key, key)
		}
		// A key that is waited for has its ProjectLock; one held alone gets it only
		// once the hold has lasted project_lock_delay, and is listed either way.
		if (info.Lock == nil && len(queue) > 0) || (info.Lock != nil && info.Lock.Name != key.ObjectName()) {
			t.Errorf("%s: ProjectLock %v, want %s", what, info.Lock, key.ObjectName())
		}
		if info.Holder == nil || info.Holder.Name != lockclient.RequestName(holder) {
			t.Errorf("%s: holder %v, want %s", what, info.Holder, lockclient.RequestName(holder))
		}
		var names []string
		for _, lr := range info.Queue {
			names = append(names, lr.Name)
		}
		if strings.Join(names, ",") != strings.Join(queue, ",") {
			t.Errorf("%s: queue %v, want %v", what, names, queue)
		}
	}

	info, err := c.GetLock(ctx, holder.Key())
	if err != nil {
		t.Fatal(err)
	}
	check("GetLock", info, holder.Key(), holder, wantVPC)

	infos, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("List returned %d locks, want 2", len(infos))
	}
	// Ordered by key: modules/db before modules/vpc.
	check("List[0]", &infos[0], manual.Key(), manual, nil)
	check("List[1]", &infos[1], holder.Key(), holder, wantVPC)

	free := lockkey.New("acme/infra", "modules/free", "default", "")
	if info, err := c.GetLock(ctx, free); info != nil || err != nil {
		t.Errorf("GetLock of a free key = %+v, %v; want nil, nil", info, err)
	}
	if _, err := c.GetLock(ctx, lockkey.Key{Repository: "acme/infra", Path: "../x", Workspace: "default"}); err == nil || !strings.Contains(err.Error(), `path "../x"`) {
		t.Errorf("GetLock of a bad key: %v, want an error naming the path", err)
	}
}

func TestAClusterWithoutTheCRDs(t *testing.T) {
	bare, err := startWithoutCRDs(t)
	if err != nil {
		t.Fatal(err)
	}
	ctx := deadline(t)
	kc, err := client.NewWithWatch(bare.Config, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	c := lockclient.New(kc, "default")
	r := pullRequest(".", 1, "alice")

	calls := map[string]func() error{
		"Lock":    func() error { _, err := c.Lock(ctx, r); return err },
		"TryLock": func() error { _, err := c.TryLock(ctx, r); return err },
		"Get":     func() error { _, err := c.Get(ctx, r); return err },
		"Unlock":  func() error { return c.Unlock(ctx, r) },
		"List":    func() error { _, err := c.List(ctx); return err },
		"GetLock": func() error { _, err := c.GetLock(ctx, r.Key()); return err },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, lockclient.ErrNotInstalled) || !strings.Contains(err.Error(), "kubectl apply -f config/crd/bases") {
			t.Errorf("%s without the CRDs: %v; want ErrNotInstalled with how to install them", name, err)
		}
	}
}

// TestRequestsCarryNoFinalizer: a request holds its lock through the Lease, not
// through a finalizer, so the operator never writes a request's metadata (no
// finalizer to add after the grant, none to remove after the release); an Unlock
// returns as soon as the object is gone, and the next request is still served after
// the release: the operator finds the holder gone and hands the Lease on.
func TestRequestsCarryNoFinalizer(t *testing.T) {
	ctx := deadline(t)
	c := newClient(t)
	holder, waiter := pullRequest("modules/vpc", 1, "alice"), pullRequest("modules/vpc", 2, "bob")
	held := mustLock(ctx, t, c, holder)
	if _, err := c.TryLock(ctx, waiter); err != nil {
		t.Fatal(err)
	}
	queued := waitState(ctx, t, c, waiter, lockclient.StateQueued, 1)
	// TryLock is told its first decision at once.
	if got := queued.Request.Annotations[lockingv1alpha1.GrantNoticeAnnotation]; got != lockingv1alpha1.GrantNoticeLease {
		t.Errorf("TryLock's request has grant notice %q, want %q", got, lockingv1alpha1.GrantNoticeLease)
	}
	for _, lr := range []*lockingv1alpha1.LockRequest{held.Request, queued.Request} {
		if len(lr.Finalizers) != 0 {
			t.Errorf("%s has finalizers %v, want none", lr.Name, lr.Finalizers)
		}
		for _, mf := range lr.ManagedFields {
			if mf.Manager == lockingv1alpha1.FieldManager && mf.Subresource == "" {
				t.Errorf("the operator wrote the metadata of %s (%s); it should write only its status", lr.Name, mf.FieldsV1)
			}
		}
	}
	if err := c.Unlock(ctx, holder); err != nil {
		t.Fatal(err)
	}
	mustNotExist(ctx, t, c, holder)
	next := waitState(ctx, t, c, waiter, lockclient.StateAcquired, 0)
	if token(t, next) <= token(t, held) {
		t.Errorf("the waiter's fencing token %s is not after the released holder's %s", next.FencingToken, held.FencingToken)
	}
	if err := c.Unlock(ctx, waiter); err != nil {
		t.Fatal(err)
	}
	mustNotExist(ctx, t, c, waiter)
}

// GetLock and GetLockText read one key, and still see what was made by hand: a
// waiter without the lock label (kubectl's), and a holder whose label names
// another lock, found through the key's Lease. GetLockText finds the lock from
// its key's text alone, as Atlantis names it.
func TestGetLockSeesRequestsMadeByHand(t *testing.T) {
	ctx := deadline(t)
	c := newClient(t)
	byHand := func(name, path string, pull int32, labels map[string]string) *lockingv1alpha1.LockRequest {
		lr := &lockingv1alpha1.LockRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace(), Name: name, Labels: labels},
			Spec: lockingv1alpha1.LockRequestSpec{
				Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: path}, Workspace: "default",
				Pull: &lockingv1alpha1.PullRequestRef{Number: pull}, User: lockingv1alpha1.UserRef{Username: "dave"},
			},
		}
		if err := env.Client.Create(ctx, lr); err != nil {
			t.Fatal(err)
		}
		return lr
	}
	holder := pullRequest("modules/net", 1, "alice")
	mustLock(ctx, t, c, holder)
	waiter := byHand("net-pr2-by-hand", "modules/net", 2, nil)
	key := holder.Key()
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, testTimeout, true, func(ctx context.Context) (bool, error) {
		info, err := c.GetLockText(ctx, key.String())
		return err == nil && info != nil && len(info.Queue) == 1 && info.Queue[0].Name == waiter.Name &&
			lockclient.StatusOf(&info.Queue[0]).State == lockclient.StateQueued, err
	})
	if err != nil {
		t.Fatalf("GetLockText never showed the waiter made by hand queued: %v", err)
	}
	for what, get := range map[string]func() (*lockclient.LockInfo, error){
		"GetLock":     func() (*lockclient.LockInfo, error) { return c.GetLock(ctx, key) },
		"GetLockText": func() (*lockclient.LockInfo, error) { return c.GetLockText(ctx, key.String()) },
	} {
		info, err := get()
		if err != nil || info == nil || info.Key != key || info.Holder == nil || info.Holder.Name != lockclient.RequestName(holder) ||
			len(info.Queue) != 1 || info.Queue[0].Name != waiter.Name {
			t.Errorf("%s(%s) = %+v, %v; want %s holding, %s waiting", what, key, info, err, lockclient.RequestName(holder), waiter.Name)
		}
	}

	// A holder labelled with another lock's name: the Lease names it.
	other := lockkey.New("acme/infra", "modules/dns", "default", "")
	mislabelled := byHand("dns-by-hand", "modules/dns", 3, map[string]string{lockingv1alpha1.LockNameLabel: key.ObjectName()})
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, testTimeout, true, func(ctx context.Context) (bool, error) {
		info, err := c.GetLock(ctx, other)
		return err == nil && info != nil && info.Holder != nil && info.Holder.Name == mislabelled.Name, err
	})
	if err != nil {
		t.Fatalf("GetLock(%s) never showed the holder labelled with another lock's name: %v", other, err)
	}
	// And it is not taken for a request of the lock its label names.
	info, err := c.GetLock(ctx, key)
	if err != nil || info == nil || slices.ContainsFunc(append(info.Holders, info.Queue...), func(lr lockingv1alpha1.LockRequest) bool { return lr.Name == mislabelled.Name }) {
		t.Errorf("GetLock(%s) = %+v, %v; want it without %s, another key's request", key, info, err, mislabelled.Name)
	}
	if info, err := c.GetLockText(ctx, "acme/infra/modules/free/default/"); info != nil || err != nil {
		t.Errorf("GetLockText of a free key = %+v, %v; want nil, nil", info, err)
	}
}
