package lockclient

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// maxEnsureAttempts bounds the create / read / replace rounds of ensure: each round
// makes progress (an ended or released object is gone), so only objects that keep
// coming back under one name, made by someone else, exhaust it.
const maxEnsureAttempts = 5

// ensure creates r's request, or adopts the existing one of the same name, and
// returns it. An ended or deleting object of that name is replaced (see the package
// documentation). A request it creates says that its client learns of its grant as
// notice says (lockingv1alpha1.GrantNoticeAnnotation); an adopted one keeps what
// its creator said.
func (c *Client) ensure(ctx context.Context, r Request, notice string) (*lockingv1alpha1.LockRequest, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	want := c.object(r, notice)
	for range maxEnsureAttempts {
		obj := want.DeepCopy()
		err := c.c.Create(ctx, obj, client.FieldOwner(c.fieldManager))
		if err == nil {
			return obj, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, wrap(err, "creating LockRequest %s/%s for %s", c.namespace, want.Name, r.Key())
		}
		existing, err := c.get(ctx, want.Name)
		if apierrors.IsNotFound(err) {
			continue // deleted since: create again
		}
		if err != nil {
			return nil, err
		}
		if err := compareSpec(existing, want); err != nil {
			return nil, err
		}
		ended := StatusOf(existing).State == StateEnded
		if existing.DeletionTimestamp == nil && !ended {
			return existing, nil // a retry of the call that made it: adopt
		}
		// An ended request never holds again, and a deleting one is on its way out:
		// make a new one once the old one is gone.
		if err := c.deleteAndWait(ctx, existing.Name, existing.UID); err != nil {
			return nil, fmt.Errorf("replacing the ended LockRequest %s/%s: %w", c.namespace, existing.Name, err)
		}
	}
	return nil, fmt.Errorf("creating LockRequest %s/%s: an object of that name kept reappearing after %d attempts",
		c.namespace, want.Name, maxEnsureAttempts)
}

// Lock creates the request of r (or adopts the existing one of the same name; see
// RequestName) and waits on a watch until it is Acquired, and returns its status
// with the fencing token. A request that ends without the lock (QueueTimeout,
// QueueFull, DeadlockVictim, Conflict with a zero QueueTimeout, or deleted by
// someone else) is deleted and reported as an *EndedError. If ctx ends first, the
// request is deleted (with a fresh context bounded by the cleanup timeout), so that
// nothing is left waiting for a caller that has gone, and the ctx error is returned.
func (c *Client) Lock(ctx context.Context, r Request) (*Status, error) {
	return c.LockWithProgress(ctx, r, nil)
}

// LockWithProgress is Lock that also calls progress (when not nil) with every
// decided status it observes while waiting: a caller can show the queue position
// as it changes. A request Lock creates waits for nothing but its grant
// (lockingv1alpha1.GrantNoticeLeaseOnly), so the operator writes its Queued
// status once it has waited status_update_interval (1 s by default): a wait that
// ends sooner reports no progress. progress runs on the waiting goroutine and
// should return quickly.
func (c *Client) LockWithProgress(ctx context.Context, r Request, progress func(*Status)) (*Status, error) {
	lr, err := c.ensure(ctx, r, lockingv1alpha1.GrantNoticeLeaseOnly)
	if err != nil {
		return nil, err
	}
	st, err := c.await(ctx, lr, func(s *Status) bool {
		if progress != nil {
			progress(s)
		}
		return s.State == StateAcquired || s.State == StateEnded
	})
	if st != nil && st.State == StateEnded {
		if err != nil {
			return nil, errors.Join(&EndedError{Status: st}, err)
		}
		return nil, &EndedError{Status: st}
	}
	return st, err
}

