package atlantis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/runatlantis/atlantis/server/core/locking"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// The adapter is Atlantis's global apply locker, checked against Atlantis's own
// interface.
var _ locking.ApplyLocker = (*ApplyLocker)(nil)

// Errors of the ApplyLocker, matching Atlantis's locking.ApplyClient over BoltDB.
var (
	// ErrApplyDisabled: apply is left out of Atlantis's allowed commands, so the apply
	// lock can be neither taken nor released (Atlantis's message of LockApply).
	ErrApplyDisabled = errors.New("apply is omitted from AllowCommands; Apply commands are locked globally until flag is updated")
	// ErrApplyLocked: LockApply found the global apply lock already taken.
	ErrApplyLocked = errors.New("the global apply lock already exists")
	// ErrApplyNotLocked: UnlockApply found no global apply lock.
	ErrApplyNotLocked = errors.New("no global apply lock exists")
)

// ApplyLocker implements Atlantis's locking.ApplyLocker (the "disable apply" button
// of its UI) as one well-known lock key, DefaultApplyLockProject in workspace
// "default" unless WithApplyLockProject says otherwise, held by the user
// "atlantis-global-apply-lock" with no pull. Like Atlantis's ApplyClient over BoltDB,
// LockApply fails when the lock exists already, UnlockApply fails when it does not,
// and times have whole seconds.
type ApplyLocker struct {
	client                 *lockclient.Client
	disableApply           bool
	disableGlobalApplyLock bool
	opts                   options
}

// NewApplyLocker returns the global apply locker, with the arguments of Atlantis's
// locking.NewApplyClient besides the client: disableApply when apply is not among
// Atlantis's allowed commands, disableGlobalApplyLock for
// --disable-global-apply-lock.
func NewApplyLocker(c *lockclient.Client, disableApply, disableGlobalApplyLock bool, opts ...Option) *ApplyLocker {
	return &ApplyLocker{client: c, disableApply: disableApply, disableGlobalApplyLock: disableGlobalApplyLock, opts: newOptions(opts)}
}

// LockApply takes the global apply lock. It fails with ErrApplyLocked when the lock
// exists already, and with ErrApplyDisabled when apply is disabled.
func (a *ApplyLocker) LockApply() (locking.ApplyCommandLock, error) {
	if a.disableApply {
		return locking.ApplyCommandLock{}, ErrApplyDisabled
	}
	ctx, cancel := a.opts.context()
	defer cancel()
	now := time.Unix(a.opts.clock.Now().Unix(), 0)
	stored, err := json.Marshal(storedLock{Time: now})
	if err != nil {
		return locking.ApplyCommandLock{}, fmt.Errorf("encoding the global apply lock: %w", err)
	}
	attempt := newAttempt()
	req := a.request()
	req.QueueTimeout = new(time.Duration)
	req.Annotations = map[string]string{LockAnnotation: string(stored), AttemptAnnotation: attempt}

	if held, err := a.check(ctx); err != nil {
		return locking.ApplyCommandLock{}, err
	} else if held.Locked {
		return locking.ApplyCommandLock{}, fmt.Errorf("%w (since %s)", ErrApplyLocked, held.Time.UTC().Format(time.RFC3339))
	}
	st, err := a.client.TryLock(ctx, req)
	if err != nil {
		return locking.ApplyCommandLock{}, fmt.Errorf("taking the global apply lock: %w", err)
	}
	if st.State != lockclient.StateAcquired || st.Request.Annotations[AttemptAnnotation] != attempt {
		return locking.ApplyCommandLock{}, fmt.Errorf("%w (taken by another Atlantis replica just now)", ErrApplyLocked)
	}
	return locking.ApplyCommandLock{Locked: true, Time: now}, nil
}

// UnlockApply releases the global apply lock. It fails with ErrApplyNotLocked when
// there is none, and with ErrApplyDisabled when apply is disabled.
func (a *ApplyLocker) UnlockApply() error {
	if a.disableApply {
		return ErrApplyDisabled
	}
	ctx, cancel := a.opts.context()
	defer cancel()
	lock, err := releaseKey(ctx, a.client, a.opts.applyLockKey().String(), nil)
	if err != nil {
		return fmt.Errorf("releasing the global apply lock: %w", err)
	}
	if lock == nil {
		return ErrApplyNotLocked
	}
	return nil
}

// CheckApplyLock says whether applies are locked: always when apply is disabled,
// otherwise when the global apply lock is held, with the time it was taken.
func (a *ApplyLocker) CheckApplyLock() (locking.ApplyCommandLock, error) {
	if a.disableApply {
		return locking.ApplyCommandLock{Locked: true}, nil
	}
	ctx, cancel := a.opts.context()
	defer cancel()
	resp, err := a.check(ctx)
	resp.GlobalApplyLockEnabled = !a.disableGlobalApplyLock
	return resp, err
}

// check reads the global apply lock.
func (a *ApplyLocker) check(ctx context.Context) (locking.ApplyCommandLock, error) {
	holder, err := holderOf(ctx, a.client, a.opts.applyLockKey().String())
	if err != nil || holder == nil {
		return locking.ApplyCommandLock{}, err
	}
	lock, err := projectLockOf(holder)
	if err != nil {
		return locking.ApplyCommandLock{}, err
	}
	return locking.ApplyCommandLock{Locked: true, Time: time.Unix(lock.Time.Unix(), 0)}, nil
}

// request is the LockRequest of the global apply lock, without annotations.
func (a *ApplyLocker) request() lockclient.Request {
	key := a.opts.applyLockKey()
	return lockclient.Request{
		Project:   lockingv1alpha1.ProjectRef{Repository: key.Repository, Path: key.Path, Name: key.ProjectName},
		Workspace: key.Workspace,
		User:      lockingv1alpha1.UserRef{Username: applyLockUsername},
	}
}
