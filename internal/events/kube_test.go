package events

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/events"
	testingclock "k8s.io/utils/clock/testing"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// TestKubeEventsRecordOnlyWaitsThatLast: a wait shorter than QueuedEventDelay
// records no Event at all; one that lasts records Queued when the delay has passed
// (with the latest position) and Acquired at the grant; a wait that ends otherwise
// before the delay records only its end.
func TestKubeEventsRecordOnlyWaitsThatLast(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	rec := events.NewFakeRecorder(100)
	k := NewKubeEvents(rec, nil, clk)
	ctx := context.Background()
	queued := func(uid string, position int) Event {
		return Event{Type: QueuedRequest, Namespace: "ns", Request: "r-" + uid, RequestUID: uid, BlockedBy: "acme/infra#1",
			Position: position, Reason: lockingv1alpha1.ReasonQueued}
	}
	acquired := func(uid string, wait time.Duration) Event {
		return Event{Type: LockAcquired, Namespace: "ns", Request: "r-" + uid, RequestUID: uid, LockKey: "acme/infra/vpc/default/",
			FencingToken: "42", Waited: true, Wait: wait, Reason: lockingv1alpha1.ReasonAcquired}
	}
	handle := func(e Event) {
		t.Helper()
		if err := k.HandleEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	recorded := func() []string {
		var got []string
		for {
			select {
			case e := <-rec.Events:
				got = append(got, e)
			default:
				return got
			}
		}
	}

	// A short wait: nothing.
	handle(queued("short", 1))
	clk.Step(100 * time.Millisecond)
	handle(acquired("short", 100*time.Millisecond))
	clk.Step(QueuedEventDelay)
	if got := recorded(); len(got) != 0 {
		t.Errorf("a 100ms wait recorded %q, want nothing", got)
	}

	// A lasting wait: Queued once the delay has passed, then Acquired.
	handle(queued("long", 2))
	handle(queued("long", 1)) // the queue moved before the delay passed
	clk.Step(QueuedEventDelay)
	handle(acquired("long", 1500*time.Millisecond))
	want := []string{
		"Normal Queued waiting for acme/infra#1 at position 1",
		"Normal Acquired acquired acme/infra/vpc/default/ with fencing token 42 after waiting 1.5s",
	}
	if diff := cmp.Diff(want, recorded()); diff != "" {
		t.Errorf("a 1.5s wait recorded (-want +got):\n%s", diff)
	}

	// A wait that times out before the delay: only its end.
	handle(queued("timeout", 1))
	handle(Event{Type: QueueTimeout, Namespace: "ns", Request: "r-timeout", RequestUID: "timeout",
		Reason: lockingv1alpha1.ReasonQueueTimeout, Message: "waited 200ms"})
	clk.Step(QueuedEventDelay)
	want = []string{"Warning QueueTimeout waited 200ms"}
	if diff := cmp.Diff(want, recorded()); diff != "" {
		t.Errorf("a queue timeout before the delay recorded (-want +got):\n%s", diff)
	}
	if n := len(k.queued); n != 0 {
		t.Errorf("%d Queued Events still pending after every wait ended", n)
	}
}
