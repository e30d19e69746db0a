package atlantis_test

// Behaviour beyond Atlantis's own: queueing mode, and locks that other clients
// (kubectl, the client library) took, on the real API server with the operator.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runatlantis/atlantis/server/events/models"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/atlantis"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// testTimeout bounds each wait for the operator.
const testTimeout = 30 * time.Second

// requests returns the LockRequests of a namespace, by name, with their state.
func requests(t *testing.T, ns string) map[string]*lockclient.Status {
	t.Helper()
	var list lockingv1alpha1.LockRequestList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string]*lockclient.Status{}
	for i := range list.Items {
		out[list.Items[i].Name] = lockclient.StatusOf(&list.Items[i])
	}
	return out
}

// describeRequests is for messages.
func describeRequests(reqs map[string]*lockclient.Status) string {
	var parts []string
	for name, st := range reqs {
		parts = append(parts, fmt.Sprintf("%s: %s (%s, position %d)", name, st.State, st.Reason, st.Position))
	}
	return strings.Join(parts, "; ")
}

// waitForHolder waits on a watch of the namespace's LockRequests until GetLock(key)
// reports pull num as the holder (0: until the key is free), and returns the lock.
func waitForHolder(t *testing.T, a adapter, key string, num int) *models.ProjectLock {
	t.Helper()
	kc, err := client.NewWithWatch(env.Config, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	w, err := kc.Watch(ctx, &lockingv1alpha1.LockRequestList{}, client.InNamespace(a.ns))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for {
		lock, err := a.locker.GetLock(key)
		if err != nil {
			t.Fatal(err)
		}
		if (num == 0 && lock == nil) || (lock != nil && lock.Pull.Num == num) {
			return lock
		}
		select {
		case <-w.ResultChan():
		case <-ctx.Done():
			t.Fatalf("waiting for pull %d to hold %s: %v (now: %+v; requests: %s)", num, key, ctx.Err(), lock, describeRequests(requests(t, a.ns)))
		}
	}
}

// mustTryLock calls TryLock for pull in workspace "default" and returns whether this
// call acquired the key, and the pull number of the lock that holds it.
func mustTryLock(t *testing.T, l *atlantis.Locker, p models.Project, pull int, user models.User) (bool, models.ProjectLock) {
	t.Helper()
	before := time.Now()
	r, err := l.TryLock(p, "default", pullOf(p.RepoFullName, pull, commitA), user)
	if err != nil {
		t.Fatalf("TryLock for pull %d: %v", pull, err)
	}
	if r.LockKey != models.GenerateLockKey(p, "default") {
		t.Errorf("LockKey = %q, want %q", r.LockKey, models.GenerateLockKey(p, "default"))
	}
	if r.LockAcquired && r.CurrLock.Time.Before(before) {
		t.Errorf("the new lock's Time %s is before the call", r.CurrLock.Time)
	}
	return r.LockAcquired, r.CurrLock
}

func TestQueueMode(t *testing.T) {
	t.Parallel()
	a := newAdapter(t, atlantis.WithMode(atlantis.ModeQueue), atlantis.WithQueueTimeout(time.Hour))
	p := models.NewProject("acme/infra", "modules/vpc", "")
	key := models.GenerateLockKey(p, "default")

	if acquired, got := mustTryLock(t, a.locker, p, 1, alice); !acquired || got.Pull.Num != 1 {
		t.Fatalf("pull 1 on a free key: want it acquired, got acquired=%v with the lock of pull %d", acquired, got.Pull.Num)
	}
	// Pulls 2 and 3 are refused as Atlantis refuses them, with the holder, but queue.
	for _, pull := range []int{2, 2, 3, 1} {
		if acquired, got := mustTryLock(t, a.locker, p, pull, bob); acquired || got.Pull.Num != 1 {
			t.Fatalf("pull %d on pull 1's key: want LockAcquired=false with pull 1's lock, got pull %d", pull, got.Pull.Num)
		}
	}
	reqs := requests(t, a.ns)
	positions := map[int32]string{}
	for name, st := range reqs {
		if st.State == lockclient.StateQueued {
			positions[st.Position] = name
		}
	}
	if len(reqs) != 3 || !strings.HasPrefix(positions[1], "pr2-") || !strings.HasPrefix(positions[2], "pr3-") {
		t.Fatalf("want pull 1 holding, pull 2 queued first and pull 3 second (one request each), got %s", describeRequests(reqs))
	}
	if locks, err := a.locker.List(); err != nil || len(locks) != 1 || locks[key].Pull.Num != 1 {
		t.Fatalf("List = %v, %v; want only pull 1's lock (waiters are not locks)", keysOf(locks), err)
	}

	// A closed pull leaves the queue: UnlockByPull releases nothing it holds, and
	// withdraws its waiting request.
	if released, err := a.locker.UnlockByPull("acme/infra", 3); err != nil || released != nil {
		t.Fatalf("UnlockByPull of waiting pull 3 = %v, %v; want nothing released", released, err)
	}
	if reqs := requests(t, a.ns); len(reqs) != 2 {
		t.Fatalf("pull 3's waiting request should be gone, got %s", describeRequests(reqs))
	}

	// The holder releases: the lock passes to pull 2 by itself.
	if released, err := a.locker.Unlock(key); err != nil || released == nil || released.Pull.Num != 1 {
		t.Fatalf("Unlock = %+v, %v; want pull 1's lock", released, err)
	}
	lock := waitForHolder(t, a, key, 2)
	reqs = requests(t, a.ns)
	if len(reqs) != 1 {
		t.Fatalf("want only pull 2's request, got %s", describeRequests(reqs))
	}
	var lr *lockingv1alpha1.LockRequest
	for _, st := range reqs {
		lr = st.Request
	}
	// When pull 2 got it: its status's acquiredTime, or, until the operator writes
	// that (after status_update_interval for the adapter's requests), the Lease's.
	var granted time.Time
	if lr.Status.AcquiredTime != nil {
		granted = lr.Status.AcquiredTime.Time
	} else {
		var lease coordinationv1.Lease
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: a.ns, Name: lr.Spec.Key().ObjectName()}, &lease); err != nil {
			t.Fatal(err)
		}
		if lease.Spec.AcquireTime != nil {
			granted = lease.Spec.AcquireTime.Time
		}
	}
	if granted.IsZero() || !lock.Time.Equal(granted) {
		t.Errorf("the passed lock's Time = %s, want when pull 2 got it (%v), not when it asked", lock.Time, granted)
	}
	// Pull 2 plans again: Atlantis's caller sees its own pull number and proceeds.
	if acquired, got := mustTryLock(t, a.locker, p, 2, bob); acquired || got.Pull.Num != 2 {
		t.Fatalf("pull 2 holding: TryLock answered acquired=%v with the lock of pull %d; want false with its own", acquired, got.Pull.Num)
	}
	if got, err := a.locker.UnlockIfOwnedByPull(p, "default", 2); err != nil || got == nil || got.Pull.Num != 2 {
		t.Fatalf("UnlockIfOwnedByPull(2) = %+v, %v", got, err)
	}
	if reqs := requests(t, a.ns); len(reqs) != 0 {
		t.Fatalf("want no request left, got %s", describeRequests(reqs))
	}
}

