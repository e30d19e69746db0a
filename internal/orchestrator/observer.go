package orchestrator

import (
	"time"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// NoticeKind says what happened to a lock or request.
type NoticeKind string

// The things the orchestrator reports. The event bus (internal/events) turns them
// into the event types of the original design.
const (
	// NoticeRequested: a request was seen for the first time.
	NoticeRequested NoticeKind = "Requested"
	// NoticeQueued: a request started waiting.
	NoticeQueued NoticeKind = "Queued"
	// NoticeAcquired: a request was granted the lock.
	NoticeAcquired NoticeKind = "Acquired"
	// NoticeEnded: a request ended without holding (Conflict, QueueTimeout,
	// QueueFull, DeadlockVictim) or lost its hold (Expired, Revoked); State.Reason
	// says which.
	NoticeEnded NoticeKind = "Ended"
	// NoticeReleased: the holding owner let go of the key.
	NoticeReleased NoticeKind = "Released"
	// NoticeHandOff: the key passed from one owner to the next waiter.
	NoticeHandOff NoticeKind = "HandOff"
	// NoticeDeadlock: the detector found a cycle and chose a victim.
	NoticeDeadlock NoticeKind = "Deadlock"
	// NoticeBackendError: a backend read or write (or persisting a decision)
	// failed; Err says how. Conflicts are not reported: they are normal.
	NoticeBackendError NoticeKind = "BackendError"
	// NoticeTimeoutError: a backend call ran out of time; Err says which.
	NoticeTimeoutError NoticeKind = "TimeoutError"
)

// Notice is one thing that happened, for observers (events, metrics, logs).
type Notice struct {
	// Kind says what happened.
	Kind NoticeKind
	// Time is when it was decided.
	Time time.Time
	// Lock is the lock concerned.
	Lock LockRef
	// Request is the request concerned, for request notices.
	Request *Request
	// Previous is the request's state before, for request notices.
	Previous RequestState
	// State is the request's new state, for request notices. For Released
	// notices only State.Reason is set: ReasonReleased when the owner let go,
	// else the reason it lost the lock (Expired, Revoked).
	State RequestState
	// Owner is the owner concerned: the new holder for HandOff, the former holder
	// for Released.
	Owner string
	// Holder is the holder after a HandOff.
	Holder *Holder
	// Deadlock is the cycle found, for Deadlock notices.
	Deadlock *Deadlock
	// HeldSince is when Owner was granted the lock, for Released notices (zero
	// when unknown).
	HeldSince time.Time
	// Err is the error, for BackendError, TimeoutError and ValidationError
	// notices.
	Err error
}

// Observer receives notices. It is called synchronously after each decision, so it
// must not block: hand the notice to a buffer (the event bus does).
type Observer interface {
	Observe(Notice)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Notice)

// Observe implements Observer.
func (f ObserverFunc) Observe(n Notice) { f(n) }

// AddObserver registers an observer of every decision.
func (o *LockOrchestrator) AddObserver(obs Observer) {
	o.observersMu.Lock()
	defer o.observersMu.Unlock()
	o.observers = append(o.observers, obs)
}

func (o *LockOrchestrator) emit(n Notice) {
	o.observersMu.RLock()
	defer o.observersMu.RUnlock()
	for _, obs := range o.observers {
		obs.Observe(n)
	}
}

func (o *LockOrchestrator) hasObservers() bool {
	o.observersMu.RLock()
	defer o.observersMu.RUnlock()
	return len(o.observers) > 0
}

// notifyOutcomes reports persisted request transitions: Requested on the first
// decision about a request, then Queued, Acquired or Ended when its phase changes.
func (o *LockOrchestrator) notifyOutcomes(ref LockRef, now time.Time, outs []Outcome) {
	if !o.hasObservers() {
		return
	}
	for _, out := range outs {
		prev, next := out.Request.State, out.State
		base := Notice{Time: now, Lock: ref, Request: out.Request, Previous: prev, State: next}
		if prev.Phase == PhaseNew {
			n := base
			n.Kind = NoticeRequested
			o.emit(n)
		}
		if prev.Phase == next.Phase {
			continue
		}
		n := base
		switch next.Phase {
		case PhaseQueued:
			n.Kind = NoticeQueued
		case PhaseAcquired:
			n.Kind = NoticeAcquired
		case PhaseTerminal:
			n.Kind = NoticeEnded
		default:
			continue
		}
		o.emit(n)
	}
}

// notifyDecision reports a written lock record change over the record prev: a
// release, a hand-off.
func (o *LockOrchestrator) notifyDecision(ref LockRef, now time.Time, prev Record, d Decision) {
	if !o.hasObservers() {
		return
	}
	if d.Released {
		reason := lockingv1alpha1.ReasonReleased
		if len(d.Losers) > 0 {
			reason = d.Losers[0].State.Reason
		}
		o.emit(Notice{
			Kind: NoticeReleased, Time: now, Lock: ref, Owner: d.PreviousOwner, HeldSince: prev.AcquiredAt,
			State: RequestState{Reason: reason},
		})
	}
	if d.HandOff && d.Holder != nil && d.PreviousOwner != "" {
		o.emit(Notice{Kind: NoticeHandOff, Time: now, Lock: ref, Owner: d.Holder.Owner, Holder: d.Holder})
	}
}

func (o *LockOrchestrator) notifyDeadlock(now time.Time, dl Deadlock) {
	dl2 := dl
	o.emit(Notice{Kind: NoticeDeadlock, Time: now, Lock: dl.Victim.Lock, Owner: dl.Victim.Waiter, Deadlock: &dl2})
}
