package lockcheck

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// VersionHold is one hold as the API server ordered it: from the Lease write that
// granted it (its fencing token, a resourceVersion) to the LockRequest write that
// ended it.
type VersionHold struct {
	// Lock is the ProjectLock (and Lease) name of the key.
	Lock string
	// Owner is the request's owner.
	Owner string
	// Request names the holding request.
	Request string
	// Token is the fencing token of the grant.
	Token uint64
	// End is the resourceVersion of the first write of the request that no longer
	// showed the hold (marked for deletion, deleted, no longer Acquired, another
	// token), or 0 while it still held when the log stopped.
	End uint64
	// EndReason is the Acquired reason the hold ended with ("Deleted" when the
	// request was deleted or marked for deletion).
	EndReason string
}

// VersionLog follows the LockRequests of one namespace on a watch and records every
// hold by resourceVersion, the order the API server itself gives every write. It
// needs no clock at all, and it sees holds the way a fenced system downstream
// would: a grant is its Lease write, and a hold lasts until the operator (or its
// owner) wrote that it ended.
type VersionLog struct {
	mu    sync.Mutex
	open  map[types.UID]*VersionHold
	holds []VersionHold
	// gaps describes events the watch may have missed (it expired); a log with
	// gaps cannot vouch for exclusion.
	gaps []string

	cancel context.CancelFunc
	done   chan struct{}
}

// FollowVersions starts a VersionLog of namespace ns. Call Stop before Check.
func FollowVersions(ctx context.Context, c client.WithWatch, ns string) (*VersionLog, error) {
	var list lockingv1alpha1.LockRequestList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing the LockRequests of %s: %w", ns, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &VersionLog{open: map[types.UID]*VersionHold{}, cancel: cancel, done: make(chan struct{})}
	for i := range list.Items {
		l.observe(&list.Items[i], false)
	}
	go l.follow(ctx, c, ns, list.ResourceVersion)
	return l, nil
}

// follow watches from rv until ctx ends, resuming a watch that closes from the last
// version seen.
func (l *VersionLog) follow(ctx context.Context, c client.WithWatch, ns, rv string) {
	defer close(l.done)
	for ctx.Err() == nil {
		w, err := c.Watch(ctx, &lockingv1alpha1.LockRequestList{}, client.InNamespace(ns),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
		if err != nil {
			if ctx.Err() == nil {
				l.gap(fmt.Sprintf("watching LockRequests of %s from %s: %v", ns, rv, err))
			}
			return
		}
		for ev := range w.ResultChan() {
			switch ev.Type {
			case watch.Error:
				if ctx.Err() != nil {
					w.Stop()
					return // stopped, not a gap
				}
				l.gap(fmt.Sprintf("watch of LockRequests of %s ended at %s: %v", ns, rv, apierrors.FromObject(ev.Object)))
				w.Stop()
				return
			case watch.Bookmark, watch.Added, watch.Modified, watch.Deleted:
				obj, ok := ev.Object.(client.Object)
				if !ok {
					continue
				}
				rv = obj.GetResourceVersion()
				if lr, ok := obj.(*lockingv1alpha1.LockRequest); ok && ev.Type != watch.Bookmark {
					l.observe(lr, ev.Type == watch.Deleted)
				}
			}
		}
		w.Stop()
	}
}

// observe records what one version of a request says about its hold.
func (l *VersionLog) observe(lr *lockingv1alpha1.LockRequest, deleted bool) {
	rv, _ := strconv.ParseUint(lr.ResourceVersion, 10, 64)
	token, _ := strconv.ParseUint(lr.Status.FencingToken, 10, 64)
	cond := meta.FindStatusCondition(lr.Status.Conditions, lockingv1alpha1.ConditionAcquired)
	holds := !deleted && lr.DeletionTimestamp == nil && cond != nil && cond.Status == metav1.ConditionTrue && token > 0

	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.open[lr.UID]; h != nil && (!holds || h.Token != token) {
		h.End, h.EndReason = rv, "Deleted"
		if !deleted && lr.DeletionTimestamp == nil && cond != nil {
			h.EndReason = cond.Reason
		}
		l.holds = append(l.holds, *h)
		delete(l.open, lr.UID)
	}
	if holds && l.open[lr.UID] == nil {
		l.open[lr.UID] = &VersionHold{Lock: lr.Status.LockName, Owner: lr.Spec.Owner(), Request: lr.Name, Token: token}
	}
}

func (l *VersionLog) gap(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gaps = append(l.gaps, what)
}

// Stop ends the watch.
func (l *VersionLog) Stop() {
	l.cancel()
	<-l.done
}

// Holds returns the holds recorded, ended ones first, then those still open.
func (l *VersionLog) Holds() []VersionHold {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.holds)
	for _, uid := range slices.Sorted(maps.Keys(l.open)) {
		out = append(out, *l.open[uid])
	}
	return out
}

// Check checks, key by key, that every grant's Lease write came after every earlier
// hold of another owner had ended (no two owners held at once, by the API server's
// own order) and that fencing tokens of different owners differ. A gap in the watch
// is a violation too: the log cannot vouch for what it did not see.
func (l *VersionLog) Check() Result {
	holds := l.Holds()
	l.mu.Lock()
	res := Result{Grants: len(holds), Violations: slices.Clone(l.gaps)}
	l.mu.Unlock()
	if res.Violations == nil {
		res.Violations = []string{}
	}
	byLock := map[string][]VersionHold{}
	for _, h := range holds {
		byLock[h.Lock] = append(byLock[h.Lock], h)
	}
	for _, lock := range slices.Sorted(maps.Keys(byLock)) {
		hs := byLock[lock]
		slices.SortStableFunc(hs, func(a, b VersionHold) int { return compareUint(a.Token, b.Token) })
		for j := 1; j < len(hs); j++ {
			res.Successions++
			for i := range j {
				res.Violations = append(res.Violations, overlap(lock, hs[i], hs[j])...)
			}
		}
	}
	return res
}

// overlap checks the later grant next against the earlier hold prev.
func overlap(lock string, prev, next VersionHold) []string {
	if prev.Owner == next.Owner {
		return nil // re-entrant holds of one owner may overlap
	}
	switch {
	case prev.Token == next.Token:
		return []string{fmt.Sprintf("lock %s: %s (%s) and %s (%s) share fencing token %d",
			lock, prev.Request, prev.Owner, next.Request, next.Owner, next.Token)}
	case prev.End == 0:
		return []string{fmt.Sprintf("lock %s: %s (%s) was granted at %d while %s (%s, token %d) still held",
			lock, next.Request, next.Owner, next.Token, prev.Request, prev.Owner, prev.Token)}
	case prev.End >= next.Token:
		return []string{fmt.Sprintf("lock %s: %s (%s) was granted at %d, before the hold of %s (%s, token %d) ended at %d (%s)",
			lock, next.Request, next.Owner, next.Token, prev.Request, prev.Owner, prev.Token, prev.End, prev.EndReason)}
	}
	return nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
