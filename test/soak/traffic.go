package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// scenario is one kind of traffic, run by a worker from start to end.
type scenario struct {
	name   string
	weight int
	run    func(ctx context.Context, t *traffic, w *worker) error
}

// scenarios is the traffic mix. Plain holds and renewals contend for the shared
// keys; the others run on keys of their worker's own, so that their outcome
// (a timeout, an expiry, a victim) is certain and checked.
var scenarios = []scenario{
	{"hold", 8, holdShared},
	{"renew", 3, renewShared},
	{"queue timeout", 1, queueTimeout},
	{"ttl expiry", 1, ttlExpiry},
	{"force unlock", 1, forceUnlock},
	{"deadlock", 1, deadlock},
	{"fail fast", 1, failFast},
	{"queue full", 1, queueFull},
}

// Time scales of the traffic. The operator expires a ttl to the second, so the
// renewing holder renews well within its ttl; the queue timeout is short so that
// the scenario is quick.
const (
	maxHoldTime       = 100 * time.Millisecond
	renewTTL          = 3 * time.Second
	renewEvery        = 700 * time.Millisecond
	renewals          = 3
	expiringTTL       = time.Second
	shortQueueTimeout = 300 * time.Millisecond
	// scenarioTimeout bounds one scenario; it is a deadline against hangs, far
	// above what any step takes.
	scenarioTimeout = 2 * time.Minute
)

// hold is one grant as the soak saw it, before its grant time is looked up.
type hold struct {
	lock, holder, token string
	// released is when the client asked to release (before it deleted the
	// request), or, for a hold the operator ended (Expired, Revoked), the
	// condition's transition time.
	released time.Time
	// endedBy is "" for a release by the client, else the operator's reason.
	endedBy string
}

// traffic is the soak's shared state.
type traffic struct {
	lc        *lockclient.Client
	rec       *recorder
	namespace string
	// sharedKeys are contended by every worker.
	sharedKeys []lockkey.Key
	// maxQueue is the operator's max_queue_length.
	maxQueue int
	pulls    atomic.Int32

	mu       sync.Mutex
	holds    []hold
	outcomes map[string]int
	problems []string
}

// worker is one traffic goroutine.
type worker struct {
	id  int
	rnd *rand.Rand
}

// request returns a lock request of a new owner (a new pull) for key.
func (t *traffic) request(key lockkey.Key) lockclient.Request {
	pull := t.pulls.Add(1)
	return lockclient.Request{
		Project:   lockingv1alpha1.ProjectRef{Repository: key.Repository, Path: key.Path, Name: key.ProjectName},
		Workspace: key.Workspace,
		Pull:      &lockingv1alpha1.PullRequestRef{Number: pull},
		User:      lockingv1alpha1.UserRef{Username: fmt.Sprintf("user-%d", pull%7)},
	}
}

// privateKey is key i of worker w, which no other worker uses.
func privateKey(w *worker, i int) lockkey.Key {
	return lockkey.New("soak/private", fmt.Sprintf("w%d/k%d", w.id, i), "default", "")
}

// count counts one outcome (a scenario run, a request's end).
func (t *traffic) count(outcome string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.outcomes[outcome]++
}

// problem records a scenario whose outcome was not the one the lock promises.
func (t *traffic) problem(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.problems = append(t.problems, fmt.Sprintf(format, args...))
}

// addHold records a finished hold for the exclusion check.
func (t *traffic) addHold(h hold) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.holds = append(t.holds, h)
}

// lock takes r's lock and counts it.
func (t *traffic) lock(ctx context.Context, r lockclient.Request) (*lockclient.Status, error) {
	st, err := t.lc.Lock(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", r.Key(), err)
	}
	t.count("acquired")
	return st, nil
}

// release records the hold st and releases it.
func (t *traffic) release(ctx context.Context, r lockclient.Request, st *lockclient.Status) error {
	t.addHold(hold{lock: st.Request.Status.LockName, holder: st.Name(), token: st.FencingToken, released: time.Now()})
	if err := t.lc.Unlock(ctx, r); err != nil {
		return fmt.Errorf("unlocking %s: %w", r.Key(), err)
	}
	t.count("released")
	return nil
}

// ended waits until the operator ends the held request st with reason want, records
// the hold as ended then, and deletes the request.
func (t *traffic) ended(ctx context.Context, r lockclient.Request, st *lockclient.Status, want string) error {
	life, err := t.rec.waitEnded(ctx, st.Request.UID, st.Name())
	if err != nil {
		return err
	}
	reason := life.Reasons[len(life.Reasons)-1]
	if reason != want || life.Deleted {
		t.problem("%s: ended %v (deleted %t), want %s", st.Name(), life.Reasons, life.Deleted, want)
	}
	t.addHold(hold{lock: st.Request.Status.LockName, holder: st.Name(), token: st.FencingToken, released: life.Ended, endedBy: reason})
	t.count(want)
	if err := t.lc.Unlock(ctx, r); err != nil {
		return fmt.Errorf("deleting the ended request %s: %w", st.Name(), err)
	}
	return nil
}

