package controller

import (
	"testing"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// TestProjectLockIsShownOnceTheLongestWaitLasted: a key whose holder was granted
// just now, after a hand-off, gets its ProjectLock when its longest waiter has
// waited project_lock_delay, not its holder's hold.
func TestProjectLockIsShownOnceTheLongestWaitLasted(t *testing.T) {
	r := &LockReconciler{ProjectLockDelay: time.Second}
	t0 := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	waiting := func(at time.Time) orchestrator.Outcome {
		return orchestrator.Outcome{Request: &orchestrator.Request{ID: "w"},
			State: orchestrator.RequestState{Phase: orchestrator.PhaseQueued, EnqueuedAt: at}}
	}
	for _, tc := range []struct {
		name string
		d    orchestrator.Decision
		show bool
		at   time.Time
	}{
		{name: "free", d: orchestrator.Decision{Idle: true}},
		{name: "held alone", d: orchestrator.Decision{Holder: &orchestrator.Holder{}, HeldSince: t0},
			show: true, at: t0.Add(time.Second)},
		{name: "a waiter older than the hold", show: true, at: t0.Add(time.Second),
			d: orchestrator.Decision{Holder: &orchestrator.Holder{}, HeldSince: t0.Add(800 * time.Millisecond), QueueLength: 2,
				Outcomes: []orchestrator.Outcome{waiting(t0.Add(300 * time.Millisecond)), waiting(t0)}}},
		{name: "a hold older than the waiters", show: true, at: t0.Add(time.Second),
			d: orchestrator.Decision{Holder: &orchestrator.Holder{}, HeldSince: t0, QueueLength: 1,
				Outcomes: []orchestrator.Outcome{waiting(t0.Add(300 * time.Millisecond))}}},
	} {
		show, at := r.showAt(tc.d)
		if show != tc.show || !at.Equal(tc.at) {
			t.Errorf("%s: showAt = %v, %v; want %v, %v", tc.name, show, at, tc.show, tc.at)
		}
	}
}
