package benchutil

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// ErrWatchEnded is the cause of a wait that cannot end because the watch did.
var ErrWatchEnded = errors.New("the LockRequest watch ended")

// Mark is a moment that happens at most once, such as "Acquired first observed".
// Readers wait on Done; after it is closed, At returns the moment, which never
// changes.
type Mark struct {
	once sync.Once
	ch   chan struct{}
	at   time.Time
}

func newMark() *Mark { return &Mark{ch: make(chan struct{})} }

// fire records the moment t, the first time only. set, if not nil, runs first, so
// that what it records is visible to whoever sees Done closed.
func (m *Mark) fire(t time.Time, set func()) {
	m.once.Do(func() {
		if set != nil {
			set()
		}
		m.at = t
		close(m.ch)
	})
}

// Done is closed once the moment has been observed.
func (m *Mark) Done() <-chan struct{} { return m.ch }

// At is when the moment was first observed; call it after Done is closed.
func (m *Mark) At() time.Time { return m.at }

// Tracked is what the observer saw of one LockRequest.
type Tracked struct {
	// Created fires when the object is first observed.
	Created *Mark
	// Queued fires when Queued=True is first observed.
	Queued *Mark
	// Settled fires when Acquired=True, or a terminal Acquired reason, is first
	// observed, or the grant on the key's Lease if that comes first (as
	// pkg/lockclient does); then Token or Failure is set.
	Settled *Mark
	// Gone fires when the object's deletion is observed.
	Gone *Mark

	token   string // status.fencingToken of the grant
	failure string // the terminal reason, when the request failed
	// decided is the grant's time on the Lease (spec.acquireTime): when the
	// operator decided it, by its clock, before writing it.
	decided time.Time
}

// Token is the fencing token of the grant; read it after Settled fired.
func (t *Tracked) Token() string { return t.token }

// Decided is when the operator decided the grant, as the Lease that made it says
// (spec.acquireTime, by the operator's clock: comparable with this process's only
// when the operator runs on the same machine), or zero when the grant was first
// observed on the request's status; read it after Settled fired.
func (t *Tracked) Decided() time.Time { return t.decided }

// Failure is "Reason: message" of a request that ended without the lock, or ""; read
// it after Settled fired.
func (t *Tracked) Failure() string { return t.failure }

// Observer timestamps, from a watch on a namespace's LockRequests and one on its
// Leases, the moments that a client of the operator waits for. Only tracked
// requests are recorded.
type Observer struct {
	mu       sync.Mutex
	requests map[string]*Tracked
	ended    chan struct{} // closed when the watch ends
	err      error         // why it ended, set before ended is closed
	// leaseOwners is the owner each lock Lease was held by at its last event ("":
	// free); only runLeases uses it once started.
	leaseOwners map[string]string
}

// StartObserver starts watching the LockRequests of namespace until ctx is done. The
// watch resumes by itself when the API server closes it.
func StartObserver(ctx context.Context, c client.WithWatch, namespace string) (*Observer, error) {
	w, err := WatchLockRequests(ctx, c, namespace)
	if err != nil {
		return nil, err
	}
	o := &Observer{requests: map[string]*Tracked{}, ended: make(chan struct{}), leaseOwners: map[string]string{}}
	leases, err := o.watchLeases(ctx, c, namespace)
	if err != nil {
		w.Stop()
		return nil, err
	}
	go o.run(ctx, w)
	go o.runLeases(leases)
	return o, nil
}

// WatchLockRequests watches the LockRequests of namespace from now on, until ctx is
// done; the watch resumes by itself when the API server closes it.
func WatchLockRequests(ctx context.Context, c client.WithWatch, namespace string) (*watchtools.RetryWatcher, error) {
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
	return w, nil
}

// watchLeases lists the lock Leases of namespace, remembering who holds each, and
// watches them from there: a client of the operator (pkg/lockclient) learns of its
// grant from whichever of the Lease and its request's status shows it first.
func (o *Observer) watchLeases(ctx context.Context, c client.WithWatch, namespace string) (*watchtools.RetryWatcher, error) {
	var list coordinationv1.LeaseList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing Leases: %w", err)
	}
	for i := range list.Items {
		_, o.leaseOwners[list.Items[i].Name] = lockclient.LeaseHolder(&list.Items[i])
	}
	lw := &toolscache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, &coordinationv1.LeaseList{}, &client.ListOptions{Namespace: namespace, Raw: &opts})
		},
	}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, lw)
	if err != nil {
		return nil, fmt.Errorf("watching Leases: %w", err)
	}
	return w, nil
}

