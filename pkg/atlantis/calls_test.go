package atlantis_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/runatlantis/atlantis/server/core/locking"
	"github.com/runatlantis/atlantis/server/events/models"
)

// method names one method of Atlantis's locking.Locker or locking.ApplyLocker.
type method string

const (
	tryLock             method = "TryLock"
	unlock              method = "Unlock"
	unlockIfOwnedByPull method = "UnlockIfOwnedByPull"
	list                method = "List"
	unlockByPull        method = "UnlockByPull"
	getLock             method = "GetLock"
	lockApply           method = "LockApply"
	unlockApply         method = "UnlockApply"
	checkApplyLock      method = "CheckApplyLock"
)

// call is one call of the Locker or ApplyLocker interface, with its arguments.
type call struct {
	Method    method
	Project   models.Project // TryLock, UnlockIfOwnedByPull
	Workspace string         // TryLock, UnlockIfOwnedByPull
	Pull      models.PullRequest
	User      models.User
	Key       string // Unlock, GetLock
	Repo      string // UnlockByPull
	PullNum   int    // UnlockIfOwnedByPull, UnlockByPull
}

func (c call) String() string {
	switch c.Method {
	case tryLock:
		return fmt.Sprintf("TryLock(%s, pull %d at %s, user %s)", models.GenerateLockKey(c.Project, c.Workspace), c.Pull.Num, c.Pull.HeadCommit, c.User.Username)
	case unlockIfOwnedByPull:
		return fmt.Sprintf("UnlockIfOwnedByPull(%s, pull %d)", models.GenerateLockKey(c.Project, c.Workspace), c.PullNum)
	case unlock, getLock:
		return fmt.Sprintf("%s(%q)", c.Method, c.Key)
	case unlockByPull:
		return fmt.Sprintf("UnlockByPull(%q, %d)", c.Repo, c.PullNum)
	}
	return string(c.Method) + "()"
}

// outcome is everything a caller can observe of one call: the returned values, and
// whether an error came back. Error texts are not compared: the adapter's errors say
// more (the object, the key) than BoltDB's.
type outcome struct {
	TryLock *locking.TryLockResponse
	Lock    *models.ProjectLock
	Locks   []models.ProjectLock
	List    map[string]models.ProjectLock
	Apply   *locking.ApplyCommandLock
	Err     bool
	err     error
}

// do makes the call on a locker and an apply locker.
func (c call) do(l locking.Locker, a locking.ApplyLocker) outcome {
	var o outcome
	var err error
	switch c.Method {
	case tryLock:
		var r locking.TryLockResponse
		r, err = l.TryLock(c.Project, c.Workspace, c.Pull, c.User)
		o.TryLock = &r
	case unlock:
		o.Lock, err = l.Unlock(c.Key)
	case unlockIfOwnedByPull:
		o.Lock, err = l.UnlockIfOwnedByPull(c.Project, c.Workspace, c.PullNum)
	case list:
		o.List, err = l.List()
	case unlockByPull:
		o.Locks, err = l.UnlockByPull(c.Repo, c.PullNum)
	case getLock:
		o.Lock, err = l.GetLock(c.Key)
	case lockApply:
		var r locking.ApplyCommandLock
		r, err = a.LockApply()
		o.Apply = &r
	case unlockApply:
		err = a.UnlockApply()
	case checkApplyLock:
		var r locking.ApplyCommandLock
		r, err = a.CheckApplyLock()
		o.Apply = &r
	default:
		panic("unknown method " + c.Method)
	}
	o.Err, o.err = err != nil, err
	return o
}

// someTime stands for every non-zero time stamp after normalisation: the two sides
// lock at different instants, and Atlantis's BoltDB takes time.Now() itself. A zero
// time stays zero, so a missing time stamp still shows.
var someTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func normaliseTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return someTime
}

// normalised returns o with time stamps normalised. When stored is true (the
// Atlantis side), the two pull request fields that the adapter deliberately never
// stores (pkg/atlantis LockAnnotation: the clone URL, which carries the VCS token,
// and the description) are blanked in every lock that was read back from storage;
// a lock that TryLock just acquired is the caller's own value and stays whole on
// both sides. The adapter's side is never blanked, so a leaked clone URL shows.
func (o outcome) normalised(stored bool) outcome {
	fix := func(l models.ProjectLock, fromStorage bool) models.ProjectLock {
		l.Time = normaliseTime(l.Time)
		if stored && fromStorage {
			l.Pull.Body = ""
			l.Pull.BaseRepo.CloneURL = ""
		}
		return l
	}
	if o.TryLock != nil {
		r := *o.TryLock
		r.CurrLock = fix(r.CurrLock, !r.LockAcquired)
		o.TryLock = &r
	}
	if o.Lock != nil {
		l := fix(*o.Lock, true)
		o.Lock = &l
	}
	if o.Locks != nil {
		locks := make([]models.ProjectLock, len(o.Locks))
		for i, l := range o.Locks {
			locks[i] = fix(l, true)
		}
		o.Locks = locks
	}
	if o.List != nil {
		m := make(map[string]models.ProjectLock, len(o.List))
		for k, l := range o.List {
			m[k] = fix(l, true)
		}
		o.List = m
	}
	if o.Apply != nil {
		a := *o.Apply
		a.Time = normaliseTime(a.Time)
		o.Apply = &a
	}
	return o
}

// keysOf returns the sorted keys of a lock map, for messages.
func keysOf(m map[string]models.ProjectLock) string {
	return strings.Join(slices.Sorted(maps.Keys(m)), ", ")
}
