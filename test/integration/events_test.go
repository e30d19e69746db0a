package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/events"
)

// TestEventsTellTheStory runs a queue, a hand-off and a deadlock, and finds the
// Kubernetes Events a person reads in `kubectl describe`.
func TestEventsTellTheStory(t *testing.T) {
	ns := newNamespace(t, "events")
	w := watchRequests(t, ns)
	ctx := deadline(t, time.Minute)
	cfg := config.Default()
	cfg.DeadlockCheckInterval = 100 * time.Millisecond
	startOperator(t, cfg)

	mustCreate := func(name, path string, pull int32) {
		t.Helper()
		if err := env.Client.Create(ctx, lockRequest(ns, name, path, pull, "someone")); err != nil {
			t.Fatal(err)
		}
	}
	mustReach := func(name, reasonWanted string) *lockingv1alpha1.LockRequest {
		t.Helper()
		lr, err := w.waitFor(ctx, name, func(lr *lockingv1alpha1.LockRequest) bool { return reason(lr) == reasonWanted })
		if err != nil {
			t.Fatal(err)
		}
		return lr
	}

	// Pull 1 holds k1 and pull 2 holds k2; each then asks for the other's key.
	mustCreate("p1-k1", "k1", 1)
	mustReach("p1-k1", lockingv1alpha1.ReasonAcquired)
	mustCreate("p2-k2", "k2", 2)
	mustReach("p2-k2", lockingv1alpha1.ReasonAcquired)
	mustCreate("p1-k2", "k2", 1)
	mustReach("p1-k2", lockingv1alpha1.ReasonQueued)
	mustCreate("p2-k1", "k1", 2)
	victim := mustReach("p2-k1", lockingv1alpha1.ReasonDeadlockVictim) // the younger waiter
	if r := reason(w.get("p1-k2")); r != lockingv1alpha1.ReasonQueued {
		t.Errorf("p1-k2 is %s, want still Queued: one victim breaks the cycle", r)
	}
	// Pull 2 gives up its lock, as a victim's owner does; pull 1 gets k2.
	if err := deleteRequest(ctx, ns, "p2-k2"); err != nil {
		t.Fatal(err)
	}
	mustReach("p1-k2", lockingv1alpha1.ReasonAcquired)

	wantEvent(ctx, t, ns, "LockRequest", "p1-k1", "Normal", lockingv1alpha1.ReasonAcquired, "fencing token")
	wantEvent(ctx, t, ns, "LockRequest", "p1-k2", "Normal", lockingv1alpha1.ReasonQueued, "position 1")
	wantEvent(ctx, t, ns, "LockRequest", "p1-k2", "Normal", lockingv1alpha1.ReasonAcquired, "fencing token")
	wantEvent(ctx, t, ns, "LockRequest", victim.Name, "Warning", lockingv1alpha1.ReasonDeadlockVictim, "deadlock")
	wantEvent(ctx, t, ns, "ProjectLock", victim.Status.LockName, "Warning", events.KubeReasonDeadlockDetected,
		"acme/infra#1 waits for acme/infra#2")
	wantEvent(ctx, t, ns, "ProjectLock", victim.Status.LockName, "Warning", events.KubeReasonDeadlockDetected,
		"acme/infra#2 waits for acme/infra#1")
	wantEvent(ctx, t, ns, "ProjectLock", w.get("p1-k2").Status.LockName, "Normal", events.KubeReasonHandedOff, "handed to acme/infra#1")
}

// wantEvent waits for an event about the named object with the type and reason, whose
// note contains noteFragment.
func wantEvent(ctx context.Context, t *testing.T, ns, kind, name, eventType, reason, noteFragment string) {
	t.Helper()
	var seen []string
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		var list eventsv1.EventList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		seen = seen[:0]
		for _, e := range list.Items {
			if e.Regarding.Kind != kind || e.Regarding.Name != name {
				continue
			}
			seen = append(seen, e.Type+"/"+e.Reason+": "+e.Note)
			if e.Type == eventType && e.Reason == reason && strings.Contains(e.Note, noteFragment) &&
				e.ReportingController == lockingv1alpha1.FieldManager {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("no %s event %s about %s %s with %q; saw %q", eventType, reason, kind, name, noteFragment, seen)
	}
}
