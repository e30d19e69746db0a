package atlantis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/runatlantis/atlantis/server/core/locking"
	"github.com/runatlantis/atlantis/server/events/models"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// The adapter is Atlantis's project locker, checked against Atlantis's own interface.
var _ locking.Locker = (*Locker)(nil)

// maxRounds bounds the look-then-act rounds of one call. A round is repeated only
// when the key changed hands between the look and the act (a holder let go just as
// another request was refused), which a busy key may do a few times in a row but
// not forever.
const maxRounds = 8

// Locker implements Atlantis's locking.Locker over atlantis-lock-operator
// LockRequests in one namespace. It keeps no state of its own: every answer comes
// from the API server, so any number of Atlantis replicas may share the locks.
type Locker struct {
	client *lockclient.Client
	opts   options
	// granted wakes RenewHolds when TryLock took a key.
	granted chan struct{}
}

// NewLocker returns a Locker that takes locks through c (see lockclient.New for the
// namespace and the client it needs).
func NewLocker(c *lockclient.Client, opts ...Option) *Locker {
	return &Locker{client: c, opts: newOptions(opts), granted: make(chan struct{}, 1)}
}

// TryLock takes the lock of project p in workspace for pull and user, as Atlantis's
// locking.Client does: LockAcquired is true only when this call took a free key,
// and CurrLock is then the new lock. When the key is held, by another pull or by the
// same one, LockAcquired is false and CurrLock is the lock that holds it (Atlantis's
// caller treats a lock of the same pull number as its own). In ModeExact a refused
// call leaves nothing behind; in ModeQueue a pull other than the holder stays queued
// (see ModeQueue). LockKey is models.GenerateLockKey(p, workspace).
//
// The project path must be clean, as models.NewProject makes it, and the key's parts
// within what a LockRequest accepts; otherwise TryLock fails, naming the part.
func (l *Locker) TryLock(p models.Project, workspace string, pull models.PullRequest, user models.User) (locking.TryLockResponse, error) {
	return l.tryLock(p, workspace, pull, user, true)
}

// TryLockSeenFree is TryLock for a caller that has just seen the key with no
// request at all, such as the Redis gateway, whose SET of a lock key follows
// Atlantis's GET of it: it asks the operator at once, without TryLock's first look
// at the key's holder (a read of the key's Lease and of the request it names, one
// or two round trips). What it answers is TryLock's: the operator decides every
// request, so a key taken since it was seen free is refused (ModeExact) or queued
// for (ModeQueue), and the holder is reported after one more look. The one
// difference is a key that the same pull holds through a request of another name
// (made with kubectl, say), which TryLock reports as held and TryLockSeenFree takes
// re-entrantly (LockAcquired); a key seen with no request has no such holder.
func (l *Locker) TryLockSeenFree(p models.Project, workspace string, pull models.PullRequest, user models.User) (locking.TryLockResponse, error) {
	return l.tryLock(p, workspace, pull, user, false)
}

