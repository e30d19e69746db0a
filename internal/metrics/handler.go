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

// BusObserver counts what the event bus does: every event published, every event
// dropped, and drops of a webhook's events as its dropped deliveries.
type BusObserver struct {
	m *Metrics
	// isWebhook tells webhook subscribers by name.
	isWebhook func(subscriber string) bool
}

var _ events.Observer = BusObserver{}

// NewBusObserver returns the bus observer of m. isWebhook reports whether a
// subscriber name is a webhook's, whose drops are also dropped deliveries.
func NewBusObserver(m *Metrics, isWebhook func(subscriber string) bool) BusObserver {
	return BusObserver{m: m, isWebhook: isWebhook}
}

// Published implements events.Observer.
func (o BusObserver) Published(e events.Event) {
	o.m.EventsTotal.WithLabelValues(string(e.Type)).Inc()
}

// Dropped implements events.Observer.
func (o BusObserver) Dropped(subscriber string, _ events.Event) {
	o.m.EventsDropped.Inc()
	if o.isWebhook != nil && o.isWebhook(subscriber) {
		o.m.WebhookDeliveries.WithLabelValues("dropped").Inc()
	}
}

// Failed implements events.Observer. Handler failures are the handler's own
// business (a webhook counts its failed deliveries); nothing to count here.
func (o BusObserver) Failed(string, events.Event, error) {}
