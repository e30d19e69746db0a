package keyspace

import (
	"context"
	"fmt"
	"strings"

	"github.com/runatlantis/atlantis/server/events/models"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/atlantis"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// Reads of a lock key (GET, and the first half of Atlantis's TryLock and Unlock)
// would otherwise list the namespace's LockRequests and ProjectLocks: a key's text
// does not say where its repository ends, and LockRequests made by hand carry no
// label to select them by. Atlantis's lock list is a SCAN and then one GET per lock,
// so those lists made it quadratic in the number of locks. The fast path below looks
// in a watch cache of the namespace's LockRequests instead, and never answers from
// the cache alone:
//
//   - "held by R": the cache names the holding request R; a read of R from the API
//     server must show it still holding that key, else the full read decides. So a
//     stale cache never makes a pull believe it holds a lock another pull took. A
//     request whose status does not say Acquired yet (the operator writes it late
//     for pkg/lockclient's requests) holds when the key's Lease, read from the API
//     server first, names it, and a read of it after shows it not ended.
//   - "free": the cache has no holder; reads of the key's Lease from the API
//     server (one per way the key's text can split into repository and path) must
//     find none, or one that names no request that exists and has not ended, else
//     the full read decides. A key that is held always has its Lease, naming the
//     holding request: the operator's grant is a write of it. After a release with
//     nobody waiting the operator keeps the Lease for idle_lease_retention, still
//     naming the request that let go, which is gone by then: the next TryLock of
//     the key, a moment after Atlantis's Unlock, reads that request's absence
//     rather than waiting for the full read's lists. (Not the ProjectLock: the
//     operator creates that only once a hold has lasted project_lock_delay or
//     someone waits.)
//
// Every answer of the fast path was therefore true at the moment of its last read
// from the API server, as the full read's is.

// Fast is what the fast read path needs: a cached reader of the namespace's
// LockRequests and a direct reader for the checks.
type Fast struct {
	// Cached reads LockRequests from a watch cache of the namespace, indexed by
	// KeyField.
	Cached client.Reader
	// Direct reads from the API server.
	Direct client.Reader
	// Namespace is the LockRequests' namespace.
	Namespace string
	// Deletions, when not nil, reports the deletions that the cache behind Cached
	// has seen; DEL and the unlock script then release through the fast path too
	// (release.go). Without it they take pkg/atlantis's full read.
	Deletions *Deletions
}

// KeyField is the index of the cache behind Fast.Cached that selects a key's
// LockRequests by the text of their lock key (IndexByKey), so that a read looks at
// the key's few requests rather than copying the namespace's.
const KeyField = "lockKey"

// IndexByKey adds KeyField to c, before c starts.
func IndexByKey(ctx context.Context, c cache.Cache) error {
	return c.IndexField(ctx, &lockingv1alpha1.LockRequest{}, KeyField, func(o client.Object) []string {
		return []string{o.(*lockingv1alpha1.LockRequest).Spec.Key().String()}
	})
}

// cachedRequestsOf returns the cached LockRequests of key, read-only (they are the
// cache's own objects). A reader without KeyField may answer more than the key's.
func (f *Fast) cachedRequestsOf(ctx context.Context, key string) (*lockingv1alpha1.LockRequestList, error) {
	var list lockingv1alpha1.LockRequestList
	err := f.Cached.List(ctx, &list, client.InNamespace(f.Namespace), client.MatchingFields{KeyField: key}, client.UnsafeDisableDeepCopy)
	return &list, err
}

// applyKeyText is the lock key of the global apply lock, which is never a project
// lock (see atlantis.DefaultApplyLockProject).
var applyKeyText = lockkey.New(atlantis.DefaultApplyLockProject.Repository, atlantis.DefaultApplyLockProject.Path, "default", atlantis.DefaultApplyLockProject.Name).String()

// getLock returns the lock that holds an Atlantis lock key (given without "pr/"),
// or nil when it is free.
func (s *Space) getLock(ctx context.Context, key string) (*models.ProjectLock, error) {
	if s.fast == nil || key == applyKeyText {
		return s.locker.GetLock(key)
	}
	holder, decided, err := s.fast.read(ctx, key)
	if err != nil || !decided {
		// An error of the fast path is not the answer: the full read gives its
		// own (or the right answer, if the cache was what failed).
		return s.locker.GetLock(key)
	}
	if holder == nil {
		return nil, nil
	}
	lock, err := atlantis.ProjectLockOf(holder)
	if err != nil {
		return nil, err
	}
	lock.Time = lock.Time.Local()
	return &lock, nil
}

// seenFree reports whether the cache shows no request at all for key (given
// without "pr/"), for SET to ask the operator without looking at the key's holder
// first (atlantis.Locker.TryLockSeenFree). Unlike the reads above it answers from
// the cache alone: a cache that is behind costs only a request that the operator
// refuses or queues, as it decides every request, and the look that follows.
func (f *Fast) seenFree(ctx context.Context, key string) bool {
	list, err := f.cachedRequestsOf(ctx, key)
	if err != nil {
		return false
	}
	for i := range list.Items {
		if list.Items[i].Spec.Key().String() == key {
			return false
		}
	}
	return true
}

// read is the fast path: it returns the request that holds key as read from the API
// server, or nil when the key is free; decided=false hands the key to the full read.
func (f *Fast) read(ctx context.Context, key string) (holder *lockingv1alpha1.LockRequest, decided bool, err error) {
	list, err := f.cachedRequestsOf(ctx, key)
	if err != nil {
		return nil, false, err
	}
	var holders []string
	var undecided []*lockingv1alpha1.LockRequest // Pending or Queued: maybe granted on the Lease
	for i := range list.Items {
		lr := &list.Items[i]
		if lr.Spec.Key().String() != key || lr.DeletionTimestamp != nil {
			continue
		}
		switch lockclient.StatusOf(lr).State {
		case lockclient.StateAcquired:
			holders = append(holders, lr.Name)
		case lockclient.StatePending, lockclient.StateQueued:
			undecided = append(undecided, lr)
		}
	}
	switch {
	case len(holders) == 0 && len(undecided) > 0:
		return f.confirmOnLease(ctx, undecided)
	case len(holders) == 0:
		held, err := f.mayBeHeld(ctx, key)
		return nil, !held, err
	case len(holders) == 1:
		return f.confirm(ctx, key, holders[0])
	}
	// One owner holding through several requests (made by hand): which one
	// Atlantis sees is the full read's choice.
	return nil, false, nil
}

// confirm reads the cached holder from the API server and answers it if it still
// holds key.
func (f *Fast) confirm(ctx context.Context, key, name string) (*lockingv1alpha1.LockRequest, bool, error) {
	return f.answer(ctx, name, func(lr *lockingv1alpha1.LockRequest) bool {
		return lr.Spec.Key().String() == key && lockclient.StatusOf(lr).State == lockclient.StateAcquired
	})
}

// answer reads request name from the API server and answers it when holds says
// that the request read holds its key; a request gone or not holding goes to the
// full read.
func (f *Fast) answer(ctx context.Context, name string, holds func(*lockingv1alpha1.LockRequest) bool) (*lockingv1alpha1.LockRequest, bool, error) {
	var lr lockingv1alpha1.LockRequest
	if err := f.Direct.Get(ctx, client.ObjectKey{Namespace: f.Namespace, Name: name}, &lr); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	if !holds(&lr) {
		return nil, false, nil
	}
	return &lr, true, nil
}

// confirmOnLease answers the holder of a key when its Lease, read from the API server,
// names one of undecided, the key's cached requests that wait or are undecided: the
// operator writes the Acquired status of a request made by pkg/lockclient only once
// its hold has lasted status_update_interval (lockingv1alpha1.GrantNoticeAnnotation),
// so a short hold shows on the Lease alone. The request is then read from the API
// server too, after the Lease: it must still exist with that UID and not have
// ended. Anything else goes to the full read.
func (f *Fast) confirmOnLease(ctx context.Context, undecided []*lockingv1alpha1.LockRequest) (*lockingv1alpha1.LockRequest, bool, error) {
	var lease coordinationv1.Lease
	err := f.Direct.Get(ctx, client.ObjectKey{Namespace: f.Namespace, Name: undecided[0].Spec.Key().ObjectName()}, &lease)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	holder, _ := lockclient.LeaseHolder(&lease)
	for _, cached := range undecided {
		if holder != cached.Name+"/"+string(cached.UID) {
			continue
		}
		return f.answer(ctx, cached.Name, func(lr *lockingv1alpha1.LockRequest) bool {
			return lr.UID == cached.UID && lr.DeletionTimestamp == nil && lockclient.StatusOf(lr).State != lockclient.StateEnded
		})
	}
	return nil, false, nil
}

// mayBeHeld reports whether a Lease of key names a request that may hold it, reading
// each way the key's text can split into repository and path from the API server:
// the Lease, and when it names a request, that request. A Lease the operator keeps
// for idle_lease_retention after its holder let go names a request that is gone,
// so the key is free although its Lease exists; a Lease naming a request that
// exists and has not ended may be a hold the cache does not show yet, which the
// full read decides.
func (f *Fast) mayBeHeld(ctx context.Context, key string) (bool, error) {
	segments := strings.Count(key, "/") + 1
	for depth := 2; depth+3 <= segments; depth++ {
		k, err := lockkey.ParseWithRepositoryDepth(key, depth)
		if err != nil {
			continue // no lock can have this split: its parts are not valid
		}
		named, _, err := lockclient.LeaseNamedRequest(ctx, f.Direct, f.Namespace, k.ObjectName())
		if err != nil {
			return true, fmt.Errorf("reading the Lease of %s: %w", key, err)
		}
		if named != nil {
			return true, nil
		}
	}
	return false, nil
}