// runLeases handles Lease events until the watch ends: a write that names a tracked
// request for a new owner is its grant (lockclient.LeaseHolder), with the write's
// resourceVersion as the token.
func (o *Observer) runLeases(w *watchtools.RetryWatcher) {
	defer w.Stop()
	for ev := range w.ResultChan() {
		now := time.Now()
		lease, ok := ev.Object.(*coordinationv1.Lease)
		if !ok {
			continue
		}
		if ev.Type == watch.Deleted {
			delete(o.leaseOwners, lease.Name)
			continue
		}
		holder, owner := lockclient.LeaseHolder(lease)
		before := o.leaseOwners[lease.Name]
		o.leaseOwners[lease.Name] = owner
		if owner == "" || owner == before {
			continue
		}
		name, _, _ := strings.Cut(holder, "/")
		o.mu.Lock()
		t := o.requests[name]
		o.mu.Unlock()
		if t != nil {
			t.Settled.fire(now, func() {
				t.token = lease.ResourceVersion
				if lease.Spec.AcquireTime != nil {
					t.decided = lease.Spec.AcquireTime.Time
				}
			})
		}
	}
}

// run handles watch events until the watch ends.
func (o *Observer) run(ctx context.Context, w *watchtools.RetryWatcher) {
	defer w.Stop()
	for ev := range w.ResultChan() {
		now := time.Now()
		if ev.Type == watch.Error {
			o.end(fmt.Errorf("%w: %v", ErrWatchEnded, ev.Object))
			return
		}
		lr, ok := ev.Object.(*lockingv1alpha1.LockRequest)
		if !ok {
			continue
		}
		o.handle(now, ev.Type, lr)
	}
	o.end(fmt.Errorf("%w: %w", ErrWatchEnded, context.Cause(ctx)))
}

func (o *Observer) end(err error) {
	o.err = err
	close(o.ended)
}

// handle records what one event shows of a tracked request.
func (o *Observer) handle(now time.Time, typ watch.EventType, lr *lockingv1alpha1.LockRequest) {
	o.mu.Lock()
	t := o.requests[lr.Name]
	o.mu.Unlock()
	if t == nil {
		return
	}
	if typ == watch.Deleted {
		t.Gone.fire(now, nil)
		return
	}
	t.Created.fire(now, nil)
	if meta.IsStatusConditionTrue(lr.Status.Conditions, lockingv1alpha1.ConditionQueued) {
		t.Queued.fire(now, nil)
	}
	acquired := meta.FindStatusCondition(lr.Status.Conditions, lockingv1alpha1.ConditionAcquired)
	switch {
	case acquired == nil:
	case acquired.Status == metav1.ConditionTrue:
		t.Settled.fire(now, func() { t.token = lr.Status.FencingToken })
	case lockingv1alpha1.IsTerminalReason(acquired.Reason):
		t.Settled.fire(now, func() { t.failure = acquired.Reason + ": " + acquired.Message })
	}
}

// Track registers a request name before it is created, so that no event about it
// can be missed, and returns its record.
func (o *Observer) Track(name string) *Tracked {
	t := &Tracked{Created: newMark(), Queued: newMark(), Settled: newMark(), Gone: newMark()}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests[name] = t
	return t
}

// Forget stops tracking a request.
func (o *Observer) Forget(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.requests, name)
}

// Wait returns when m fires, with the moment it fired, or fails when timeout passes,
// ctx is done or the watch ends. what names the moment in the error.
func (o *Observer) Wait(ctx context.Context, m *Mark, timeout time.Duration, what string) (time.Time, error) {
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

// WaitAcquired waits until t is observed holding its lock, and returns when that was
// first observed and the fencing token of the grant. A request that ended without
// the lock is an error that says why.
func (o *Observer) WaitAcquired(ctx context.Context, t *Tracked, timeout time.Duration, name string) (time.Time, string, error) {
	at, err := o.Wait(ctx, t.Settled, timeout, "Acquired=True of LockRequest "+name)
	if err != nil {
		return time.Time{}, "", err
	}
	if t.failure != "" {
		return time.Time{}, "", fmt.Errorf("LockRequest %s failed instead of acquiring: %s", name, t.failure)
	}
	return at, t.token, nil
}
