package events

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

func TestFromNotice(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	key := lockkey.New("acme/infra", "modules/vpc", "default", "")
	ref := orchestrator.LockRef{Namespace: "atlantis", Name: key.ObjectName(), Key: key}
	req := &orchestrator.Request{ID: "pr42", UID: "uid-42", Owner: "acme/infra#42", Pull: 42, PullURL: "https://git/pr/42", User: "alice"}
	holder := &orchestrator.Holder{Request: "pr7", Owner: "acme/infra#7", Pull: 7, User: "bob", FencingToken: "300"}
	base := Event{
		Time: t0, Namespace: "atlantis", LockKey: key.String(), Lock: key.ObjectName(), Repository: "acme/infra",
		Request: "pr42", RequestUID: "uid-42", Owner: "acme/infra#42", Pull: 42, PullURL: "https://git/pr/42", User: "alice",
	}
	lockOnly := Event{Time: t0, Namespace: "atlantis", LockKey: key.String(), Lock: key.ObjectName(), Repository: "acme/infra"}
	with := func(e Event, f func(*Event)) Event { f(&e); return e }
	ended := func(reason string, prev orchestrator.RequestState) orchestrator.Notice {
		return orchestrator.Notice{Kind: orchestrator.NoticeEnded, Time: t0, Lock: ref, Request: req, Previous: prev,
			State: orchestrator.RequestState{Phase: orchestrator.PhaseTerminal, Reason: reason, Message: reason + " message"}}
	}
	queuedBefore := orchestrator.RequestState{Phase: orchestrator.PhaseQueued, EnqueuedAt: t0.Add(-90 * time.Second), BlockedBy: holder}
	heldBefore := orchestrator.RequestState{Phase: orchestrator.PhaseAcquired, AcquiredAt: t0.Add(-time.Hour), FencingToken: "400"}

	for _, tc := range []struct {
		name   string
		notice orchestrator.Notice
		want   *Event
	}{
		{"requested", orchestrator.Notice{Kind: orchestrator.NoticeRequested, Time: t0, Lock: ref, Request: req,
			State: orchestrator.RequestState{Phase: orchestrator.PhaseQueued, Reason: "Queued"}},
			ptr(with(base, func(e *Event) { e.Type = LockRequested }))},
		{"queued", orchestrator.Notice{Kind: orchestrator.NoticeQueued, Time: t0, Lock: ref, Request: req,
			State: orchestrator.RequestState{Phase: orchestrator.PhaseQueued, Reason: "Queued", Message: "m", Position: 2, BlockedBy: holder}},
			ptr(with(base, func(e *Event) {
				e.Type, e.Reason, e.Message, e.Position, e.BlockedBy = QueuedRequest, "Queued", "m", 2, "acme/infra#7"
			}))},
		{"acquired after waiting", orchestrator.Notice{Kind: orchestrator.NoticeAcquired, Time: t0, Lock: ref, Request: req,
			Previous: queuedBefore,
			State:    orchestrator.RequestState{Phase: orchestrator.PhaseAcquired, Reason: "Acquired", FencingToken: "500", EnqueuedAt: t0.Add(-time.Minute), AcquiredAt: t0}},
			ptr(with(base, func(e *Event) {
				e.Type, e.Reason, e.FencingToken, e.Wait, e.Waited = LockAcquired, "Acquired", "500", time.Minute, true
			}))},
		{"acquired on a free key", orchestrator.Notice{Kind: orchestrator.NoticeAcquired, Time: t0, Lock: ref, Request: req,
			Previous: orchestrator.RequestState{Phase: orchestrator.PhaseNew},
			State:    orchestrator.RequestState{Phase: orchestrator.PhaseAcquired, Reason: "Acquired", FencingToken: "501", AcquiredAt: t0}},
			ptr(with(base, func(e *Event) {
				e.Type, e.Reason, e.FencingToken = LockAcquired, "Acquired", "501"
			}))},
		{"queue timeout", ended(lockingv1alpha1.ReasonQueueTimeout, queuedBefore),
			ptr(with(base, func(e *Event) {
				e.Type, e.Reason, e.Message, e.Wait, e.BlockedBy = QueueTimeout, "QueueTimeout", "QueueTimeout message", 90*time.Second, "acme/infra#7"
			}))},
		{"fail fast conflict is a queue timeout of zero", ended(lockingv1alpha1.ReasonConflict, orchestrator.RequestState{}),
			ptr(with(base, func(e *Event) { e.Type, e.Reason, e.Message = QueueTimeout, "Conflict", "Conflict message" }))},
		{"queue full is refused", ended(lockingv1alpha1.ReasonQueueFull, orchestrator.RequestState{}),
			ptr(with(base, func(e *Event) { e.Type, e.Reason, e.Message = ValidationError, "QueueFull", "QueueFull message" }))},
		{"ttl expiry", ended(lockingv1alpha1.ReasonExpired, heldBefore),
			ptr(with(base, func(e *Event) {
				e.Type, e.Reason, e.Message, e.FencingToken, e.Held = LockTimeout, "Expired", "Expired message", "400", time.Hour
			}))},
		{"force unlock", ended(lockingv1alpha1.ReasonRevoked, heldBefore),
			ptr(with(base, func(e *Event) {
				e.Type, e.Reason, e.Message, e.FencingToken, e.Held = LockReleased, "Revoked", "Revoked message", "400", time.Hour
			}))},
		{"deadlock victim", ended(lockingv1alpha1.ReasonDeadlockVictim, queuedBefore),
			ptr(with(base, func(e *Event) {
				e.Type, e.Reason, e.Message = DeadlockDetected, "DeadlockVictim", "DeadlockVictim message"
			}))},
		{"voluntary release", orchestrator.Notice{Kind: orchestrator.NoticeReleased, Time: t0, Lock: ref, Owner: "acme/infra#7",
			HeldSince: t0.Add(-2 * time.Hour), State: orchestrator.RequestState{Reason: lockingv1alpha1.ReasonReleased}},
			ptr(with(lockOnly, func(e *Event) {
				e.Type, e.Reason, e.Owner, e.Held, e.Message = LockReleased, "Released", "acme/infra#7", 2*time.Hour, "released by acme/infra#7"
			}))},
		{"release by expiry has the request's event instead", orchestrator.Notice{Kind: orchestrator.NoticeReleased, Time: t0, Lock: ref,
			Owner: "acme/infra#7", State: orchestrator.RequestState{Reason: lockingv1alpha1.ReasonExpired}}, nil},
		{"hand-off", orchestrator.Notice{Kind: orchestrator.NoticeHandOff, Time: t0, Lock: ref, Owner: "acme/infra#7", Holder: holder},
			ptr(with(lockOnly, func(e *Event) {
				e.Type, e.Reason, e.Owner, e.Request, e.FencingToken, e.Pull, e.User = QueueProcessed, "HandedOff", "acme/infra#7", "pr7", "300", 7, "bob"
				e.Message = "handed to acme/infra#7 (request pr7)"
			}))},
		{"backend error", orchestrator.Notice{Kind: orchestrator.NoticeBackendError, Time: t0, Lock: ref, Err: errors.New("etcd gone")},
			ptr(with(lockOnly, func(e *Event) { e.Type, e.Message = BackendError, "etcd gone" }))},
		{"timeout error", orchestrator.Notice{Kind: orchestrator.NoticeTimeoutError, Time: t0, Lock: ref, Err: errors.New("deadline")},
			ptr(with(lockOnly, func(e *Event) { e.Type, e.Message = TimeoutError, "deadline" }))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := FromNotice(tc.notice)
			if tc.want == nil {
				if ok {
					t.Fatalf("FromNotice gave %+v, want no event", got)
				}
				return
			}
			if !ok {
				t.Fatal("FromNotice gave no event")
			}
			if diff := cmp.Diff(*tc.want, got); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFromNoticeDeadlockNamesTheCycle(t *testing.T) {
	k1, k2 := lockkey.New("acme/a", ".", "default", ""), lockkey.New("acme/b", ".", "default", "")
	r1 := orchestrator.LockRef{Namespace: "ns", Name: k1.ObjectName(), Key: k1}
	r2 := orchestrator.LockRef{Namespace: "ns", Name: k2.ObjectName(), Key: k2}
	victim := orchestrator.WaitEdge{Waiter: "ns/alice", Holder: "ns/bob", Lock: r2, Request: "alice-b", RequestUID: "u1"}
	dl := orchestrator.Deadlock{
		Cycle:  []orchestrator.WaitEdge{victim, {Waiter: "ns/bob", Holder: "ns/alice", Lock: r1, Request: "bob-a"}},
		Victim: victim,
	}
	got, ok := FromNotice(orchestrator.Notice{Kind: orchestrator.NoticeDeadlock, Lock: r2, Owner: "ns/alice", Deadlock: &dl})
	if !ok || got.Type != DeadlockDetected || got.Reason != ReasonDeadlockDetected {
		t.Fatalf("got %+v", got)
	}
	if got.Request != "alice-b" || got.RequestUID != "u1" || got.Owner != "alice" {
		t.Errorf("victim request %s/%s, want alice-b/u1", got.Request, got.RequestUID)
	}
	if diff := cmp.Diff([]string{"alice", "bob"}, got.Cycle); diff != "" {
		t.Errorf("cycle (-want +got):\n%s", diff)
	}
}

func ptr[T any](v T) *T { return &v }