// A lock taken without the adapter (here through the client library, as
// kubectl-lock or any program would) is a lock to Atlantis too, read from its spec;
// and an owner holding through several requests is released entirely.
func TestLocksTakenByOthers(t *testing.T) {
	t.Parallel()
	a := newAdapter(t)
	c := newClient(t, a.ns)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	manual := lockclient.Request{
		Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "."},
		Pull:    &lockingv1alpha1.PullRequestRef{Number: 7, URL: "https://github.com/acme/infra/pull/7", Author: "dave"},
		User:    lockingv1alpha1.UserRef{Username: "dave"},
	}
	if _, err := c.Lock(ctx, manual); err != nil {
		t.Fatal(err)
	}
	p := models.NewProject("acme/infra", ".", "")
	acquired, got := mustTryLock(t, a.locker, p, 8, alice)
	want := models.PullRequest{Num: 7, URL: "https://github.com/acme/infra/pull/7", Author: "dave",
		BaseRepo: models.Repo{FullName: "acme/infra", Owner: "acme", Name: "infra"}}
	if acquired || got.Pull != want || got.User.Username != "dave" || got.Time.IsZero() {
		t.Fatalf("TryLock on a key held by hand answered %+v; want pull 7 from the request's spec", got)
	}

	// Pull 7 holds through a second request, made by hand with another name: the
	// operator grants it (same owner), and Unlock must release both.
	extra := &lockingv1alpha1.LockRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "pr7-by-hand"},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project: manual.Project, Workspace: "default", Pull: manual.Pull, User: manual.User,
		},
	}
	if err := env.Client.Create(ctx, extra); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lock(ctx, lockclient.Request{Project: manual.Project, Pull: manual.Pull, User: manual.User}); err != nil {
		t.Fatal(err)
	}
	infos, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || len(infos[0].Holders) != 2 || infos[0].Holder != &infos[0].Holders[0] {
		t.Fatalf("List shows %+v; want one lock with pull 7's two requests as its Holders, Holder first", infos)
	}
	key := models.GenerateLockKey(p, "default")
	if released, err := a.locker.Unlock(key); err != nil || released == nil || released.Pull.Num != 7 {
		t.Fatalf("Unlock = %+v, %v; want pull 7's lock", released, err)
	}
	if lock, err := a.locker.GetLock(key); err != nil || lock != nil {
		t.Fatalf("after Unlock, GetLock = %+v, %v; want the key free (requests: %s)", lock, err, describeRequests(requests(t, a.ns)))
	}
	if acquired, got := mustTryLock(t, a.locker, p, 8, alice); !acquired || got.Pull.Num != 8 {
		t.Fatalf("pull 8 after the release: want it acquired, got acquired=%v with pull %d", acquired, got.Pull.Num)
	}
}