// tryLock is TryLock, and TryLockSeenFree when look is false.
func (l *Locker) tryLock(p models.Project, workspace string, pull models.PullRequest, user models.User, look bool) (locking.TryLockResponse, error) {
	ctx, cancel := l.opts.context()
	defer cancel()
	resp := locking.TryLockResponse{LockKey: models.GenerateLockKey(p, workspace)}
	key, err := keyOf(p, workspace)
	if err != nil {
		return resp, err
	}
	if key == l.opts.applyLockKey() {
		return resp, fmt.Errorf("lock key %s is the global apply lock's (see WithApplyLockProject), not a project's", resp.LockKey)
	}
	now := l.opts.clock.Now().Local()
	req, err := newRequest(key, pull, user, now)
	if err != nil {
		return resp, err
	}
	attempt := newAttempt()
	req.Annotations[AttemptAnnotation] = attempt
	req.Priority = l.opts.priority
	req.TTL = l.opts.ttl
	if l.opts.mode == ModeQueue {
		req.QueueTimeout = l.opts.queueTimeout
	} else {
		req.QueueTimeout = new(time.Duration) // 0s: fail at once when held (reason Conflict)
	}
	mine := models.ProjectLock{Project: p, Pull: pull, User: user, Workspace: workspace, Time: now}

	asked := false
	for round := range maxRounds {
		var holder *lockingv1alpha1.LockRequest
		if look || round > 0 {
			if holder, err = l.firstHolder(ctx, key, resp.LockKey, round); err != nil {
				return resp, err
			}
		}
		if holder != nil && (l.opts.mode == ModeExact || asked || holder.Spec.Owner() == req.Owner()) {
			// Held: report the holder. The holding pull itself gets false too, as
			// from Atlantis's BoltDB; making a request for it would only add a
			// re-entrant hold that Atlantis never asked for. In ModeQueue a pull
			// that has asked stays queued behind the holder.
			resp.CurrLock, err = projectLockOf(holder)
			return resp, err
		}
		// Free (either mode), or held by another owner (ModeQueue): ask.
		st, err := l.client.TryLock(ctx, req)
		if err != nil {
			return resp, fmt.Errorf("trying to lock %s: %w", resp.LockKey, err)
		}
		asked = true
		switch {
		case st.State == lockclient.StateAcquired && st.Request.Annotations[AttemptAnnotation] == attempt:
			resp.LockAcquired, resp.CurrLock = true, mine
			select {
			case l.granted <- struct{}{}:
			default: // RenewHolds has a wake-up pending already
			}
			return resp, nil
		case st.State == lockclient.StateAcquired:
			// The request of this owner and key existed already and holds: an
			// earlier call of the same pull took the key, not this one.
			resp.CurrLock, err = projectLockOf(st.Request)
			return resp, err
		case st.State == lockclient.StateQueued && l.opts.mode == ModeExact:
			// Not expected with a zero queue timeout, but a request of ModeExact
			// must never stay behind: withdraw it and look again.
			if err := l.client.Release(ctx, st); err != nil {
				return resp, fmt.Errorf("withdrawing LockRequest %s of %s: %w", st.Name(), resp.LockKey, err)
			}
		}
		// Queued (ModeQueue) or refused (Conflict; the client deleted the ended
		// request): report the holder on the next round, or ask again if the key
		// became free in between.
	}
	return resp, fmt.Errorf("trying to lock %s: the key changed hands %d times while this call looked at it; try again", resp.LockKey, maxRounds)
}

// Unlock releases the lock of an Atlantis lock key, whoever holds it, and returns it;
// (nil, nil) when nobody holds the key. A key without Atlantis's
// "{repository}/{path}/{workspace}/{project name}" shape is an error. The holder's
// requests are deleted, and the call returns once they are gone; the operator then
// releases the key, handing it to the next waiter of a queue, if any, with one
// compare-and-swap of its Lease, and no other request can hold it before that.
func (l *Locker) Unlock(key string) (*models.ProjectLock, error) {
	ctx, cancel := l.opts.context()
	defer cancel()
	if err := checkKeyShape(key); err != nil {
		return nil, err
	}
	return l.release(ctx, key, nil)
}

// UnlockIfOwnedByPull releases the lock of project and workspace only when pull
// pullNum holds it, and returns the released lock; (nil, nil) otherwise.
func (l *Locker) UnlockIfOwnedByPull(project models.Project, workspace string, pullNum int) (*models.ProjectLock, error) {
	ctx, cancel := l.opts.context()
	defer cancel()
	return l.release(ctx, models.GenerateLockKey(project, workspace), func(lock models.ProjectLock) bool { return lock.Pull.Num == pullNum })
}

// List returns every held lock by its Atlantis lock key. Waiting requests (ModeQueue)
// and the global apply lock are not locks in Atlantis's sense and are left out.
func (l *Locker) List() (map[string]models.ProjectLock, error) {
	ctx, cancel := l.opts.context()
	defer cancel()
	locks := map[string]models.ProjectLock{}
	infos, err := l.client.List(ctx)
	if err != nil {
		return locks, fmt.Errorf("listing locks: %w", err)
	}
	apply := l.opts.applyLockKey()
	for i := range infos {
		info := &infos[i]
		if info.Holder == nil || info.Key == apply {
			continue
		}
		lock, err := projectLockOf(info.Holder)
		if err != nil {
			return locks, err
		}
		locks[models.GenerateLockKey(lock.Project, lock.Workspace)] = lock
	}
	return locks, nil
}

