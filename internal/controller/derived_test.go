package controller

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// TestProjectLockStatusKnownByItsDigest: the operator caches no ProjectLock status
// and knows it by what it wrote or read (shownStatus). A status as the API server
// stores it (a JSON round trip), known from that copy, has the digest of the same
// decision computed again later, so an unchanged key's status is never written
// again; another holder changes it; the Locked condition keeps its transition
// time while the key stays held.
func TestProjectLockStatusKnownByItsDigest(t *testing.T) {
	key := lockkey.Key{Repository: "acme/infra", Path: "modules/vpc", Workspace: "default", ProjectName: "vpc"}
	ref := orchestrator.LockRef{Namespace: "atlantis", Name: key.ObjectName(), Key: key}
	t0 := time.Date(2026, 12, 6, 22, 0, 0, 123456789, time.UTC)
	held := func(request string) orchestrator.Decision {
		return orchestrator.Decision{QueueLength: 1,
			Holder: &orchestrator.Holder{Request: request, Owner: "acme/infra#42", Pull: 42, PullURL: "https://x/pull/42", User: "alice",
				AcquiredAt: t0, ExpiresAt: t0.Add(time.Hour), FencingToken: "7"},
			Outcomes: []orchestrator.Outcome{{Request: &orchestrator.Request{ID: "pr43", Owner: "acme/infra#43", Priority: 1},
				State: orchestrator.RequestState{Phase: orchestrator.PhaseQueued, EnqueuedAt: t0.Add(time.Millisecond)}}}}
	}
	stored := func(st lockingv1alpha1.ProjectLockStatus) shown {
		t.Helper()
		pl := lockingv1alpha1.NewProjectLock(ref.Namespace, key)
		pl.UID, pl.ResourceVersion, pl.Status = "u1", "5", st
		data, err := json.Marshal(pl)
		if err != nil {
			t.Fatal(err)
		}
		back := &lockingv1alpha1.ProjectLock{}
		if err := json.Unmarshal(data, back); err != nil {
			t.Fatal(err)
		}
		return shownOf(back, back.Status, time.Time{})
	}

	known := stored(projectLockStatus(2, ref, held("pr42"), t0, nil))
	if known.token != "7" || known.locked != metav1.ConditionTrue || known.version != "5" {
		t.Errorf("known: token %q, locked %q, version %q; want 7, True, 5", known.token, known.locked, known.version)
	}
	later := t0.Add(5 * time.Second)
	again := projectLockStatus(2, ref, held("pr42"), later, known.lockedCondition())
	if statusDigest(again) != known.digest {
		t.Errorf("the same decision 5s later has another digest: it would be written again\n%+v", again)
	}
	if got := again.Conditions[0].LastTransitionTime.Unix(); got != t0.Unix() {
		t.Errorf("Locked transition time %d, want the first grant's %d", got, t0.Unix())
	}
	if other := projectLockStatus(2, ref, held("pr44"), later, known.lockedCondition()); statusDigest(other) == known.digest {
		t.Errorf("another holder has the same digest: it would never be shown")
	}
	free := projectLockStatus(2, ref, orchestrator.Decision{}, later, known.lockedCondition())
	if c := free.Conditions[0]; c.Status != metav1.ConditionFalse || !c.LastTransitionTime.Time.Equal(later) {
		t.Errorf("a key gone free: Locked %s since %v, want False since %v", c.Status, c.LastTransitionTime, later)
	}
	if fresh := stored(lockingv1alpha1.ProjectLockStatus{}); fresh.lockedCondition() != nil || fresh.token != "" {
		t.Errorf("a ProjectLock never written is known with a Locked condition or a token: %+v", fresh)
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
		"acquired": {Phase: orchestrator.PhaseAcquired, Reason: lockingv1alpha1.ReasonAcquired, Message: lockingv1alpha1.MessageHeld, AcquiredAt: t0, FencingToken: "7"},
		"terminal": {Phase: orchestrator.PhaseTerminal, Reason: lockingv1alpha1.ReasonQueueTimeout, Message: "waited 1m0s"},
	}
	// A holder and a waiter keep none: the rest of the status says them.
	cachedConditions := map[string]int{"new": 1, "queued": 0, "acquired": 0, "terminal": 1}
	for name, s := range states {
		lr := &lockingv1alpha1.LockRequest{Spec: lockingv1alpha1.LockRequestSpec{Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra"}}}
		applyState(lr, ref, s, t0)
		written := lr.DeepCopy()
		DropDerivedRequestStatus(lr)
		if n := len(lr.Status.Conditions); n != cachedConditions[name] {
			t.Errorf("%s: the cache keeps %d conditions, want %d", name, n, cachedConditions[name])
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
	if len(lr.Status.Conditions) != 2 {
		t.Fatalf("a waiter granted a second after it queued: %d conditions restored, want 2", len(lr.Status.Conditions))
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

	// A grant written in the second after the grant: the Acquired condition's
	// transition is not the acquired time, and stays.
	late := &lockingv1alpha1.LockRequest{}
	applyState(late, ref, states["acquired"], t0.Add(time.Second))
	DropDerivedRequestStatus(late)
	if n := len(late.Status.Conditions); n != 1 {
		t.Errorf("a grant written a second later: the cache keeps %d conditions, want the Acquired one", n)
	}
}
