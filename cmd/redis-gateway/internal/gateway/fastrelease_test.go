package gateway_test

// The fast release of lock keys (keyspace/release.go): DEL and the unlock script
// find the holder through the fast read and count the owner's other requests in the
// gateway's cache once it has seen the delete, instead of listing the namespace's
// LockRequests from the API server; an owner that holds through a second request,
// or a cache that does not see the delete, hands the release to pkg/atlantis.

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/runatlantis/atlantis/server/events/models"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/keyspace"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/kv"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

// releaseSpace is a key space whose pkg/atlantis client counts its lists of
// LockRequests, with the fast path over a watch cache of a namespace of its own. When
// attached, the cache reports its deletions to the fast release; when not, the
// fast release never learns that the cache saw its delete.
type releaseSpace struct {
	*keyspace.Space
	counted *testenv.ReadCounter
	direct  client.WithWatch
	ns      string
}

func newReleaseSpace(t *testing.T, attached bool) *releaseSpace {
	t.Helper()
	ns := newNamespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	kc, err := client.NewWithWatch(env.Config, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	lrCache, err := cache.New(env.Config, cache.Options{Scheme: kc.Scheme(), DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := keyspace.IndexByKey(ctx, lrCache); err != nil {
		t.Fatal(err)
	}
	deletions := keyspace.NewDeletions()
	informer, err := lrCache.GetInformer(ctx, &lockingv1alpha1.LockRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if attached {
		if _, err := informer.AddEventHandler(deletions.Handler()); err != nil {
			t.Fatal(err)
		}
	}
	go func() { _ = lrCache.Start(ctx) }()
	if !lrCache.WaitForCacheSync(ctx) {
		t.Fatal("the LockRequest cache did not sync")
	}
	counted := &testenv.ReadCounter{WithWatch: kc}
	fast := &keyspace.Fast{Cached: lrCache, Direct: kc, Namespace: ns, Deletions: deletions}
	return &releaseSpace{Space: keyspace.New(lockclient.New(counted, ns), kv.New(kc, ns), fast), counted: counted, direct: kc, ns: ns}
}

// lock takes key for pull through the key space, as Atlantis's TryLock's SET does.
func (s *releaseSpace) lock(t *testing.T, p models.Project, pull int) {
	t.Helper()
	value, err := json.Marshal(models.ProjectLock{Project: p, Workspace: "default", Pull: pullRequest(p.RepoFullName, pull, "abc"),
		User: models.User{Username: "u"}, Time: time.Date(2026, 12, 7, 17, 0, pull, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(context.Background(), lockKeyOf(p), value); err != nil {
		t.Fatalf("taking %s for pull %d: %v", lockKeyOf(p), pull, err)
	}
}

// requestsLeft counts the namespace's LockRequests that the API server still has.
func (s *releaseSpace) requestsLeft(t *testing.T) int {
	t.Helper()
	var list lockingv1alpha1.LockRequestList
	if err := s.direct.List(context.Background(), &list, client.InNamespace(s.ns)); err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

// heldBy returns the pull that holds p's key by the full read (0: free).
func (s *releaseSpace) heldBy(t *testing.T, p models.Project) int {
	t.Helper()
	full := keyspace.New(lockclient.New(s.direct, s.ns), kv.New(s.direct, s.ns), nil)
	data, found, err := full.Get(context.Background(), lockKeyOf(p))
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		return 0
	}
	var lock models.ProjectLock
	if err := json.Unmarshal(data, &lock); err != nil {
		t.Fatal(err)
	}
	return lock.Pull.Num
}

// waitAcquired waits until request name says Acquired.
func (s *releaseSpace) waitAcquired(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := s.direct.Watch(ctx, &lockingv1alpha1.LockRequestList{}, client.InNamespace(s.ns), client.MatchingFields{"metadata.name": name})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if lr, ok := ev.Object.(*lockingv1alpha1.LockRequest); ok && lockclient.StatusOf(lr).State == lockclient.StateAcquired {
			return
		}
	}
	t.Fatalf("LockRequest %s was not granted within 30s", name)
}

func lockKeyOf(p models.Project) string {
	return keyspace.LockPrefix + models.GenerateLockKey(p, "default")
}

func TestFastReleaseListsNothing(t *testing.T) {
	s, p := newReleaseSpace(t, true), models.NewProject("acme/infra", "modules/vpc", "")
	ctx := context.Background()

	s.lock(t, p, 1)
	before := s.counted.RequestLists()
	released, err := s.Del(ctx, lockKeyOf(p))
	if err != nil || !released {
		t.Fatalf("DEL of the key pull 1 holds: released %v, error %v", released, err)
	}
	if n := s.counted.RequestLists() - before; n != 0 {
		t.Fatalf("DEL of a key held through one request listed LockRequests %d times; want none", n)
	}
	if pull := s.heldBy(t, p); pull != 0 {
		t.Fatalf("after DEL the key is held by pull %d; want free", pull)
	}
	if n := s.requestsLeft(t); n != 0 {
		t.Fatalf("%d LockRequests left after DEL; want none", n)
	}
	if released, err := s.Del(ctx, lockKeyOf(p)); err != nil || released {
		t.Fatalf("DEL of the free key: released %v, error %v; want nothing", released, err)
	}

	// The unlock script of another pull releases nothing; the holder's releases.
	script := unlockScript(t)
	s.lock(t, p, 2)
	before = s.counted.RequestLists()
	if _, found, err := s.Eval(ctx, script, []string{lockKeyOf(p)}, []string{"3"}); err != nil || found {
		t.Fatalf("the unlock script of pull 3 on the key of pull 2: found %v, error %v; want nothing", found, err)
	}
	if pull := s.heldBy(t, p); pull != 2 {
		t.Fatalf("after the unlock script of pull 3 the key is held by pull %d; want 2", pull)
	}
	data, found, err := s.Eval(ctx, script, []string{lockKeyOf(p)}, []string{"2"})
	if err != nil || !found {
		t.Fatalf("the unlock script of pull 2 on its own key: found %v, error %v", found, err)
	}
	var lock models.ProjectLock
	if err := json.Unmarshal(data, &lock); err != nil || lock.Pull.Num != 2 {
		t.Fatalf("the unlock script answered %s (%v); want the lock of pull 2", data, err)
	}
	if n := s.counted.RequestLists() - before; n != 0 {
		t.Fatalf("the unlock scripts listed LockRequests %d times; want none", n)
	}
	if pull := s.heldBy(t, p); pull != 0 {
		t.Fatalf("after the unlock script of pull 2 the key is held by pull %d; want free", pull)
	}
}

// TestFastReleaseOfAnOwnerWithTwoRequests: pull 7 holds the key through Atlantis's
// request and a second one made by hand (re-entrant); DEL releases both,
// through pkg/atlantis's full release after the fast one counted the second.
func TestFastReleaseOfAnOwnerWithTwoRequests(t *testing.T) {
	s, p := newReleaseSpace(t, true), models.NewProject("acme/infra", "modules/rds", "")
	ctx := context.Background()

	s.lock(t, p, 7)
	// The second request, made by hand with a name of its own (lockclient would
	// answer with the first): the operator grants it beside the first.
	second := &lockingv1alpha1.LockRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "pr7-by-hand"},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "modules/rds"}, Workspace: "default",
			Pull: &lockingv1alpha1.PullRequestRef{Number: 7}, User: lockingv1alpha1.UserRef{Username: "oncall"},
		},
	}
	if err := s.direct.Create(ctx, second); err != nil {
		t.Fatal(err)
	}
	s.waitAcquired(t, second.Name)
	s.releaseThroughTheFullRelease(t, p, "DEL of a key held through two requests")
}

// TestFastReleaseWhenTheCacheDoesNotSeeTheDelete: without word of the delete from
// the cache, the fast release hands the rest to the full release after a while,
// and the key is free all the same.
func TestFastReleaseWhenTheCacheDoesNotSeeTheDelete(t *testing.T) {
	s, p := newReleaseSpace(t, false), models.NewProject("acme/infra", "modules/eks", "")

	s.lock(t, p, 8)
	s.releaseThroughTheFullRelease(t, p, "DEL whose delete the cache never reported")
}

// releaseThroughTheFullRelease DELs p's key and checks that the fast release handed
// the rest to pkg/atlantis's full release (what says why it should have), and that
// the key is then free and its requests gone.
func (s *releaseSpace) releaseThroughTheFullRelease(t *testing.T, p models.Project, what string) {
	t.Helper()
	before := s.counted.RequestLists()
	released, err := s.Del(context.Background(), lockKeyOf(p))
	if err != nil || !released {
		t.Fatalf("%s: released %v, error %v", what, released, err)
	}
	if s.counted.RequestLists() == before {
		t.Fatalf("%s did not hand the rest to the full release", what)
	}
	if pull := s.heldBy(t, p); pull != 0 {
		t.Fatalf("after %s the key is held by pull %d; want free", what, pull)
	}
	if n := s.requestsLeft(t); n != 0 {
		t.Fatalf("%d LockRequests left after %s; want none", n, what)
	}
}
