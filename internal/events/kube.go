package events

import (
	"context"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// KubeReasonDeadlockDetected is the reason of the Event recorded on the ProjectLock
// a deadlock victim waited for; its note names the whole cycle. Every other Event
// uses a reason of the LockRequest's Acquired condition.
const KubeReasonDeadlockDetected = ReasonDeadlockDetected

// maxNote is the longest note events.k8s.io accepts.
const maxNote = 1024

// KubeEvents records lock events as Kubernetes Events on the LockRequests and
// ProjectLocks concerned, so that `kubectl describe` tells a request's story. It
// records only the transitions a person reads there: a request queued behind its
// blocker, granted after a wait, or ended without the lock or losing it (timeouts,
// conflicts, expiry, revocation, deadlock). A grant on a free key and a release
// with nobody waiting, which are most lock cycles, record nothing: each Event is an
// API write, and on a busy API server those writes slow every decision. The logs,
// metrics, webhooks and audit trail see every transition. It uses the PascalCase
// reasons of the LockRequest conditions and marks with Warning what a person should
// look at. System events (health checks, metrics, errors) are not recorded: they
// belong to no object, and logs and metrics carry them.
type KubeEvents struct {
	recorder events.EventRecorder
	reader   client.Reader
}

var _ Handler = (*KubeEvents)(nil)

// NewKubeEvents returns a handler that records through recorder. reader (the
// informer cache) supplies the ProjectLock's UID, without which `kubectl describe`
// would not show the event.
func NewKubeEvents(recorder events.EventRecorder, reader client.Reader) *KubeEvents {
	return &KubeEvents{recorder: recorder, reader: reader}
}

// KubeEventsFilter selects the event types KubeEvents records.
func KubeEventsFilter() Filter {
	return Filter{Types: []Type{
		QueuedRequest, LockAcquired, QueueTimeout, ValidationError, LockTimeout,
		LockReleased, DeadlockDetected,
	}}
}

// HandleEvent implements Handler.
func (k *KubeEvents) HandleEvent(ctx context.Context, e Event) error {
	eventType := corev1.EventTypeNormal
	if e.Type.Warning() || e.Reason == lockingv1alpha1.ReasonRevoked {
		eventType = corev1.EventTypeWarning
	}
	switch {
	case e.Type == QueuedRequest:
		k.onRequest(e, eventType, lockingv1alpha1.ReasonQueued, "Enqueue",
			"waiting for "+orDefault(e.BlockedBy, "the holder")+" at position "+strconv.Itoa(e.Position))
	case e.Type == LockAcquired:
		if e.Waited {
			k.onRequest(e, eventType, lockingv1alpha1.ReasonAcquired, "Acquire",
				"acquired "+e.LockKey+" with fencing token "+e.FencingToken+" after waiting "+e.Wait.Round(time.Millisecond).String())
		}
	case e.Type == LockReleased && e.RequestUID == "":
		// The holder let go; the next holder's Acquired tells of a hand-off.
	case e.Type == DeadlockDetected && e.Reason == ReasonDeadlockDetected:
		k.onLock(ctx, e, eventType, KubeReasonDeadlockDetected, "DetectDeadlock", e.Message)
	case e.Request != "" && e.RequestUID != "" && e.Reason != "":
		// The end of a request: QueueTimeout, Conflict, QueueFull, Expired,
		// Revoked, DeadlockVictim.
		k.onRequest(e, eventType, e.Reason, "End", e.Message)
	}
	return nil
}

func (k *KubeEvents) onRequest(e Event, eventType, reason, action, note string) {
	lr := &lockingv1alpha1.LockRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: lockingv1alpha1.GroupVersion.String(), Kind: "LockRequest"},
		ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Request, UID: types.UID(e.RequestUID)},
	}
	k.recorder.Eventf(lr, nil, eventType, reason, action, "%s", truncateNote(note))
}

func (k *KubeEvents) onLock(ctx context.Context, e Event, eventType, reason, action, note string) {
	pl := &lockingv1alpha1.ProjectLock{}
	if err := k.reader.Get(ctx, types.NamespacedName{Namespace: e.Namespace, Name: e.Lock}, pl); err != nil {
		// Not in the cache yet (or gone): record by name, which is all we know.
		pl.Namespace, pl.Name = e.Namespace, e.Lock
	}
	pl.TypeMeta = metav1.TypeMeta{APIVersion: lockingv1alpha1.GroupVersion.String(), Kind: "ProjectLock"}
	k.recorder.Eventf(pl, nil, eventType, reason, action, "%s", truncateNote(note))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func truncateNote(s string) string {
	if len(s) <= maxNote {
		return s
	}
	return s[:maxNote-3] + "..."
}
