package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
)

// floorNamespace is where the hand-off floor's objects are: a namespace of their
// own, which the operator does not watch (startOperator).
func floorNamespace(opts options) string { return opts.Namespace + "-floor" }

// ensureFloorNamespace creates floorNamespace unless it exists, and returns its name.
func ensureFloorNamespace(ctx context.Context, c client.Client, opts options) (string, error) {
	namespace := floorNamespace(opts)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return namespace, fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	return namespace, nil
}

// handoffRun is what measureHandoffBesideFloor measured: the operator's hand-offs
// to TryLock's waiters and to blocking Lock's, the hand-off floor's, and the
// serial Lease write timed between them.
type handoffRun struct {
	// tryLock are hand-offs to waiters made as TryLock makes them
	// (GrantNoticeLease): each is told Queued at once, by a status write of the
	// operator's, before the holder lets go.
	tryLock handoffSamples
	// blocking are hand-offs to waiters made as the blocking Lock makes them
	// (GrantNoticeLeaseOnly): told nothing while they wait (not for the first
	// status_update_interval), so the holder lets go once the waiter's create
	// is observed.
	blocking handoffSamples
	// floor are the hand-off floor's hand-offs.
	floor handoffSamples
	// serial is the serial Lease write timed after each round, the unit of the
	// hand-off's targets.
	serial Summary
}

// measureHandoffBesideFloor measures the operator's hand-offs (l, on the key name,
// and with blocking on name+"-blocking" too) and those of the hand-off floor (on
// name+"-floor"), one of each in turn, samples times (who goes first rotates), so
// that all meet the same API server at the same moments: its garbage collections,
// its heap, its watchers. Every hand-off of the operator is measured so, so that
// runs that differ in its configuration compare.
//
// The floor's hand-offs are handoffChain's, with the same kind of client and
// observer, decided by floorArbiter in this process instead of the operator. They
// hold only what no arbiter over LockRequests and Leases can leave out: the holder's
// delete, its watch event, one compare-and-swap of the key's Lease and that write's
// watch event. The operator's hand-off against the floor is what the operator adds;
// the floor against the serial Lease write is what the API server makes of the two
// writes. The operator's hand-offs to a TryLock's waiter have a status write more
// per round than the floor's (the waiter's Queued), its hand-offs to a blocking
// Lock's waiter the same writes as the floor's. After each round a serial Lease
// write is timed too (serialBeside, in the floor's namespace): serial is the unit
// of the hand-off's targets, measured at the same moments.
func measureHandoffBesideFloor(ctx context.Context, c client.WithWatch, opts options, l *lockClient, name string, blocking bool) (handoffRun, error) {
	var run handoffRun
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	floorKey := name + "-floor"
	namespace, err := ensureFloorNamespace(ctx, c, opts)
	if err != nil {
		return run, fmt.Errorf("hand-off floor: %w", err)
	}
	arbiter, err := startFloorArbiter(ctx, c, namespace, floorKey)
	if err != nil {
		return run, err
	}
	obs, err := benchutil.StartObserver(ctx, c, namespace)
	if err != nil {
		return run, err
	}
	floorFailed := func(err error) error { return fmt.Errorf("hand-off floor: %w", errors.Join(err, arbiter.failure())) }
	floorChain, err := startHandoffChain(ctx, &lockClient{c: c, obs: obs, namespace: namespace, timeout: opts.timeout}, floorKey,
		lockingv1alpha1.GrantNoticeLease, arbiter.queued)
	if err != nil {
		return run, floorFailed(err)
	}
	tryLockFailed := func(err error) error { return fmt.Errorf("hand-off: %w", err) }
	blockingFailed := func(err error) error { return fmt.Errorf("hand-off to a blocking Lock: %w", err) }
	tryLockChain, err := startHandoffChain(ctx, l, name, lockingv1alpha1.GrantNoticeLease, l.queued)
	if err != nil {
		return run, tryLockFailed(err)
	}
	// One step of each chain per round, who goes first rotating; a failed step
	// says whose it was.
	stepOf := func(chain *handoffChain, failed func(error) error) func() error {
		return func() error {
			if err := chain.step(ctx); err != nil {
				return failed(err)
			}
			return nil
		}
	}
	steps := []func() error{stepOf(floorChain, floorFailed), stepOf(tryLockChain, tryLockFailed)}
	var blockingChain *handoffChain
	if blocking {
		if blockingChain, err = startHandoffChain(ctx, l, name+"-blocking", lockingv1alpha1.GrantNoticeLeaseOnly, l.created); err != nil {
			return run, blockingFailed(err)
		}
		steps = append(steps, stepOf(blockingChain, blockingFailed))
	}
	// And after each round, a serial Lease write: the unit of the hand-off's
	// targets, at the same moments.
	writes := newSerialBeside(c, namespace, name+"-serial")
	for i := range opts.samples {
		for j := range steps {
			if err := steps[(i+j)%len(steps)](); err != nil {
				return run, err
			}
		}
		if err := writes.sample(ctx); err != nil {
			return run, err
		}
	}
	run.serial = writes.summary()
	if run.floor, err = floorChain.finish(ctx); err != nil {
		return run, floorFailed(err)
	}
	if run.tryLock, err = tryLockChain.finish(ctx); err != nil {
		return run, tryLockFailed(err)
	}
	if blockingChain != nil {
		if run.blocking, err = blockingChain.finish(ctx); err != nil {
			return run, blockingFailed(err)
		}
	}
	return run, c.Delete(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: floorKey}})
}

