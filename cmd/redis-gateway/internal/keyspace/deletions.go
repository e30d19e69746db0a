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
}

// NewDeletions returns a Deletions that nobody waits on yet.
func NewDeletions() *Deletions {
	return &Deletions{waiting: map[types.UID][]chan struct{}{}}
}

// Expect returns a channel that is closed once the cache has seen the deletion of
// the request with uid, and stop, which forgets the wait. Call it before deleting
// the request, so that the deletion cannot be seen before the wait exists.
func (d *Deletions) Expect(uid types.UID) (seen <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	d.mu.Lock()
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
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ch := range d.waiting[m.GetUID()] {
		close(ch)
	}
	delete(d.waiting, m.GetUID())
}
