package gateway_test

// The fast read path of lock keys (keyspace/read.go) with a cache that is behind:
// its answers must be the API server's, never the stale cache's.

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/runatlantis/atlantis/server/events/models"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/keyspace"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/kv"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/resp"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

// snapshot is a client.Reader that answers LockRequest lists from a list taken
// earlier: a watch cache that has not caught up.
type snapshot struct {
	client.Reader
	list lockingv1alpha1.LockRequestList
}

func (s *snapshot) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	s.list.DeepCopyInto(list.(*lockingv1alpha1.LockRequestList))
	return nil
}

func TestFastReadWithAStaleCache(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	kc, err := client.NewWithWatch(env.Config, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	lc := lockclient.New(kc, ns)
	full := keyspace.New(lc, kv.New(kc, ns), nil)
	stale := &snapshot{Reader: kc}
	fast := keyspace.New(lc, kv.New(kc, ns), &keyspace.Fast{Cached: stale, Direct: kc, Namespace: ns})

	p := models.NewProject("group/sub/repo", "modules/vpc", "")
	key := "pr/" + models.GenerateLockKey(p, "default")
	value := func(pull int) []byte {
		data, err := json.Marshal(models.ProjectLock{Project: p, Workspace: "default", Pull: pullRequest("group/sub/repo", pull, "abc"),
			User: models.User{Username: "u"}, Time: time.Date(2026, 11, 25, 10, 0, pull, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	takeSnapshot := func() {
		t.Helper()
		stale.list = lockingv1alpha1.LockRequestList{}
		if err := kc.List(ctx, &stale.list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
	}
	// check compares the fast read with the full read, and with the pull wanted
	// (0: free).
	check := func(what string, wantPull int) {
		t.Helper()
		got, gotFound, err := fast.Get(ctx, key)
		if err != nil {
			t.Fatalf("%s: fast Get: %v", what, err)
		}
		want, wantFound, err := full.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if gotFound != wantFound || string(got) != string(want) {
			t.Fatalf("%s: the fast read answered %v %s, the full read %v %s", what, gotFound, got, wantFound, want)
		}
		var lock models.ProjectLock
		if gotFound {
			if err := json.Unmarshal(got, &lock); err != nil {
				t.Fatal(err)
			}
		}
		if lock.Pull.Num != wantPull {
			t.Fatalf("%s: held by pull %d, want %d", what, lock.Pull.Num, wantPull)
		}
	}

	// The cache is up to date: free, then held.
	takeSnapshot()
	check("free, cache up to date", 0)
	if err := fast.Set(ctx, key, value(1)); err != nil {
		t.Fatal(err)
	}
	takeSnapshot()
	check("held by pull 1, cache up to date", 1)

	// The cache still shows pull 1, which let go; pull 2 holds now.
	if _, err := fast.Del(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := fast.Set(ctx, key, value(2)); err != nil {
		t.Fatal(err)
	}
	check("held by pull 2, the cache says pull 1", 2)

	// The cache shows no holder; pull 2 holds.
	stale.list = lockingv1alpha1.LockRequestList{}
	check("held by pull 2, the cache says free", 2)
	// SET asks the operator without a look at the holder when the cache shows the
	// key free (atlantis.Locker.TryLockSeenFree); the operator refuses pull 3.
	var refused *resp.Error
	if err := fast.Set(ctx, key, value(3)); !errors.As(err, &refused) || refused.Code != resp.CodeLocked {
		t.Fatalf("SET by pull 3 of the key pull 2 holds, the cache says free: %v; want %s", err, resp.CodeLocked)
	}
	check("held by pull 2 after pull 3's SET, the cache says free", 2)

	// The cache shows pull 2; the key is free.
	takeSnapshot()
	if _, err := fast.Del(ctx, key); err != nil {
		t.Fatal(err)
	}
	check("free, the cache says pull 2", 0)
}

// keptLease answers the Get of one Lease with a Lease of its own and every other
// read from the API server: the Lease the operator keeps for idle_lease_retention
// after its holder let go, which still names the request that is gone.
type keptLease struct {
	client.Reader
	lease *coordinationv1.Lease
}

func (k *keptLease) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if l, ok := obj.(*coordinationv1.Lease); ok && key.Name == k.lease.Name {
		k.lease.DeepCopyInto(l)
		return nil
	}
	return k.Reader.Get(ctx, key, obj, opts...)
}

// TestFastReadOfAKeptLease: a key whose Lease names a request that is gone is free,
// and the fast read says so from that absence, without the full read's lists (which
// wait for the API server's watch cache: Atlantis's TryLock right after an Unlock
// read that Lease). A Lease naming a request that exists still goes to the full read.
func TestFastReadOfAKeptLease(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	kc, err := client.NewWithWatch(env.Config, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	counted := &testenv.ReadCounter{WithWatch: kc}
	lc := lockclient.New(counted, ns)
	p := models.NewProject("acme/infra", "stacks/kept", "")
	key := "pr/" + models.GenerateLockKey(p, "default")
	kept := &keptLease{Reader: kc, lease: &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: lockkey.New("acme/infra", "stacks/kept", "default", "").ObjectName()},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("acme-infra-stacks-kept-pr5/5a1f0000-0000-4000-8000-000000000005")},
	}}
	empty := &snapshot{Reader: kc}
	fast := keyspace.New(lc, kv.New(kc, ns), &keyspace.Fast{Cached: empty, Direct: kept, Namespace: ns})

	if _, found, err := fast.Get(ctx, key); err != nil || found {
		t.Fatalf("the Lease names a request that is gone: found %v, error %v; want free", found, err)
	}
	if n := counted.RequestLists(); n != 0 {
		t.Fatalf("the fast read of a key whose Lease names a gone request listed LockRequests %d times; want none", n)
	}

	// Pull 5 takes the key (the operator writes the real Lease); the kept Lease now
	// names its request, and the cache, still empty, says free.
	lock, err := json.Marshal(models.ProjectLock{Project: p, Workspace: "default", Pull: pullRequest("acme/infra", 5, "abc"),
		User: models.User{Username: "u"}, Time: time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if err := fast.Set(ctx, key, lock); err != nil {
		t.Fatal(err)
	}
	if n := counted.LeaseGets(); n != 0 {
		t.Fatalf("SET of a key the cache shows free read %d Leases; want none (Atlantis's GET has just looked)", n)
	}
	var real coordinationv1.Lease
	if err := kc.Get(ctx, client.ObjectKeyFromObject(kept.lease), &real); err != nil {
		t.Fatal(err)
	}
	kept.lease = &real
	before := counted.RequestLists()
	got, found, err := fast.Get(ctx, key)
	if err != nil || !found {
		t.Fatalf("held by pull 5, the cache says free: found %v, error %v", found, err)
	}
	var holder models.ProjectLock
	if err := json.Unmarshal(got, &holder); err != nil || holder.Pull.Num != 5 {
		t.Fatalf("held by pull 5: answered %s (%v)", got, err)
	}
	if counted.RequestLists() == before {
		t.Fatal("a Lease naming a request that exists, which the cache does not show, was answered without the full read")
	}
}