// endedWith checks that err is the EndedError of reason want.
func (t *traffic) endedWith(err error, r lockclient.Request, want string) error {
	var ended *lockclient.EndedError
	if !errors.As(err, &ended) {
		if err == nil {
			t.problem("%s of %s was granted; want %s", r.Key(), r.Owner(), want)
			return nil
		}
		return fmt.Errorf("%s of %s: %w", r.Key(), r.Owner(), err)
	}
	if ended.Status.Reason != want {
		t.problem("%s of %s ended %s (%s); want %s", r.Key(), r.Owner(), ended.Status.Reason, ended.Status.Message, want)
	}
	t.count(want)
	return nil
}

// holdPrivate takes private key i of worker w for a new owner.
func (t *traffic) holdPrivate(ctx context.Context, w *worker, i int) (lockkey.Key, lockclient.Request, *lockclient.Status, error) {
	key := privateKey(w, i)
	holder := t.request(key)
	st, err := t.lock(ctx, holder)
	return key, holder, st, err
}

// queueBehind queues a request of a new owner for key, which is held.
func (t *traffic) queueBehind(ctx context.Context, key lockkey.Key) (lockclient.Request, error) {
	waiter := t.request(key)
	if _, err := t.lc.TryLock(ctx, waiter); err != nil {
		return waiter, fmt.Errorf("queueing for %s: %w", key, err)
	}
	return waiter, nil
}

// takeOver waits until the queued request r holds its key (Lock adopts the
// request), then releases it.
func (t *traffic) takeOver(ctx context.Context, r lockclient.Request) error {
	st, err := t.lock(ctx, r)
	if err != nil {
		return err
	}
	return t.release(ctx, r, st)
}

// holdShared: lock a shared key (waiting behind the other workers), hold it a
// moment, release it.
func holdShared(ctx context.Context, t *traffic, w *worker) error {
	r := t.request(t.sharedKeys[w.rnd.IntN(len(t.sharedKeys))])
	st, err := t.lock(ctx, r)
	if err != nil {
		return err
	}
	work(ctx, time.Duration(w.rnd.Int64N(int64(maxHoldTime))))
	return t.release(ctx, r, st)
}

// renewShared: lock a shared key with a short ttl and renew it a few times: the hold
// must never expire.
func renewShared(ctx context.Context, t *traffic, w *worker) error {
	r := t.request(t.sharedKeys[w.rnd.IntN(len(t.sharedKeys))])
	ttl := renewTTL
	r.TTL = &ttl
	st, err := t.lock(ctx, r)
	if err != nil {
		return err
	}
	for range renewals {
		work(ctx, renewEvery) // between renewals
		if _, err := t.lc.Renew(ctx, r); err != nil {
			var ended *lockclient.EndedError
			if errors.As(err, &ended) {
				t.problem("%s renewed every %s within ttl %s, but ended %s: %s", st.Name(), renewEvery, ttl, ended.Status.Reason, ended.Status.Message)
				return t.ended(ctx, r, st, ended.Status.Reason)
			}
			return fmt.Errorf("renewing %s: %w", st.Name(), err)
		}
		t.count("renewed")
	}
	return t.release(ctx, r, st)
}

// queueTimeout: a waiter with a short queue timeout behind a holder that keeps the
// key ends QueueTimeout.
func queueTimeout(ctx context.Context, t *traffic, w *worker) error {
	key, holder, st, err := t.holdPrivate(ctx, w, 0)
	if err != nil {
		return err
	}
	waiter := t.request(key)
	qt := shortQueueTimeout
	waiter.QueueTimeout = &qt
	_, err = t.lc.Lock(ctx, waiter)
	if err := t.endedWith(err, waiter, lockingv1alpha1.ReasonQueueTimeout); err != nil {
		return err
	}
	return t.release(ctx, holder, st)
}

// ttlExpiry: a holder with a 1 s ttl that never renews ends Expired, and its waiter
// gets the key.
func ttlExpiry(ctx context.Context, t *traffic, w *worker) error {
	key := privateKey(w, 1)
	holder := t.request(key)
	ttl := expiringTTL
	holder.TTL = &ttl
	st, err := t.lock(ctx, holder)
	if err != nil {
		return err
	}
	waiter, err := t.queueBehind(ctx, key)
	if err != nil {
		return err
	}
	if err := t.ended(ctx, holder, st, lockingv1alpha1.ReasonExpired); err != nil {
		return err
	}
	return t.takeOver(ctx, waiter)
}

// forceUnlock: deleting a held key's ProjectLock revokes the holder and serves the
// waiter.
func forceUnlock(ctx context.Context, t *traffic, w *worker) error {
	key, holder, st, err := t.holdPrivate(ctx, w, 2)
	if err != nil {
		return err
	}
	waiter, err := t.queueBehind(ctx, key)
	if err != nil {
		return err
	}
	if _, err := t.lc.ForceUnlock(ctx, key); err != nil {
		return fmt.Errorf("force-unlocking %s: %w", key, err)
	}
	if err := t.ended(ctx, holder, st, lockingv1alpha1.ReasonRevoked); err != nil {
		return err
	}
	return t.takeOver(ctx, waiter)
}

