// Package events is the operator's event bus: what happened to locks and to the
// operator itself, fanned out to Kubernetes Events, Prometheus metrics, structured
// logs, webhooks and the audit trail.
//
// The bus never blocks a lock decision. Each subscriber has its own bounded buffer
// and goroutine; when a buffer is full the event is dropped for that subscriber and
// counted. Handlers that only bump counters may subscribe synchronously instead and
// then see every event. docs/events.md says exactly when each type fires.
package events

import (
	"slices"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// Type names a kind of event, exactly as the original design names it.
type Type string

// The event types. docs/events.md says when each fires.
const (
	// LockRequested: the operator saw a lock request for the first time.
	LockRequested Type = "lock_requested"
	// LockAcquired: a request was granted its lock, at once or from the queue.
	LockAcquired Type = "lock_acquired"
	// LockReleased: the holder let go of a lock (its request was deleted), or lost
	// it to a force unlock (Reason "Revoked").
	LockReleased Type = "lock_released"
	// LockTimeout: a hold with a ttl expired without renewal (Reason "Expired").
	LockTimeout Type = "lock_timeout"
	// QueuedRequest: a request started waiting in a lock's queue.
	QueuedRequest Type = "queued_request"
	// QueueProcessed: the head of a queue was granted the lock its previous owner
	// gave up: one event per hand-off.
	QueueProcessed Type = "queue_processed"
	// QueueTimeout: a request stopped waiting without the lock: its queue timeout
	// passed (Reason "QueueTimeout"), or it asked not to wait at all and the lock
	// was held (Reason "Conflict").
	QueueTimeout Type = "queue_timeout"
	// DeadlockDetected: the deadlock detector found a cycle of owners waiting for
	// each other and failed one waiting request (the victim) to break it.
	DeadlockDetected Type = "deadlock_detected"
	// SystemHealthCheck: the periodic component health check ran; Health holds
	// its result.
	SystemHealthCheck Type = "system_health_check"
	// MetricsUpdated: the metrics collector took its periodic snapshot.
	MetricsUpdated Type = "metrics_updated"
	// BackendError: a call to the lock backend (the Kubernetes API) failed with
	// something other than a compare-and-swap conflict or a timeout.
	BackendError Type = "backend_error"
	// TimeoutError: a call to the lock backend or a component health check ran
	// out of time.
	TimeoutError Type = "timeout_error"
	// ValidationError: the operator refused a request the API server had
	// accepted, such as one whose queue was full (Reason "QueueFull").
	ValidationError Type = "validation_error"
)

// Types returns every event type, in documentation order.
func Types() []Type {
	return []Type{
		LockRequested, LockAcquired, LockReleased, LockTimeout,
		QueuedRequest, QueueProcessed, QueueTimeout, DeadlockDetected,
		SystemHealthCheck, MetricsUpdated, BackendError, TimeoutError,
		ValidationError,
	}
}

// Valid reports whether t is one of Types.
func (t Type) Valid() bool {
	return slices.Contains(Types(), t)
}

// Warning reports whether an event of type t is one a person should look at; it
// becomes a Kubernetes Event of type Warning and is logged with severity
// "warning".
func (t Type) Warning() bool {
	switch t {
	case LockTimeout, QueueTimeout, DeadlockDetected, BackendError, TimeoutError, ValidationError:
		return true
	}
	return false
}

// Event is one thing that happened. Lock events fill the lock and request fields;
// system events (health checks, metrics, errors) leave those they do not concern
// empty. It is what webhooks receive as their JSON body and what the audit trail
// writes, so its JSON names are part of the public interface.
type Event struct {
	// Type says what happened.
	Type Type `json:"type"`
	// Time is when the operator decided it.
	Time time.Time `json:"time"`
	// Namespace of the lock and request.
	Namespace string `json:"namespace,omitempty"`
	// LockKey is the Atlantis lock key, "{repository}/{path}/{workspace}/{project}".
	LockKey string `json:"lockKey,omitempty"`
	// Lock is the ProjectLock's name.
	Lock string `json:"lock,omitempty"`
	// Repository is the lock's repository full name ("owner/repo").
	Repository string `json:"repository,omitempty"`
	// Request is the LockRequest's name.
	Request string `json:"request,omitempty"`
	// RequestUID is the LockRequest's UID.
	RequestUID string `json:"requestUID,omitempty"`
	// Owner is who the request acts for ("owner/repo#42" or a username); for
	// lock_released the owner that let go, for queue_processed the new holder.
	Owner string `json:"owner,omitempty"`
	// Pull is the pull request number, or 0.
	Pull int32 `json:"pull,omitempty"`
	// PullURL links to the pull request.
	PullURL string `json:"pullURL,omitempty"`
	// User is the VCS username.
	User string `json:"user,omitempty"`
	// FencingToken is the token of the grant concerned.
	FencingToken string `json:"fencingToken,omitempty"`
	// Position is the 1-based queue position, for queued_request.
	Position int `json:"position,omitempty"`
	// BlockedBy is the owner holding the lock, for queued_request and
	// queue_timeout.
	BlockedBy string `json:"blockedBy,omitempty"`
	// Reason is the PascalCase reason, as in the LockRequest's conditions.
	Reason string `json:"reason,omitempty"`
	// Message says what happened in words.
	Message string `json:"message,omitempty"`
	// Wait is how long the request waited, for lock_acquired and queue_timeout.
	Wait time.Duration `json:"waitNanoseconds,omitempty"`
	// Waited says that the request was queued before its grant, for lock_acquired
	// (a hand-off, or a grant after the key went idle); false for a grant on a free
	// key straight away.
	Waited bool `json:"waited,omitempty"`
	// Held is how long the owner held the lock, for lock_released and
	// lock_timeout, when known.
	Held time.Duration `json:"heldNanoseconds,omitempty"`
	// Cycle lists the owners of a deadlock, in wait-for order, for
	// deadlock_detected.
	Cycle []string `json:"cycle,omitempty"`
	// Health is the health check's result, for system_health_check.
	Health *Health `json:"health,omitempty"`
}

// Health is the result of one health check.
type Health struct {
	// Score is the overall health score, 0 to 100.
	Score int `json:"score"`
	// Components maps each component to its status.
	Components map[string]orchestrator.ComponentStatus `json:"components"`
}
