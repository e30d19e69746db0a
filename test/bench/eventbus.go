package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/events"
)

// The event bus measurement: busEvents lock_acquired events published back to back
// to 1 and to busSubscribersMany subscribers whose handlers only count, with
// buffers that hold them all (so that nothing is dropped and every event is
// delivered: the bus's throughput, not its drop policy), and again with the
// default event_buffer_size, to show how many a burst of that size drops.
const (
	busEvents          = 50_000
	busSubscribersMany = 8
)

// EventBusResult is the event bus's throughput with one and with many subscribers.
type EventBusResult struct {
	Events int           `json:"events"`
	One    BusThroughput `json:"oneSubscriber"`
	Many   BusThroughput `json:"manySubscribers"`
	// Burst is Many again with the default event_buffer_size.
	Burst BusThroughput `json:"burstDefaultBuffer"`
}

// BusThroughput is one bus measurement.
type BusThroughput struct {
	Subscribers int `json:"subscribers"`
	BufferSize  int `json:"bufferSize"`
	// PublishedPerSec is how fast Publish returned: what a lock decision pays.
	PublishedPerSec float64 `json:"publishedPerSec"`
	// DeliveredPerSec counts deliveries (events × subscribers, minus drops) per
	// second, from the first Publish until every buffer was drained.
	DeliveredPerSec float64 `json:"deliveredPerSec"`
	// Dropped counts events a subscriber did not get because its buffer was full.
	Dropped int64 `json:"dropped"`
}

func runEventBus() (EventBusResult, error) {
	res := EventBusResult{Events: busEvents}
	var err error
	if res.One, err = timeBus(1, busEvents); err != nil {
		return res, err
	}
	if res.Many, err = timeBus(busSubscribersMany, busEvents); err != nil {
		return res, err
	}
	res.Burst, err = timeBus(busSubscribersMany, config.Default().EventBufferSize)
	return res, err
}

func timeBus(subscribers, bufferSize int) (BusThroughput, error) {
	bus := events.NewBus(events.Options{BufferSize: bufferSize})
	var delivered atomic.Int64
	count := events.HandlerFunc(func(context.Context, events.Event) error {
		delivered.Add(1)
		return nil
	})
	for i := range subscribers {
		if _, err := bus.Subscribe(fmt.Sprintf("subscriber-%d", i), count, events.Filter{}); err != nil {
			return BusThroughput{}, err
		}
	}
	e := events.Event{Type: events.LockAcquired, Namespace: "bench", LockKey: "bench/repo/./default/", Owner: "bench/repo#1", FencingToken: "1"}
	start := time.Now()
	for range busEvents {
		bus.Publish(e)
	}
	published := time.Since(start)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := bus.Shutdown(ctx); err != nil {
		return BusThroughput{}, fmt.Errorf("draining the event bus: %w", err)
	}
	drained := time.Since(start)
	return BusThroughput{
		Subscribers:     subscribers,
		BufferSize:      bufferSize,
		PublishedPerSec: busEvents / published.Seconds(),
		DeliveredPerSec: float64(delivered.Load()) / drained.Seconds(),
		Dropped:         bus.Dropped(),
	}, nil
}

// fmtRate prints a rate per second in thousands or millions.
func fmtRate(perSec float64) string {
	switch {
	case perSec >= 1e6:
		return fmt.Sprintf("%.1fM", perSec/1e6)
	case perSec >= 1e3:
		return fmt.Sprintf("%.0fk", perSec/1e3)
	}
	return fmt.Sprintf("%.0f", perSec)
}
