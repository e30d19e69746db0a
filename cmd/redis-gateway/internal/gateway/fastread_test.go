package gateway_test

// The fast read path of lock keys (keyspace/read.go) with a cache that is behind:
// its answers must be the API server's, never the stale cache's.

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/runatlantis/atlantis/server/events/models"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/keyspace"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/kv"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
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

	// The cache shows pull 2; the key is free.
	takeSnapshot()
	if _, err := fast.Del(ctx, key); err != nil {
		t.Fatal(err)
	}
	check("free, the cache says pull 2", 0)
}
