package keyspace

import (
	"context"
	"time"

	"github.com/runatlantis/atlantis/server/events/models"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/atlantis"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// Releases of a lock key (DEL, and Atlantis's unlock-if-owned-by-pull script) find
// the holder as GET does, through the fast read (read.go), and delete the holding
// request by name and UID. What is left is to know that the key is then released:
// an owner may hold one key through several requests (the operator's re-entrancy,
// say a request made with kubectl besides Atlantis's), and its hold ends only when
// all of them are gone. pkg/atlantis's full release counts them in a consistent list
// of the namespace's LockRequests before its delete, which waits for the API
// server's watch cache to catch up with etcd: most of an Unlock's time
// (docs/benchmarks.md). The fast release counts them after its delete instead, in
// the gateway's own cache, once that cache has seen the delete (Deletions): a watch
// delivers a namespace's events in the order etcd wrote them, so the cache then
// holds every request that existed before the delete, and the count is as exact as
// the consistent list's. When the owner has another request for the key, or the
// cache does not see the delete within deletionWait, pkg/atlantis's full release of
// that owner's hold takes over.

// deletionWait bounds the wait for the gateway's cache to see a delete (normally
// the time of one watch event) before the full release takes over.
const deletionWait = 2 * time.Second

// releaseLock releases the hold of key (without "pr/") when match (nil: any hold)
// accepts its lock, and returns that lock; nil when the key is free or match
// refuses. full is the release without the fast path, for when it cannot decide.
func (s *Space) releaseLock(ctx context.Context, key string, match func(models.ProjectLock) bool, full func() (*models.ProjectLock, error)) (*models.ProjectLock, error) {
	if s.fast == nil || s.fast.Deletions == nil || key == applyKeyText {
		return full()
	}
	holder, decided, err := s.fast.read(ctx, key)
	if err != nil || !decided {
		return full()
	}
	if holder == nil {
		return nil, nil
	}
	lock, err := atlantis.ProjectLockOf(holder)
	if err != nil {
		return nil, err
	}
	if match != nil && !match(lock) {
		return nil, nil
	}
	seen, stop := s.fast.Deletions.Expect(holder.UID)
	defer stop()
	// Delete, not Release: the cache's seeing the deletion (releasedAlone) is
	// what says the request is gone, without another read of it.
	if err := s.client.Delete(ctx, lockclient.StatusOf(holder)); err != nil {
		return nil, err
	}
	if !s.fast.releasedAlone(ctx, holder, seen) {
		// The rest of the owner's hold, released as pkg/atlantis releases it.
		if _, err := s.locker.UnlockIfOwnedByPull(lock.Project, lock.Workspace, lock.Pull.Num); err != nil {
			return nil, err
		}
	}
	return &lock, nil
}

// releasedAlone waits until the cache has seen the deletion of holder (seen is
// closed; a request that another finalizer holds is not deleted until it is let
// go) and reports whether the cache then shows no other request of holder's
// owner for its key that holds or may come to hold it. false when the cache does
// not see the deletion within deletionWait or cannot be read.
func (f *Fast) releasedAlone(ctx context.Context, holder *lockingv1alpha1.LockRequest, seen <-chan struct{}) bool {
	wctx, cancel := context.WithTimeout(ctx, deletionWait)
	defer cancel()
	select {
	case <-seen:
	case <-wctx.Done():
		return false
	}
	key, owner := holder.Spec.Key(), holder.Spec.Owner()
	list, err := f.cachedRequestsOf(ctx, key.String())
	if err != nil {
		return false
	}
	for i := range list.Items {
		lr := &list.Items[i]
		if lr.UID == holder.UID || lr.Spec.Key() != key || lr.Spec.Owner() != owner {
			continue
		}
		if lockclient.StatusOf(lr).State != lockclient.StateEnded {
			return false
		}
	}
	return true
}