// TryLock creates the request of r (or adopts the existing one) and returns the
// operator's first decision as soon as it is made: StateAcquired, StateQueued (with
// Position and BlockedBy) or StateEnded (reason Conflict, with BlockedBy, when
// QueueTimeout is 0 and another owner holds the key; or QueueFull). An ended request
// is deleted before TryLock returns; a queued one stays queued, and Unlock withdraws
// it. If no decision comes within the decision timeout (no operator running) or ctx
// ends, the undecided request is deleted and an error returned.
func (c *Client) TryLock(ctx context.Context, r Request) (*Status, error) {
	lr, err := c.ensure(ctx, r, lockingv1alpha1.GrantNoticeLease)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, c.decisionTimeout)
	defer cancel()
	st, err := c.await(dctx, lr, func(*Status) bool { return true })
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("the operator did not decide about LockRequest %s/%s within %s: is atlantis-lock-operator running in this cluster? %w",
			c.namespace, lr.Name, c.decisionTimeout, err)
	}
	return st, err
}

// await waits until the operator has decided about lr and stop accepts the status.
// It deletes the request when it ended (returning the Ended status, and an error only
// if the deletion failed) or when ctx ends first (returning the ctx error).
//
// It follows the key's Lease too (leaseGrant): a grant the Lease shows before the
// request's status does ends the wait at once, with the grant's token; the status
// says the same one write later.
func (c *Client) await(ctx context.Context, lr *lockingv1alpha1.LockRequest, stop func(*Status) bool) (*Status, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var fromLease *Status
	leaseDone := make(chan struct{})
	go func() {
		defer close(leaseDone)
		if fromLease = c.leaseGrant(wctx, lr); fromLease != nil {
			cancel() // ends the wait on the request below
		}
	}()
	var st *Status
	last, err := c.waitFor(wctx, lr.Name, func(cur *lockingv1alpha1.LockRequest) (bool, error) {
		if cur == nil || cur.UID != lr.UID {
			return true, nil
		}
		st = StatusOf(cur)
		return st.decided() && stop(st), nil
	})
	cancel()
	<-leaseDone
	if err != nil && fromLease != nil && ctx.Err() == nil {
		stop(fromLease) // Acquired: accepted by every caller; it reports progress
		return fromLease, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, c.cleanup(ctx, lr, fmt.Errorf("waiting for LockRequest %s/%s: %w", c.namespace, lr.Name, err))
		}
		return nil, err
	}
	if last == nil || last.UID != lr.UID {
		return &Status{Request: lr, State: StateEnded, Reason: lockingv1alpha1.ReasonReleased,
			Message: "the request was deleted by someone else before it was granted"}, nil
	}
	if st.State == StateEnded {
		return st, c.cleanup(ctx, last, nil)
	}
	return st, nil
}

// Unlock releases the lock of r, or withdraws it from the queue, by deleting its
// request (RequestName(r)), and waits until the object is gone, which with no
// finalizer on it is at once. The operator then hands the key to the next waiter
// with one compare-and-swap of its Lease; no other request can hold the key before
// that (see the package documentation), and AwaitRelease waits for it. A request
// already gone is not an error. If ctx ends during the wait for the object to go
// (someone else's finalizer holds it), the error says so; the deletion stands.
func (c *Client) Unlock(ctx context.Context, r Request) error {
	if err := r.Validate(); err != nil {
		return err
	}
	return c.UnlockName(ctx, RequestName(r))
}

// UnlockName is Unlock by the LockRequest's name, for requests made elsewhere (by
// kubectl, or another program).
func (c *Client) UnlockName(ctx context.Context, name string) error {
	return c.deleteAndWait(ctx, name, "")
}

// Get returns the status of r's request. When there is none the error satisfies
// apierrors.IsNotFound.
func (c *Client) Get(ctx context.Context, r Request) (*Status, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return c.GetName(ctx, RequestName(r))
}

// GetName returns the status of the named request, made by anyone (kubectl, another
// program). When there is none the error satisfies apierrors.IsNotFound.
func (c *Client) GetName(ctx context.Context, name string) (*Status, error) {
	lr, err := c.get(ctx, name)
	if err != nil {
		return nil, err
	}
	if lr, err = c.caughtUp(ctx, lr); err != nil {
		return nil, err
	}
	return StatusOf(lr), nil
}

