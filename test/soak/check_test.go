package main

import (
	"math"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

func TestLives(t *testing.T) {
	const (
		pending  = pendingReason
		queued   = lockingv1alpha1.ReasonQueued
		acquired = lockingv1alpha1.ReasonAcquired
		expired  = lockingv1alpha1.ReasonExpired
		timeout  = lockingv1alpha1.ReasonQueueTimeout
	)
	life := func(deleted bool, reasons ...string) requestLife {
		return requestLife{Name: "r", Reasons: reasons, Deleted: deleted}
	}
	tests := []struct {
		name       string
		life       requestLife
		end        string
		violations int
	}{
		{"queued, held, released", life(true, pending, queued, acquired), "released", 0},
		{"held at once, expired", life(true, acquired, expired), expired, 0},
		{"timed out in the queue", life(true, pending, queued, timeout), timeout, 0},
		{"still queued at the end", life(false, queued), "still " + queued, 0},
		{"changed after its end", life(true, queued, timeout, acquired), "released", 1},
		{"two ends", life(true, acquired, expired, timeout), timeout, 1},
		{"back to the queue after holding", life(true, acquired, queued), "released", 1},
		{"never decided", life(false, pending), "still " + pending, 1},
		{"deleted unseen", life(true), "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := lives(map[types.UID]requestLife{"u": tc.life})
			if len(res.Violations) != tc.violations {
				t.Errorf("violations %q, want %d", res.Violations, tc.violations)
			}
			if tc.end != "" && res.ByEnd[tc.end] != 1 {
				t.Errorf("ended %v, want one %q", res.ByEnd, tc.end)
			}
		})
	}
}

func TestQueueOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	waiter := func(name string, p lockingv1alpha1.Priority, enqueued, position int) lockingv1alpha1.LockRequest {
		at := metav1.NewMicroTime(t0.Add(time.Duration(enqueued) * time.Second))
		return lockingv1alpha1.LockRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0)},
			Spec:       lockingv1alpha1.LockRequestSpec{Priority: p},
			Status:     lockingv1alpha1.LockRequestStatus{Position: int32(position), EnqueuedTime: &at},
		}
	}
	pl := func(names ...string) *lockingv1alpha1.ProjectLock {
		p := &lockingv1alpha1.ProjectLock{ObjectMeta: metav1.ObjectMeta{Name: "k"}}
		p.Status.QueueLength = int32(len(names))
		for _, n := range names {
			p.Status.Queue = append(p.Status.Queue, lockingv1alpha1.QueueEntry{Request: n})
		}
		return p
	}
	holder := lockingv1alpha1.LockRequest{ObjectMeta: metav1.ObjectMeta{Name: "h"}}
	good := []lockingv1alpha1.LockRequest{holder,
		waiter("c", lockingv1alpha1.PriorityNormal, 1, 2), waiter("a", lockingv1alpha1.PriorityHigh, 5, 1), waiter("b", lockingv1alpha1.PriorityNormal, 2, 3)}
	if p := queueOrder(pl("a", "c", "b"), good); len(p) != 0 {
		t.Errorf("a correct queue: %q", p)
	}
	tests := map[string]struct {
		pl   *lockingv1alpha1.ProjectLock
		reqs []lockingv1alpha1.LockRequest
		want string
	}{
		"lower priority first": {pl("c", "a"), []lockingv1alpha1.LockRequest{
			waiter("c", lockingv1alpha1.PriorityNormal, 1, 1), waiter("a", lockingv1alpha1.PriorityHigh, 5, 2)}, "queued behind"},
		"later enqueued first": {pl("b", "c"), []lockingv1alpha1.LockRequest{
			waiter("b", lockingv1alpha1.PriorityNormal, 2, 1), waiter("c", lockingv1alpha1.PriorityNormal, 1, 2)}, "queued behind"},
		"a position skipped": {pl("a", "c"), []lockingv1alpha1.LockRequest{
			waiter("a", lockingv1alpha1.PriorityHigh, 5, 1), waiter("c", lockingv1alpha1.PriorityNormal, 1, 3)}, "want 2"},
		"ProjectLock disagrees": {pl("c", "a", "b"), good, "queue[0] is c"},
		"ProjectLock short":     {pl("a", "c"), good, "queueLength 2"},
		"no ProjectLock":        {nil, good, "no ProjectLock"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := strings.Join(queueOrder(tc.pl, tc.reqs), "; ")
			if !strings.Contains(got, tc.want) {
				t.Errorf("problems %q, want one saying %q", got, tc.want)
			}
		})
	}
}

func TestExclusionNeedsTheGrantTime(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	rec := &recorder{grants: map[string]time.Time{"k/10": t0, "k/20": t0.Add(2 * time.Second)}}
	holds := []hold{
		{lock: "k", holder: "a", token: "10", released: t0.Add(time.Second)},
		{lock: "k", holder: "b", token: "20", released: t0.Add(3 * time.Second)},
	}
	if res, untimed := exclusion(holds, rec); len(res.Violations) != 0 || len(untimed) != 0 || res.Successions != 1 {
		t.Errorf("two holds one after the other: %+v, untimed %q", res, untimed)
	}
	// b was granted (by the operator's clock) before a let go.
	holds[0].released = t0.Add(5 * time.Second)
	if res, _ := exclusion(holds, rec); len(res.Violations) != 1 {
		t.Errorf("overlapping holds: violations %q, want one", res.Violations)
	}
	holds = append(holds, hold{lock: "k", holder: "c", token: "30"})
	if _, untimed := exclusion(holds, rec); len(untimed) != 1 {
		t.Errorf("a grant the Lease watch never saw: untimed %q, want it reported", untimed)
	}
}

func TestSlope(t *testing.T) {
	xs := []float64{0, 1, 2, 3, 4}
	ys := []float64{10, 12, 14, 16, 18}
	if got := slope(xs, ys); math.Abs(got-2) > 1e-9 {
		t.Errorf("slope = %v, want 2", got)
	}
	if got := slope([]float64{1}, []float64{5}); got != 0 {
		t.Errorf("slope of one point = %v, want 0", got)
	}
}
