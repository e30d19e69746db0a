package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// pendingReason stands for a request the operator has not decided about: no Acquired
// condition, or reason Pending.
const pendingReason = "Pending"

// requestLife is every decision the recorder saw about one LockRequest (one UID).
type requestLife struct {
	Name string `json:"name"`
	// Reasons are the Acquired condition's reasons in the order observed, each
	// once per run of equal ones.
	Reasons []string `json:"reasons"`
	// Ended is the terminal reason's condition lastTransitionTime: when the
	// operator ended the request (to the second, as metav1.Time keeps it).
	Ended time.Time `json:"ended,omitzero"`
	// Deleted is set once the object's deletion was observed.
	Deleted bool `json:"deleted"`

	ended chan struct{} // closed at the first terminal reason or the deletion
}

// recorder watches every LockRequest and Lease of the namespace for the whole run:
// the life of every request, for the terminal-state check, and the grant time of
// every fencing token, for the mutual-exclusion check.
type recorder struct {
	mu sync.Mutex
	// lives by UID.
	lives map[types.UID]*requestLife
	// grants maps "lease/resourceVersion" to the Lease's spec.acquireTime in that
	// version: the operator's own time of the grant whose fencing token is that
	// resourceVersion.
	grants map[string]time.Time
	// errs are the watches' failures.
	errs []error
}

// startRecorder starts both watches; they stop with ctx.
func startRecorder(ctx context.Context, c client.WithWatch, namespace string) (*recorder, error) {
	r := &recorder{lives: map[types.UID]*requestLife{}, grants: map[string]time.Time{}}
	lrs, err := retryWatch(ctx, c, namespace, &lockingv1alpha1.LockRequestList{})
	if err != nil {
		return nil, err
	}
	leases, err := retryWatch(ctx, c, namespace, &coordinationv1.LeaseList{})
	if err != nil {
		return nil, err
	}
	go r.run(lrs, func(ev watch.Event) {
		if lr, ok := ev.Object.(*lockingv1alpha1.LockRequest); ok {
			r.request(ev.Type, lr)
		}
	})
	go r.run(leases, func(ev watch.Event) {
		if l, ok := ev.Object.(*coordinationv1.Lease); ok {
			r.lease(l)
		}
	})
	return r, nil
}

// retryWatch watches the namespace's objects of list's kind from now on, resuming
// when the API server closes the watch.
func retryWatch(ctx context.Context, c client.WithWatch, namespace string, list client.ObjectList) (*watchtools.RetryWatcher, error) {
	if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing %T: %w", list, err)
	}
	rv := list.(metav1.ListInterface).GetResourceVersion()
	lw := &toolscache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, list.DeepCopyObject().(client.ObjectList), &client.ListOptions{Namespace: namespace, Raw: &opts})
		},
	}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, rv, lw)
	if err != nil {
		return nil, fmt.Errorf("watching %T: %w", list, err)
	}
	return w, nil
}

func (r *recorder) run(w *watchtools.RetryWatcher, handle func(watch.Event)) {
	defer w.Stop()
	for ev := range w.ResultChan() {
		if ev.Type == watch.Error {
			r.mu.Lock()
			r.errs = append(r.errs, fmt.Errorf("watch error: %v", ev.Object))
			r.mu.Unlock()
			return
		}
		handle(ev)
	}
}

// request records one LockRequest event.
func (r *recorder) request(typ watch.EventType, lr *lockingv1alpha1.LockRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.life(lr.UID, lr.Name)
	if typ == watch.Deleted {
		l.Deleted = true
		closeOnce(l.ended)
		return
	}
	reason := pendingReason
	c := meta.FindStatusCondition(lr.Status.Conditions, lockingv1alpha1.ConditionAcquired)
	if c != nil {
		reason = c.Reason
	}
	if n := len(l.Reasons); n == 0 || l.Reasons[n-1] != reason {
		l.Reasons = append(l.Reasons, reason)
	}
	if c != nil && lockingv1alpha1.IsTerminalReason(c.Reason) && l.Ended.IsZero() {
		l.Ended = c.LastTransitionTime.Time
		closeOnce(l.ended)
	}
}

func (r *recorder) life(uid types.UID, name string) *requestLife {
	l := r.lives[uid]
	if l == nil {
		l = &requestLife{Name: name, ended: make(chan struct{})}
		r.lives[uid] = l
	}
	return l
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// lease records the grant time of a Lease version that names a holder.
func (r *recorder) lease(l *coordinationv1.Lease) {
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || l.Spec.AcquireTime == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.grants[l.Name+"/"+l.ResourceVersion] = l.Spec.AcquireTime.Time
}

// grantTime returns the operator's time of the grant with token on lock, and whether
// the Lease watch saw that version.
func (r *recorder) grantTime(lock, token string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.grants[lock+"/"+token]
	return t, ok
}

// waitEnded waits until the request uid ends (a terminal reason, or deleted) and
// returns its life.
func (r *recorder) waitEnded(ctx context.Context, uid types.UID, name string) (requestLife, error) {
	r.mu.Lock()
	l := r.life(uid, name)
	r.mu.Unlock()
	select {
	case <-l.ended:
	case <-ctx.Done():
		return requestLife{}, fmt.Errorf("waiting for LockRequest %s to end: %w", name, context.Cause(ctx))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := *l
	out.Reasons = append([]string(nil), l.Reasons...)
	return out, nil
}

// snapshot returns copies of every life and the watch errors.
func (r *recorder) snapshot() (map[types.UID]requestLife, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[types.UID]requestLife, len(r.lives))
	for uid, l := range r.lives {
		c := *l
		c.Reasons = append([]string(nil), l.Reasons...)
		out[uid] = c
	}
	return out, append([]error(nil), r.errs...)
}
