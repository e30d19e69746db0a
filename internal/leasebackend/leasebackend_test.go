package leasebackend_test

import (
	"context"
	"errors"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/runatlantis/atlantis-lock-operator/internal/leasebackend"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
	"github.com/runatlantis/atlantis-lock-operator/internal/scheme"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

var ref = orchestrator.LockRef{Namespace: "ns", Name: "acme-infra-default-x", Key: lockkey.New("acme/infra", ".", "default", "")}

// newBackend returns a Backend whose cache never catches up (an empty fake client)
// over an API server (another fake client) that it writes to and confirms with.
func newBackend(t *testing.T) (*leasebackend.Backend, client.Client) {
	t.Helper()
	return newBackendOver(fake.NewClientBuilder().WithScheme(scheme.New()).Build())
}

func held() orchestrator.Record {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	return orchestrator.Record{HolderID: "a/uid-a", Owner: "acme/infra#1", AcquiredAt: now, RenewedAt: now}
}

// TestGetSeesALeaseDeletedBeforeTheCacheCaughtUp: the backend answers from its own
// copy of a Lease it created while the cache lags; once the Lease is deleted on the
// API server, that copy must not stand in for it.
func TestGetSeesALeaseDeletedBeforeTheCacheCaughtUp(t *testing.T) {
	ctx := context.Background()
	b, api := newBackend(t)
	version, err := b.Write(ctx, ref, held())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := b.Get(ctx, ref)
	if err != nil || rec.HolderID != "a/uid-a" || rec.Version != version {
		t.Fatalf("Get while the cache lags: %+v %v; want the record written, version %s", rec, err, version)
	}

	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name}}
	if err := api.Delete(ctx, lease); err != nil {
		t.Fatal(err)
	}
	rec, err = b.Get(ctx, ref)
	if err != nil || !rec.Free() || rec.Version != "" {
		t.Errorf("Get after the Lease was deleted: %+v %v; want no record", rec, err)
	}
	if rec, err = b.GetLatest(ctx, ref); err != nil || !rec.Free() {
		t.Errorf("GetLatest after the Lease was deleted: %+v %v; want no record", rec, err)
	}
}

// TestALeaseTheOperatorDidNotMakeIsNotAConflict: a Lease with the lock's name but
// without the operator's label is reported as ErrNotManaged, by Write (its create
// finds the name taken) and by GetLatest, never as a conflict to retry at once.
func TestALeaseTheOperatorDidNotMakeIsNotAConflict(t *testing.T) {
	ctx := context.Background()
	b, api := newBackend(t)
	foreign := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name}}
	if err := api.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	_, err := b.Write(ctx, ref, held())
	if !errors.Is(err, leasebackend.ErrNotManaged) || errors.Is(err, orchestrator.ErrConflict) {
		t.Errorf("Write over a foreign Lease: %v; want ErrNotManaged and no conflict", err)
	}
	if _, err := b.GetLatest(ctx, ref); !errors.Is(err, leasebackend.ErrNotManaged) {
		t.Errorf("GetLatest of a foreign Lease: %v; want ErrNotManaged", err)
	}
}

// TestACreateRaceIsAConflict: a Lease of the operator's made by someone else first
// (another operator) is a conflict: decide again.
func TestACreateRaceIsAConflict(t *testing.T) {
	ctx := context.Background()
	b, api := newBackend(t)
	other, _ := newBackendOver(api)
	if _, err := other.Write(ctx, ref, held()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write(ctx, ref, held()); !errors.Is(err, orchestrator.ErrConflict) {
		t.Errorf("Write after another operator created the Lease: %v; want ErrConflict", err)
	}
}

// newBackendOver returns a Backend over api whose cache never catches up.
func newBackendOver(api client.Client) (*leasebackend.Backend, client.Client) {
	cache := fake.NewClientBuilder().WithScheme(scheme.New()).Build()
	return leasebackend.New(cache, api, api), api
}

// TestSeenDropsTheCopyOnceTheCacheShowsTheWrite: while the cache lags, Get answers
// from the backend's copy of its last write; a cache event of an older version
// keeps that copy, one of the written version drops it (Get answers from the cache
// again), so a key decided about no more keeps no copy.
func TestSeenDropsTheCopyOnceTheCacheShowsTheWrite(t *testing.T) {
	ctx := context.Background()
	api := fake.NewClientBuilder().WithScheme(scheme.New()).Build()
	cache := fake.NewClientBuilder().WithScheme(scheme.New()).Build()
	b := leasebackend.New(cache, api, api)
	first, err := b.Write(ctx, ref, held())
	if err != nil {
		t.Fatal(err)
	}
	// The cache shows the create (the same object, at the same version).
	lease := &coordinationv1.Lease{}
	if err := api.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, lease); err != nil {
		t.Fatal(err)
	}
	cached := lease.DeepCopy()
	cached.ResourceVersion = ""
	if err := cache.Create(ctx, cached); err != nil {
		t.Fatal(err)
	}
	if cached.ResourceVersion != first {
		t.Fatalf("the cache's copy is at version %s, the API's at %s: the test needs them equal", cached.ResourceVersion, first)
	}
	renewed := held()
	renewed.Version = first
	second, err := b.Write(ctx, ref, renewed)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Get(ctx, ref); got.Version != second {
		t.Fatalf("Get while the cache shows %s: version %s, want the copy of the write, %s", first, got.Version, second)
	}
	b.Seen(cached)
	if got, _ := b.Get(ctx, ref); got.Version != second {
		t.Errorf("Get after the cache delivered the older %s: version %s, want the copy, %s, kept", first, got.Version, second)
	}
	written := cached.DeepCopy()
	written.ResourceVersion = second
	b.Seen(written)
	if got, _ := b.Get(ctx, ref); got.Version != first {
		t.Errorf("Get after the cache delivered the write: version %s, want the cache's %s (the copy dropped)", got.Version, first)
	}
}
