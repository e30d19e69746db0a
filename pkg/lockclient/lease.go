package lockclient

import (
	"context"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// The grant on the Lease
//
// The operator grants a key with one compare-and-swap on the key's Lease, which
// then names the request ("<name>/<uid>" in spec.holderIdentity) and its owner
// (annotation locking.runatlantis.io/owner); the resourceVersion that write
// returns is the grant's fencing token. The request's status says Acquired, with
// that token, one write later, or, for this client's requests (GrantNoticeAnnotation),
// once the hold has lasted status_update_interval. A client that follows the Lease
// learns of its grant from the grant's own write: on a busy key, the hand-off.

// leaseGrant follows the Lease of lr's key from lr's resourceVersion on, and returns
// lr's grant as soon as the Lease shows it: the first change after which the Lease
// names lr as its holder for an owner other than the one it named just before (no
// holder, or another owner), or for the same owner with a new acquireTime (see
// grantsAnew). The token is that change's resourceVersion. A hold
// passing between two requests of one owner is not a grant of the later one (its
// grant was an earlier write, re-entrant, with its own token), so it is left to
// the request's status, as is everything this function cannot follow without a
// gap: it returns nil when it cannot list the Lease at exactly that version (no
// permission to read Leases, a version too old), when its watch ends or fails, or
// when ctx ends.
func (c *Client) leaseGrant(ctx context.Context, lr *lockingv1alpha1.LockRequest) *Status {
	selector := fields.OneTermEqualSelector("metadata.name", lr.Spec.Key().ObjectName())
	var list coordinationv1.LeaseList
	err := c.c.List(ctx, &list, client.InNamespace(c.namespace), &client.ListOptions{
		FieldSelector: selector,
		Raw: &metav1.ListOptions{ResourceVersion: lr.ResourceVersion,
			ResourceVersionMatch: metav1.ResourceVersionMatchExact},
	})
	if err != nil {
		return nil
	}
	var before holdOf
	for i := range list.Items {
		before = holdOfLease(&list.Items[i])
	}
	w, err := c.c.Watch(ctx, &coordinationv1.LeaseList{}, client.InNamespace(c.namespace), &client.ListOptions{
		FieldSelector: selector,
		Raw:           &metav1.ListOptions{ResourceVersion: list.ResourceVersion, AllowWatchBookmarks: true},
	})
	if err != nil {
		return nil
	}
	defer w.Stop()
	id := holderIdentity(lr.Name, lr.UID)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				lease, ok := ev.Object.(*coordinationv1.Lease)
				if !ok {
					continue
				}
				grant, now := grantsAnew(before, lease, id)
				if grant {
					return StatusOf(granted(lr, lease, c.clock.Now()))
				}
				before = now
			case watch.Deleted:
				before = holdOf{}
			case watch.Bookmark:
			default: // an error: the watch cannot go on without a gap
				return nil
			}
		}
	}
}

// leaseRequestName returns the name of the request lease names as its holder
// ("name/uid"), and false when it names none.
func leaseRequestName(lease *coordinationv1.Lease) (string, bool) {
	holder, _ := LeaseHolder(lease)
	name, _, ok := strings.Cut(holder, "/")
	return name, ok
}

// LeaseHolder returns the request a lock Lease names as its holder ("<name>/<uid>")
// and the owner it is held by, or "", "" when it names no holder. A write of the
// Lease after which it names a request for an owner other than the one it named
// just before (no holder, or another owner), or with a new acquireTime, is that
// request's grant, and the write's resourceVersion is the grant's fencing token; a
// write that passes the hold between two requests of one owner grants nothing (the
// later request was granted, re-entrantly, by an earlier write; see grantsAnew).
func LeaseHolder(lease *coordinationv1.Lease) (holder, owner string) {
	if id := lease.Spec.HolderIdentity; id != nil && *id != "" {
		holder = *id
	}
	if holder == "" {
		return "", ""
	}
	if owner = lease.Annotations[lockingv1alpha1.OwnerAnnotation]; owner == "" {
		owner = holder // no owner recorded: tell holders apart by request
	}
	return holder, owner
}

// holdOf is the hold a Lease records: its owner (see LeaseHolder) and when it was
// granted (spec.acquireTime, which every grant sets anew and nothing else changes).
type holdOf struct {
	owner    string
	acquired time.Time
}