// caughtUp returns lr with the grant the key's Lease shows. Lock and TryLock return
// as soon as the Lease shows a grant; the operator writes it to the request's
// status a moment later, or, for the requests this client makes (see
// lockingv1alpha1.GrantNoticeAnnotation), only once the hold has lasted
// status_update_interval. A request read in that time still says Pending or
// Queued; if the Lease names it, caughtUp reads it again and, if it still says
// so, returns it as the Lease shows it granted (granted), so that what Get and
// Renew report never goes back from what Lock returned. The Lease is read before
// the request: the operator writes a grant to the status before it writes the
// Lease again, so while the status says nothing, the Lease read is the one the
// grant wrote, and its resourceVersion is the grant's fencing token.
func (c *Client) caughtUp(ctx context.Context, lr *lockingv1alpha1.LockRequest) (*lockingv1alpha1.LockRequest, error) {
	if st := StatusOf(lr); st.State != StatePending && st.State != StateQueued {
		return lr, nil
	}
	lease := c.keyLease(ctx, lr.Spec.Key().ObjectName())
	if lease == nil || !namesRequest(lease, lr) {
		return lr, nil
	}
	cur, err := c.get(ctx, lr.Name)
	if err != nil {
		return nil, err
	}
	if cur.UID != lr.UID {
		return nil, wrap(apierrors.NewNotFound(lockingv1alpha1.GroupVersion.WithResource("lockrequests").GroupResource(), lr.Name),
			"reading LockRequest %s/%s", c.namespace, lr.Name)
	}
	if st := StatusOf(cur); st.State == StatePending || st.State == StateQueued {
		return granted(cur, lease, c.clock.Now()), nil
	}
	return cur, nil
}

// Renew moves the request's spec.renewTime to now (the client's clock), so that a
// hold with a ttl lasts another ttl from when the operator observes it, and returns
// the status once the operator has observed it (Request.Status.ExpiresTime is the new
// expiry). Only a hold can be renewed: a request that has ended (Expired, Revoked,
// ...) gets an *EndedError, and the caller should Unlock and Lock again; one that
// waits or is undecided gets a *NotHeldError, and is left as it is.
func (c *Client) Renew(ctx context.Context, r Request) (*Status, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return c.RenewName(ctx, RequestName(r))
}

// RenewName is Renew by the LockRequest's name, for requests made elsewhere (another
// replica of the program, kubectl).
func (c *Client) RenewName(ctx context.Context, name string) (*Status, error) {
	lr, err := c.get(ctx, name)
	if err != nil {
		return nil, err
	}
	if lr, err = c.caughtUp(ctx, lr); err != nil {
		return nil, err
	}
	switch st := StatusOf(lr); st.State {
	case StateEnded:
		return nil, &EndedError{Status: st}
	case StateAcquired:
	default:
		return nil, &NotHeldError{Status: st}
	}
	patched := lr.DeepCopy()
	now := metav1.NewMicroTime(c.clock.Now())
	patched.Spec.RenewTime = &now
	if err := c.c.Patch(ctx, patched, client.MergeFrom(lr), client.FieldOwner(c.fieldManager)); err != nil {
		return nil, wrap(err, "renewing LockRequest %s/%s", c.namespace, name)
	}
	var st *Status
	_, err = c.waitFor(ctx, name, func(cur *lockingv1alpha1.LockRequest) (bool, error) {
		if cur == nil || cur.UID != lr.UID {
			return false, fmt.Errorf("LockRequest %s/%s was deleted while renewing", c.namespace, name)
		}
		st = StatusOf(cur)
		return st.State == StateEnded || cur.Status.ObservedGeneration >= patched.Generation, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for the operator to observe the renewal of LockRequest %s/%s: %w", c.namespace, name, err)
	}
	switch st.State {
	case StateEnded:
		return nil, &EndedError{Status: st}
	case StateAcquired:
		return st, nil
	}
	return nil, &NotHeldError{Status: st}
}
