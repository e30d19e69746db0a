package events

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/scheme"
)

// countingSink is an events.EventSink that keeps the notes of the Events created
// and tells when it has seen want of them.
type countingSink struct {
	mu    sync.Mutex
	notes map[string]int
	want  int
	done  chan struct{}
	// cancelled counts creates called with a context already ended.
	cancelled int
}

func (s *countingSink) Create(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		s.cancelled++
	}
	s.notes[e.Note]++
	if len(s.notes) == s.want {
		close(s.done)
	}
	return e, nil
}

func (s *countingSink) Update(_ context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	return e, nil
}

func (s *countingSink) Patch(_ context.Context, e *eventsv1.Event, _ []byte) (*eventsv1.Event, error) {
	return e, nil
}

// TestBoundedRecorderWritesEveryEventAcrossBroadcasters: Events recorded from
// several goroutines while the recorder retires broadcaster after broadcaster are
// each written exactly once, and every retired broadcaster's context is over before
// its Events are written (the sink's own context carries the writes).
func TestBoundedRecorderWritesEveryEventAcrossBroadcasters(t *testing.T) {
	const (
		every   = 16
		writers = 4
		each    = 3*every + 5
		total   = writers * each
	)
	sink := &countingSink{notes: map[string]int{}, want: total, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := NewBoundedRecorder(ctx, clock.RealClock{}, sink, scheme.New(), "test", every)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				lr := &lockingv1alpha1.LockRequest{
					TypeMeta:   metav1.TypeMeta{APIVersion: lockingv1alpha1.GroupVersion.String(), Kind: "LockRequest"},
					ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("r-%d-%d", w, i), UID: types.UID(fmt.Sprintf("uid-%d-%d", w, i))},
				}
				r.Eventf(lr, nil, "Normal", lockingv1alpha1.ReasonQueued, "Enqueue", "event %d-%d", w, i)
			}
		})
	}
	wg.Wait()
	select {
	case <-sink.done:
	case <-time.After(time.Minute):
		sink.mu.Lock()
		defer sink.mu.Unlock()
		t.Fatalf("%d of %d Events written", len(sink.notes), total)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for note, n := range sink.notes {
		if n != 1 {
			t.Errorf("Event %q written %d times", note, n)
		}
	}
	if got, want := r.Generations(), (total+every-1)/every; got != want {
		t.Errorf("%d broadcasters started; want %d (one per %d Events)", got, want, every)
	}
	if sink.cancelled != 0 {
		t.Errorf("%d Events written with a context already cancelled", sink.cancelled)
	}
}
