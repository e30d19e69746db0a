package metrics

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/runatlantis/atlantis-lock-operator/internal/events"
)

func TestHandlerCountsLockEvents(t *testing.T) {
	m := New(func() (int, int) { return 3, 7 })
	h := NewHandler(m)
	for _, e := range []events.Event{
		{Type: events.LockRequested},
		{Type: events.LockAcquired, Wait: 0},
		{Type: events.LockAcquired, Wait: 90 * time.Second},
		{Type: events.QueueTimeout, Reason: "QueueTimeout"},
		{Type: events.QueueTimeout, Reason: "Conflict"},
		{Type: events.QueueTimeout, Reason: "Conflict"},
		{Type: events.ValidationError, Reason: "QueueFull"},
		{Type: events.DeadlockDetected, Reason: events.ReasonDeadlockDetected},
		{Type: events.DeadlockDetected, Reason: "DeadlockVictim"},
		{Type: events.LockTimeout, Reason: "Expired", Held: 2 * time.Hour},
		{Type: events.LockReleased, Reason: "Released", Held: time.Minute},
		{Type: events.LockReleased, Reason: "Revoked", Held: time.Second},
		{Type: events.QueueProcessed},
		{Type: events.BackendError},
		{Type: events.TimeoutError},
		{Type: events.TimeoutError},
	} {
		if err := h.HandleEvent(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"requests acquired", m.RequestsTotal.WithLabelValues("acquired"), 2},
		{"requests conflict", m.RequestsTotal.WithLabelValues("conflict"), 2},
		{"requests queue_timeout", m.RequestsTotal.WithLabelValues("queue_timeout"), 1},
		{"requests queue_full", m.RequestsTotal.WithLabelValues("queue_full"), 1},
		{"requests deadlock_victim", m.RequestsTotal.WithLabelValues("deadlock_victim"), 1},
		{"timeouts queue", m.TimeoutsTotal.WithLabelValues("queue"), 1},
		{"timeouts ttl", m.TimeoutsTotal.WithLabelValues("ttl"), 1},
		{"deadlocks", m.DeadlocksDetected, 1},
		{"hand-offs", m.HandOffs, 1},
		{"backend errors", m.BackendErrors.WithLabelValues("error"), 1},
		{"backend timeouts", m.BackendErrors.WithLabelValues("timeout"), 2},
		{"locks held (read at scrape)", m.LocksHeld, 3},
		{"queue depth (read at scrape)", m.QueueDepth, 7},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	wantHistogram(t, m.WaitDuration, 2, 90)
	wantHistogram(t, m.HoldDuration, 3, 7200+60+1)
}

func wantHistogram(t *testing.T, h prometheus.Histogram, count uint64, sum float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := mfs[0].GetMetric()[0].GetHistogram()
	if got.GetSampleCount() != count || got.GetSampleSum() != sum {
		t.Errorf("%s: %d samples summing to %v, want %d summing to %v",
			mfs[0].GetName(), got.GetSampleCount(), got.GetSampleSum(), count, sum)
	}
}

func TestBusObserverCountsEventsAndDrops(t *testing.T) {
	m := New(func() (int, int) { return 0, 0 })
	hook, err := events.NewWebhook(events.WebhookOptions{Name: "webhook-0", URL: "http://127.0.0.1:1/", QueueSize: 1, Delivered: m.Delivered})
	if err != nil {
		t.Fatal(err)
	}
	bus := events.NewBus(events.Options{BufferSize: 1, Observer: events.WebhookDrops(NewBusObserver(m), hook)})
	block := make(chan struct{})
	entered := make(chan struct{}, 10)
	slow := events.HandlerFunc(func(ctx context.Context, _ events.Event) error {
		entered <- struct{}{}
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil
	})
	if _, err := bus.Subscribe("webhook-0", slow, events.Filter{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Subscribe("audit", slow, events.Filter{Types: []events.Type{events.LockReleased}}); err != nil {
		t.Fatal(err)
	}
	bus.Publish(events.Event{Type: events.LockAcquired})
	<-entered // webhook-0 handles the first event; its buffer of 1 is empty again
	for range 4 {
		bus.Publish(events.Event{Type: events.LockAcquired})
	}
	close(block)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.EventsTotal.WithLabelValues("lock_acquired")); got != 5 {
		t.Errorf("lock_acquired events = %v, want 5", got)
	}
	if got := testutil.ToFloat64(m.EventsDropped); got != 3 {
		t.Errorf("dropped = %v, want 3 (1 handled, 1 buffered, 3 dropped)", got)
	}
	if got := testutil.ToFloat64(m.WebhookDeliveries.WithLabelValues("dropped")); got != 3 {
		t.Errorf("webhook deliveries dropped = %v, want 3", got)
	}
}
