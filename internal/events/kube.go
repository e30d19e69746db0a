package events

import (
	"context"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
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
// conflicts, expiry, revocation, deadlock). A grant on a free key, a release with
// nobody waiting, and a wait shorter than QueuedEventDelay, which are most lock
// cycles, record nothing: each Event is an API write, and on a busy API server
// those writes slow every decision. The logs, metrics, webhooks and audit trail see
// every transition. It uses the PascalCase reasons of the LockRequest conditions
// and marks with Warning what a person should look at. System events (health
// checks, metrics, errors) are not recorded: they belong to no object, and logs and
// metrics carry them.
type KubeEvents struct {
	recorder events.EventRecorder
	reader   client.Reader
	clock    clock.WithDelayedExecution
	delay    time.Duration

	mu sync.Mutex
	// queued holds the Queued Events not recorded yet, by request UID: each is
	// recorded when its timer fires, unless the wait ends first.
	queued map[string]pendingQueued
}

// pendingQueued is a Queued Event waiting for QueuedEventDelay to pass.
type pendingQueued struct {
	timer clock.Timer
	event Event
}

// QueuedEventDelay is how long a request must wait before its Queued Event is
// recorded; its Acquired Event is recorded only after a wait that long. A person
// reading `kubectl describe` sees every wait that lasts; the short waits of a busy
// key (tens of milliseconds between hand-offs) write no Event.
const QueuedEventDelay = time.Second

var _ Handler = (*KubeEvents)(nil)

// NewKubeEvents returns a handler that records through recorder. reader (the
// informer cache) supplies the ProjectLock's UID, without which `kubectl describe`
// would not show the event. clk times QueuedEventDelay; a clock that cannot run a
// function later (clock.WithDelayedExecution: the real clock and the fake ones
// can) records every Queued Event at once.
func NewKubeEvents(recorder events.EventRecorder, reader client.Reader, clk clock.Clock) *KubeEvents {
	k := &KubeEvents{recorder: recorder, reader: reader, queued: map[string]pendingQueued{}}
	if dc, ok := clk.(clock.WithDelayedExecution); ok {
		k.clock, k.delay = dc, QueuedEventDelay
	}
	return k
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
	if e.Type != QueuedRequest && e.RequestUID != "" {
		// The wait is over (granted, ended or withdrawn): a Queued Event not yet
		// recorded never will be.
		k.cancelQueued(e.RequestUID)
	}
	switch {
	case e.Type == QueuedRequest:
		k.queue(e, eventType)
	case e.Type == LockAcquired:
		if e.Waited && e.Wait >= k.delay {
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

// queue records e's Queued Event once the request has waited QueuedEventDelay. A
// later queued_request of the same request (its position moved) replaces the note.
func (k *KubeEvents) queue(e Event, eventType string) {
	if k.delay <= 0 || e.RequestUID == "" {
		k.recordQueued(e, eventType)
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if p, ok := k.queued[e.RequestUID]; ok {
		p.event = e
		k.queued[e.RequestUID] = p
		return
	}
	uid := e.RequestUID
	timer := k.clock.AfterFunc(k.delay, func() {
		k.mu.Lock()
		p, ok := k.queued[uid]
		delete(k.queued, uid)
		k.mu.Unlock()
		if ok {
			k.recordQueued(p.event, eventType)
		}
	})
	k.queued[uid] = pendingQueued{timer: timer, event: e}
}

// cancelQueued drops the Queued Event of request uid if it is not recorded yet.
func (k *KubeEvents) cancelQueued(uid string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if p, ok := k.queued[uid]; ok {
		p.timer.Stop()
		delete(k.queued, uid)
	}
}

func (k *KubeEvents) recordQueued(e Event, eventType string) {
	k.onRequest(e, eventType, lockingv1alpha1.ReasonQueued, "Enqueue",
		"waiting for "+orDefault(e.BlockedBy, "the holder")+" at position "+strconv.Itoa(e.Position))
}

func (k *KubeEvents) onRequest(e Event, eventType, reason, action, note string) {
	lr := &lockingv1alpha1.LockRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: lockingv1alpha1.GroupVersion.String(), Kind: "LockRequest"},
		ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Request, UID: types.UID(e.RequestUID)},
	}
	k.recorder.Eventf(lr, nil, eventType, reason, action, "%s", truncateNote(note))
}

func (k *KubeEvents) onLock(ctx context.Context, e Event, eventType, reason, action, note string) {
	// The metadata alone, as the operator caches ProjectLocks: the Event needs
	// the object's UID, nothing of its status.
	pl := &metav1.PartialObjectMetadata{}
	pl.SetGroupVersionKind(lockingv1alpha1.GroupVersion.WithKind("ProjectLock"))
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
