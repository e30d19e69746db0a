package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// Handler consumes events.
type Handler interface {
	// HandleEvent handles one event. ctx ends when the bus shuts down and its
	// drain time is over, so a handler doing I/O must honour it. An error is
	// counted and logged by the bus; the event is not retried (a handler that
	// wants retries, like the webhook handler, does them itself).
	HandleEvent(ctx context.Context, e Event) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, e Event) error

// HandleEvent implements Handler.
func (f HandlerFunc) HandleEvent(ctx context.Context, e Event) error { return f(ctx, e) }

// Filter selects events. Each non-empty list must contain the event's value; an
// empty Filter selects every event.
type Filter struct {
	// Types are the event types wanted.
	Types []Type
	// Namespaces are the namespaces wanted. System events, which have no
	// namespace, never match a namespace filter.
	Namespaces []string
	// Repositories are the repository full names wanted ("owner/repo"), matched
	// exactly. System events never match a repository filter.
	Repositories []string
}

// Matches reports whether the filter selects e.
func (f Filter) Matches(e Event) bool {
	return matches(f.Types, e.Type) && matches(f.Namespaces, e.Namespace) && matches(f.Repositories, e.Repository)
}

func matches[T comparable](wanted []T, v T) bool {
	return len(wanted) == 0 || slices.Contains(wanted, v)
}

// Observer is told what the bus does, for metrics. Its methods are called on the
// publishing goroutine or a subscriber's goroutine and must not block.
type Observer interface {
	// Published is called once per event published.
	Published(e Event)
	// Dropped is called when subscriber's buffer was full (or the bus closed) and
	// it will not see e.
	Dropped(subscriber string, e Event)
	// Failed is called when subscriber's handler returned an error for e.
	Failed(subscriber string, e Event, err error)
}

// Options configure a Bus.
type Options struct {
	// BufferSize is the default number of events buffered per asynchronous
	// subscriber (event_buffer_size). It must be at least 1.
	BufferSize int
	// Observer, if set, is told of every publication, drop and handler failure.
	Observer Observer
	// DrainTimeout bounds how long Start's shutdown lets subscribers work through
	// their buffers (component_timeout). 0 means no time: what is buffered is lost.
	DrainTimeout time.Duration
	// Log receives handler errors, at most once per subscriber and error text in
	// a row, so that a failing webhook cannot flood the log.
	Log logr.Logger
}

// Bus fans events out to subscribers. Publish never blocks: asynchronous
// subscribers each have a bounded buffer drained by their own goroutine, and
// synchronous subscribers are called inline and must be quick.
type Bus struct {
	opts Options

	mu     sync.RWMutex
	subs   []*Subscription
	closed bool
	// runCtx is given to handlers; it ends when Shutdown's drain time is over.
	runCtx    context.Context
	cancelRun context.CancelFunc
	wg        sync.WaitGroup

	published atomic.Int64
	dropped   atomic.Int64
}

// NewBus returns a bus that delivers until Shutdown.
func NewBus(opts Options) *Bus {
	if opts.BufferSize < 1 {
		opts.BufferSize = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Bus{opts: opts, runCtx: ctx, cancelRun: cancel}
}

// Subscription is one subscriber's registration.
type Subscription struct {
	name    string
	handler Handler
	filter  Filter
	// events is nil for a synchronous subscription.
	events chan Event

	handled atomic.Int64
	dropped atomic.Int64
	failed  atomic.Int64
	// abandoned counts buffered events left unhandled when Shutdown ran out of time.
	abandoned atomic.Int64
	lastErr   atomic.Pointer[string]
}

// Name is the subscriber's name, as given to Subscribe.
func (s *Subscription) Name() string { return s.name }

// SubscriptionStats counts what happened to one subscriber's events.
type SubscriptionStats struct {
	// Name is the subscriber's name.
	Name string
	// Handled counts events its handler returned from (with or without error).
	Handled int64
	// Dropped counts events it did not get because its buffer was full.
	Dropped int64
	// Failed counts events its handler returned an error for.
	Failed int64
	// Buffered is how many events wait in its buffer now.
	Buffered int
	// Capacity is its buffer's size (0 for a synchronous subscriber).
	Capacity int
	// LastError is its handler's latest error, or "".
	LastError string
}

// Stats returns the subscription's counters.
func (s *Subscription) Stats() SubscriptionStats {
	st := SubscriptionStats{
		Name:     s.name,
		Handled:  s.handled.Load(),
		Dropped:  s.dropped.Load(),
		Failed:   s.failed.Load(),
		Buffered: len(s.events),
		Capacity: cap(s.events),
	}
	if p := s.lastErr.Load(); p != nil {
		st.LastError = *p
	}
	return st
}

// SubscribeOption changes one subscription.
type SubscribeOption func(*Subscription)

// WithBufferSize gives the subscription a buffer of n events instead of the bus's
// BufferSize (a webhook's queue_size, for example). n below 1 is taken as 1.
func WithBufferSize(n int) SubscribeOption {
	return func(s *Subscription) { s.events = make(chan Event, max(n, 1)) }
}

// Subscribe registers an asynchronous subscriber: handler runs on a goroutine of
// its own, fed by a bounded buffer, so a slow handler delays nobody else. Events
// published while its buffer is full are dropped for it and counted. name
// identifies it in stats, metrics and logs.
func (b *Bus) Subscribe(name string, handler Handler, filter Filter, opts ...SubscribeOption) (*Subscription, error) {
	s := &Subscription{name: name, handler: handler, filter: filter, events: make(chan Event, b.opts.BufferSize)}
	for _, opt := range opts {
		opt(s)
	}
	if err := b.add(s); err != nil {
		return nil, err
	}
	go b.deliver(s)
	return s, nil
}

// SubscribeSync registers a synchronous subscriber: handler runs inline in
// Publish, on the publisher's goroutine (a lock decision's), and sees every event
// that matches, none dropped. It must be quick and must not block: counters, such as
// the metrics handler, or an append to a local file, as the audit trail (whose cost
// make bench measures); never a network call.
func (b *Bus) SubscribeSync(name string, handler Handler, filter Filter) (*Subscription, error) {
	s := &Subscription{name: name, handler: handler, filter: filter}
	if err := b.add(s); err != nil {
		return nil, err
	}
	return s, nil
}

func (b *Bus) add(s *Subscription) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("event bus is shut down")
	}
	for _, other := range b.subs {
		if other.name == s.name {
			return fmt.Errorf("event bus already has a subscriber named %q", s.name)
		}
	}
	b.subs = append(b.subs, s)
	if s.events != nil {
		// Counted under the lock, so that a Shutdown that follows waits for it.
		b.wg.Add(1)
	}
	return nil
}