// deadlock: two owners each hold one key and ask for the other's. The detector
// fails exactly one of the two waits with DeadlockVictim; once the victim's owner
// lets go of its key, the other owner gets it.
func deadlock(ctx context.Context, t *traffic, w *worker) error {
	k1, k2 := privateKey(w, 3), privateKey(w, 4)
	a1, b2 := t.request(k1), t.request(k2)
	a2, b1 := a1, b2 // same owners, the other key
	a2.Project.Path, b1.Project.Path = k2.Path, k1.Path
	stA1, err := t.lock(ctx, a1)
	if err != nil {
		return err
	}
	stB2, err := t.lock(ctx, b2)
	if err != nil {
		return err
	}
	type result struct {
		st  *lockclient.Status
		err error
	}
	resA, resB := make(chan result, 1), make(chan result, 1)
	go func() { st, err := t.lc.Lock(ctx, a2); resA <- result{st, err} }()
	go func() { st, err := t.lc.Lock(ctx, b1); resB <- result{st, err} }()

	// The first wait to return is the victim's; then its owner releases the key it
	// holds, and the other wait ends with the grant.
	var victim result
	var victimWants, victimHeld, winnerWants, winnerHeld lockclient.Request
	var victimSt, winnerSt *lockclient.Status
	var winnerCh chan result
	select {
	case victim = <-resA:
		victimWants, victimHeld, victimSt, winnerWants, winnerHeld, winnerSt, winnerCh = a2, a1, stA1, b1, b2, stB2, resB
	case victim = <-resB:
		victimWants, victimHeld, victimSt, winnerWants, winnerHeld, winnerSt, winnerCh = b1, b2, stB2, a2, a1, stA1, resA
	}
	if err := t.endedWith(victim.err, victimWants, lockingv1alpha1.ReasonDeadlockVictim); err != nil {
		return err
	}
	if victim.err == nil {
		// Granted, not failed (a problem already recorded): release it too, so
		// that the scenario ends.
		if err := t.release(ctx, victimWants, victim.st); err != nil {
			return err
		}
	}
	if err := t.release(ctx, victimHeld, victimSt); err != nil {
		return err
	}
	winner := <-winnerCh
	if winner.err != nil {
		var ended *lockclient.EndedError
		if !errors.As(winner.err, &ended) {
			return winner.err
		}
		t.problem("deadlock %s / %s: both waits failed (DeadlockVictim, then %s)", k1, k2, ended.Status.Reason)
		return t.release(ctx, winnerHeld, winnerSt)
	}
	t.count("acquired")
	return errors.Join(t.release(ctx, winnerWants, winner.st), t.release(ctx, winnerHeld, winnerSt))
}

// failFast: TryLock with queueTimeout 0s on a held key ends Conflict at once.
func failFast(ctx context.Context, t *traffic, w *worker) error {
	key, holder, st, err := t.holdPrivate(ctx, w, 5)
	if err != nil {
		return err
	}
	r := t.request(key)
	zero := time.Duration(0)
	r.QueueTimeout = &zero
	got, err := t.lc.TryLock(ctx, r)
	switch {
	case err != nil:
		return fmt.Errorf("queueing for %s: %w", key, err)
	case got.State != lockclient.StateEnded || got.Reason != lockingv1alpha1.ReasonConflict:
		t.problem("fail-fast TryLock of held %s: %s %s, want Ended Conflict", key, got.State, got.Reason)
	default:
		t.count(lockingv1alpha1.ReasonConflict)
	}
	return t.release(ctx, holder, st)
}

// queueFull: behind a holder, max_queue_length waiters queue and the next one ends
// QueueFull.
func queueFull(ctx context.Context, t *traffic, w *worker) error {
	key, holder, st, err := t.holdPrivate(ctx, w, 6)
	if err != nil {
		return err
	}
	var waiters []lockclient.Request
	for i := 0; i <= t.maxQueue; i++ {
		r := t.request(key)
		got, err := t.lc.TryLock(ctx, r)
		if err != nil {
			return fmt.Errorf("queueing for %s: %w", key, err)
		}
		want := lockclient.StateQueued
		if i == t.maxQueue {
			want = lockclient.StateEnded
		}
		switch {
		case got.State != want:
			t.problem("waiter %d of %s (max_queue_length %d): %s %s, want %s", i+1, key, t.maxQueue, got.State, got.Reason, want)
		case want == lockclient.StateEnded && got.Reason != lockingv1alpha1.ReasonQueueFull:
			t.problem("waiter %d of %s: ended %s, want QueueFull", i+1, key, got.Reason)
		case want == lockclient.StateEnded:
			t.count(lockingv1alpha1.ReasonQueueFull)
		default:
			waiters = append(waiters, r)
		}
	}
	for _, r := range waiters {
		if err := t.lc.Unlock(ctx, r); err != nil {
			return fmt.Errorf("withdrawing %s: %w", lockclient.RequestName(r), err)
		}
		t.count("withdrawn")
	}
	return t.release(ctx, holder, st)
}

// work stands for what a lock holder does under the lock: it takes d, or less when
// ctx ends. It waits for no state; its length is the point.
func work(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}
