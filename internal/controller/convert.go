package controller

import (
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// toRequest turns a LockRequest into the orchestrator's view of it: the spec with the
// operator's defaults applied, and the state last persisted in its status.
func toRequest(lr *lockingv1alpha1.LockRequest, cfg orchestrator.Config) *orchestrator.Request {
	spec := &lr.Spec
	notice := lr.Annotations[lockingv1alpha1.GrantNoticeAnnotation]
	r := &orchestrator.Request{
		ID:           lr.Name,
		UID:          string(lr.UID),
		Owner:        spec.Owner(),
		Priority:     spec.Priority.Rank(),
		Created:      lr.CreationTimestamp.Time,
		QueueTimeout: cfg.DefaultQueueTimeout,
		TTL:          cfg.DefaultTTL,
		Deleting:     lr.DeletionTimestamp != nil,
		// The cache keeps this one annotation (operator.CacheOptions).
		LearnsGrantFromRecord: notice == lockingv1alpha1.GrantNoticeLease || notice == lockingv1alpha1.GrantNoticeLeaseOnly,
		WaitsForGrant:         notice == lockingv1alpha1.GrantNoticeLeaseOnly,
		Generation:            lr.Generation,
		// A request never decided has observed nothing; its first outcome is a
		// change anyway.
		ObservedGeneration: lr.Status.ObservedGeneration,
		User:               spec.User.Username,
		State:              stateOf(&lr.Status),
	}
	if spec.QueueTimeout != nil {
		r.QueueTimeout = spec.QueueTimeout.Duration
	}
	if spec.TTL != nil {
		r.TTL = spec.TTL.Duration
	}
	if spec.RenewTime != nil {
		r.RenewTime = spec.RenewTime.Time
	}
	if spec.Pull != nil {
		r.Pull = spec.Pull.Number
		r.PullURL = spec.Pull.URL
	}
	return r
}

// stateOf reads the persisted decision back from a status.
func stateOf(st *lockingv1alpha1.LockRequestStatus) orchestrator.RequestState {
	s := orchestrator.RequestState{
		Position:          int(st.Position),
		FencingToken:      st.FencingToken,
		EnqueuedAt:        microTimeValue(st.EnqueuedTime),
		AcquiredAt:        timeValue(st.AcquiredTime),
		ExpiresAt:         timeValue(st.ExpiresTime),
		ObservedRenewTime: microTimeValue(st.ObservedRenewTime),
	}
	if st.BlockedBy != nil {
		s.BlockedBy = &orchestrator.Holder{Request: st.BlockedBy.Request, Owner: st.BlockedBy.Owner,
			Pull: st.BlockedBy.Pull, User: st.BlockedBy.User}
	}
	cond := meta.FindStatusCondition(st.Conditions, lockingv1alpha1.ConditionAcquired)
	if cond == nil {
		return s
	}
	s.Reason, s.Message = cond.Reason, cond.Message
	switch {
	case cond.Status == metav1.ConditionTrue:
		s.Phase = orchestrator.PhaseAcquired
	case lockingv1alpha1.IsTerminalReason(cond.Reason):
		s.Phase = orchestrator.PhaseTerminal
	case cond.Reason == lockingv1alpha1.ReasonQueued:
		s.Phase = orchestrator.PhaseQueued
	}
	return s
}

// applyState writes a decided state into a status. It is pure, so that what the
// status says about each decision is table-tested; now stamps condition
// transitions.
func applyState(lr *lockingv1alpha1.LockRequest, ref orchestrator.LockRef, s orchestrator.RequestState, now time.Time) {
	st := &lr.Status
	st.LockKey = ref.Key.String()
	st.LockName = ref.Name
	st.Owner = lr.Spec.Owner()
	st.ObservedGeneration = lr.Generation
	st.Position = int32(s.Position)
	st.FencingToken = s.FencingToken
	st.EnqueuedTime = microTimePtr(s.EnqueuedAt)
	st.AcquiredTime = timePtr(s.AcquiredAt)
	// A hold never ends earlier than promised: round its expiry up to the second
	// that metav1.Time keeps.
	st.ExpiresTime = timePtr(ceilSecond(s.ExpiresAt))
	st.ObservedRenewTime = microTimePtr(s.ObservedRenewTime)
	st.BlockedBy = nil
	if s.BlockedBy != nil {
		st.BlockedBy = &lockingv1alpha1.BlockedBy{Request: s.BlockedBy.Request, Owner: s.BlockedBy.Owner,
			Pull: s.BlockedBy.Pull, User: s.BlockedBy.User}
	}

	acquired := metav1.Condition{Type: lockingv1alpha1.ConditionAcquired, Status: metav1.ConditionFalse,
		Reason: s.Reason, Message: truncate(s.Message), ObservedGeneration: lr.Generation,
		LastTransitionTime: metav1.NewTime(now)}
	queued := metav1.Condition{Type: lockingv1alpha1.ConditionQueued, Status: metav1.ConditionFalse,
		Reason: lockingv1alpha1.ReasonNotQueued, Message: lockingv1alpha1.MessageNotWaiting, ObservedGeneration: lr.Generation,
		LastTransitionTime: metav1.NewTime(now)}
	switch s.Phase {
	case orchestrator.PhaseAcquired:
		acquired.Status = metav1.ConditionTrue
		queued.Message = lockingv1alpha1.MessageHolds
	case orchestrator.PhaseQueued:
		queued.Status, queued.Reason, queued.Message = metav1.ConditionTrue, lockingv1alpha1.ReasonQueued, truncate(s.Message)
	case orchestrator.PhaseTerminal:
		queued.Reason, queued.Message = s.Reason, "ended: "+truncate(s.Message)
	case orchestrator.PhaseNew:
		acquired.Reason, acquired.Message = lockingv1alpha1.ReasonPending, lockingv1alpha1.MessageNotDecided
	}
	meta.SetStatusCondition(&st.Conditions, acquired)
	meta.SetStatusCondition(&st.Conditions, queued)
}

// maxMessage keeps condition messages well inside the API's 32768-byte limit.
const maxMessage = 1024

// truncate shortens s to at most maxMessage bytes, cutting at a character boundary so
// that a message with multi-byte characters (usernames, repository names) stays
// valid UTF-8.
func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func ceilSecond(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	if c := t.Truncate(time.Second); !c.Equal(t) {
		return c.Add(time.Second)
	}
	return t
}

func timeValue(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

func microTimeValue(t *metav1.MicroTime) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

func timePtr(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	m := metav1.NewTime(t)
	return &m
}

func microTimePtr(t time.Time) *metav1.MicroTime {
	if t.IsZero() {
		return nil
	}
	m := metav1.NewMicroTime(t)
	return &m
}
