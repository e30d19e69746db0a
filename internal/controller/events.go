package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// Event reasons beyond the Acquired condition's reasons.
const (
	// EventReasonReleased is recorded on a ProjectLock when its holder lets go.
	EventReasonReleased = "Released"
	// EventReasonHandOff is recorded on a ProjectLock when the lock passes to the
	// next waiter.
	EventReasonHandOff = "HandedOff"
	// EventReasonDeadlockDetected is recorded on the ProjectLock a deadlock victim
	// waited for; its note names the whole cycle.
	EventReasonDeadlockDetected = "DeadlockDetected"
)

// maxNote is the longest note events.k8s.io accepts.
const maxNote = 1024

// EventRecorder records the orchestrator's transitions as Kubernetes Events on the
// LockRequests and ProjectLocks concerned, so that `kubectl describe` tells a
// request's story. It only sees transitions (the orchestrator reports nothing else),
// and Warning marks the ones a person should look at.
type EventRecorder struct {
	recorder events.EventRecorder
	reader   client.Reader
}

var _ orchestrator.Observer = (*EventRecorder)(nil)

// NewEventRecorder returns an observer that records through recorder. reader (the
// informer cache) supplies the ProjectLock's UID, without which `kubectl describe`
// would not show the event.
func NewEventRecorder(recorder events.EventRecorder, reader client.Reader) *EventRecorder {
	return &EventRecorder{recorder: recorder, reader: reader}
}

// Observe implements orchestrator.Observer.
func (e *EventRecorder) Observe(n orchestrator.Notice) {
	switch n.Kind {
	case orchestrator.NoticeQueued:
		e.onRequest(n, corev1.EventTypeNormal, lockingv1alpha1.ReasonQueued, "Enqueue",
			fmt.Sprintf("waiting for %s at position %d", ownerOf(n.State.BlockedBy), n.State.Position))
	case orchestrator.NoticeAcquired:
		e.onRequest(n, corev1.EventTypeNormal, lockingv1alpha1.ReasonAcquired, "Acquire",
			fmt.Sprintf("acquired %s with fencing token %s", n.Lock.Key, n.State.FencingToken))
	case orchestrator.NoticeEnded:
		eventType := corev1.EventTypeWarning
		if n.State.Reason == lockingv1alpha1.ReasonReleased {
			eventType = corev1.EventTypeNormal
		}
		e.onRequest(n, eventType, n.State.Reason, "End", n.State.Message)
	case orchestrator.NoticeReleased:
		e.onLock(n.Lock, corev1.EventTypeNormal, EventReasonReleased, "Release", "released by "+n.Owner)
	case orchestrator.NoticeHandOff:
		e.onLock(n.Lock, corev1.EventTypeNormal, EventReasonHandOff, "HandOff",
			fmt.Sprintf("handed to %s (request %s, fencing token %s)", n.Owner, n.Holder.Request, n.Holder.FencingToken))
	case orchestrator.NoticeDeadlock:
		e.onLock(n.Lock, corev1.EventTypeWarning, EventReasonDeadlockDetected, "DetectDeadlock",
			fmt.Sprintf("deadlock: %s; failing request %s", n.Deadlock.Describe(), n.Deadlock.Victim.Request))
	}
}

func (e *EventRecorder) onRequest(n orchestrator.Notice, eventType, reason, action, note string) {
	lr := &lockingv1alpha1.LockRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: lockingv1alpha1.GroupVersion.String(), Kind: "LockRequest"},
		ObjectMeta: metav1.ObjectMeta{Namespace: n.Lock.Namespace, Name: n.Request.ID, UID: types.UID(n.Request.UID)},
	}
	e.recorder.Eventf(lr, nil, eventType, reason, action, "%s", truncateNote(note))
}

func (e *EventRecorder) onLock(ref orchestrator.LockRef, eventType, reason, action, note string) {
	pl := &lockingv1alpha1.ProjectLock{}
	if err := e.reader.Get(context.Background(), types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, pl); err != nil {
		// Not in the cache yet (or gone): record by name, which is all we know.
		pl.Namespace, pl.Name = ref.Namespace, ref.Name
	}
	pl.TypeMeta = metav1.TypeMeta{APIVersion: lockingv1alpha1.GroupVersion.String(), Kind: "ProjectLock"}
	e.recorder.Eventf(pl, nil, eventType, reason, action, "%s", truncateNote(note))
}

func ownerOf(h *orchestrator.Holder) string {
	if h == nil {
		return "the holder"
	}
	return h.Owner
}

func truncateNote(s string) string {
	if len(s) <= maxNote {
		return s
	}
	return s[:maxNote-3] + "..."
}
