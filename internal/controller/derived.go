package controller

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// The status fields of a LockRequest that only repeat what its spec and its other
// status fields say. The operator's informer cache leaves them out
// (operator.CacheOptions): the reconciler writes them again with every status
// write, and puts back what a decision reads. The list lives here, beside the
// code that writes them.

// DropDerivedRequestStatus clears lockKey, lockName and owner of a LockRequest's
// status: every status write sets them from the spec (applyState), and no decision
// reads them. It also drops the Queued condition when it says only what the
// Acquired condition before it does, as applyState writes it (derivedQueued);
// RestoreDerivedRequestStatus puts it back. The condition is kept otherwise (its
// transition came at another time, or someone else wrote it).
//
// A holder's or a waiter's Acquired condition goes too when the rest of the status
// says it (derivedAcquired): a holder's from its acquiredTime, a waiter's from its
// enqueuedTime, position and blocker. Most cached requests then keep no condition.
func DropDerivedRequestStatus(lr *lockingv1alpha1.LockRequest) {
	st := &lr.Status
	st.LockKey, st.LockName, st.Owner = "", "", ""
	c := st.Conditions
	if len(c) != 2 || c[0].Type != lockingv1alpha1.ConditionAcquired || !sameCondition(c[1], derivedQueued(c[0])) {
		return
	}
	if acquired, ok := derivedAcquired(st); ok && sameCondition(c[0], acquired) {
		st.Conditions = nil
		return
	}
	// A new array of one: the cache keeps no room for the second.
	st.Conditions = []metav1.Condition{c[0]}
}

// RestoreDerivedRequestStatus puts back the conditions that DropDerivedRequestStatus
// dropped, before anything reads or writes the status.
func RestoreDerivedRequestStatus(lr *lockingv1alpha1.LockRequest) {
	st := &lr.Status
	switch c := st.Conditions; {
	case len(c) == 1 && c[0].Type == lockingv1alpha1.ConditionAcquired:
		st.Conditions = []metav1.Condition{c[0], derivedQueued(c[0])}
	case len(c) == 0:
		// A request never decided has no condition, and neither an acquired
		// nor an enqueued time: nothing to put back.
		if acquired, ok := derivedAcquired(st); ok {
			st.Conditions = []metav1.Condition{acquired, derivedQueued(acquired)}
		}
	}
}

// derivedAcquired is the Acquired condition that applyState writes for a holder
// granted, or a waiter queued, in the same second as the write: what the rest of
// st says. A status that is neither (never decided, ended) has none.
func derivedAcquired(st *lockingv1alpha1.LockRequestStatus) (metav1.Condition, bool) {
	c := metav1.Condition{Type: lockingv1alpha1.ConditionAcquired, ObservedGeneration: st.ObservedGeneration}
	switch {
	case st.AcquiredTime != nil && st.Position == 0 && st.BlockedBy == nil && st.EnqueuedTime == nil:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, lockingv1alpha1.ReasonAcquired, lockingv1alpha1.MessageHeld
		c.LastTransitionTime = *st.AcquiredTime
	case st.EnqueuedTime != nil && st.AcquiredTime == nil:
		blocker := "nobody"
		if st.BlockedBy != nil {
			blocker = st.BlockedBy.Owner
		}
		c.Status, c.Reason = metav1.ConditionFalse, lockingv1alpha1.ReasonQueued
		c.Message = fmt.Sprintf("waiting for %s; position %d", blocker, st.Position)
		c.LastTransitionTime = metav1.NewTime(st.EnqueuedTime.Truncate(time.Second))
	default:
		return metav1.Condition{}, false
	}
	return c, true
}

// derivedQueued is the Queued condition that applyState writes beside acquired,
// transition time included when both changed in the same write.
func derivedQueued(acquired metav1.Condition) metav1.Condition {
	queued := metav1.Condition{Type: lockingv1alpha1.ConditionQueued, Status: metav1.ConditionFalse,
		Reason: lockingv1alpha1.ReasonNotQueued, Message: lockingv1alpha1.MessageNotWaiting,
		ObservedGeneration: acquired.ObservedGeneration, LastTransitionTime: acquired.LastTransitionTime}
	switch {
	case acquired.Status == metav1.ConditionTrue:
		queued.Message = lockingv1alpha1.MessageHolds
	case acquired.Reason == lockingv1alpha1.ReasonQueued:
		queued.Status, queued.Reason, queued.Message = metav1.ConditionTrue, lockingv1alpha1.ReasonQueued, acquired.Message
	case lockingv1alpha1.IsTerminalReason(acquired.Reason):
		queued.Reason, queued.Message = acquired.Reason, "ended: "+acquired.Message
	}
	return queued
}

// sameCondition compares conditions field by field, times as instants.
func sameCondition(a, b metav1.Condition) bool {
	return a.Type == b.Type && a.Status == b.Status && a.Reason == b.Reason && a.Message == b.Message &&
		a.ObservedGeneration == b.ObservedGeneration && a.LastTransitionTime.Equal(&b.LastTransitionTime)
}
