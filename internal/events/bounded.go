package events

import (
	"context"
	"sync"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
)

// DefaultEventsPerBroadcaster is how many Events a BoundedRecorder records through
// one broadcaster before it starts the next.
const DefaultEventsPerBroadcaster = 512

// sinkTimeout bounds one create or patch of an Event.
const sinkTimeout = 30 * time.Second

// BoundedRecorder records events.k8s.io Events through client-go's broadcaster,
// and replaces the broadcaster with a fresh one every few hundred Events. The
// broadcaster keeps a copy of every Event it recorded for six to twelve minutes, to
// fold repeats into a series; with 10,000 requests queued in a burst that was
// 10,000 Events and 13 MB of the operator's heap (docs/benchmarks.md, issue 13).
// KubeEvents records at most a few Events per request, rarely the same one twice,
// so a series spanning two broadcasters is written as two Events, and the memory
// is bounded by the Events of one broadcaster. A retired broadcaster writes
// everything it was given: it is shut down only once it has passed every Event on
// to its writer, and its sink outlives its context. And since a broadcaster
// queues at most 1,000 Events per watcher and drops what does not fit, the few
// hundred it is given can never be dropped.
type BoundedRecorder struct {
	ctx        context.Context
	clock      clock.Clock
	newSink    func() events.EventSink
	scheme     *runtime.Scheme
	controller string
	every      int

	mu      sync.RWMutex
	current *generation
	// generations counts the broadcasters started.
	generations int
}

// generation is one broadcaster and the Events recorded through it.
type generation struct {
	broadcaster events.EventBroadcaster
	recorder    events.EventRecorder
	cancel      context.CancelFunc

	mu sync.Mutex
	// recorded counts the Events handed to recorder; client-go's recorder passes
	// each to the broadcaster from a goroutine of its own.
	recorded int
	// delivered counts the Events the broadcaster has passed on.
	delivered int
	// retired is set once no Event is handed to this generation any more;
	// drained is closed when, in addition, every one has been passed on.
	retired   bool
	isDrained bool
	drained   chan struct{}
}

var _ events.EventRecorder = (*BoundedRecorder)(nil)

// NewBoundedRecorder returns a recorder that writes through sink as controller
// (ReportingController), every broadcaster for at most every Events (0 means
// DefaultEventsPerBroadcaster), until ctx ends. clk times the longest wait for a
// retired broadcaster (retireAfter).
func NewBoundedRecorder(ctx context.Context, clk clock.Clock, sink events.EventSink, scheme *runtime.Scheme, controller string, every int) *BoundedRecorder {
	if every <= 0 {
		every = DefaultEventsPerBroadcaster
	}
	return &BoundedRecorder{ctx: ctx, clock: clk, newSink: func() events.EventSink { return detachedSink{sink} },
		scheme: scheme, controller: controller, every: every}
}

// Eventf records an Event about regarding, related to related (optional).
func (r *BoundedRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	for {
		r.mu.RLock()
		g := r.current
		recorded := g != nil && g.record(r.every, func() {
			g.recorder.Eventf(regarding, related, eventtype, reason, action, note, args...)
		})
		// Released only now, so that a rotation never shuts down a broadcaster
		// an Event is still being handed to.
		r.mu.RUnlock()
		if recorded {
			return
		}
		r.rotate(g)
	}
}

// record hands one Event to g through do, unless g has had every Events already.
func (g *generation) record(every int, do func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.recorded >= every {
		return false
	}
	g.recorded++
	do()
	return true
}

// Generations returns how many broadcasters have been started.
func (r *BoundedRecorder) Generations() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.generations
}

// rotate starts a new broadcaster in place of old (nil: none yet), unless that
// happened already, and retires old: its queued Events are still written, then
// its copies go.
func (r *BoundedRecorder) rotate(old *generation) {
	r.mu.Lock()
	if r.current != old {
		r.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	b := events.NewBroadcaster(r.newSink())
	if err := b.StartRecordingToSinkWithContext(ctx); err != nil {
		// Only a broadcaster already shut down fails here, and this one is new.
		cancel()
		r.mu.Unlock()
		return
	}
	g := &generation{broadcaster: b, recorder: b.NewRecorder(r.scheme, r.controller), cancel: cancel,
		drained: make(chan struct{})}
	if _, err := b.StartEventWatcher(func(runtime.Object) { g.passedOn() }); err != nil {
		cancel()
		r.mu.Unlock()
		return
	}
	r.current = g
	r.generations++
	r.mu.Unlock()
	if old != nil {
		go old.retire(r.clock.After(retireAfter))
	}
}

// passedOn counts an Event the broadcaster passed on to its writer.
func (g *generation) passedOn() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.delivered++
	g.closeIfDrained()
}

// closeIfDrained closes drained once g is retired and has passed every Event on.
func (g *generation) closeIfDrained() {
	if g.retired && !g.isDrained && g.delivered == g.recorded {
		g.isDrained = true
		close(g.drained)
	}
}

// retireAfter bounds the wait for a retired broadcaster's Events to be passed on,
// which takes microseconds; a broadcaster stuck past it (an Event client-go's
// recorder refused to pass on would do that) is shut down anyway, rather than
// kept with its copies for good.
const retireAfter = time.Minute

// retire shuts g's broadcaster down once every Event handed to it has been passed
// on to its writer: the writes themselves run on (detachedSink), and cancelling
// ends the broadcaster's series housekeeping, which held its copies.
func (g *generation) retire(giveUp <-chan time.Time) {
	g.mu.Lock()
	g.retired = true
	g.closeIfDrained()
	g.mu.Unlock()
	select {
	case <-g.drained:
	case <-giveUp:
	}
	g.broadcaster.Shutdown()
	g.cancel()
}

// detachedSink writes Events with a context of its own, so that retiring a
// broadcaster (cancelling its context) never fails a write already handed to it.
type detachedSink struct{ events.EventSink }

func (s detachedSink) Create(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sinkTimeout)
	defer cancel()
	return s.EventSink.Create(ctx, e)
}

func (s detachedSink) Update(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sinkTimeout)
	defer cancel()
	return s.EventSink.Update(ctx, e)
}

func (s detachedSink) Patch(ctx context.Context, e *eventsv1.Event, data []byte) (*eventsv1.Event, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sinkTimeout)
	defer cancel()
	return s.EventSink.Patch(ctx, e, data)
}
