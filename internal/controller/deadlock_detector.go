package controller

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// DeadlockDetector is the leader-only periodic scan of the wait-for graph. It marks
// one victim per cycle in the orchestrator and wakes the victim's lock, whose next
// reconcile fails the victim with DeadlockVictim.
type DeadlockDetector struct {
	// Orchestrator holds the wait-for graph.
	Orchestrator *orchestrator.LockOrchestrator
	// Wake is the lock reconciler's wake-up channel.
	Wake chan<- event.GenericEvent
	// Interval between scans.
	Interval time.Duration
}

var (
	_ manager.Runnable               = (*DeadlockDetector)(nil)
	_ manager.LeaderElectionRunnable = (*DeadlockDetector)(nil)
)

// NeedLeaderElection makes the detector run on the leader only.
func (d *DeadlockDetector) NeedLeaderElection() bool { return true }

// Start scans every Interval until ctx ends.
func (d *DeadlockDetector) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("deadlock-detector")
	ticker := d.Orchestrator.Clock().NewTicker(d.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		}
		for _, dl := range d.Orchestrator.DetectDeadlocks() {
			logger.Info("deadlock detected; failing one waiting request",
				"cycle", dl.Describe(), "victim", dl.Victim.Request, "lock", dl.Victim.Lock.String())
			pl := &lockingv1alpha1.ProjectLock{}
			pl.Namespace, pl.Name = dl.Victim.Lock.Namespace, dl.Victim.Lock.Name
			select {
			case d.Wake <- event.GenericEvent{Object: pl}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}
