package controller

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/leasebackend"
)

// goneObjects remembers, per lock key, the objects this operator has let go of (removed
// its finalizer from while they were being deleted, or deleted outright) until the
// informer cache stops showing them. The cache lags the API server by a watch
// delivery, and each reconcile in that window would otherwise patch or delete the
// same object again, for a 404 or a failed test: wasted API writes on every lock
// cycle.
type goneObjects struct {
	mu   sync.Mutex
	uids map[types.NamespacedName]map[types.UID]struct{}
}

// add records that uid, an object of lock key nn, is gone from the API server.
func (g *goneObjects) add(nn types.NamespacedName, uid types.UID) {
	if uid == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.uids == nil {
		g.uids = map[types.NamespacedName]map[types.UID]struct{}{}
	}
	if g.uids[nn] == nil {
		g.uids[nn] = map[types.UID]struct{}{}
	}
	g.uids[nn][uid] = struct{}{}
}

// has reports whether uid, an object of lock key nn, is known to be gone.
func (g *goneObjects) has(nn types.NamespacedName, uid types.UID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.uids[nn][uid]
	return ok
}

// keepOnly forgets the objects of lock key nn that the cache no longer shows
// (cached says whether it still does), so that the record stays as small as the
// cache's lag.
func (g *goneObjects) keepOnly(nn types.NamespacedName, cached func(types.UID) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for uid := range g.uids[nn] {
		if !cached(uid) {
			delete(g.uids[nn], uid)
		}
	}
	if len(g.uids[nn]) == 0 {
		delete(g.uids, nn)
	}
}

// shownStatus remembers, per lock key, the status of its ProjectLock on the API
// server, as a digest and the few fields the next status and a force unlock take
// from it. The operator caches ProjectLocks' metadata only: their status follows
// from the key's requests and Lease, which are cached already, and only this
// operator writes it; at tens of thousands of keys a cached copy of every status
// cost more memory than the lock itself (docs/benchmarks.md, "Scale"). What is
// remembered holds at one resourceVersion of the ProjectLock: one that this
// operator wrote, or read past the cache when it did not know (after a start, or
// after someone else changed the object). The latest status wins; another
// writer's change to the status is corrected at the key's next change.
type shownStatus struct {
	mu     sync.Mutex
	status map[types.NamespacedName]shown

	// primed holds the namespaces whose ProjectLocks were all read once since
	// the start (prime), or are being read.
	primeMu sync.Mutex
	primed  map[string]*priming
}

// priming is one namespace's reading of its ProjectLocks: done is closed when it
// is over, and ok then says whether it succeeded.
type priming struct {
	done chan struct{}
	ok   bool
}

// shown is what is known of one ProjectLock's status.
type shown struct {
	uid types.UID
	// version is the resourceVersion at which the rest holds.
	version string
	// digest is statusDigest of the status.
	digest uint64
	// token is the fencing token of the holder the status shows, or "": a force
	// unlock is for that hold.
	token string
	// locked and lockedSince are the Locked condition's status and transition
	// time (Unix seconds); locked is "" when the status has none.
	locked      metav1.ConditionStatus
	lockedSince int64
	// at is when this operator last wrote the status; zero when it has not since
	// it started. status_update_interval counts from it.
	at time.Time
}

// knownAt returns what is known of the status of the ProjectLock uid of key nn
// when the cache shows it at resourceVersion version: known when it was written or
// read at that version or later (the cache may lag this operator's own write).
func (s *shownStatus) knownAt(nn types.NamespacedName, uid types.UID, version string) (shown, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.status[nn]
	if !ok || last.uid != uid || leasebackend.Newer(version, last.version) {
		return shown{}, false
	}
	return last, true
}

// set records what is known of the status of key nn's ProjectLock. A status read
// (rather than written) keeps when this operator last wrote it.
func (s *shownStatus) set(nn types.NamespacedName, known shown) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLocked(nn, known)
}

// setLocked is set; the caller holds s.mu.
func (s *shownStatus) setLocked(nn types.NamespacedName, known shown) {
	if s.status == nil {
		s.status = map[types.NamespacedName]shown{}
	}
	if last, ok := s.status[nn]; ok && known.at.IsZero() && last.uid == known.uid {
		known.at = last.at
	}
	s.status[nn] = known
}

// learn records what a read found, unless what is known already is as new (a
// write of this operator since the read began).
func (s *shownStatus) learn(nn types.NamespacedName, known shown) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.status[nn]; ok && last.uid == known.uid && !leasebackend.Newer(known.version, last.version) {
		return
	}
	s.setLocked(nn, known)
}

