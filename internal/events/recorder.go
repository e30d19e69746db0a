package events

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DirectRecorder records events.k8s.io Events with one create each. It replaces
// client-go's event broadcaster, which keeps a copy of every Event it records for
// six minutes to aggregate repeats into a series: at 10,000 waiting requests,
// 10,000 `Queued` Events held some 12 MB of the operator's memory. KubeEvents
// records at most a few Events per request and never the same one twice, so there
// is nothing to aggregate. Eventf only queues the Event (it may be called from a
// clock's timer, as KubeEvents's delayed Queued Events are); Start writes the
// queue. The queue takes memory only while Events wait: a burst (10,000 waiters
// queued at once) is written as fast as the API server takes it, up to limit
// waiting. An Event beyond the limit, or whose create fails, is counted (Failed)
// and dropped, as the broadcaster drops what it cannot write.
type DirectRecorder struct {
	writer     client.Writer
	controller string
	instance   string
	clock      clock.Clock
	timeout    time.Duration
	limit      int

	mu sync.Mutex
	// queue holds the Events not written yet, oldest first; it grows as needed
	// up to limit, and is empty (nothing allocated) when all are written.
	queue []pendingEvent
	// ready is signalled when queue gains an Event.
	ready chan struct{}

	seq    atomic.Uint64
	failed atomic.Int64
}

// pendingEvent is an Eventf call waiting to be written.
type pendingEvent struct {
	regarding, related              runtime.Object
	eventtype, reason, action, note string
}

var _ events.EventRecorder = (*DirectRecorder)(nil)

// NewDirectRecorder returns a recorder that creates Events through writer,
// reported by controller (ReportingController) from instance (ReportingInstance:
// the pod's name), stamped by clk when written; at most limit wait to be written,
// and each create may take up to timeout.
func NewDirectRecorder(writer client.Writer, controller, instance string, clk clock.Clock, limit int, timeout time.Duration) *DirectRecorder {
	return &DirectRecorder{writer: writer, controller: controller, instance: instance, clock: clk,
		timeout: timeout, limit: limit, ready: make(chan struct{}, 1)}
}

// Eventf queues an Event about regarding (which must carry its TypeMeta), related
// to related (optional), with note formatted from note and args.
func (r *DirectRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.mu.Lock()
	if len(r.queue) >= r.limit {
		r.mu.Unlock()
		r.failed.Add(1)
		return
	}
	r.queue = append(r.queue, pendingEvent{regarding, related, eventtype, reason, action, fmt.Sprintf(note, args...)})
	r.mu.Unlock()
	select {
	case r.ready <- struct{}{}:
	default: // already signalled
	}
}

// Start writes queued Events until ctx ends (a manager.Runnable).
func (r *DirectRecorder) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.ready:
			r.Flush(ctx)
		}
	}
}

// Flush writes the Events queued, in the caller's goroutine, until the queue is
// empty or ctx ends.
func (r *DirectRecorder) Flush(ctx context.Context) {
	for ctx.Err() == nil {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.queue = nil // let a burst's backing array go
			r.mu.Unlock()
			return
		}
		p := r.queue[0]
		r.queue[0] = pendingEvent{}
		r.queue = r.queue[1:]
		r.mu.Unlock()
		r.write(ctx, p)
	}
}

// NeedLeaderElection is false: Events are recorded by whoever decides.
func (r *DirectRecorder) NeedLeaderElection() bool { return false }

func (r *DirectRecorder) write(ctx context.Context, p pendingEvent) {
	ev, err := r.event(p.regarding, p.related, p.eventtype, p.reason, p.action, p.note)
	if err != nil {
		r.failed.Add(1)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.writer.Create(ctx, ev); err != nil {
		r.failed.Add(1)
	}
}

// Failed counts the Events that could not be recorded.
func (r *DirectRecorder) Failed() int64 { return r.failed.Load() }

func (r *DirectRecorder) event(regarding, related runtime.Object, eventtype, reason, action, note string) (*eventsv1.Event, error) {
	ref, err := reference(regarding)
	if err != nil {
		return nil, err
	}
	now := r.clock.Now()
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			// Unique per recorder: the time, then a sequence for Events of the same
			// nanosecond.
			Name:      namePrefix(ref.Name) + "." + strconv.FormatInt(now.UnixNano(), 16) + strconv.FormatUint(r.seq.Add(1), 16),
			Namespace: ref.Namespace,
		},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: r.controller,
		ReportingInstance:   r.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           ref,
		Note:                truncateNote(note),
		Type:                eventtype,
	}
	if related != nil {
		rel, err := reference(related)
		if err != nil {
			return nil, err
		}
		ev.Related = &rel
	}
	return ev, nil
}

// namePrefix shortens an object's name to leave room in an Event's name (at most
// 253 characters) for the suffix, and keeps it a valid start of a DNS subdomain.
func namePrefix(name string) string {
	const maxPrefix = 220
	if len(name) > maxPrefix {
		name = name[:maxPrefix]
	}
	return strings.TrimRight(name, ".-")
}

// reference names obj by its TypeMeta and metadata.
func reference(obj runtime.Object) (corev1.ObjectReference, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return corev1.ObjectReference{}, err
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Kind == "" {
		return corev1.ObjectReference{}, fmt.Errorf("%T %s/%s has no kind set", obj, m.GetNamespace(), m.GetName())
	}
	apiVersion, kind := gvk.ToAPIVersionAndKind()
	return corev1.ObjectReference{APIVersion: apiVersion, Kind: kind, Namespace: m.GetNamespace(),
		Name: m.GetName(), UID: m.GetUID(), ResourceVersion: m.GetResourceVersion()}, nil
}
