package lockclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// LockInfo is one lock key: who holds it and who waits for it.
type LockInfo struct {
	// Key is the lock key.
	Key lockkey.Key
	// Lock is the key's ProjectLock, or nil before the operator creates it (once
	// the key's hold or longest wait has lasted project_lock_delay). List reads it
	// from the API server's watch cache, which may be a moment behind.
	Lock *lockingv1alpha1.ProjectLock
	// Holder is the request that holds the key (the one the ProjectLock names, when
	// the owner holds through several re-entrant requests), or nil when free.
	Holder *lockingv1alpha1.LockRequest
	// Holders are every request that holds the key, Holder first: one owner may
	// hold through several (the operator's re-entrancy).
	Holders []lockingv1alpha1.LockRequest
	// Queue are the waiting requests in the order they will be served: by
	// status.position, then as the ProjectLock's status.queue lists them; requests
	// the operator has not decided about yet come last, oldest first.
	Queue []lockingv1alpha1.LockRequest
}

// GetLock returns the lock of key: its ProjectLock, the holder's LockRequest and the
// queue in order; (nil, nil) when nobody holds or waits for the key. It reads the
// key's ProjectLock and Lease by name and only the requests that may be the key's
// (keyRequests), whatever else the namespace holds.
func (c *Client) GetLock(ctx context.Context, key lockkey.Key) (*LockInfo, error) {
	key = lockkey.New(key.Repository, key.Path, key.Workspace, key.ProjectName)
	if err := key.Validate(); err != nil {
		return nil, err
	}
	return c.lockNamed(ctx, key.ObjectName(), func(k lockkey.Key) bool { return k == key })
}

// GetLockText returns the lock whose key's text (lockkey.Key.String, Atlantis's lock
// key) is text, as GetLock does, without parsing it: a text does not tell where a
// repository of more than two segments ends, and the lock's objects are named
// after the text alone (lockkey.NameOf). Keys whose texts are equal share those
// objects, and so one lock; the requests of all of them are returned, under the
// key of the first.
func (c *Client) GetLockText(ctx context.Context, text string) (*LockInfo, error) {
	return c.lockNamed(ctx, lockkey.NameOf(text, "lock"), func(k lockkey.Key) bool { return k.String() == text })
}

// lockNamed returns the lock whose objects are named name, from the requests whose
// key ofKey accepts; (nil, nil) when nobody holds or waits for it.
func (c *Client) lockNamed(ctx context.Context, name string, ofKey func(lockkey.Key) bool) (*LockInfo, error) {
	var pl *lockingv1alpha1.ProjectLock
	obj := &lockingv1alpha1.ProjectLock{}
	err := c.c.Get(ctx, types.NamespacedName{Namespace: c.namespace, Name: name}, obj)
	switch {
	case err == nil:
		pl = obj
	case !apierrors.IsNotFound(err):
		return nil, wrap(err, "reading ProjectLock %s/%s", c.namespace, name)
	}
	lease := c.keyLease(ctx, name) // before the requests: see lockLeases
	reqs, err := c.keyRequests(ctx, name, lease)
	if err != nil {
		return nil, err
	}
	var mine []lockingv1alpha1.LockRequest
	for i := range reqs {
		if ofKey(reqs[i].Spec.Key()) {
			mine = append(mine, reqs[i])
		}
	}
	if len(mine) == 0 {
		return nil, nil
	}
	info := assemble(mine[0].Spec.Key(), pl, c.withLeaseGrant(mine, lease))
	if info.Holder == nil && len(info.Queue) == 0 {
		return nil, nil
	}
	return &info, nil
}

// notLabelled selects the requests without LockNameLabel: those made by hand.
var notLabelled = func() labels.Selector {
	r, err := labels.NewRequirement(lockingv1alpha1.LockNameLabel, selection.DoesNotExist, nil)
	if err != nil {
		panic(err) // a constant key: cannot fail
	}
	return labels.NewSelector().Add(*r)
}()

