package controller

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