// Publish hands e to every subscriber whose filter matches. It never blocks on an
// asynchronous subscriber: a full buffer drops e for that subscriber. After
// Shutdown, events are dropped for everyone.
func (b *Bus) Publish(e Event) {
	b.published.Add(1)
	if obs := b.opts.Observer; obs != nil {
		obs.Published(e)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, s := range b.subs {
		if !s.filter.Matches(e) {
			continue
		}
		if s.events == nil {
			b.handle(s, e)
			continue
		}
		if b.closed {
			b.drop(s, e)
			continue
		}
		select {
		case s.events <- e:
		default:
			b.drop(s, e)
		}
	}
}

func (b *Bus) drop(s *Subscription, e Event) {
	s.dropped.Add(1)
	b.dropped.Add(1)
	if obs := b.opts.Observer; obs != nil {
		obs.Dropped(s.name, e)
	}
}

func (b *Bus) deliver(s *Subscription) {
	defer b.wg.Done()
	for e := range s.events {
		if b.runCtx.Err() != nil {
			// Shutdown ran out of drain time: what is left is abandoned, not
			// handed to a handler whose context is already over.
			s.abandoned.Add(1)
			continue
		}
		b.handle(s, e)
	}
}

func (b *Bus) handle(s *Subscription, e Event) {
	err := s.handler.HandleEvent(b.runCtx, e)
	s.handled.Add(1)
	if err == nil {
		return
	}
	s.failed.Add(1)
	msg := err.Error()
	if prev := s.lastErr.Swap(&msg); prev == nil || *prev != msg {
		b.opts.Log.Error(err, "event handler failed", "subscriber", s.name, "event", e.Type)
	}
	if obs := b.opts.Observer; obs != nil {
		obs.Failed(s.name, e, err)
	}
}

// Stats returns every subscription's counters, in subscription order.
func (b *Bus) Stats() []SubscriptionStats {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]SubscriptionStats, 0, len(b.subs))
	for _, s := range b.subs {
		out = append(out, s.Stats())
	}
	return out
}

// Published counts events published since the bus was made.
func (b *Bus) Published() int64 { return b.published.Load() }

// Dropped counts events dropped for some subscriber since the bus was made (an
// event dropped for two subscribers counts twice).
func (b *Bus) Dropped() int64 { return b.dropped.Load() }

// Closed reports whether Shutdown has begun.
func (b *Bus) Closed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.closed
}

// Shutdown stops accepting events and lets every asynchronous subscriber work
// through what it has buffered until ctx ends. Then it cancels the handlers'
// context, waits for them to return, and reports how many buffered events were
// never handled. Last, it closes the handlers that are io.Closers. It is safe to
// call more than once, but closes handlers every time.
func (b *Bus) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		for _, s := range b.subs {
			if s.events != nil {
				close(s.events)
			}
		}
	}
	subs := slices.Clone(b.subs)
	b.mu.Unlock()

	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	var drainErr error
	select {
	case <-done:
	case <-ctx.Done():
		// Out of time: abort what handlers are doing; what is still buffered is lost.
		b.cancelRun()
		<-done
		var lost int64
		for _, s := range subs {
			lost += s.abandoned.Load()
		}
		drainErr = fmt.Errorf("event bus drain time over: %d buffered events were not handled: %w", lost, ctx.Err())
	}
	b.cancelRun()
	return errors.Join(drainErr, closeHandlers(subs))
}

// closeHandlers closes the handlers that are io.Closers (the audit trail's file),
// once nothing calls them any more.
func closeHandlers(subs []*Subscription) error {
	var errs []error
	for _, s := range subs {
		if c, ok := s.handler.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing subscriber %s: %w", s.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Start implements manager.Runnable: the bus delivers until ctx ends, then shuts
// down, draining for at most Options.DrainTimeout.
func (b *Bus) Start(ctx context.Context) error {
	<-ctx.Done()
	drainCtx, cancel := context.WithTimeout(context.Background(), b.opts.DrainTimeout)
	defer cancel()
	if err := b.Shutdown(drainCtx); err != nil {
		b.opts.Log.Error(err, "shutting down the event bus")
	}
	return nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica
// runs its bus, since a replica reports its own health and errors.
func (b *Bus) NeedLeaderElection() bool { return false }