// keyRequests returns the requests that may be those of the lock named name: the
// ones labelled with it (LockNameLabel: this library labels every request it
// makes), the ones without the label (made by hand, by kubectl), and the request
// lease names, if any is named and not among them (a request whose label names
// another lock: the operator goes by the spec, and so does the caller's filter).
// Two lists return only those, where a list of the namespace would return every
// lock's requests: an Atlantis Unlock costs the same at ten locks and at ten
// thousand.
func (c *Client) keyRequests(ctx context.Context, name string, lease *coordinationv1.Lease) ([]lockingv1alpha1.LockRequest, error) {
	var labelled, unlabelled lockingv1alpha1.LockRequestList
	if err := c.c.List(ctx, &labelled, client.InNamespace(c.namespace), client.MatchingLabels{lockingv1alpha1.LockNameLabel: name}); err != nil {
		return nil, wrap(err, "listing the LockRequests of lock %s in namespace %s", name, c.namespace)
	}
	if err := c.c.List(ctx, &unlabelled, client.InNamespace(c.namespace), client.MatchingLabelsSelector{Selector: notLabelled}); err != nil {
		return nil, wrap(err, "listing the LockRequests without a %s label in namespace %s", lockingv1alpha1.LockNameLabel, c.namespace)
	}
	reqs := slices.Concat(labelled.Items, unlabelled.Items)
	if lease == nil {
		return reqs, nil
	}
	reqName, ok := leaseRequestName(lease)
	if !ok || slices.ContainsFunc(reqs, func(lr lockingv1alpha1.LockRequest) bool { return lr.Name == reqName }) {
		return reqs, nil
	}
	lr := &lockingv1alpha1.LockRequest{}
	switch err := c.c.Get(ctx, types.NamespacedName{Namespace: c.namespace, Name: reqName}, lr); {
	case apierrors.IsNotFound(err):
		return reqs, nil
	case err != nil:
		return nil, wrap(err, "reading LockRequest %s/%s, which Lease %s names", c.namespace, reqName, name)
	}
	return append(reqs, *lr), nil
}

// ErrHolderUnknown is returned by LeaseHolderOf and LeaseNamedRequest when the key's
// Lease cannot be read (for one, the client may not read Leases); GetLock and List
// then tell the holder from the requests' statuses.
var ErrHolderUnknown = errors.New("the lock's Lease cannot be read")

// LeaseHolderOf returns the request that holds the lock named name (a
// lockkey.Key's ObjectName, or lockkey.NameOf of an Atlantis lock key with fallback
// "lock"), or nil when nobody holds it, from two reads by name (LeaseNamedRequest):
// the key's Lease, then the request it names. The Lease is the grant (see
// leaseGrant), so no list of the namespace is needed: the call costs the same at ten
// locks and at ten thousand, and neither read waits for the API server's watch
// cache to catch up with etcd, as a consistent list does. The request is shown
// granted as GetLock shows it, and, as there, one that is being deleted before its
// status said Acquired holds nothing.
//
// Unlike GetLock, it names one holder of an owner that holds through several
// requests (the one on the Lease) and knows nothing of the queue. It returns
// ErrHolderUnknown when the Lease cannot be read.
func (c *Client) LeaseHolderOf(ctx context.Context, name string) (*lockingv1alpha1.LockRequest, error) {
	lr, lease, err := LeaseNamedRequest(ctx, c.c, c.namespace, name)
	if err != nil || lr == nil {
		return nil, err
	}
	shown := c.withLeaseGrant([]lockingv1alpha1.LockRequest{*lr}, lease)[0]
	if StatusOf(&shown).State != StateAcquired {
		return nil, nil // being deleted before its status said Acquired
	}
	return &shown, nil // a holder being deleted holds until the operator hands off
}

// LeaseNamedRequest reads, through r, the Lease of the lock named name in
// namespace, then the request the Lease names, and returns both when that request
// still exists (with the UID the Lease records, for that key) and has not ended:
// the key's holder, whatever its status says yet. It returns nil when the key has
// no Lease, or its Lease names no request or one that is gone or ended: a Lease the
// operator keeps for idle_lease_retention after its holder let go names a request
// that no longer exists. It returns ErrHolderUnknown when the Lease cannot be read.
func LeaseNamedRequest(ctx context.Context, r client.Reader, namespace, name string) (*lockingv1alpha1.LockRequest, *coordinationv1.Lease, error) {
	lease := &coordinationv1.Lease{}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, lease); {
	case apierrors.IsNotFound(err):
		return nil, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("reading Lease %s/%s: %w: %w", namespace, name, ErrHolderUnknown, err)
	}
	reqName, ok := leaseRequestName(lease)
	if !ok {
		return nil, nil, nil
	}
	lr := &lockingv1alpha1.LockRequest{}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: reqName}, lr); {
	case apierrors.IsNotFound(err):
		return nil, nil, nil
	case err != nil:
		return nil, nil, wrap(err, "reading LockRequest %s/%s, which Lease %s names", namespace, reqName, name)
	}
	if !namesRequest(lease, lr) || lr.Spec.Key().ObjectName() != name || StatusOf(lr).State == StateEnded {
		return nil, nil, nil // a later request of that name, not this key's, or ended
	}
	return lr, lease, nil
}