// UnlockByPull releases every lock that pull pullNum of repository repoFullName
// holds, and returns them in lock key order, as Atlantis's BoltDB does. The
// repository must match exactly: unlike Atlantis's BoltDB and Redis backends, which
// match lock keys by prefix, the locks of "owner/repo2" (or of "group/sub/repo" for
// "group/sub") are never released for "owner/repo". The pull's waiting requests
// (ModeQueue) are withdrawn too, so that a closed pull never gets a lock later. It
// lists the namespace's locks once, and deletes the pull's requests by name and UID
// as that list shows them.
func (l *Locker) UnlockByPull(repoFullName string, pullNum int) ([]models.ProjectLock, error) {
	ctx, cancel := l.opts.context()
	defer cancel()
	infos, err := l.client.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing locks to release those of %s#%d: %w", repoFullName, pullNum, err)
	}
	ofPull := func(lr *lockingv1alpha1.LockRequest) (bool, error) {
		if lr.Spec.Project.Repository != repoFullName {
			return false, nil
		}
		lock, err := projectLockOf(lr)
		return err == nil && lock.Pull.Num == pullNum, err
	}
	var released []models.ProjectLock
	apply := l.opts.applyLockKey()
	for i := range infos {
		info := &infos[i]
		if info.Key == apply {
			continue
		}
		for j := range info.Queue {
			if ok, err := ofPull(&info.Queue[j]); err != nil {
				return released, err
			} else if ok {
				if err := l.client.Release(ctx, lockclient.StatusOf(&info.Queue[j])); err != nil {
					return released, fmt.Errorf("withdrawing LockRequest %s of %s#%d: %w", info.Queue[j].Name, repoFullName, pullNum, err)
				}
			}
		}
		if info.Holder == nil {
			continue
		}
		if ok, err := ofPull(info.Holder); err != nil {
			return released, err
		} else if !ok {
			continue
		}
		lock, err := projectLockOf(info.Holder)
		if err != nil {
			return released, err
		}
		// Every request through which the pull holds the key, as the list shows
		// them (its undecided ones were withdrawn with the queue above): the list
		// is the API server's state at one moment, so a second read per key, as
		// Unlock makes, would add nothing but a wait for its watch cache.
		owner := info.Holder.Spec.Owner()
		for j := range info.Holders {
			if info.Holders[j].Spec.Owner() != owner {
				continue
			}
			if err := l.client.Release(ctx, lockclient.StatusOf(&info.Holders[j])); err != nil {
				return released, fmt.Errorf("releasing %s (LockRequest %s) of %s#%d: %w", info.Key, info.Holders[j].Name, repoFullName, pullNum, err)
			}
		}
		released = append(released, lock)
	}
	sort.Slice(released, func(i, j int) bool {
		return models.GenerateLockKey(released[i].Project, released[i].Workspace) <
			models.GenerateLockKey(released[j].Project, released[j].Workspace)
	})
	return released, nil
}

// GetLock returns the lock that holds an Atlantis lock key, or (nil, nil) when
// nobody holds it. A key without Atlantis's shape is an error, as for Unlock.
func (l *Locker) GetLock(key string) (*models.ProjectLock, error) {
	ctx, cancel := l.opts.context()
	defer cancel()
	if err := checkKeyShape(key); err != nil {
		return nil, err
	}
	holder, err := l.holder(ctx, key)
	if err != nil || holder == nil {
		return nil, err
	}
	lock, err := projectLockOf(holder)
	if err != nil {
		return nil, err
	}
	lock.Time = lock.Time.Local()
	return &lock, nil
}

// holder returns the LockRequest that holds the project lock whose key text is key,
// or nil when nobody holds it. The global apply lock is not a project lock: its key
// is always free here, as in Atlantis, where it lives in a bucket of its own.
func (l *Locker) holder(ctx context.Context, key string) (*lockingv1alpha1.LockRequest, error) {
	if key == l.opts.applyLockKey().String() {
		return nil, nil
	}
	return holderOf(ctx, l.client, key)
}

