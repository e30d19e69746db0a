package metrics

import (
	"context"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/events"
)

// Handler is the metrics event handler: it keeps the counters and histograms in
// step with lock events. Subscribe it synchronously (Bus.SubscribeSync) so that it
// sees every event, none dropped; it only touches counters and never blocks.
type Handler struct {
	m *Metrics
}

var _ events.Handler = Handler{}

// NewHandler returns the metrics handler of m.
func NewHandler(m *Metrics) Handler { return Handler{m: m} }

// HandleEvent implements events.Handler.
func (h Handler) HandleEvent(_ context.Context, e events.Event) error {
	m := h.m
	switch e.Type {
	case events.LockAcquired:
		m.RequestsTotal.WithLabelValues("acquired").Inc()
		m.WaitDuration.Observe(e.Wait.Seconds())
	case events.QueueTimeout:
		if e.Reason == lockingv1alpha1.ReasonConflict {
			m.RequestsTotal.WithLabelValues("conflict").Inc()
			break
		}
		m.RequestsTotal.WithLabelValues("queue_timeout").Inc()
		m.TimeoutsTotal.WithLabelValues("queue").Inc()
	case events.ValidationError:
		if e.Reason == lockingv1alpha1.ReasonQueueFull {
			m.RequestsTotal.WithLabelValues("queue_full").Inc()
		}
	case events.DeadlockDetected:
		if e.Reason == lockingv1alpha1.ReasonDeadlockVictim {
			m.RequestsTotal.WithLabelValues("deadlock_victim").Inc()
			break
		}
		m.DeadlocksDetected.Inc()
	case events.LockTimeout:
		m.TimeoutsTotal.WithLabelValues("ttl").Inc()
		m.HoldDuration.Observe(e.Held.Seconds())
	case events.LockReleased:
		m.HoldDuration.Observe(e.Held.Seconds())
	case events.QueueProcessed:
		m.HandOffs.Inc()
	case events.BackendError:
		m.BackendErrors.WithLabelValues("error").Inc()
	case events.TimeoutError:
		m.BackendErrors.WithLabelValues("timeout").Inc()
	}
	return nil
}

// BusObserver counts what the event bus does: every event published and every
// event dropped. (events.WebhookDrops wraps it to count a webhook's drops as its
// dropped deliveries.)
type BusObserver struct {
	m *Metrics
}

var _ events.Observer = BusObserver{}

// NewBusObserver returns the bus observer of m.
func NewBusObserver(m *Metrics) BusObserver { return BusObserver{m: m} }

// Delivered counts one webhook delivery with its result (an events.Delivery*
// value); it is the webhooks' WebhookOptions.Delivered.
func (m *Metrics) Delivered(result string) {
	m.WebhookDeliveries.WithLabelValues(result).Inc()
}

// Published implements events.Observer.
func (o BusObserver) Published(e events.Event) {
	o.m.EventsTotal.WithLabelValues(string(e.Type)).Inc()
}

// Dropped implements events.Observer.
func (o BusObserver) Dropped(string, events.Event) {
	o.m.EventsDropped.Inc()
}

// Failed implements events.Observer. Handler failures are the handler's own
// business (a webhook counts its failed deliveries); nothing to count here.
func (o BusObserver) Failed(string, events.Event, error) {}