// holdOfLease returns the hold lease records; the zero holdOf when it names none.
func holdOfLease(lease *coordinationv1.Lease) holdOf {
	_, owner := LeaseHolder(lease)
	if owner == "" {
		return holdOf{}
	}
	h := holdOf{owner: owner}
	if at := lease.Spec.AcquireTime; at != nil {
		h.acquired = at.Time
	}
	return h
}

// grantsAnew reports whether the write that left lease grants the request id, the
// Lease having recorded the hold before just before it, and returns the hold it
// records now. A write grants when it names id for another owner than before, or
// for the same owner with a new acquireTime: a Lease kept after its holder's
// release (idle_lease_retention) still names the released request, and the same
// owner's next request is granted anew on it. A write that passes a hold between
// two requests of one owner keeps its acquireTime, and grants nothing.
func grantsAnew(before holdOf, lease *coordinationv1.Lease, id string) (bool, holdOf) {
	holder, _ := LeaseHolder(lease)
	now := holdOfLease(lease)
	return holder == id && now.owner != "" && now != before, now
}

// holderIdentity is how a Lease names the request that holds it.
func holderIdentity(name string, uid types.UID) string { return name + "/" + string(uid) }

// namesRequest reports whether lease names lr as its holder.
func namesRequest(lease *coordinationv1.Lease, lr *lockingv1alpha1.LockRequest) bool {
	id := lease.Spec.HolderIdentity
	return id != nil && *id == holderIdentity(lr.Name, lr.UID)
}

// keyLease returns the Lease of the lock named name, or nil when it cannot be read.
func (c *Client) keyLease(ctx context.Context, name string) *coordinationv1.Lease {
	lease := &coordinationv1.Lease{}
	if err := c.c.Get(ctx, types.NamespacedName{Namespace: c.namespace, Name: name}, lease); err != nil {
		return nil
	}
	return lease
}

// grantedMessage is the message of a grant seen on the Lease before the request's
// status showed it.
const grantedMessage = "the lock is held (seen on the key's Lease; the request's status says so next)"

// granted returns a copy of lr whose status shows the grant that lease records, as
// the operator writes it next: Acquired, the fencing token (the Lease's
// resourceVersion), the lock's name and key, the owner, the grant's time (the
// Lease's acquireTime) and, with a ttl, the expiry (that time plus the ttl, rounded
// up to the second). The Lease keeps times to the microsecond, so that expiry is
// never later than the one the operator writes. now stamps the conditions.
func granted(lr *lockingv1alpha1.LockRequest, lease *coordinationv1.Lease, now time.Time) *lockingv1alpha1.LockRequest {
	out := lr.DeepCopy()
	key := lr.Spec.Key()
	st := &out.Status
	st.LockKey, st.LockName, st.Owner = key.String(), key.ObjectName(), lr.Spec.Owner()
	st.FencingToken = lease.ResourceVersion
	st.ObservedGeneration = lr.Generation
	st.Position, st.BlockedBy = 0, nil
	st.AcquiredTime, st.ExpiresTime = nil, nil
	if at := lease.Spec.AcquireTime; at != nil {
		acquired := metav1.NewTime(at.Time)
		st.AcquiredTime = &acquired
		if ttl := lr.Spec.TTL; ttl != nil && ttl.Duration > 0 {
			expires := metav1.NewTime(ceilSecond(at.Add(ttl.Duration)))
			st.ExpiresTime = &expires
		}
	}
	st.ObservedRenewTime = lr.Spec.RenewTime
	stamp := metav1.NewTime(now)
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: lockingv1alpha1.ConditionAcquired,
		Status: metav1.ConditionTrue, Reason: lockingv1alpha1.ReasonAcquired, Message: grantedMessage,
		ObservedGeneration: lr.Generation, LastTransitionTime: stamp})
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: lockingv1alpha1.ConditionQueued,
		Status: metav1.ConditionFalse, Reason: lockingv1alpha1.ReasonNotQueued, Message: lockingv1alpha1.MessageHolds,
		ObservedGeneration: lr.Generation, LastTransitionTime: stamp})
	return out
}

// ceilSecond rounds t up to the second.
func ceilSecond(t time.Time) time.Time {
	if c := t.Truncate(time.Second); !c.Equal(t) {
		return c.Add(time.Second)
	}
	return t
}
