package controller

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// projectLockStatus computes a ProjectLock's status from a decision: the holder, the
// first waiters in order, and the Locked condition, whose transition time stays
// that of prev (the Locked condition the status shows now, if any) while its
// status does not change. The status is the operator's alone: every field of it
// follows from the key's requests and Lease.
func projectLockStatus(generation int64, ref orchestrator.LockRef, d orchestrator.Decision, now time.Time, prev *metav1.Condition) lockingv1alpha1.ProjectLockStatus {
	st := lockingv1alpha1.ProjectLockStatus{
		LockKey:            ref.Key.String(),
		LeaseName:          ref.Name,
		QueueLength:        int32(d.QueueLength),
		ObservedGeneration: generation,
	}
	locked := metav1.Condition{Type: lockingv1alpha1.ConditionLocked, Status: metav1.ConditionFalse,
		Reason: lockingv1alpha1.ReasonFree, Message: lockingv1alpha1.MessageFree,
		ObservedGeneration: generation, LastTransitionTime: metav1.NewTime(now)}
	if h := d.Holder; h != nil {
		st.Holder = &lockingv1alpha1.LockHolder{
			Request:      h.Request,
			Owner:        h.Owner,
			User:         h.User,
			AcquiredTime: timePtr(h.AcquiredAt),
			ExpiresTime:  timePtr(ceilSecond(h.ExpiresAt)),
			FencingToken: h.FencingToken,
		}
		if h.Pull > 0 {
			st.Holder.Pull = &lockingv1alpha1.PullRequestRef{Number: h.Pull, URL: h.PullURL}
		}
		locked.Status, locked.Reason, locked.Message = metav1.ConditionTrue, lockingv1alpha1.ReasonHeld, truncate("held by "+h.Owner)
	}
	for _, out := range d.Outcomes {
		if out.State.Phase != orchestrator.PhaseQueued || len(st.Queue) == lockingv1alpha1.MaxQueueEntries {
			continue
		}
		st.Queue = append(st.Queue, lockingv1alpha1.QueueEntry{
			Request:      out.Request.ID,
			Owner:        out.Request.Owner,
			Pull:         out.Request.Pull,
			User:         out.Request.User,
			Priority:     priorityName(out.Request.Priority),
			EnqueuedTime: microTimePtr(out.State.EnqueuedAt),
		})
	}
	if prev != nil && prev.Status == locked.Status {
		locked.LastTransitionTime = prev.LastTransitionTime
	}
	st.Conditions = []metav1.Condition{locked}
	return st
}

func priorityName(rank int) lockingv1alpha1.Priority {
	for _, p := range []lockingv1alpha1.Priority{lockingv1alpha1.PriorityLow, lockingv1alpha1.PriorityNormal,
		lockingv1alpha1.PriorityHigh, lockingv1alpha1.PriorityCritical} {
		if p.Rank() == rank {
			return p
		}
	}
	return lockingv1alpha1.PriorityNormal
}

// statusDigest sums a status as the API server stores it (times at their
// serialized precision): two statuses with one digest are the same status, so an
// unchanged key's status is never written again.
func statusDigest(s lockingv1alpha1.ProjectLockStatus) uint64 {
	data, err := json.Marshal(roundTrip(s))
	if err != nil {
		panic(fmt.Sprintf("a ProjectLock status cannot be encoded: %v", err)) // plain data: it cannot fail
	}
	h := fnv.New64a()
	h.Write(data)
	return h.Sum64()
}

func roundTrip(s lockingv1alpha1.ProjectLockStatus) lockingv1alpha1.ProjectLockStatus {
	s = *s.DeepCopy()
	if h := s.Holder; h != nil {
		h.AcquiredTime = secondPtr(h.AcquiredTime)
		h.ExpiresTime = secondPtr(h.ExpiresTime)
	}
	for i := range s.Queue {
		if t := s.Queue[i].EnqueuedTime; t != nil {
			m := metav1.NewMicroTime(t.Truncate(time.Microsecond))
			s.Queue[i].EnqueuedTime = &m
		}
	}
	for i := range s.Conditions {
		s.Conditions[i].LastTransitionTime = metav1.NewTime(s.Conditions[i].LastTransitionTime.Truncate(time.Second))
	}
	return s
}

func secondPtr(t *metav1.Time) *metav1.Time {
	if t == nil {
		return nil
	}
	m := metav1.NewTime(t.Truncate(time.Second))
	return &m
}
