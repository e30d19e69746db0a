package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
)

// lockClient does what Atlantis does through pkg/lockclient: it creates a
// LockRequest, waits for its status, and deletes it to release the lock.
type lockClient struct {
	c         client.WithWatch
	obs       *benchutil.Observer
	namespace string
	// timeout bounds every wait for an observation.
	timeout time.Duration
	// pulls numbers the requests' pull requests, so that every request has an owner
	// of its own: requests of one owner for one key are re-entrant and would share
	// the lock.
	pulls atomic.Int32
}

// request is one LockRequest of the benchmark and what the observer saw of it.
type request struct {
	obj *lockingv1alpha1.LockRequest
	obs *benchutil.Tracked
	// created is when the client sent the create, createTook how long the API
	// server took to answer it.
	created    time.Time
	createTook time.Duration
}

// create creates a LockRequest for the key (repository, path, workspace "default"),
// with an owner of its own, whose client learns of its grant as notice says: as
// pkg/lockclient's Lock (lockingv1alpha1.GrantNoticeLeaseOnly, no word while it
// waits) or TryLock (GrantNoticeLease, told Queued at once).
func (l *lockClient) create(ctx context.Context, name, repository, path, notice string) (*request, error) {
	lr := &lockingv1alpha1.LockRequest{
		// Without finalizers and learning of the grant from the Lease, as
		// pkg/lockclient creates every request.
		ObjectMeta: metav1.ObjectMeta{Namespace: l.namespace, Name: name,
			Annotations: map[string]string{lockingv1alpha1.GrantNoticeAnnotation: notice}},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project:   lockingv1alpha1.ProjectRef{Repository: repository, Path: path},
			Workspace: "default",
			Pull:      &lockingv1alpha1.PullRequestRef{Number: l.pulls.Add(1)},
			User:      lockingv1alpha1.UserRef{Username: benchUser},
		},
	}
	r := &request{obj: lr, obs: l.obs.Track(name)}
	r.created = time.Now()
	if err := l.c.Create(ctx, lr); err != nil {
		l.obs.Forget(name)
		return nil, fmt.Errorf("creating LockRequest %s: %w", name, err)
	}
	r.createTook = time.Since(r.created)
	return r, nil
}

// acquired waits until r is observed holding its lock, and returns when that was
// first observed and the grant's fencing token.
func (l *lockClient) acquired(ctx context.Context, r *request) (time.Time, string, error) {
	return l.obs.WaitAcquired(ctx, r.obs, l.timeout, r.obj.Name)
}

// queued waits until r is observed waiting in its key's queue.
func (l *lockClient) queued(ctx context.Context, r *request) error {
	_, err := l.obs.Wait(ctx, r.obs.Queued, l.timeout, "Queued=True of LockRequest "+r.obj.Name)
	return err
}

// created waits until r's create is observed: what the observer's watch shows, the
// operator's informer has been sent too. A blocking Lock's waiter is told nothing
// while it waits, so this is all a hand-off to one can wait for.
func (l *lockClient) created(ctx context.Context, r *request) error {
	_, err := l.obs.Wait(ctx, r.obs.Created, l.timeout, "creation of LockRequest "+r.obj.Name)
	return err
}

// remove deletes r (releasing its lock or leaving the queue) without waiting.
func (l *lockClient) remove(ctx context.Context, r *request) error {
	if err := l.c.Delete(ctx, r.obj); err != nil {
		return fmt.Errorf("deleting LockRequest %s: %w", r.obj.Name, err)
	}
	return nil
}

// gone waits until r's deletion is observed (at once: requests carry no finalizer;
// the operator releases the Lease after). It returns when that was observed.
func (l *lockClient) gone(ctx context.Context, r *request) (time.Time, error) {
	at, err := l.obs.Wait(ctx, r.obs.Gone, l.timeout, "deletion of LockRequest "+r.obj.Name)
	l.obs.Forget(r.obj.Name)
	return at, err
}

// release deletes r and waits until it is gone.
func (l *lockClient) release(ctx context.Context, r *request) error {
	if err := l.remove(ctx, r); err != nil {
		return err
	}
	_, err := l.gone(ctx, r)
	return err
}

// acquireSamples are the latencies of uncontended acquires.
type acquireSamples struct {
	// acquire is LockRequest create sent → Acquired=True observed.
	acquire []time.Duration
	// create is how long the API server took to answer the create alone.
	create []time.Duration
}

