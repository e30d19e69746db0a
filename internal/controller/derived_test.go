package controller

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// TestDerivedProjectLockStatusRoundTrips: a status as the reconciler writes it,
// dropped by the cache and restored on read, equals the one written, so an
// unchanged key's status is never written again; a ProjectLock whose status was
// never written stays without one.
func TestDerivedProjectLockStatusRoundTrips(t *testing.T) {
	key := lockkey.Key{Repository: "acme/infra", Path: "modules/vpc", Workspace: "default", ProjectName: "vpc"}
	pl := lockingv1alpha1.NewProjectLock("atlantis", key)
	ref := orchestrator.LockRef{Namespace: pl.Namespace, Name: pl.Name, Key: key}
	now := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	d := orchestrator.Decision{Holder: &orchestrator.Holder{Request: "pr42", Owner: "acme/infra#42", Pull: 42, User: "alice",
		AcquiredAt: now, FencingToken: "7"}}
	pl.Status = projectLockStatus(pl, ref, d, now)
	written := pl.DeepCopy()

	DropDerivedProjectLockStatus(pl)
	restoreDerivedStatus(pl)
	if diff := cmp.Diff(written.Status, pl.Status); diff != "" {
		t.Errorf("restored status (-written +restored):\n%s", diff)
	}
	if !equalProjectLockStatus(written.Status, projectLockStatus(pl, ref, d, now)) {
		t.Errorf("the same decision on the restored ProjectLock would write its status again")
	}

	fresh := lockingv1alpha1.NewProjectLock("atlantis", key)
	restoreDerivedStatus(fresh)
	if diff := cmp.Diff(lockingv1alpha1.ProjectLockStatus{}, fresh.Status); diff != "" {
		t.Errorf("a ProjectLock never written got a status (-want +got):\n%s", diff)
	}
}

// TestDerivedRequestStatusRoundTrips: every status applyState writes, dropped by
// the cache and restored on read, equals the one written; the Queued condition
// goes only when it follows from the Acquired one, and a Queued condition whose
// transition came apart from the Acquired one's stays in the cache.
func TestDerivedRequestStatusRoundTrips(t *testing.T) {
	key := lockkey.Key{Repository: "acme/infra", Path: "modules/vpc", Workspace: "default"}
	ref := orchestrator.LockRef{Namespace: "atlantis", Name: "x", Key: key}
	t0 := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	holder := &orchestrator.Holder{Request: "pr1", Owner: "acme/infra#1"}
	states := map[string]orchestrator.RequestState{
		"new":      {Phase: orchestrator.PhaseNew},
		"queued":   {Phase: orchestrator.PhaseQueued, Reason: lockingv1alpha1.ReasonQueued, Message: "waiting for acme/infra#1; position 1", Position: 1, EnqueuedAt: t0, BlockedBy: holder},
		"acquired": {Phase: orchestrator.PhaseAcquired, Reason: lockingv1alpha1.ReasonAcquired, Message: lockingv1alpha1.MessageHolds, AcquiredAt: t0, FencingToken: "7"},
		"terminal": {Phase: orchestrator.PhaseTerminal, Reason: lockingv1alpha1.ReasonQueueTimeout, Message: "waited 1m0s"},
	}
	for name, s := range states {
		lr := &lockingv1alpha1.LockRequest{Spec: lockingv1alpha1.LockRequestSpec{Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra"}}}
		applyState(lr, ref, s, t0)
		written := lr.DeepCopy()
		DropDerivedRequestStatus(lr)
		if n := len(lr.Status.Conditions); n != 1 {
			t.Errorf("%s: the cache keeps %d conditions, want the Acquired one alone", name, n)
		}
		RestoreDerivedRequestStatus(lr)
		written.Status.LockKey, written.Status.LockName, written.Status.Owner = "", "", ""
		if diff := cmp.Diff(written.Status, lr.Status); diff != "" {
			t.Errorf("%s: restored status (-written +restored):\n%s", name, diff)
		}
	}

	// Queued, then granted a second later: both conditions changed in that write.
	// Then a position change leaves both as they were. A status written by
	// someone else, whose Queued condition does not follow, keeps it.
	lr := &lockingv1alpha1.LockRequest{}
	applyState(lr, ref, states["queued"], t0)
	applyState(lr, ref, states["acquired"], t0.Add(time.Second))
	written := lr.DeepCopy()
	DropDerivedRequestStatus(lr)
	RestoreDerivedRequestStatus(lr)
	if diff := cmp.Diff(written.Status.Conditions, lr.Status.Conditions); diff != "" {
		t.Errorf("a waiter granted: restored conditions (-written +restored):\n%s", diff)
	}
	lr.Status.Conditions[1].LastTransitionTime = metav1.NewTime(t0.Add(-time.Hour))
	apart := lr.DeepCopy()
	DropDerivedRequestStatus(lr)
	if diff := cmp.Diff(apart.Status.Conditions, lr.Status.Conditions); diff != "" {
		t.Errorf("a Queued condition that changed at another time was dropped (-want +got):\n%s", diff)
	}
	lr.Status.Conditions[1].Message = "edited"
	DropDerivedRequestStatus(lr)
	if len(lr.Status.Conditions) != 2 {
		t.Errorf("a Queued condition someone else wrote was dropped")
	}
}