// prime reads every ProjectLock of namespace once (list gives them, page by page)
// and learns their statuses, so that the first decisions after a start, one per
// key, need no read each: at 10,000 keys that was 10,000 reads and a failover
// seven times as long (docs/benchmarks.md, step 21). Concurrent callers for one
// namespace wait for the one read; a failed read is tried again by the next
// caller. It reports whether the namespace is primed.
func (s *shownStatus) prime(ctx context.Context, namespace string, list func(ctx context.Context, namespace string, each func(*lockingv1alpha1.ProjectLock)) error) bool {
	s.primeMu.Lock()
	if s.primed == nil {
		s.primed = map[string]*priming{}
	}
	p, ok := s.primed[namespace]
	if !ok {
		p = &priming{done: make(chan struct{})}
		s.primed[namespace] = p
	}
	s.primeMu.Unlock()
	if ok {
		select {
		case <-p.done:
			return p.ok
		case <-ctx.Done():
			return false
		}
	}
	err := list(ctx, namespace, func(pl *lockingv1alpha1.ProjectLock) {
		s.learn(client.ObjectKeyFromObject(pl), shownOf(pl, pl.Status, time.Time{}))
	})
	p.ok = err == nil
	if err != nil {
		s.primeMu.Lock()
		delete(s.primed, namespace)
		s.primeMu.Unlock()
	}
	close(p.done)
	return p.ok
}

// forget drops what is known of key nn's ProjectLock, which is gone.
func (s *shownStatus) forget(nn types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.status, nn)
}

// shownOf makes a shown of pl, a ProjectLock as the API server returned it,
// whose status is status; written says when this operator wrote it (zero: read).
func shownOf(pl metav1.Object, status lockingv1alpha1.ProjectLockStatus, written time.Time) shown {
	known := shown{uid: pl.GetUID(), version: pl.GetResourceVersion(), digest: statusDigest(status), at: written}
	if h := status.Holder; h != nil {
		known.token = h.FencingToken
	}
	if c := meta.FindStatusCondition(status.Conditions, lockingv1alpha1.ConditionLocked); c != nil {
		known.locked, known.lockedSince = c.Status, c.LastTransitionTime.Unix()
	}
	return known
}

// lockedCondition returns the Locked condition as far as the next status needs
// it (its status and transition time), or nil.
func (k shown) lockedCondition() *metav1.Condition {
	if k.locked == "" {
		return nil
	}
	return &metav1.Condition{Type: lockingv1alpha1.ConditionLocked, Status: k.locked,
		LastTransitionTime: metav1.NewTime(time.Unix(k.lockedSince, 0))}
}

// writtenRequests remembers, per lock key, the LockRequests whose status this
// operator last wrote, as the API server returned them, until the cache shows that
// write. A reconcile in the window (woken by the Lease write of the same grant,
// whose event often comes first) would otherwise decide from the request before
// its status and write the same status again over a stale resourceVersion, for a
// 409: a wasted write on half the uncontended lock cycles.
type writtenRequests struct {
	mu   sync.Mutex
	objs map[types.NamespacedName]map[types.UID]*lockingv1alpha1.LockRequest
}

// set records lr, of lock key nn, as the API server returned it from a status write.
// Nothing is kept when the cache shows the write already (cacheShows, asked
// under the same lock as seen).
func (w *writtenRequests) set(nn types.NamespacedName, lr *lockingv1alpha1.LockRequest, cacheShows func() bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cacheShows() {
		return
	}
	if w.objs == nil {
		w.objs = map[types.NamespacedName]map[types.UID]*lockingv1alpha1.LockRequest{}
	}
	if w.objs[nn] == nil {
		w.objs[nn] = map[types.UID]*lockingv1alpha1.LockRequest{}
	}
	w.objs[nn][lr.UID] = lr.DeepCopy()
}

// listFresher lists the cached requests of lock key nn (list) and replaces each one
// older than the copy last written by the copy; it forgets the copies that the
// cache has caught up with (or passed) and those of requests it no longer shows.
// The cache is read under the lock that seen takes: seen drops a copy once the
// cache shows its write, and between a list from before that and a look at the
// copies after it, neither would have the write (a status written again over a
// stale resourceVersion, for a 409).
func (w *writtenRequests) listFresher(nn types.NamespacedName, list func() ([]lockingv1alpha1.LockRequest, error)) ([]lockingv1alpha1.LockRequest, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	reqs, err := list()
	if err != nil {
		return nil, err
	}
	w.fresherLocked(nn, reqs)
	return reqs, nil
}

