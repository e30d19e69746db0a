package main

import (
	"context"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/runatlantis/atlantis-lock-operator/internal/scheme"
)

// TestFloorArbiterGrantsInArrivalOrder drives the hand-off floor's arbiter with the
// events its watch would deliver and reads the Lease it writes: the first request
// is granted at once, the others in the order they came, a waiter that leaves is
// skipped, and a waiter's create is marked seen as soon as it is handled.
func TestFloorArbiterGrantsInArrivalOrder(t *testing.T) {
	ctx := context.Background()
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "k"}}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(lease).Build()
	a := &floorArbiter{c: c, repository: "bench/k", lease: lease.DeepCopy(), seen: map[string]chan struct{}{}, ended: make(chan struct{})}
	if err := c.Get(ctx, client.ObjectKeyFromObject(lease), a.lease); err != nil {
		t.Fatal(err)
	}

	holderIs := func(want string) {
		t.Helper()
		var got coordinationv1.Lease
		if err := c.Get(ctx, client.ObjectKeyFromObject(lease), &got); err != nil {
			t.Fatal(err)
		}
		if id := got.Spec.HolderIdentity; id == nil || *id != want || got.Spec.AcquireTime == nil {
			t.Fatalf("the Lease names %v (acquired %v), want %s", id, got.Spec.AcquireTime, want)
		}
	}
	handle := func(typ watch.EventType, name string) {
		t.Helper()
		if err := a.handle(ctx, typ, name); err != nil {
			t.Fatalf("%s %s: %v", typ, name, err)
		}
	}

	handle(watch.Added, "r0")
	holderIs("r0")
	for _, name := range []string{"r1", "r2", "r3"} {
		handle(watch.Added, name)
		select {
		case <-a.seenChan(name):
		default:
			t.Fatalf("%s handled but not marked seen", name)
		}
	}
	holderIs("r0")

	handle(watch.Deleted, "r1") // a waiter leaves the queue: no grant
	holderIs("r0")
	handle(watch.Deleted, "r0")
	holderIs("r2")
	handle(watch.Deleted, "r2")
	holderIs("r3")
	handle(watch.Deleted, "r3")
	if a.holder != "" || len(a.queue) != 0 {
		t.Fatalf("after every request left: holder %q, queue %v; want none", a.holder, a.queue)
	}
}

// TestFloorArbiterFailsOnAConflict checks that the arbiter's grant is a
// compare-and-swap: a Lease written by someone else since the arbiter's last write
// is a failure of the floor, not a silent overwrite.
func TestFloorArbiterFailsOnAConflict(t *testing.T) {
	ctx := context.Background()
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "k"}}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(lease).Build()
	a := &floorArbiter{c: c, repository: "bench/k", lease: &coordinationv1.Lease{}, seen: map[string]chan struct{}{}, ended: make(chan struct{})}
	if err := c.Get(ctx, client.ObjectKeyFromObject(lease), a.lease); err != nil {
		t.Fatal(err)
	}
	other := a.lease.DeepCopy()
	other.Labels = map[string]string{"written-by": "someone-else"}
	if err := c.Update(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := a.handle(ctx, watch.Added, "r0"); err == nil {
		t.Fatal("granting over a Lease written since: no error, want a conflict")
	}
}
