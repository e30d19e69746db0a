package controller_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/leasebackend"
)

// TestStrippedCacheLosesNothingOnTheServer: the operator's cache drops labels,
// annotations and the fields it never reads from LockRequests and ProjectLocks
// (operator.CacheOptions). Its writes (status updates, finalizer patches) must
// never carry that loss to the server: through a queue, a grant and a hand-off,
// the requests keep every field their client wrote, and the ProjectLock keeps a
// label and an annotation a person added.
func TestStrippedCacheLosesNothingOnTheServer(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	full := func(name string, pull int32) *lockingv1alpha1.LockRequest {
		lr := makeLR(ns, name).pull(pull).obj()
		lr.Labels = map[string]string{"team": "platform", lockingv1alpha1.LockNameLabel: lockNameOf(lr)}
		lr.Annotations = map[string]string{"locking.runatlantis.io/atlantis-lock": `{"Pull":{"Num":1}}`}
		lr.Spec.Pull.Author, lr.Spec.Pull.HeadCommit = "alice", "3f2c1e9"
		lr.Spec.User.Teams = []string{"platform", "sre"}
		if err := k8s.Create(ctx, lr); err != nil {
			t.Fatal(err)
		}
		return lr.DeepCopy()
	}
	holder, waiter := full("holder", 1), full("waiter", 2)
	waitHeld(t, ns, holder.Name)
	waitQueued(t, ns, waiter.Name, 1)

	// The ProjectLock is created once a request waits, after the waiter's status.
	pl := waitPL(t, ns, lockNameOf(holder), plHeldBy(holder.Name, waiter.Name))
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"owner":"sre"},"annotations":{"note":"do not touch"}}}`))
	if err := k8s.Patch(ctx, pl, patch); err != nil {
		t.Fatal(err)
	}
	// A hand-off rewrites the ProjectLock's status and the waiter's status and
	// finalizers.
	if err := k8s.Delete(ctx, holder); err != nil {
		t.Fatal(err)
	}
	waitHeld(t, ns, waiter.Name)

	got := mustGetLR(t, ns, waiter.Name)
	if diff := cmp.Diff(waiter.Spec, got.Spec); diff != "" {
		t.Errorf("the waiter's spec changed on the server (-created +now):\n%s", diff)
	}
	if diff := cmp.Diff(waiter.Labels, got.Labels); diff != "" {
		t.Errorf("the waiter's labels changed on the server (-created +now):\n%s", diff)
	}
	if diff := cmp.Diff(waiter.Annotations, got.Annotations); diff != "" {
		t.Errorf("the waiter's annotations changed on the server (-created +now):\n%s", diff)
	}
	pl = waitPL(t, ns, lockNameOf(holder), func(pl *lockingv1alpha1.ProjectLock) error {
		if pl.Status.Holder == nil || pl.Status.Holder.Request != waiter.Name {
			return fmt.Errorf("holder %+v, want %s", pl.Status.Holder, waiter.Name)
		}
		return nil
	})
	if pl.Labels["owner"] != "sre" || pl.Annotations["note"] != "do not touch" {
		t.Errorf("the ProjectLock lost what a person added: labels %v, annotations %v", pl.Labels, pl.Annotations)
	}

	// The cached Lease has no labels while they are only the operator's own: the
	// hand-off's compare-and-swap, written from that copy, kept them on the
	// server. A label a person adds keeps the cached labels, and survives the
	// next hand-off.
	ownLabels := map[string]string{lockingv1alpha1.LockNameLabel: lockNameOf(holder),
		leasebackend.ManagedByLabel: leasebackend.ManagedByValue}
	if diff := cmp.Diff(ownLabels, mustGetLease(t, ns, lockNameOf(holder)).Labels); diff != "" {
		t.Errorf("the Lease's labels after the hand-off (-want +got):\n%s", diff)
	}
	third := full("third", 3)
	waitQueued(t, ns, third.Name, 1)
	lease := mustGetLease(t, ns, lockNameOf(holder))
	if err := k8s.Patch(ctx, lease, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"team":"sre"}}}`))); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, waiter); err != nil {
		t.Fatal(err)
	}
	waitHeld(t, ns, third.Name)
	ownLabels["team"] = "sre"
	if diff := cmp.Diff(ownLabels, mustGetLease(t, ns, lockNameOf(holder)).Labels); diff != "" {
		t.Errorf("the Lease's labels after a person added one and a hand-off (-want +got):\n%s", diff)
	}
}

func mustGetLease(t *testing.T, ns, name string) *coordinationv1.Lease {
	t.Helper()
	lease, err := getLease(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return lease
}
