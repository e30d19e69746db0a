package lockclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// NotHeldError is returned by Renew for a request that does not hold its lock: it
// waits in the queue, or the operator has not decided about it yet. (A request that
// ended gets an *EndedError.)
type NotHeldError struct {
	// Status is the request's status as read.
	Status *Status
}

// Error names the request and where it stands.
func (e *NotHeldError) Error() string {
	s := e.Status
	return fmt.Sprintf("LockRequest %s/%s does not hold its lock (state %s, reason %s: %s)",
		s.Request.Namespace, s.Request.Name, s.State, s.Reason, s.Message)
}

// watchRetry bounds the pause between two attempts to follow a hold while the API
// server cannot be reached.
var watchRetry = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Cap: 5 * time.Second}

// NotifyLost follows the request of a hold on a watch and returns a channel that
// receives one Status when the hold is lost, and is closed after it: the request
// ended (Revoked by a force unlock or because its Lease was lost, Expired because it
// was not renewed), it was deleted by someone else, a new object of the same name
// replaced it, or its grant changed (a fencing token other than held's). When ctx
// ends first, the channel is closed without a value; cancel ctx once you release
// the lock, to end the watch.
//
// held is the Status that Lock, TryLock or Renew returned in StateAcquired. If it is
// not Acquired, the channel receives it at once. While the API server cannot be
// reached, NotifyLost keeps trying (backing off up to 5 s) and reports nothing: it
// cannot tell, so a holder that must not act on a lock it may have lost should pass
// its fencing token to what it changes, which refuses stale tokens.
func (c *Client) NotifyLost(ctx context.Context, held *Status) <-chan *Status {
	ch := make(chan *Status, 1)
	if held.State != StateAcquired {
		ch <- held
		close(ch)
		return ch
	}
	go func() {
		defer close(ch)
		if lost := c.followHold(ctx, held); lost != nil {
			ch <- lost
		}
	}()
	return ch
}

// followHold waits until the hold held describes is lost and returns the status
// that says so, or nil when ctx ends first.
func (c *Client) followHold(ctx context.Context, held *Status) *Status {
	backoff := watchRetry
	for {
		var lost *Status
		_, err := c.waitFor(ctx, held.Name(), func(cur *lockingv1alpha1.LockRequest) (bool, error) {
			lost = lostHold(held, cur)
			return lost != nil, nil
		})
		if err == nil {
			return lost
		}
		if ctx.Err() != nil {
			return nil
		}
		// The API server failed the read or the watch: it cannot say whether the
		// hold stands. Ask again after a pause (a backoff, not a wait for state).
		if !sleep(ctx, c.clock, backoff.Step()) {
			return nil
		}
	}
}

// lostHold returns the status that shows the hold held lost in cur (nil: the
// request is gone), or nil while the hold stands.
func lostHold(held *Status, cur *lockingv1alpha1.LockRequest) *Status {
	switch {
	case cur == nil || cur.UID != held.Request.UID:
		return &Status{Request: held.Request, State: StateEnded, Reason: lockingv1alpha1.ReasonReleased,
			Message: "the request was deleted while it held the lock"}
	case cur.DeletionTimestamp != nil:
		st := StatusOf(cur)
		st.State, st.Reason, st.Message = StateEnded, lockingv1alpha1.ReasonReleased, "the request is being deleted: the lock is being released"
		return st
	}
	st := StatusOf(cur)
	switch {
	case st.State == StatePending || st.State == StateQueued:
		// Written before the grant, which the key's Lease showed first (Lock
		// returns on either): a hold ends only with an ended status or the
		// request's deletion, never by going back to the queue.
		return nil
	case st.State != StateAcquired || st.FencingToken != held.FencingToken:
		return st
	}
	return nil
}

// sleep waits for d on clk's timer, or until ctx ends; it reports whether d passed.
// A client whose clock has no timers (a clock.PassiveClock) waits on the real one.
func sleep(ctx context.Context, clk clock.PassiveClock, d time.Duration) bool {
	var timer clock.Timer
	if c, ok := clk.(clock.WithTicker); ok {
		timer = c.NewTimer(d)
	} else {
		timer = clock.RealClock{}.NewTimer(d)
	}
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C():
		return true
	}
}

// Release releases the hold (or withdraws the wait) that st describes, as Unlock
// does, but deletes exactly the LockRequest object st was read from (by UID): a newer
// object of the same name, made by a retry of this owner elsewhere, is left alone.
// Like Unlock it waits until the object is gone, not for the hand-off after it.
func (c *Client) Release(ctx context.Context, st *Status) error {
	return c.deleteAndWait(ctx, st.Request.Name, st.Request.UID)
}

// Delete deletes exactly the LockRequest object st was read from, as Release does,
// but returns once the API server has accepted the delete instead of reading the
// request again until it is gone: for a caller that learns of the deletion
// otherwise, as the Redis gateway does from its watch cache. A request already gone,
// or replaced by a newer object of the same name, is fine. A request that another
// finalizer holds is still there when Delete returns.
func (c *Client) Delete(ctx context.Context, st *Status) error {
	_, err := c.deleteRequest(ctx, st.Request.Name, st.Request.UID)
	return err
}

// AwaitRelease waits, after Unlock or Release of the request that st describes as
// holding its key, until the operator has let the hold go: until the key's Lease
// names that request no more (the operator handed the key to the next waiter) or is
// gone. It follows the Lease on a watch, so it needs get and watch on Leases. With
// nobody waiting, the operator keeps the released Lease for idle_lease_retention (1s
// by default) before deleting it, and AwaitRelease waits that long: call it when
// what comes next must see the key handed on, as `kubectl lock release`, which says
// who holds the key now, does when others wait.
func (c *Client) AwaitRelease(ctx context.Context, st *Status) error {
	lr := st.Request
	_, err := waitObject(ctx, c, lr.Spec.Key().ObjectName(), "Lease",
		func() *coordinationv1.Lease { return &coordinationv1.Lease{} }, &coordinationv1.LeaseList{},
		func(lease *coordinationv1.Lease) (bool, error) { return lease == nil || !namesRequest(lease, lr), nil })
	return err
}

// ErrHolderChanged is returned by ForceUnlock when the key changed hands between
// reading its holder and deleting its ProjectLock: nothing was revoked, since the
// holder now is not the one the caller saw. Look again and decide again.
var ErrHolderChanged = errors.New("the lock changed hands since its holder was read; nothing was revoked")