// UnlockByPull lists the namespace once and releases every request through which
// the pull holds, a second one made by hand included, without reading each lock
// again; another pull's lock stays.
func TestUnlockByPullListsOnce(t *testing.T) {
	t.Parallel()
	cl := newCountedLocker(t)
	ns, kc, counted, c, locker := cl.ns, cl.kc, cl.counted, cl.client, cl.locker
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	a, b, other := models.NewProject("acme/infra", "stacks/a", ""), models.NewProject("acme/infra", "stacks/b", ""), models.NewProject("acme/infra", "stacks/c", "")
	for _, take := range []struct {
		p    models.Project
		pull int
	}{{a, 7}, {b, 7}, {other, 8}} {
		if acquired, _ := mustTryLock(t, locker, take.p, take.pull, alice); !acquired {
			t.Fatalf("pull %d did not get %s", take.pull, take.p.Path)
		}
	}
	// Pull 7 holds b through a second request too, made by hand.
	if err := kc.Create(ctx, requestByHand(ns, "pr7-by-hand", "stacks/b", 7)); err != nil {
		t.Fatal(err)
	}
	waitHeldTwice(ctx, t, c, lockkey.New("acme/infra", "stacks/b", "default", ""))

	before := counted.RequestLists()
	released, err := locker.UnlockByPull("acme/infra", 7)
	if err != nil {
		t.Fatal(err)
	}
	if n := counted.RequestLists() - before; n != 1 {
		t.Errorf("UnlockByPull listed LockRequests %d times; want once", n)
	}
	if len(released) != 2 || released[0].Project.Path != "stacks/a" || released[1].Project.Path != "stacks/b" {
		t.Fatalf("UnlockByPull released %+v; want the locks of stacks/a and stacks/b", released)
	}
	for _, p := range []models.Project{a, b} {
		if lock, err := locker.GetLock(models.GenerateLockKey(p, "default")); err != nil || lock != nil {
			t.Fatalf("after UnlockByPull, GetLock(%s) = %+v, %v; want free (requests: %s)", p.Path, lock, err, describeRequests(requests(t, ns)))
		}
	}
	if lock, err := locker.GetLock(models.GenerateLockKey(other, "default")); err != nil || lock == nil || lock.Pull.Num != 8 {
		t.Fatalf("after UnlockByPull of pull 7, GetLock(stacks/c) = %+v, %v; want pull 8's lock", lock, err)
	}
}

