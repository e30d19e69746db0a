package lockclient

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// State is where a request stands, from its Acquired condition.
type State string

// The states of a request.
const (
	// StateAcquired: the owner holds the lock; Status.FencingToken is set.
	StateAcquired State = "Acquired"
	// StateQueued: another owner holds the key; Status.Position and BlockedBy say
	// where the request waits and behind whom.
	StateQueued State = "Queued"
	// StateEnded is terminal: Status.Reason is Conflict, QueueTimeout, QueueFull,
	// DeadlockVictim, Expired, Revoked or Released. The request never holds the
	// lock again.
	StateEnded State = "Ended"
	// StatePending: the operator has not decided about the request yet.
	StatePending State = "Pending"
)

// Status is what the operator decided about one request.
type Status struct {
	// Request is the LockRequest as last seen.
	Request *lockingv1alpha1.LockRequest
	// State is where the request stands.
	State State
	// Reason is the Acquired condition's reason (Acquired, Queued, Pending or a
	// terminal reason).
	Reason string
	// Message is the Acquired condition's message.
	Message string
	// FencingToken is set when Acquired: pass it to what you change under the lock.
	FencingToken string
	// Position is the 1-based queue position, when Queued.
	Position int32
	// BlockedBy is the holder in the way, when Queued, and when Ended with reason
	// Conflict.
	BlockedBy *lockingv1alpha1.BlockedBy
}

// Name returns the LockRequest's name.
func (s *Status) Name() string { return s.Request.Name }

// StatusOf reads a LockRequest's status the way the client does.
func StatusOf(lr *lockingv1alpha1.LockRequest) *Status {
	st := &Status{
		Request:      lr,
		State:        StatePending,
		Reason:       lockingv1alpha1.ReasonPending,
		FencingToken: lr.Status.FencingToken,
		Position:     lr.Status.Position,
		BlockedBy:    lr.Status.BlockedBy,
	}
	c := meta.FindStatusCondition(lr.Status.Conditions, lockingv1alpha1.ConditionAcquired)
	if c == nil {
		st.Message = "the operator has not decided yet"
		return st
	}
	st.Reason, st.Message = c.Reason, c.Message
	switch {
	case c.Status == metav1.ConditionTrue:
		st.State = StateAcquired
	case lockingv1alpha1.IsTerminalReason(c.Reason):
		st.State = StateEnded
	case c.Reason == lockingv1alpha1.ReasonQueued:
		st.State = StateQueued
	}
	return st
}

// decided reports whether the operator has decided about the request's current
// generation. An ended request stays ended whatever its spec says since.
func (s *Status) decided() bool {
	switch {
	case s.State == StateEnded:
		return true
	case s.State == StatePending || s.Request.Status.ObservedGeneration < s.Request.Generation:
		return false
	}
	return true
}

// EndedError is returned when a request ended without the lock, or lost it: its
// Status says why (Reason, Message and, for a Conflict, BlockedBy).
type EndedError struct {
	// Status is the request's status when it ended.
	Status *Status
}

// Error names the request, the reason and the message.
func (e *EndedError) Error() string {
	s := e.Status
	return fmt.Sprintf("LockRequest %s/%s ended with reason %s: %s", s.Request.Namespace, s.Request.Name, s.Reason, s.Message)
}