// List returns every lock of the namespace that is held or waited for, with holder
// and queue, ordered by key.
//
// Who holds and who waits comes from the requests and the Leases, read as the API
// server has them at the call. The ProjectLocks, views for people that only order
// the queue and name the holder among one owner's re-entrant requests, are read
// from the API server's watch cache as it stands (resourceVersion "0"), which may
// be a moment behind: a list that must be current waits until that cache has
// caught up with etcd, and for objects that seldom change (a key's ProjectLock
// comes only once a hold or a wait has lasted project_lock_delay) that wait was
// most of the time of an Atlantis Unlock through the Redis gateway (a tenth of a
// second; docs/benchmarks.md).
func (c *Client) List(ctx context.Context) ([]LockInfo, error) {
	var pls lockingv1alpha1.ProjectLockList
	if err := c.c.List(ctx, &pls, client.InNamespace(c.namespace),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}); err != nil {
		return nil, wrap(err, "listing ProjectLocks in namespace %s", c.namespace)
	}
	leases := c.lockLeases(ctx)
	reqs, err := c.listRequests(ctx)
	if err != nil {
		return nil, err
	}
	locks := map[lockkey.Key]*lockingv1alpha1.ProjectLock{}
	for i := range pls.Items {
		locks[pls.Items[i].Spec.Key()] = &pls.Items[i]
	}
	byKey := map[lockkey.Key][]lockingv1alpha1.LockRequest{}
	for i := range reqs {
		k := reqs[i].Spec.Key()
		byKey[k] = append(byKey[k], reqs[i])
	}
	keys := make([]lockkey.Key, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b lockkey.Key) int { return strings.Compare(a.String(), b.String()) })
	out := make([]LockInfo, 0, len(keys))
	for _, k := range keys {
		info := assemble(k, locks[k], c.withLeaseGrant(byKey[k], leases[k.ObjectName()]))
		if info.Holder != nil || len(info.Queue) > 0 {
			out = append(out, info)
		}
	}
	return out, nil
}

// lockLeases returns the lock Leases of the namespace by name. List and GetLock
// read them (GetLock its key's alone, keyLease) before the requests: a grant the
// Lease shows and a request's status does not yet is seen as the request's, as
// Lock and TryLock see it (see leaseGrant), and the operator writes that status
// before it writes the Lease again, so a Lease read before a status that does not
// show the grant is the one the grant wrote, and its resourceVersion the token (see
// caughtUp). A client that may not read Leases gets none, and goes by the statuses
// alone.
func (c *Client) lockLeases(ctx context.Context) map[string]*coordinationv1.Lease {
	var list coordinationv1.LeaseList
	if err := c.c.List(ctx, &list, client.InNamespace(c.namespace), client.HasLabels{lockingv1alpha1.LockNameLabel}); err != nil {
		return nil
	}
	leases := make(map[string]*coordinationv1.Lease, len(list.Items))
	for i := range list.Items {
		leases[list.Items[i].Name] = &list.Items[i]
	}
	return leases
}

// withLeaseGrant returns reqs with the request lease names as its holder shown
// granted (see granted) while its status still says it is undecided or waiting:
// the operator's compare-and-swap on the Lease is the grant, and the status says
// so one write later.
func (c *Client) withLeaseGrant(reqs []lockingv1alpha1.LockRequest, lease *coordinationv1.Lease) []lockingv1alpha1.LockRequest {
	if lease == nil {
		return reqs
	}
	holder, _ := LeaseHolder(lease)
	for i := range reqs {
		lr := &reqs[i]
		if holder != holderIdentity(lr.Name, lr.UID) || lr.DeletionTimestamp != nil {
			continue
		}
		if st := StatusOf(lr).State; st == StatePending || st == StateQueued {
			reqs[i] = *granted(lr, lease, c.clock.Now())
		}
	}
	return reqs
}

func (c *Client) listRequests(ctx context.Context) ([]lockingv1alpha1.LockRequest, error) {
	var list lockingv1alpha1.LockRequestList
	if err := c.c.List(ctx, &list, client.InNamespace(c.namespace)); err != nil {
		return nil, wrap(err, "listing LockRequests in namespace %s", c.namespace)
	}
	return list.Items, nil
}

