package events

import (
	"strings"
	"time"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// Publisher turns the orchestrator's notices into events on a bus. It is the
// orchestrator's observer: it runs synchronously after each decision and only
// hands events to the bus, which never blocks.
type Publisher struct {
	// Bus receives the events.
	Bus *Bus
}

var _ orchestrator.Observer = Publisher{}

// Observe implements orchestrator.Observer.
func (p Publisher) Observe(n orchestrator.Notice) {
	if e, ok := FromNotice(n); ok {
		p.Bus.Publish(e)
	}
}

// FromNotice returns the event for an orchestrator notice, and false for a notice
// that has no event of its own. docs/events.md tells the same story for users.
func FromNotice(n orchestrator.Notice) (Event, bool) {
	e := Event{
		Time:       n.Time,
		Namespace:  n.Lock.Namespace,
		LockKey:    n.Lock.Key.String(),
		Lock:       n.Lock.Name,
		Repository: n.Lock.Key.Repository,
	}
	if r := n.Request; r != nil {
		e.Request, e.RequestUID, e.Owner = r.ID, r.UID, r.Owner
		e.Pull, e.PullURL, e.User = r.Pull, r.PullURL, r.User
		e.Reason, e.Message = n.State.Reason, n.State.Message
	}
	switch n.Kind {
	case orchestrator.NoticeRequested:
		e.Type, e.Reason, e.Message = LockRequested, "", ""
	case orchestrator.NoticeQueued:
		e.Type = QueuedRequest
		e.Position = n.State.Position
		if b := n.State.BlockedBy; b != nil {
			e.BlockedBy = b.Owner
		}
	case orchestrator.NoticeAcquired:
		e.Type = LockAcquired
		e.FencingToken = n.State.FencingToken
		e.Wait = since(n.State.EnqueuedAt, n.State.AcquiredAt)
		e.Waited = n.Previous.Phase == orchestrator.PhaseQueued
	case orchestrator.NoticeEnded:
		return ended(e, n)
	case orchestrator.NoticeReleased:
		if n.State.Reason != lockingv1alpha1.ReasonReleased {
			// Lost to expiry or force unlock: the holder request's own end
			// (lock_timeout, lock_released "Revoked") tells it, with more detail.
			return Event{}, false
		}
		e.Type, e.Reason = LockReleased, lockingv1alpha1.ReasonReleased
		e.Owner = n.Owner
		e.Held = since(n.HeldSince, n.Time)
		e.Message = "released by " + n.Owner
	case orchestrator.NoticeHandOff:
		e.Type, e.Reason = QueueProcessed, "HandedOff"
		if h := n.Holder; h != nil {
			e.Owner, e.Request, e.FencingToken = h.Owner, h.Request, h.FencingToken
			e.Pull, e.PullURL, e.User = h.Pull, h.PullURL, h.User
			e.Message = "handed to " + h.Owner + " (request " + h.Request + ")"
		}
	case orchestrator.NoticeDeadlock:
		dl := n.Deadlock
		e.Type, e.Reason = DeadlockDetected, ReasonDeadlockDetected
		// The wait-for graph names owners per namespace ("ns/owner"); a cycle
		// never leaves its namespace, so name them as their users know them.
		local := func(owner string) string { return strings.TrimPrefix(owner, n.Lock.Namespace+"/") }
		e.Request, e.RequestUID, e.Owner = dl.Victim.Request, dl.Victim.RequestUID, local(dl.Victim.Waiter)
		e.Message = "deadlock: " + dl.Describe() + "; failing request " + dl.Victim.Request
		for _, edge := range dl.Cycle {
			e.Cycle = append(e.Cycle, local(edge.Waiter))
		}
	case orchestrator.NoticeBackendError, orchestrator.NoticeTimeoutError:
		e.Type = BackendError
		if n.Kind == orchestrator.NoticeTimeoutError {
			e.Type = TimeoutError
		}
		if n.Err != nil {
			e.Message = n.Err.Error()
		}
	default:
		return Event{}, false
	}
	return e, true
}

// ReasonDeadlockDetected is the reason of the deadlock_detected event sent when a
// cycle is found; the one sent when its victim has failed has reason
// DeadlockVictim.
const ReasonDeadlockDetected = "DeadlockDetected"

// ended maps a request's end to its event type.
func ended(e Event, n orchestrator.Notice) (Event, bool) {
	switch n.State.Reason {
	case lockingv1alpha1.ReasonQueueTimeout, lockingv1alpha1.ReasonConflict:
		e.Type = QueueTimeout
		e.Wait = since(n.Previous.EnqueuedAt, n.Time)
		if b := n.Previous.BlockedBy; b != nil {
			e.BlockedBy = b.Owner
		}
	case lockingv1alpha1.ReasonQueueFull:
		e.Type = ValidationError
	case lockingv1alpha1.ReasonExpired:
		e.Type = LockTimeout
		e.FencingToken = n.Previous.FencingToken
		e.Held = since(n.Previous.AcquiredAt, n.Time)
	case lockingv1alpha1.ReasonRevoked:
		e.Type = LockReleased
		e.FencingToken = n.Previous.FencingToken
		e.Held = since(n.Previous.AcquiredAt, n.Time)
	case lockingv1alpha1.ReasonDeadlockVictim:
		e.Type = DeadlockDetected
	case lockingv1alpha1.ReasonReleased:
		e.Type = LockReleased
		e.Held = since(n.Previous.AcquiredAt, n.Time)
	default:
		return Event{}, false
	}
	return e, true
}

// since returns to - from, or 0 when from is unknown.
func since(from, to time.Time) time.Duration {
	if from.IsZero() || to.Before(from) {
		return 0
	}
	return to.Sub(from)
}
