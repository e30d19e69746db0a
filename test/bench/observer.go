package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// errWatchEnded is the cause of a wait that cannot end because the watch did.
var errWatchEnded = errors.New("the LockRequest watch ended")

// mark is a moment that happens at most once, such as "Acquired first observed".
// Readers wait on ch; after it is closed, at is set and never changes.
type mark struct {
	once sync.Once
	ch   chan struct{}
	at   time.Time
}

func newMark() *mark { return &mark{ch: make(chan struct{})} }

// fire records the moment t, the first time only. set, if not nil, runs first, so
// that what it records is visible to whoever sees ch closed.
func (m *mark) fire(t time.Time, set func()) {
	m.once.Do(func() {
		if set != nil {
			set()
		}
		m.at = t
		close(m.ch)
	})
}

// tracked is what the observer saw of one LockRequest.
type tracked struct {
	// queued fires when Queued=True is first observed.
	queued *mark
	// settled fires when Acquired=True, or a terminal Acquired reason, is first
	// observed; then token or failure is set.
	settled *mark
	// gone fires when the object's deletion is observed.
	gone *mark

	token   string // status.fencingToken of the grant
	failure string // the terminal reason, when the request failed
}

// observer timestamps, from one watch on the namespace's LockRequests, the moments
// that a client of the operator waits for. Only registered requests are tracked.
type observer struct {
	mu       sync.Mutex
	requests map[string]*tracked
	ended    chan struct{} // closed when the watch ends
	err      error         // why it ended, set before ended is closed
}

// startObserver starts watching the LockRequests of namespace until ctx is done. The
// watch resumes by itself when the API server closes it.
func startObserver(ctx context.Context, c client.WithWatch, namespace string) (*observer, error) {
	var list lockingv1alpha1.LockRequestList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing LockRequests: %w", err)
	}
	lw := &toolscache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, &lockingv1alpha1.LockRequestList{}, &client.ListOptions{Namespace: namespace, Raw: &opts})
		},
	}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, lw)
	if err != nil {
		return nil, fmt.Errorf("watching LockRequests: %w", err)
	}
	o := &observer{requests: map[string]*tracked{}, ended: make(chan struct{})}
	go o.run(ctx, w)
	return o, nil
}

// run handles watch events until the watch ends.
func (o *observer) run(ctx context.Context, w *watchtools.RetryWatcher) {
	defer w.Stop()
	for ev := range w.ResultChan() {
		now := time.Now()
		if ev.Type == watch.Error {
			o.end(fmt.Errorf("%w: %v", errWatchEnded, ev.Object))
			return
		}
		lr, ok := ev.Object.(*lockingv1alpha1.LockRequest)
		if !ok {
			continue
		}
		o.handle(now, ev.Type, lr)
	}
	o.end(fmt.Errorf("%w: %w", errWatchEnded, context.Cause(ctx)))
}

func (o *observer) end(err error) {
	o.err = err
	close(o.ended)
}

// handle records what one event shows of a tracked request.
func (o *observer) handle(now time.Time, typ watch.EventType, lr *lockingv1alpha1.LockRequest) {
	o.mu.Lock()
	t := o.requests[lr.Name]
	o.mu.Unlock()
	if t == nil {
		return
	}
	if typ == watch.Deleted {
		t.gone.fire(now, nil)
		return
	}
	if meta.IsStatusConditionTrue(lr.Status.Conditions, lockingv1alpha1.ConditionQueued) {
		t.queued.fire(now, nil)
	}
	acquired := meta.FindStatusCondition(lr.Status.Conditions, lockingv1alpha1.ConditionAcquired)
	switch {
	case acquired == nil:
	case acquired.Status == metav1.ConditionTrue:
		t.settled.fire(now, func() { t.token = lr.Status.FencingToken })
	case lockingv1alpha1.IsTerminalReason(acquired.Reason):
		t.settled.fire(now, func() { t.failure = acquired.Reason + ": " + acquired.Message })
	}
}

// track registers a request name before it is created, so that no event about it
// can be missed, and returns its record.
func (o *observer) track(name string) *tracked {
	t := &tracked{queued: newMark(), settled: newMark(), gone: newMark()}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests[name] = t
	return t
}

// forget stops tracking a request.
func (o *observer) forget(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.requests, name)
}

// wait returns when m fires, with the moment it fired, or fails when timeout passes,
// ctx is done or the watch ends.
func (o *observer) wait(ctx context.Context, m *mark, timeout time.Duration, what string) (time.Time, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-m.ch:
		return m.at, nil
	case <-timer.C:
		return time.Time{}, fmt.Errorf("%s: not observed within %s", what, timeout)
	case <-ctx.Done():
		return time.Time{}, fmt.Errorf("%s: %w", what, context.Cause(ctx))
	case <-o.ended:
		return time.Time{}, fmt.Errorf("%s: %w", what, o.err)
	}
}

// waitAcquired waits until t is observed holding its lock, and returns when that was
// first observed and the fencing token of the grant.
func (o *observer) waitAcquired(ctx context.Context, t *tracked, timeout time.Duration, name string) (time.Time, string, error) {
	at, err := o.wait(ctx, t.settled, timeout, "Acquired=True of LockRequest "+name)
	if err != nil {
		return time.Time{}, "", err
	}
	if t.failure != "" {
		return time.Time{}, "", fmt.Errorf("LockRequest %s failed instead of acquiring: %s", name, t.failure)
	}
	return at, t.token, nil
}