// Unlock and GetLock read one key, not the namespace: the lists they make return
// only the requests labelled with the key's lock and those made by hand (which
// carry no label), and no Lease is listed, whatever other locks the namespace
// holds; an owner that holds the key through a second request made by hand is
// still released whole.
func TestUnlockReadsOneKey(t *testing.T) {
	t.Parallel()
	const others = 12
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cl := newCountedLocker(t)
	ns, kc, counted, c, locker := cl.ns, cl.kc, cl.counted, cl.client, cl.locker
	for i := range others {
		p := models.NewProject("acme/infra", fmt.Sprintf("others/%d", i), "")
		if acquired, _ := mustTryLock(t, locker, p, 100+i, alice); !acquired {
			t.Fatalf("pull %d did not get %s", 100+i, p.Path)
		}
	}
	target := models.NewProject("acme/infra", "stacks/target", "")
	if acquired, _ := mustTryLock(t, locker, target, 7, alice); !acquired {
		t.Fatal("pull 7 did not get stacks/target")
	}
	// Pull 7 holds the target through a second request too, and another key is
	// held by a request made by hand.
	for _, lr := range []*lockingv1alpha1.LockRequest{requestByHand(ns, "pr7-by-hand", "stacks/target", 7), requestByHand(ns, "pr200-by-hand", "others/by-hand", 200)} {
		if err := kc.Create(ctx, lr); err != nil {
			t.Fatal(err)
		}
	}
	key := lockkey.New("acme/infra", "stacks/target", "default", "")
	waitHeldTwice(ctx, t, c, key)
	// What the reads may return: the target's requests, and those without the label.
	var all lockingv1alpha1.LockRequestList
	if err := kc.List(ctx, &all, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	mayRead := map[string]bool{}
	for _, lr := range all.Items {
		_, labelled := lr.Labels[lockingv1alpha1.LockNameLabel]
		mayRead[lr.Name] = lr.Spec.Key() == key || !labelled
	}
	if len(all.Items) != others+3 {
		t.Fatalf("the namespace has %d requests; want %d", len(all.Items), others+3)
	}

	from, leaseLists := len(counted.ListedRequests(0)), counted.LeaseLists()
	text := models.GenerateLockKey(target, "default")
	held, err := locker.GetLock(text)
	if err != nil || held == nil || held.Pull.Num != 7 {
		t.Fatalf("GetLock(%s) = %+v, %v; want pull 7's lock", text, held, err)
	}
	released, err := locker.Unlock(text)
	if err != nil || released == nil || released.Pull.Num != 7 {
		t.Fatalf("Unlock(%s) = %+v, %v; want pull 7's lock", text, released, err)
	}
	listed := counted.ListedRequests(from)
	for _, name := range listed {
		if !mayRead[name] {
			t.Errorf("GetLock and Unlock of the target listed LockRequest %s, another lock's", name)
		}
	}
	if len(listed) == 0 {
		t.Error("GetLock and Unlock listed no LockRequest; want the target's")
	}
	if n := counted.LeaseLists() - leaseLists; n != 0 {
		t.Errorf("GetLock and Unlock listed Leases %d times; want none (the key's is read by name)", n)
	}
	if lock, err := locker.GetLock(text); err != nil || lock != nil {
		t.Fatalf("after Unlock, GetLock(%s) = %+v, %v; want free (requests: %s)", text, lock, err, describeRequests(requests(t, ns)))
	}
	for name, st := range requests(t, ns) {
		if st.Request.Spec.Key() == key {
			t.Errorf("after Unlock, the target's request %s is left (%s)", name, st.State)
		}
	}
}

// waitHeldTwice waits until key is held through two requests (one owner's, the
// operator's re-entrancy).
func waitHeldTwice(ctx context.Context, t *testing.T, c *lockclient.Client, key lockkey.Key) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, testTimeout, true, func(ctx context.Context) (bool, error) {
		info, err := c.GetLock(ctx, key)
		return err == nil && info != nil && len(info.Holders) == 2, err
	})
	if err != nil {
		t.Fatalf("the owner's second request never held %s beside the first: %v", key, err)
	}
}

// requestByHand is a request of pull for path in acme/infra, made as a person
// makes one with kubectl: no label, no annotation.
func requestByHand(ns, name, path string, pull int32) *lockingv1alpha1.LockRequest {
	return &lockingv1alpha1.LockRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: path}, Workspace: "default",
			Pull: &lockingv1alpha1.PullRequestRef{Number: pull}, User: lockingv1alpha1.UserRef{Username: "dave"},
		},
	}
}

// TryLock refuses, naming the part, a project that no LockRequest can carry.
func TestTryLockInvalidProject(t *testing.T) {
	t.Parallel()
	a := newAdapter(t)
	for _, tc := range []struct {
		project   models.Project
		workspace string
		want      string
	}{
		{models.Project{RepoFullName: "acme/infra", Path: "modules/vpc/"}, "default", `path "modules/vpc/" is not clean`},
		{models.NewProject("acme/infra", ".", ""), "a/b", `workspace "a/b"`},
		{models.NewProject("acme/in fra", ".", ""), "default", "spec.project.repository"},
		{models.NewProject("runatlantis.io/global-apply-lock", ".", ""), "default", "global apply lock"},
	} {
		_, err := a.locker.TryLock(tc.project, tc.workspace, pullOf("acme/infra", 1, commitA), alice)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("TryLock(%+v, %q) = %v; want an error containing %q", tc.project, tc.workspace, err, tc.want)
		}
	}
	if reqs := requests(t, a.ns); len(reqs) != 0 {
		t.Errorf("refused calls left requests: %s", describeRequests(reqs))
	}
}