// fresherLocked is listFresher's replacement of reqs; the caller holds w.mu.
func (w *writtenRequests) fresherLocked(nn types.NamespacedName, reqs []lockingv1alpha1.LockRequest) {
	written := w.objs[nn]
	if len(written) == 0 {
		return
	}
	shown := make(map[types.UID]bool, len(reqs))
	for i := range reqs {
		lr := &reqs[i]
		last, ok := written[lr.UID]
		if !ok {
			continue
		}
		shown[lr.UID] = true
		if leasebackend.Newer(last.ResourceVersion, lr.ResourceVersion) {
			reqs[i] = *last.DeepCopy()
			continue
		}
		delete(written, lr.UID)
	}
	for uid := range written {
		if !shown[uid] {
			delete(written, uid)
		}
	}
	if len(written) == 0 {
		delete(w.objs, nn)
	}
}

// seen drops the copy of lr, of lock key nn, once the cache shows lr at that
// write or later: a key decided about no more (a quiet holder, a waiter) would
// otherwise keep its last written copies for as long as it lasts.
func (w *writtenRequests) seen(nn types.NamespacedName, lr client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	written := w.objs[nn]
	last, ok := written[lr.GetUID()]
	if !ok || leasebackend.Newer(last.ResourceVersion, lr.GetResourceVersion()) {
		return
	}
	delete(written, lr.GetUID())
	if len(written) == 0 {
		delete(w.objs, nn)
	}
}

// deletedRequests remembers the UIDs of the LockRequests whose deletion the informer
// has delivered, for deletedRequestsKept. A holder missing from the cache must be
// confirmed gone before its lock is given away (the cache may simply not have seen
// it yet); a UID seen deleted is gone for good, since UIDs are never reused, so
// the release or hand-off that follows the delete of a holder, the common case,
// needs no read past the cache.
type deletedRequests struct {
	mu    sync.Mutex
	uids  map[types.UID]struct{}
	order []deletedAt
}

type deletedAt struct {
	uid types.UID
	at  time.Time
}

// deletedRequestsKept is how long a deletion is remembered: far longer than a
// delete takes to reach a decision, and short enough that the record stays small.
const deletedRequestsKept = time.Minute

// add records uid as deleted at now, and forgets deletions older than
// deletedRequestsKept.
func (d *deletedRequests) add(uid types.UID, now time.Time) {
	if uid == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.uids == nil {
		d.uids = map[types.UID]struct{}{}
	}
	for len(d.order) > 0 && now.Sub(d.order[0].at) > deletedRequestsKept {
		delete(d.uids, d.order[0].uid)
		d.order = d.order[1:]
	}
	if _, ok := d.uids[uid]; ok {
		return
	}
	d.uids[uid] = struct{}{}
	d.order = append(d.order, deletedAt{uid: uid, at: now})
}

// has reports whether uid was seen deleted.
func (d *deletedRequests) has(uid types.UID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.uids[uid]
	return ok
}

// ownWrites remembers the resourceVersion of each object this operator last wrote,
// so that the watch event of that very write (its echo) wakes nobody: the decision
// that made the write already accounted for it, and deciding again would change
// nothing. Skipped echoes were a third of the lock reconciles of a busy key, each a
// cache list and a decision on the lock path. Any event of the object, echo or
// not, clears its entry, so nothing outlives the object's next event.
type ownWrites struct {
	mu       sync.Mutex
	versions map[ownWrite]string
}

// ownWrite names a written object: its kind ("Lease", "LockRequest",
// "ProjectLock") and namespaced name.
type ownWrite struct {
	kind string
	nn   types.NamespacedName
}

// wrote records that this operator's write of obj (of kind) produced obj's
// resourceVersion.
// Nothing is kept when the cache shows the write already (cacheShows, asked
// under the same lock as isEcho): its event has been delivered.
func (w *ownWrites) wrote(kind string, nn types.NamespacedName, version string, cacheShows func() bool) {
	if version == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if cacheShows() {
		return
	}
	if w.versions == nil {
		w.versions = map[ownWrite]string{}
	}
	w.versions[ownWrite{kind, nn}] = version
}

// unseen reports whether this operator wrote object nn, of kind, and no event of it
// has come since: the cache may not show that write yet.
func (w *ownWrites) unseen(kind string, nn types.NamespacedName) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.versions[ownWrite{kind, nn}]
	return ok
}

// forget drops what is remembered of this operator's last write of object nn, of
// kind: the object is gone, and no event will bring that write.
func (w *ownWrites) forget(kind string, nn types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.versions, ownWrite{kind, nn})
}

// isEcho reports whether obj, of kind, as a watch event brings it, is exactly what
// this operator last wrote, and forgets that write either way.
func (w *ownWrites) isEcho(kind string, obj client.Object) bool {
	k := ownWrite{kind, client.ObjectKeyFromObject(obj)}
	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := w.versions[k]
	if !ok {
		return false
	}
	delete(w.versions, k)
	return v == obj.GetResourceVersion()
}