// assemble finds the holder and orders the queue of one key's requests.
func assemble(key lockkey.Key, pl *lockingv1alpha1.ProjectLock, reqs []lockingv1alpha1.LockRequest) LockInfo {
	info := LockInfo{Key: key, Lock: pl}
	named := ""
	queueIndex := map[string]int{}
	if pl != nil {
		if pl.Status.Holder != nil {
			named = pl.Status.Holder.Request
		}
		for i, e := range pl.Status.Queue {
			queueIndex[e.Request] = i
		}
	}
	var holders []lockingv1alpha1.LockRequest
	for i := range reqs {
		lr := &reqs[i]
		switch StatusOf(lr).State {
		case StateAcquired:
			// A holder being deleted still holds until the operator hands off.
			holders = append(holders, *lr)
		case StateQueued, StatePending:
			if lr.DeletionTimestamp == nil {
				info.Queue = append(info.Queue, *lr)
			}
		case StateEnded:
		}
	}
	slices.SortFunc(holders, func(a, b lockingv1alpha1.LockRequest) int {
		switch {
		case a.Name == named:
			return -1
		case b.Name == named:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	if len(holders) > 0 {
		info.Holders = holders
		info.Holder = &info.Holders[0]
	}
	slices.SortStableFunc(info.Queue, func(a, b lockingv1alpha1.LockRequest) int {
		return compareWaiters(&a, &b, queueIndex)
	})
	return info
}

// compareWaiters orders decided waiters by position, then by the ProjectLock's queue,
// before undecided ones, which go by creation time and name.
func compareWaiters(a, b *lockingv1alpha1.LockRequest, queueIndex map[string]int) int {
	pa, pb := a.Status.Position, b.Status.Position
	switch {
	case pa > 0 && pb == 0:
		return -1
	case pa == 0 && pb > 0:
		return 1
	case pa != pb:
		return int(pa - pb)
	}
	ia, oka := queueIndex[a.Name]
	ib, okb := queueIndex[b.Name]
	switch {
	case oka && !okb:
		return -1
	case !oka && okb:
		return 1
	case ia != ib:
		return ia - ib
	}
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// ForceUnlock takes the lock of key away from its holder by deleting the key's
// ProjectLock, as `kubectl delete projectlock` does: the operator marks the holder's
// requests Revoked and hands the key to the next waiter. It returns the lock as it
// was before, once the operator has served the force unlock (the ProjectLock it
// deleted is gone), or (nil, nil) when nobody held or waited for the key. A revoked
// holder's request stays, ended, until its owner deletes it (Unlock).
//
// The force unlock is pinned to the holder it read: it deletes the ProjectLock only
// once its status shows that hold (the operator writes the status at most once per
// status_update_interval, so this can wait up to that long), and the operator
// revokes only the hold whose fencing token the deleted status shows. If the key
// changes hands before the ProjectLock shows the holder read, or in between with
// the status written, nothing is revoked and the error matches ErrHolderChanged.
// If the holder lets go on its own in the moment between the last check and the
// delete, nothing is revoked either, and the lock read is returned: its holder no
// longer holds it.
func (c *Client) ForceUnlock(ctx context.Context, key lockkey.Key) (*LockInfo, error) {
	info, err := c.GetLock(ctx, key)
	if err != nil || info == nil {
		return nil, err
	}
	if info.Lock == nil && info.Holder != nil {
		if err := c.createLock(ctx, info); err != nil {
			return nil, err
		}
	}
	if info.Holder != nil {
		if info, err = c.awaitShown(ctx, info); err != nil {
			return nil, err
		}
	}
	pl, err := c.deletePinned(ctx, info)
	if err != nil {
		return nil, err
	}
	_, err = c.waitForLock(ctx, pl.Name,
		func(cur *lockingv1alpha1.ProjectLock) (bool, error) { return cur == nil || cur.UID != pl.UID, nil })
	if err != nil {
		return nil, fmt.Errorf("waiting for the operator to serve the force unlock of %s (ProjectLock %s/%s, finalizer %s): %w",
			info.Key, c.namespace, pl.Name, lockingv1alpha1.ReleaseFinalizer, err)
	}
	return info, nil
}

// createLock creates the ProjectLock of a held key that has none yet (the operator
// creates it only once a hold has lasted project_lock_delay or requests wait). It
// carries the release finalizer, as the operator's own do, so that deleting it is
// seen as a force unlock.
func (c *Client) createLock(ctx context.Context, info *LockInfo) error {
	pl := lockingv1alpha1.NewProjectLock(c.namespace, info.Key)
	if err := c.c.Create(ctx, pl, client.FieldOwner(c.fieldManager)); err != nil && !apierrors.IsAlreadyExists(err) {
		return wrap(err, "creating ProjectLock %s/%s of %s to force-unlock it", c.namespace, pl.Name, info.Key)
	}
	return nil
}

// awaitShown returns the lock read again once its ProjectLock's status shows the
// hold of info.Holder (its fencing token), so that the force unlock can be pinned
// to it; or an error matching ErrHolderChanged if the key changed hands meanwhile.
func (c *Client) awaitShown(ctx context.Context, info *LockInfo) (*LockInfo, error) {
	name := info.Key.ObjectName()
	for range maxEnsureAttempts {
		if showsHolder(info) {
			return info, nil
		}
		// The operator writes the key's latest state when its status interval is
		// over: wait for the status to change from what was read.
		seen := shownToken(info.Lock)
		_, err := c.waitForLock(ctx, name, func(cur *lockingv1alpha1.ProjectLock) (bool, error) {
			return cur == nil || shownToken(cur) != seen, nil
		})
		if err != nil {
			return nil, fmt.Errorf("waiting for the operator to show the holder of %s on ProjectLock %s/%s: %w", info.Key, c.namespace, name, err)
		}
		now, err := c.GetLock(ctx, info.Key)
		if err != nil {
			return nil, err
		}
		if was, is := holderName(info), holderName(now); now == nil || now.Lock == nil || was != is {
			return nil, fmt.Errorf("force unlock of %s: held by %s when read, by %s now: %w", info.Key, was, is, ErrHolderChanged)
		}
		info = now
	}
	return nil, fmt.Errorf("force unlock of %s: its ProjectLock did not show the holder after %d changes; try again", info.Key, maxEnsureAttempts)
}

// showsHolder reports whether the ProjectLock of info shows the hold of info.Holder.
func showsHolder(info *LockInfo) bool {
	return info.Holder != nil && info.Holder.Status.FencingToken != "" &&
		shownToken(info.Lock) == info.Holder.Status.FencingToken
}

// shownToken is the fencing token of the hold pl's status shows, or "".
func shownToken(pl *lockingv1alpha1.ProjectLock) string {
	if pl == nil || pl.Status.Holder == nil {
		return ""
	}
	return pl.Status.Holder.FencingToken
}

// deletePinned deletes the ProjectLock of info only while info.Holder still holds
// it: with a resourceVersion precondition, so that a hand-off between the read and
// the delete that rewrote the ProjectLock's status makes the delete fail rather
// than revoke the next holder (one it has not shown yet is not revoked either: the
// operator revokes only the hold the deleted status shows). A ProjectLock that changed for another reason (a
// waiter came or went) is read again and the delete retried while the holder is
// the same. It returns the ProjectLock deleted.
func (c *Client) deletePinned(ctx context.Context, info *LockInfo) (*lockingv1alpha1.ProjectLock, error) {
	pl := info.Lock
	for range maxEnsureAttempts {
		if pl == nil {
			return nil, fmt.Errorf("%s has no ProjectLock: nobody holds it, so there is nothing to force-unlock", info.Key)
		}
		err := c.c.Delete(ctx, pl, client.Preconditions{UID: &pl.UID, ResourceVersion: &pl.ResourceVersion})
		switch {
		case err == nil || apierrors.IsNotFound(err):
			return pl, nil
		case !apierrors.IsConflict(err):
			return nil, wrap(err, "deleting ProjectLock %s/%s of %s", c.namespace, pl.Name, info.Key)
		}
		now, err := c.GetLock(ctx, info.Key)
		if err != nil {
			return nil, err
		}
		if was, is := holderName(info), holderName(now); now == nil || was != is {
			return nil, fmt.Errorf("force unlock of %s: held by %s when read, by %s now: %w", info.Key, was, is, ErrHolderChanged)
		}
		if now.Holder != nil {
			if now, err = c.awaitShown(ctx, now); err != nil {
				return nil, err
			}
		}
		pl = now.Lock
	}
	return nil, fmt.Errorf("force unlock of %s: its ProjectLock changed %d times in a row while it was being deleted; try again",
		info.Key, maxEnsureAttempts)
}

// holderName names the holding request of info ("name (uid)"), or "nobody".
func holderName(info *LockInfo) string {
	if info == nil || info.Holder == nil {
		return "nobody"
	}
	return info.Holder.Name + " (" + string(info.Holder.UID) + ")"
}
