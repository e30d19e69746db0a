package integration

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
)

// TestRestartKeepsHoldersQueuesAndDeadlines stops the operator while requests keep
// arriving, changes things while no operator runs, and starts a fresh one: no holder
// changes, queue order and enqueue times are kept, nothing is lost, and the queue
// then drains in the order it had before.
func TestRestartKeepsHoldersQueuesAndDeadlines(t *testing.T) {
	ns := newNamespace(t, "restart")
	w := watchRequests(t, ns)
	ctx := deadline(t, 2*time.Minute)
	first := startOperator(t, config.Default())

	create := func(name, path string, pull int32, prio lockingv1alpha1.Priority, queueTimeout time.Duration) {
		t.Helper()
		lr := lockRequest(ns, name, path, pull, fmt.Sprintf("user%d", pull))
		lr.Spec.Priority = prio
		if queueTimeout > 0 {
			lr.Spec.QueueTimeout = &metav1.Duration{Duration: queueTimeout}
		}
		if err := env.Client.Create(ctx, lr); err != nil {
			t.Fatalf("creating %s: %v", name, err)
		}
	}
	waitReason := func(name, want string) *lockingv1alpha1.LockRequest {
		t.Helper()
		lr, err := w.waitFor(ctx, name, func(lr *lockingv1alpha1.LockRequest) bool { return reason(lr) == want })
		if err != nil {
			t.Fatal(err)
		}
		return lr
	}

	// Key a: a holder and three waiters; key b: a holder that leaves while no
	// operator runs; key c: a waiter whose queue timeout runs across the restart.
	create("a-holder", "a", 1, lockingv1alpha1.PriorityNormal, 0)
	waitReason("a-holder", lockingv1alpha1.ReasonAcquired)
	create("a-low", "a", 2, lockingv1alpha1.PriorityLow, 0)
	create("a-normal", "a", 3, lockingv1alpha1.PriorityNormal, 0)
	create("a-high", "a", 4, lockingv1alpha1.PriorityHigh, 0)
	create("b-holder", "b", 5, lockingv1alpha1.PriorityNormal, 0)
	waitReason("b-holder", lockingv1alpha1.ReasonAcquired)
	create("b-waiter", "b", 6, lockingv1alpha1.PriorityNormal, 0)
	create("c-holder", "c", 7, lockingv1alpha1.PriorityNormal, 0)
	waitReason("c-holder", lockingv1alpha1.ReasonAcquired)
	create("c-timeout", "c", 8, lockingv1alpha1.PriorityNormal, 6*time.Second)

	before := map[string]*lockingv1alpha1.LockRequest{}
	for _, name := range []string{"a-holder", "b-holder", "c-holder"} {
		before[name] = waitReason(name, lockingv1alpha1.ReasonAcquired)
	}
	// A waiter shows the position it was queued at for its first
	// status_update_interval, then the one it has: wait for that.
	wantPositions := map[string]int32{"a-high": 1, "a-normal": 2, "a-low": 3, "b-waiter": 1, "c-timeout": 1}
	for name, want := range wantPositions {
		lr, err := w.waitFor(ctx, name, func(lr *lockingv1alpha1.LockRequest) bool {
			return reason(lr) == lockingv1alpha1.ReasonQueued && lr.Status.Position == want
		})
		if err != nil {
			t.Fatalf("before the restart, %s at position %d: %v", name, want, err)
		}
		before[name] = lr
	}

	// Requests keep arriving while the operator stops.
	create("a-critical", "a", 9, lockingv1alpha1.PriorityCritical, 0)
	first.stop()
	create("a-late", "a", 10, lockingv1alpha1.PriorityNormal, 0)
	if err := deleteRequest(ctx, ns, "b-holder"); err != nil {
		t.Fatal(err)
	}

	startOperator(t, config.Default())

	// No holder changed; the key whose holder left while no operator ran went to
	// its waiter.
	for _, name := range []string{"a-holder", "c-holder"} {
		got := waitReason(name, lockingv1alpha1.ReasonAcquired)
		if got.Status.FencingToken != before[name].Status.FencingToken {
			t.Errorf("%s's fencing token changed across the restart: %s, then %s", name,
				before[name].Status.FencingToken, got.Status.FencingToken)
		}
	}
	if _, err := w.waitFor(ctx, "b-holder", isGone); err != nil {
		t.Fatal(err)
	}
	waitReason("b-waiter", lockingv1alpha1.ReasonAcquired)

	// The queue keeps its order and enqueue times; newcomers join by the same rules.
	order := []string{"a-critical", "a-high", "a-normal", "a-late", "a-low"}
	for i, name := range order {
		got, err := w.waitFor(ctx, name, func(lr *lockingv1alpha1.LockRequest) bool {
			return reason(lr) == lockingv1alpha1.ReasonQueued && lr.Status.Position == int32(i+1)
		})
		if err != nil {
			t.Fatal(err)
		}
		if b := before[name]; b != nil && !b.Status.EnqueuedTime.Equal(got.Status.EnqueuedTime) {
			t.Errorf("%s's enqueue time changed across the restart: %v, then %v", name, b.Status.EnqueuedTime, got.Status.EnqueuedTime)
		}
	}

	// The queue timeout counts from the enqueue time before the restart.
	timedOut := waitReason("c-timeout", lockingv1alpha1.ReasonQueueTimeout)
	enqueued := before["c-timeout"].Status.EnqueuedTime.Time
	// Queued went from True to False when the request timed out.
	queued := meta.FindStatusCondition(timedOut.Status.Conditions, lockingv1alpha1.ConditionQueued)
	if ended := queued.LastTransitionTime.Time; ended.Before(enqueued.Add(6 * time.Second).Truncate(time.Second)) {
		t.Errorf("c-timeout timed out at %v, before its deadline %v", ended, enqueued.Add(6*time.Second))
	}

	// Nothing is lost: releasing each holder in turn serves the queue in order.
	holder := "a-holder"
	for _, next := range order {
		if err := deleteRequest(ctx, ns, holder); err != nil {
			t.Fatal(err)
		}
		waitReason(next, lockingv1alpha1.ReasonAcquired)
		holder = next
	}
}