// measureAcquire measures uncontended acquires: samples times, one after the other,
// a LockRequest for a key nobody has asked for before is created, and the time from
// the create to Acquired=True observed is recorded. Each request is released (and
// its deletion observed) before the next one, outside the measurement.
// When beside is not nil, a serial Lease write is timed after each release too.
func measureAcquire(ctx context.Context, l *lockClient, prefix string, samples int, beside *serialBeside) (acquireSamples, error) {
	var s acquireSamples
	for i := range samples {
		r, err := l.create(ctx, fmt.Sprintf("%s-%d", prefix, i), "bench/"+prefix, fmt.Sprintf("k%d", i), lockingv1alpha1.GrantNoticeLeaseOnly)
		if err != nil {
			return s, err
		}
		at, _, err := l.acquired(ctx, r)
		if err != nil {
			return s, err
		}
		s.acquire = append(s.acquire, at.Sub(r.created))
		s.create = append(s.create, r.createTook)
		if err := l.release(ctx, r); err != nil {
			return s, err
		}
		if beside != nil {
			if err := beside.sample(ctx); err != nil {
				return s, err
			}
		}
	}
	return s, nil
}

// handoffSamples are the latencies of hand-offs, whole and in parts.
type handoffSamples struct {
	// total is the holder's delete sent → the waiter's grant observed.
	total []time.Duration
	// deleteCall is how long the API server took to answer the delete.
	deleteCall []time.Duration
	// toDecided is the delete sent → the operator's decision to grant (the
	// Lease's acquireTime), toObserved that decision → the grant observed: the
	// Lease's compare-and-swap and its watch event.
	toDecided, toObserved []time.Duration
}

// parts summarizes where the hand-offs' time went.
func (s handoffSamples) parts() HandoffParts {
	return HandoffParts{DeleteCall: Summarize(s.deleteCall), ToDecided: Summarize(s.toDecided), ToObserved: Summarize(s.toObserved)}
}

// handoffChain measures hand-offs on one key, one sample per step: while a request
// holds the key, a waiter is created and waited for until queued says its arbiter
// (the operator, or the hand-off floor's) has it in the key's queue, or, for a
// blocking Lock's waiter, which is told nothing while it waits, until its create
// is observed; then the holder is deleted, and the time from that delete to the
// waiter's grant observed is recorded. The waiter becomes the next holder.
type handoffChain struct {
	l    *lockClient
	name string
	// notice is the grant notice of the chain's requests: GrantNoticeLease as
	// TryLock makes them, GrantNoticeLeaseOnly as the blocking Lock does.
	notice string
	queued func(context.Context, *request) error
	holder *request
	n      int // hand-offs so far
	s      handoffSamples
}

// startHandoffChain creates the key's first holder and waits for its grant. The
// requests carry notice (see handoffChain).
func startHandoffChain(ctx context.Context, l *lockClient, name, notice string, queued func(context.Context, *request) error) (*handoffChain, error) {
	c := &handoffChain{l: l, name: name, notice: notice, queued: queued}
	var err error
	if c.holder, err = c.create(ctx); err != nil {
		return nil, err
	}
	if _, _, err := l.acquired(ctx, c.holder); err != nil {
		return nil, err
	}
	return c, nil
}

// create creates the chain's next request.
func (c *handoffChain) create(ctx context.Context) (*request, error) {
	return c.l.create(ctx, fmt.Sprintf("%s-%d", c.name, c.n), "bench/"+c.name, "key", c.notice)
}

// step measures one hand-off.
func (c *handoffChain) step(ctx context.Context) error {
	c.n++
	waiter, err := c.create(ctx)
	if err != nil {
		return err
	}
	if err := c.queued(ctx, waiter); err != nil {
		return err
	}
	deleted := time.Now()
	if err := c.l.remove(ctx, c.holder); err != nil {
		return err
	}
	c.s.deleteCall = append(c.s.deleteCall, time.Since(deleted))
	at, _, err := c.l.acquired(ctx, waiter)
	if err != nil {
		return err
	}
	c.s.total = append(c.s.total, at.Sub(deleted))
	if decided := waiter.obs.Decided(); !decided.IsZero() {
		c.s.toDecided = append(c.s.toDecided, decided.Sub(deleted))
		c.s.toObserved = append(c.s.toObserved, at.Sub(decided))
	}
	if _, err := c.l.gone(ctx, c.holder); err != nil {
		return err
	}
	c.holder = waiter
	return nil
}

// finish releases the last holder and returns the samples.
func (c *handoffChain) finish(ctx context.Context) (handoffSamples, error) {
	return c.s, c.l.release(ctx, c.holder)
}

// benchUser is the VCS user of every request the benchmark makes.
const benchUser = "bench"
