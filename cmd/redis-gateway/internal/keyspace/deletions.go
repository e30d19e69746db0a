package keyspace

import (
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
)

// Deletions tells when the gateway's watch cache of LockRequests has seen a
// request's deletion. A watch delivers a namespace's events in the order etcd wrote
// them, so once the cache has seen a deletion it holds every request created before
// it: what the fast release (release.go) needs to know that the owner it released
// holds through no other request, without a consistent list of the namespace.
//
// Register Handler on the cache's LockRequest informer. The zero value is not
// usable; use NewDeletions.
type Deletions struct {
	mu      sync.Mutex
	waiting map[types.UID][]chan struct{}
	// recent holds the last recentDeletions deletions seen, and recentOrder the
	// same, oldest first from next on, so that the oldest is forgotten first.
	recent      map[types.UID]struct{}
	recentOrder []types.UID
	next        int
}

// recentDeletions is how many of the latest deletions Expect still knows as seen.
// A wait begins after its deletion only when two releases of one key race (the
// second read the holder before the first deleted it): the deletions of a few
// milliseconds, far fewer than this, come between. Without it, that second release
// would wait deletionWait and then take the full release.
const recentDeletions = 512

// NewDeletions returns a Deletions that nobody waits on yet.
func NewDeletions() *Deletions {
	return &Deletions{
		waiting:     map[types.UID][]chan struct{}{},
		recent:      make(map[types.UID]struct{}, recentDeletions),
		recentOrder: make([]types.UID, 0, recentDeletions),
	}
}

// Expect returns a channel that is closed once the cache has seen the deletion of
// the request with uid, and stop, which forgets the wait. Call it before deleting
// the request, so that the deletion cannot be seen before the wait exists; a
// deletion seen before among the latest recentDeletions closes it at once.
func (d *Deletions) Expect(uid types.UID) (seen <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	d.mu.Lock()
	if _, ok := d.recent[uid]; ok {
		d.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	d.waiting[uid] = append(d.waiting[uid], ch)
	d.mu.Unlock()
	return ch, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		waiters := d.waiting[uid]
		for i, w := range waiters {
			if w == ch {
				waiters = append(waiters[:i], waiters[i+1:]...)
				break
			}
		}
		if len(waiters) == 0 {
			delete(d.waiting, uid)
		} else {
			d.waiting[uid] = waiters
		}
	}
}

// Handler is the informer event handler that reports deletions. The informer calls
// it after its store has dropped the object.
func (d *Deletions) Handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{DeleteFunc: d.deleted}
}

// deleted closes the waits on obj, a deleted request or the tombstone of one whose
// deletion the informer learned of from a new list.
func (d *Deletions) deleted(obj any) {
	if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	uid := m.GetUID()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ch := range d.waiting[uid] {
		close(ch)
	}
	delete(d.waiting, uid)
	d.remember(uid)
}

// remember adds uid to the recent deletions, forgetting the oldest when full.
// d.mu is held.
func (d *Deletions) remember(uid types.UID) {
	if _, ok := d.recent[uid]; ok {
		return
	}
	if len(d.recentOrder) < recentDeletions {
		d.recentOrder = append(d.recentOrder, uid)
	} else {
		delete(d.recent, d.recentOrder[d.next])
		d.recentOrder[d.next] = uid
		d.next = (d.next + 1) % recentDeletions
	}
	d.recent[uid] = struct{}{}
}