// floorArbiter grants one key's Lease with nothing but what a grant needs: it
// follows the key's LockRequests with a watch, grants the first one at once when the
// Lease is free and queues the others in the order they came, and grants the head of
// the queue when the holder's request is deleted, by one compare-and-swap of the
// Lease (an update carrying the resourceVersion it last wrote, with field ownership
// reset as the operator's grants have it). The Lease names the request it grants as
// the operator's do, so that benchutil.Observer sees the grant the same way.
type floorArbiter struct {
	c          client.Client
	repository string

	// lease, holder and queue belong to the goroutine that runs the watch.
	lease  *coordinationv1.Lease
	holder string
	queue  []string

	mu sync.Mutex
	// seen has, for each request name, a channel that closes when the arbiter has
	// handled the request's create: then a delete of the holder hands on to it.
	seen map[string]chan struct{}
	// ended closes when the watch or a grant fails; err says why.
	ended chan struct{}
	err   error
}

// startFloorArbiter creates the Lease of key (named key), free, and starts deciding
// for the requests of key (repository "bench/"+key, as handoffChain makes them) in
// namespace until ctx is done.
func startFloorArbiter(ctx context.Context, c client.WithWatch, namespace, key string) (*floorArbiter, error) {
	a := &floorArbiter{
		c: c, repository: "bench/" + key,
		lease: &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: key}},
		seen:  map[string]chan struct{}{}, ended: make(chan struct{}),
	}
	if err := c.Create(ctx, a.lease); err != nil {
		return nil, fmt.Errorf("hand-off floor: creating Lease %s: %w", a.lease.Name, err)
	}
	w, err := benchutil.WatchLockRequests(ctx, c, namespace)
	if err != nil {
		return nil, fmt.Errorf("hand-off floor: %w", err)
	}
	go a.run(ctx, w)
	return a, nil
}

// run decides on every event of the key's requests until the watch ends.
func (a *floorArbiter) run(ctx context.Context, w *watchtools.RetryWatcher) {
	defer w.Stop()
	for ev := range w.ResultChan() {
		lr, ok := ev.Object.(*lockingv1alpha1.LockRequest)
		if !ok || lr.Spec.Project.Repository != a.repository {
			continue
		}
		if err := a.handle(ctx, ev.Type, lr.Name); err != nil {
			a.end(err)
			return
		}
	}
	a.end(fmt.Errorf("watch of LockRequests ended: %w", context.Cause(ctx)))
}

// handle decides on one event of the request name.
func (a *floorArbiter) handle(ctx context.Context, typ watch.EventType, name string) error {
	switch typ {
	case watch.Added:
		var err error
		if a.holder == "" {
			err = a.grant(ctx, name)
		} else {
			a.queue = append(a.queue, name)
		}
		close(a.seenChan(name))
		return err
	case watch.Deleted:
		if name != a.holder {
			a.queue = slices.DeleteFunc(a.queue, func(n string) bool { return n == name })
			return nil
		}
		a.holder = ""
		if len(a.queue) == 0 {
			return nil
		}
		next := a.queue[0]
		a.queue = a.queue[1:]
		return a.grant(ctx, next)
	}
	return nil
}

// grant writes name onto the Lease by compare-and-swap.
func (a *floorArbiter) grant(ctx context.Context, name string) error {
	now := metav1.NowMicro()
	a.lease.Spec.HolderIdentity, a.lease.Spec.AcquireTime = &name, &now
	a.lease.ManagedFields = []metav1.ManagedFieldsEntry{{}}
	if err := a.c.Update(ctx, a.lease); err != nil {
		return fmt.Errorf("granting Lease %s to %s: %w", a.lease.Name, name, err)
	}
	a.holder = name
	return nil
}

// queued waits until the arbiter has handled r's create: handoffChain's wait for
// the waiter to be in the queue before the holder goes.
func (a *floorArbiter) queued(ctx context.Context, r *request) error {
	select {
	case <-a.seenChan(r.obj.Name):
		return nil
	case <-a.ended:
		return a.failure()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// seenChan is the channel that closes once the arbiter has handled name's create.
func (a *floorArbiter) seenChan(name string) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := a.seen[name]
	if ch == nil {
		ch = make(chan struct{})
		a.seen[name] = ch
	}
	return ch
}

// end records why the arbiter stopped.
func (a *floorArbiter) end(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.err = err
	close(a.ended)
}

// failure is why the arbiter stopped, or nil while it runs.
func (a *floorArbiter) failure() error {
	select {
	case <-a.ended:
		a.mu.Lock()
		defer a.mu.Unlock()
		return fmt.Errorf("arbiter: %w", a.err)
	default:
		return nil
	}
}