// firstHolder returns the holder of key (whose text is text) as TryLock's round of
// looking sees it. The first look reads the key's Lease and the request it names,
// by name (lockclient.LeaseHolderOf): two reads whatever the number of locks, and
// no wait for the API server's watch cache to catch up with etcd, which a
// consistent list of the namespace's requests has (up to a tenth of a second, most
// of a TryLock through the Redis gateway; docs/benchmarks.md). A later look, after
// the operator refused or queued this call's request, reads the whole lock as
// holder does: the Lease may not show a holder the operator decided from, such as
// an owner's second request that holds on after the one the Lease names was
// deleted, until the operator has passed the hold to it. So does a client that may
// not read Leases, always.
func (l *Locker) firstHolder(ctx context.Context, key lockkey.Key, text string, round int) (*lockingv1alpha1.LockRequest, error) {
	if round > 0 {
		return l.holder(ctx, text)
	}
	holder, err := l.client.LeaseHolderOf(ctx, key.ObjectName())
	switch {
	case errors.Is(err, lockclient.ErrHolderUnknown):
		return l.holder(ctx, text)
	case err != nil:
		return nil, fmt.Errorf("reading the lock of %s: %w", text, err)
	}
	return holder, nil
}

// release releases the project lock of key; see releaseKey.
func (l *Locker) release(ctx context.Context, key string, match func(models.ProjectLock) bool) (*models.ProjectLock, error) {
	if key == l.opts.applyLockKey().String() {
		return nil, nil
	}
	return releaseKey(ctx, l.client, key, match)
}

// holderOf returns the LockRequest that holds the lock whose key text is key, or nil
// when nobody holds it; see lockOf.
func holderOf(ctx context.Context, c *lockclient.Client, key string) (*lockingv1alpha1.LockRequest, error) {
	info, err := lockOf(ctx, c, key)
	if err != nil || info == nil {
		return nil, err
	}
	return info.Holder, nil
}

// lockOf returns the lock whose key text is key, or nil when nobody holds it. It
// asks for the key's text (lockclient.GetLockText) rather than for one
// lockkey.Key, because a key string does not tell where the repository ends (see
// checkKeyShape); the lock's objects are named after the text, so the read costs
// the same whatever else the namespace holds.
func lockOf(ctx context.Context, c *lockclient.Client, key string) (*lockclient.LockInfo, error) {
	info, err := c.GetLockText(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading the lock of %s: %w", key, err)
	}
	if info == nil || info.Holder == nil {
		return nil, nil
	}
	return info, nil
}

// releaseKey deletes the requests of the owner that holds key, when match (if not
// nil) accepts its lock, and returns that lock; (nil, nil) when the key is free or
// match refuses. An owner may hold through several requests (the operator's
// re-entrancy, say a request made with kubectl besides the adapter's), so when the
// lock read shows the owner with more than its holding request (holding or waiting:
// a re-entrant grant may not show on the status yet), releaseKey deletes until the
// key is free or held by someone else. An owner with one request, the adapter's
// own case, is released by its deletion alone, without reading the lock again.
func releaseKey(ctx context.Context, c *lockclient.Client, key string, match func(models.ProjectLock) bool) (*models.ProjectLock, error) {
	info, err := lockOf(ctx, c, key)
	if err != nil || info == nil {
		return nil, err
	}
	holder := info.Holder
	lock, err := projectLockOf(holder)
	if err != nil {
		return nil, err
	}
	if match != nil && !match(lock) {
		return nil, nil
	}
	owner := holder.Spec.Owner()
	alone := requestsOf(info, owner) == 1
	for range maxRounds {
		if err := c.Release(ctx, lockclient.StatusOf(holder)); err != nil {
			return nil, fmt.Errorf("releasing %s (LockRequest %s): %w", key, holder.Name, err)
		}
		if alone {
			return &lock, nil
		}
		if holder, err = holderOf(ctx, c, key); err != nil {
			return nil, err
		}
		if holder == nil || holder.Spec.Owner() != owner {
			return &lock, nil
		}
	}
	return nil, fmt.Errorf("releasing %s: owner %s still holds it after %d of its requests were deleted", key, owner, maxRounds)
}

// requestsOf counts the requests of owner that hold or wait for the lock of info.
func requestsOf(info *lockclient.LockInfo, owner string) int {
	n := 0
	for _, reqs := range [][]lockingv1alpha1.LockRequest{info.Holders, info.Queue} {
		for i := range reqs {
			if reqs[i].Spec.Owner() == owner {
				n++
			}
		}
	}
	return n
}
