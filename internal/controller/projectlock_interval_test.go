package controller_test

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// TestProjectLockStatusIntervalAndPinnedForceUnlock: within status_update_interval
// of its last status write, a ProjectLock keeps showing the hold it showed while
// the key changes hands; deleting it then (kubectl delete projectlock, seeing that
// hold) revokes nobody, because the force unlock is pinned to the fencing token the
// deleted status shows. Once the interval is over, the next change is shown, and a
// force unlock of the hold shown revokes it.
func TestProjectLockStatusIntervalAndPinnedForceUnlock(t *testing.T) {
	ns := isolatedNamespace(t)
	const interval = 10 * time.Second
	fc := testingclock.NewFakeClock(time.Now().Truncate(time.Second))
	startIsolatedOperator(t, ns, fc, orchestrator.Config{
		DefaultQueueTimeout:   orchestrator.NoQueueTimeout,
		MaxQueueLength:        10,
		DeadlockCheckInterval: time.Hour,
	}, func(c *config.Config) {
		c.ProjectLockDelay, c.IdleLeaseRetention, c.StatusUpdateInterval = 0, 0, interval
	})

	first := makeLR(ns, "first").pull(1).create(t)
	waitHeld(t, ns, first.Name)
	name := lockNameOf(first)
	waitPL(t, ns, name, plHeldBy(first.Name)) // the ProjectLock's first status, at once
	fc.Step(interval)
	second := makeLR(ns, "second").pull(2).create(t)
	waitQueued(t, ns, second.Name, 1)
	shown := waitPL(t, ns, name, plHeldBy(first.Name, second.Name))

	// The hand-off is written to the requests at once, not to the ProjectLock.
	deleteObj(t, first)
	second = waitAcquired(t, ns, second.Name)
	if pl, err := getPL(ns, name); err != nil || pl.Status.Holder == nil || pl.Status.Holder.Request != first.Name {
		t.Fatalf("the ProjectLock within its interval after the hand-off: %+v, %v; want it still showing %s", pl.Status.Holder, err, first.Name)
	}

	// A force unlock of what it shows is for first's hold, which has ended.
	deleteObj(t, shown)
	waitPLReplaced(t, ns, name, shown.UID)
	if lr := mustGetLR(t, ns, second.Name); checkAcquired(lr) != nil || lr.Status.FencingToken != second.Status.FencingToken {
		t.Fatalf("second after a force unlock of first's ended hold: %v; want its hold untouched", checkAcquired(lr))
	}

	// The recreated ProjectLock shows second at once (its first write), and a
	// change once its interval is over is shown at once too. (Nothing is stepped
	// while a write waits: the reconcile asks to be woken after the interval in
	// real time, which a fake clock does not follow.)
	waitPL(t, ns, name, plHeldBy(second.Name))
	fc.Step(interval)
	third := makeLR(ns, "third").pull(3).create(t)
	waitQueued(t, ns, third.Name, 1)
	shown = waitPL(t, ns, name, plHeldBy(second.Name, third.Name))

	// A force unlock of the hold shown revokes it.
	deleteObj(t, shown)
	waitEnded(t, ns, second.Name, lockingv1alpha1.ReasonRevoked)
	waitAcquired(t, ns, third.Name)
}

// waitPLReplaced waits until the ProjectLock uid of name is gone: the operator has
// served its deletion (it may have created a new one since).
func waitPLReplaced(t *testing.T, ns, name string, uid types.UID) {
	t.Helper()
	eventually(t, "ProjectLock "+name+" replaced", func() error {
		pl, err := getPL(ns, name)
		if err == nil && pl.UID == uid {
			return fmt.Errorf("ProjectLock %s (uid %s) is still there, deleting since %v", name, uid, pl.DeletionTimestamp)
		}
		return nil
	})
}
