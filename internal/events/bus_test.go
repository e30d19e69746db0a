package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// recorder is a handler that keeps what it saw.
type recorder struct {
	mu  sync.Mutex
	got []Event
}

func (r *recorder) HandleEvent(_ context.Context, e Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, e)
	return nil
}

func (r *recorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.got {
		out = append(out, e.Message)
	}
	return out
}

// gate is a handler that blocks until released, then records.
type gate struct {
	recorder
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (g *gate) HandleEvent(ctx context.Context, e Event) error {
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.recorder.HandleEvent(ctx, e)
}

// busCounter counts what the bus reports.
type busCounter struct {
	mu        sync.Mutex
	published int
	dropped   map[string]int
	failed    map[string]int
}

func newBusCounter() *busCounter {
	return &busCounter{dropped: map[string]int{}, failed: map[string]int{}}
}

func (o *busCounter) Published(Event) { o.mu.Lock(); o.published++; o.mu.Unlock() }
func (o *busCounter) Dropped(s string, _ Event) {
	o.mu.Lock()
	o.dropped[s]++
	o.mu.Unlock()
}
func (o *busCounter) Failed(s string, _ Event, _ error) {
	o.mu.Lock()
	o.failed[s]++
	o.mu.Unlock()
}

func shutdown(t *testing.T, b *Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func ev(t Type, ns, repo, msg string) Event {
	return Event{Type: t, Namespace: ns, Repository: repo, Message: msg}
}

func TestFilterMatches(t *testing.T) {
	acquired := ev(LockAcquired, "team-a", "acme/infra", "")
	health := ev(SystemHealthCheck, "", "", "")
	for _, tc := range []struct {
		name   string
		filter Filter
		e      Event
		want   bool
	}{
		{"empty filter takes everything", Filter{}, acquired, true},
		{"empty filter takes system events", Filter{}, health, true},
		{"type listed", Filter{Types: []Type{QueuedRequest, LockAcquired}}, acquired, true},
		{"type not listed", Filter{Types: []Type{QueuedRequest}}, acquired, false},
		{"namespace listed", Filter{Namespaces: []string{"team-a"}}, acquired, true},
		{"namespace not listed", Filter{Namespaces: []string{"team-b"}}, acquired, false},
		{"system event never matches a namespace filter", Filter{Namespaces: []string{"team-a"}}, health, false},
		{"repository exact", Filter{Repositories: []string{"acme/infra"}}, acquired, true},
		{"repository is not a prefix match", Filter{Repositories: []string{"acme/infr"}}, acquired, false},
		{"longer repository does not match", Filter{Repositories: []string{"acme/infra"}}, ev(LockAcquired, "team-a", "acme/infra2", ""), false},
		{"all three must match", Filter{Types: []Type{LockAcquired}, Namespaces: []string{"team-a"}, Repositories: []string{"acme/other"}}, acquired, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.filter.Matches(tc.e); got != tc.want {
				t.Errorf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTypes(t *testing.T) {
	if got := len(Types()); got != 13 {
		t.Fatalf("%d event types, the original design has 13", got)
	}
	for _, typ := range Types() {
		if !typ.Valid() {
			t.Errorf("%s not Valid", typ)
		}
	}
	if Type("lock_stolen").Valid() {
		t.Error("an unknown type is Valid")
	}
}

func TestBusDeliversInOrderToEachMatchingSubscriber(t *testing.T) {
	b := NewBus(Options{BufferSize: 100})
	all, acquiredOnly, teamB := &recorder{}, &recorder{}, &recorder{}
	mustSubscribe(t, b, "all", all, Filter{})
	mustSubscribe(t, b, "acquired", acquiredOnly, Filter{Types: []Type{LockAcquired}})
	mustSubscribe(t, b, "team-b", teamB, Filter{Namespaces: []string{"team-b"}})

	var want, wantAcquired []string
	for i := range 50 {
		typ := QueuedRequest
		if i%3 == 0 {
			typ = LockAcquired
			wantAcquired = append(wantAcquired, fmt.Sprint(i))
		}
		b.Publish(ev(typ, "team-a", "acme/infra", fmt.Sprint(i)))
		want = append(want, fmt.Sprint(i))
	}
	shutdown(t, b)

	if diff := cmp.Diff(want, all.messages()); diff != "" {
		t.Errorf("subscriber with no filter (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantAcquired, acquiredOnly.messages()); diff != "" {
		t.Errorf("lock_acquired subscriber (-want +got):\n%s", diff)
	}
	if got := teamB.messages(); len(got) != 0 {
		t.Errorf("team-b subscriber got %d events of team-a", len(got))
	}
}

func TestSlowSubscriberDropsAndDelaysNobody(t *testing.T) {
	obs := newBusCounter()
	b := NewBus(Options{BufferSize: 2, Observer: obs})
	slow, fast := newGate(), &recorder{}
	slowSub := mustSubscribe(t, b, "slow", slow, Filter{})
	mustSubscribe(t, b, "fast", fast, Filter{}, WithBufferSize(100))

	b.Publish(ev(LockAcquired, "ns", "r", "0"))
	<-slow.entered // the slow handler holds event 0; its buffer (2) is empty
	for i := 1; i <= 10; i++ {
		b.Publish(ev(LockAcquired, "ns", "r", fmt.Sprint(i)))
	}
	// Publish returned although "slow" blocks: 2 events fit its buffer, 8 dropped.
	if got := slowSub.Stats().Dropped; got != 8 {
		t.Errorf("slow subscriber dropped %d, want 8", got)
	}
	if got := b.Dropped(); got != 8 {
		t.Errorf("bus dropped %d, want 8", got)
	}
	close(slow.release)
	shutdown(t, b)
	if diff := cmp.Diff([]string{"0", "1", "2"}, slow.messages()); diff != "" {
		t.Errorf("slow subscriber got (-want +got):\n%s", diff)
	}
	if got := len(fast.messages()); got != 11 {
		t.Errorf("fast subscriber got %d events, want all 11", got)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.published != 11 || obs.dropped["slow"] != 8 || obs.dropped["fast"] != 0 {
		t.Errorf("observer saw %d published, drops %v; want 11 published, 8 drops for slow only", obs.published, obs.dropped)
	}
}

func TestSyncSubscriberSeesEveryEvent(t *testing.T) {
	b := NewBus(Options{BufferSize: 1})
	counter := &recorder{}
	if _, err := b.SubscribeSync("metrics", counter, Filter{Types: []Type{LockAcquired}}); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		b.Publish(ev(LockAcquired, "ns", "r", fmt.Sprint(i)))
		b.Publish(ev(QueuedRequest, "ns", "r", "ignored"))
	}
	// Synchronous: everything is there before Shutdown.
	if got := len(counter.messages()); got != 1000 {
		t.Errorf("sync subscriber saw %d events, want 1000", got)
	}
	if b.Dropped() != 0 {
		t.Errorf("dropped %d", b.Dropped())
	}
	shutdown(t, b)
}

func TestShutdownDrainsBufferedEvents(t *testing.T) {
	b := NewBus(Options{BufferSize: 100})
	g := newGate()
	mustSubscribe(t, b, "gated", g, Filter{})
	for i := range 20 {
		b.Publish(ev(LockReleased, "ns", "r", fmt.Sprint(i)))
	}
	<-g.entered
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- b.Shutdown(ctx)
	}()
	close(g.release)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := len(g.messages()); got != 20 {
		t.Errorf("handled %d of 20 buffered events before Shutdown returned", got)
	}
	// After shutdown, events are dropped, and new subscribers refused.
	b.Publish(ev(LockReleased, "ns", "r", "late"))
	if got := len(g.messages()); got != 20 {
		t.Errorf("an event published after Shutdown was handled")
	}
	if _, err := b.Subscribe("late", &recorder{}, Filter{}); err == nil {
		t.Error("Subscribe after Shutdown succeeded")
	}
	if !b.Closed() {
		t.Error("Closed is false after Shutdown")
	}
}

func TestShutdownGivesUpWhenDrainTimeIsOver(t *testing.T) {
	b := NewBus(Options{BufferSize: 100})
	g := newGate() // never released: a hung handler
	mustSubscribe(t, b, "hung", g, Filter{})
	for i := range 5 {
		b.Publish(ev(LockAcquired, "ns", "r", fmt.Sprint(i)))
	}
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no drain time at all
	err := b.Shutdown(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want the drain context's error", err)
	}
	// The hung handler saw its context end; the 4 events behind it were abandoned.
	if want := "4 buffered events were not handled"; !strings.Contains(err.Error(), want) {
		t.Errorf("Shutdown error %q does not say %q", err, want)
	}
	if got := len(g.messages()); got != 0 {
		t.Errorf("handled %d events after the drain time", got)
	}
}

func TestHandlerErrorsAreCountedNotFatal(t *testing.T) {
	obs := newBusCounter()
	b := NewBus(Options{BufferSize: 10, Observer: obs})
	calls := 0
	failing := HandlerFunc(func(context.Context, Event) error {
		calls++
		return errors.New("endpoint down")
	})
	sub, err := b.SubscribeSync("failing", failing, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	b.Publish(ev(LockAcquired, "ns", "r", "1"))
	b.Publish(ev(LockAcquired, "ns", "r", "2"))
	st := sub.Stats()
	if calls != 2 || st.Failed != 2 || st.Handled != 2 || st.LastError != "endpoint down" {
		t.Errorf("stats %+v after 2 failing calls (%d calls)", st, calls)
	}
	if obs.failed["failing"] != 2 {
		t.Errorf("observer saw %d failures, want 2", obs.failed["failing"])
	}
	shutdown(t, b)
}

func TestSubscriberNamesAreUnique(t *testing.T) {
	b := NewBus(Options{BufferSize: 1})
	mustSubscribe(t, b, "log", &recorder{}, Filter{})
	if _, err := b.Subscribe("log", &recorder{}, Filter{}); err == nil {
		t.Error("a second subscriber named log was accepted")
	}
	shutdown(t, b)
}

func mustSubscribe(t *testing.T, b *Bus, name string, h Handler, f Filter, opts ...SubscribeOption) *Subscription {
	t.Helper()
	s, err := b.Subscribe(name, h, f, opts...)
	if err != nil {
		t.Fatalf("Subscribe %s: %v", name, err)
	}
	return s
}
