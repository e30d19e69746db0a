package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"k8s.io/utils/clock"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// This file is the original design's LockOrchestrator Go API: Lock, LockWithOptions,
// Unlock, List, GetStatus, GetMetrics, GetComponentHealth. Its requests live in the
// orchestrator's own registry rather than in LockRequest objects; decisions go
// through Sync and the Backend exactly as the controller's do.

// Project is an Atlantis project.
type Project struct {
	// RepoFullName is "owner/repo".
	RepoFullName string
	// Path is the project directory; "." is the repository root.
	Path string
	// ProjectName is the Atlantis project name, or "".
	ProjectName string
}

// User is who takes a lock.
type User struct {
	// Username is the VCS username.
	Username string
	// Teams the user belongs to.
	Teams []string
}

// LockOptions tunes LockWithOptions.
type LockOptions struct {
	// Priority orders the queue; the zero value is Normal.
	Priority lockingv1alpha1.Priority
	// QueueTimeout is the longest wait; nil uses the configured default, 0 fails
	// fast with Conflict.
	QueueTimeout *time.Duration
	// TTL makes the hold expire unless renewed; 0 uses the configured default.
	TTL time.Duration
	// Pull makes the pull request, not the user, the owner of the lock.
	Pull int32
	// PullURL links to the pull request.
	PullURL string
	// Namespace scopes the lock, as a Kubernetes namespace does.
	Namespace string
	// Metadata is kept with the lock and returned by List.
	Metadata map[string]string
}

// ProjectLock is a held lock, as the Go API returns it.
type ProjectLock struct {
	// Project and Workspace are the lock key.
	Project   Project
	Workspace string
	// Key is the lock key in Atlantis's format.
	Key string
	// Owner is the holding owner.
	Owner string
	// User is the holder's username.
	User string
	// Pull is the holder's pull request number, or 0.
	Pull int32
	// Time is when the lock was acquired.
	Time time.Time
	// ExpiresAt is when the hold expires unless renewed, or zero.
	ExpiresAt time.Time
	// FencingToken identifies the grant; it only grows per key.
	FencingToken string
	// Metadata is what the holder passed in LockOptions.
	Metadata map[string]string
}

// LockError is why a Lock call did not get the lock.
type LockError struct {
	// Reason is the Acquired condition's reason: Conflict, QueueTimeout, QueueFull,
	// DeadlockVictim (or Expired or Revoked for a hold lost before Lock returned).
	Reason string
	// Message explains it.
	Message string
	// Holder is who held the key, when known.
	Holder *Holder
}

func (e *LockError) Error() string { return e.Reason + ": " + e.Message }

// IsReason reports whether err is a LockError with the given reason.
func IsReason(err error, reason string) bool {
	var le *LockError
	return errors.As(err, &le) && le.Reason == reason
}

// localRequest is a Go API request waiting for its outcome.
type localRequest struct {
	req      *Request
	project  Project
	ws       string
	metadata map[string]string
	changed  chan struct{}
}

type localRegistry struct {
	mu       sync.Mutex
	seq      uint64
	requests map[LockRef]map[string]*localRequest
}

// Lock takes the lock of a project and workspace for user, waiting in the queue as
// long as the default queue timeout allows.
func (o *LockOrchestrator) Lock(ctx context.Context, project Project, workspace string, user User) (*ProjectLock, error) {
	return o.LockWithOptions(ctx, project, workspace, user, LockOptions{})
}

// LockWithOptions takes a lock with a priority, queue timeout, ttl and metadata. It
// returns when the lock is held, with a *LockError when the request ended without
// it, or with ctx's error after withdrawing the request when ctx ends first.
func (o *LockOrchestrator) LockWithOptions(ctx context.Context, project Project, workspace string, user User, opts LockOptions) (*ProjectLock, error) {
	key := lockkey.New(project.RepoFullName, project.Path, workspace, project.ProjectName)
	ref := LockRef{Namespace: opts.Namespace, Key: key}
	if err := key.Validate(); err != nil {
		return nil, o.refuse(ref, fmt.Errorf("invalid lock request: %w", err))
	}
	if user.Username == "" {
		return nil, o.refuse(ref, errors.New("invalid lock request: user.username must not be empty"))
	}
	ref.Name = key.ObjectName()
	lr := o.register(ref, project, workspace, user, opts)

	for {
		if err := o.syncLocal(ctx, ref); err != nil && !retryable(err) {
			o.withdraw(context.WithoutCancel(ctx), ref, lr.req.ID)
			return nil, err
		}
		o.local.mu.Lock()
		st := lr.req.State
		o.local.mu.Unlock()
		switch st.Phase {
		case PhaseAcquired:
			return o.projectLock(ref, lr, st), nil
		case PhaseTerminal:
			o.withdraw(context.WithoutCancel(ctx), ref, lr.req.ID)
			return nil, &LockError{Reason: st.Reason, Message: st.Message, Holder: st.BlockedBy}
		}
		select {
		case <-lr.changed:
		case <-ctx.Done():
			o.withdraw(context.WithoutCancel(ctx), ref, lr.req.ID)
			return nil, ctx.Err()
		}
	}
}

// refuse reports a request refused before it was registered, and returns err.
func (o *LockOrchestrator) refuse(ref LockRef, err error) error {
	o.emit(Notice{Kind: NoticeValidationError, Time: o.clock.Now(), Lock: ref, Err: err})
	return err
}

// retryable reports errors after which the same decision is simply tried again.
func retryable(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, ErrStale)
}

// Unlock releases every lock user's requests hold on the project and workspace, and
// withdraws their waiting requests. It returns the lock that was held, or nil.
func (o *LockOrchestrator) Unlock(ctx context.Context, project Project, workspace string, user User) (*ProjectLock, error) {
	key := lockkey.New(project.RepoFullName, project.Path, workspace, project.ProjectName)
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("invalid unlock request: %w", err)
	}
	var released *ProjectLock
	o.local.mu.Lock()
	var refs []LockRef
	for ref, reqs := range o.local.requests {
		if ref.Key != key {
			continue
		}
		for _, lr := range reqs {
			if lr.req.User != user.Username {
				continue
			}
			if lr.req.State.Phase == PhaseAcquired && released == nil {
				released = o.projectLock(ref, lr, lr.req.State)
			}
			lr.req.Deleting = true
			refs = append(refs, ref)
		}
	}
	o.local.mu.Unlock()
	for _, ref := range refs {
		if err := o.syncLocalUntilDone(ctx, ref); err != nil {
			return released, err
		}
	}
	return released, nil
}

// List returns every lock held through the Go API.
func (o *LockOrchestrator) List(_ context.Context) ([]*ProjectLock, error) {
	o.local.mu.Lock()
	defer o.local.mu.Unlock()
	var locks []*ProjectLock
	for ref, reqs := range o.local.requests {
		var best *localRequest
		for _, lr := range reqs {
			if lr.req.State.Phase == PhaseAcquired && !lr.req.Deleting &&
				(best == nil || lr.req.State.AcquiredAt.Before(best.req.State.AcquiredAt)) {
				best = lr
			}
		}
		if best != nil {
			locks = append(locks, o.projectLock(ref, best, best.req.State))
		}
	}
	return locks, nil
}

// Renew renews every hold user has on the project and workspace: their expiry moves
// to one ttl from now.
func (o *LockOrchestrator) Renew(ctx context.Context, project Project, workspace string, user User) error {
	key := lockkey.New(project.RepoFullName, project.Path, workspace, project.ProjectName)
	now := o.clock.Now()
	var refs []LockRef
	o.local.mu.Lock()
	for ref, reqs := range o.local.requests {
		if ref.Key != key {
			continue
		}
		for _, lr := range reqs {
			if lr.req.User == user.Username && lr.req.State.Phase == PhaseAcquired {
				lr.req.RenewTime = now
				refs = append(refs, ref)
			}
		}
	}
	o.local.mu.Unlock()
	for _, ref := range refs {
		if err := o.syncLocalUntilDone(ctx, ref); err != nil {
			return err
		}
	}
	return nil
}

func (o *LockOrchestrator) register(ref LockRef, project Project, ws string, user User, opts LockOptions) *localRequest {
	now := o.clock.Now()
	qt := o.cfg.DefaultQueueTimeout
	if opts.QueueTimeout != nil {
		qt = *opts.QueueTimeout
	}
	ttl := opts.TTL
	if ttl == 0 {
		ttl = o.cfg.DefaultTTL
	}
	prio := opts.Priority
	if prio == "" {
		prio = lockingv1alpha1.PriorityNormal
	}
	owner := user.Username
	if opts.Pull > 0 {
		owner = project.RepoFullName + "#" + strconv.Itoa(int(opts.Pull))
	}
	o.local.mu.Lock()
	defer o.local.mu.Unlock()
	o.local.seq++
	id := "go-" + strconv.FormatUint(o.local.seq, 10)
	lr := &localRequest{
		req: &Request{
			ID: id, UID: id, Owner: owner, Priority: prio.Rank(), Created: now,
			QueueTimeout: qt, TTL: ttl, Pull: opts.Pull, PullURL: opts.PullURL, User: user.Username,
		},
		project:  project,
		ws:       ws,
		metadata: opts.Metadata,
		changed:  make(chan struct{}, 1),
	}
	if o.local.requests[ref] == nil {
		o.local.requests[ref] = map[string]*localRequest{}
	}
	o.local.requests[ref][id] = lr
	return lr
}

// withdraw removes a request and lets the key move on without it.
func (o *LockOrchestrator) withdraw(ctx context.Context, ref LockRef, id string) {
	o.local.mu.Lock()
	if lr := o.local.requests[ref][id]; lr != nil {
		lr.req.Deleting = true
	}
	o.local.mu.Unlock()
	_ = o.syncLocalUntilDone(ctx, ref)
}

// syncLocalUntilDone retries a Go API sync through compare-and-swap conflicts.
func (o *LockOrchestrator) syncLocalUntilDone(ctx context.Context, ref LockRef) error {
	for {
		err := o.syncLocal(ctx, ref)
		if err == nil || !retryable(err) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// syncLocal runs Sync over the Go API's requests of one key.
func (o *LockOrchestrator) syncLocal(ctx context.Context, ref LockRef) error {
	o.local.mu.Lock()
	reqs := make([]*Request, 0, len(o.local.requests[ref]))
	for _, lr := range o.local.requests[ref] {
		cp := *lr.req
		reqs = append(reqs, &cp)
	}
	o.local.mu.Unlock()

	_, err := o.Sync(ctx, SyncInput{
		Ref:      ref,
		Requests: reqs,
		RequestGone: func(_ context.Context, id, uid string) (bool, error) {
			o.local.mu.Lock()
			defer o.local.mu.Unlock()
			lr := o.local.requests[ref][id]
			return lr == nil || lr.req.UID != uid, nil
		},
		Persist: func(_ context.Context, outs []Outcome) ([]Outcome, error) {
			o.local.mu.Lock()
			defer o.local.mu.Unlock()
			stored := outs[:0:0]
			for _, out := range outs {
				if lr := o.local.requests[ref][out.Request.ID]; lr != nil {
					lr.req.State = out.State
					stored = append(stored, out)
					select {
					case lr.changed <- struct{}{}:
					default:
					}
				}
			}
			return stored, nil
		},
	})
	if err != nil {
		return err
	}
	// Withdrawn requests are gone once a decision has been made without them.
	o.local.mu.Lock()
	for id, lr := range o.local.requests[ref] {
		if lr.req.Deleting {
			delete(o.local.requests[ref], id)
		}
	}
	if len(o.local.requests[ref]) == 0 {
		delete(o.local.requests, ref)
	}
	o.local.mu.Unlock()
	return nil
}

func (o *LockOrchestrator) projectLock(ref LockRef, lr *localRequest, st RequestState) *ProjectLock {
	return &ProjectLock{
		Project:      Project{RepoFullName: ref.Key.Repository, Path: ref.Key.Path, ProjectName: ref.Key.ProjectName},
		Workspace:    ref.Key.Workspace,
		Key:          ref.Key.String(),
		Owner:        lr.req.Owner,
		User:         lr.req.User,
		Pull:         lr.req.Pull,
		Time:         st.AcquiredAt,
		ExpiresAt:    st.ExpiresAt,
		FencingToken: st.FencingToken,
		Metadata:     lr.metadata,
	}
}

// Run drives the Go API's timeouts and deadlock detection until ctx ends: it syncs
// each key when its earliest deadline passes, and scans for deadlocks every
// DeadlockCheckInterval. The controller does not need it (it uses RequeueAfter and
// its own detector runnable).
func (o *LockOrchestrator) Run(ctx context.Context) {
	<-o.Start(ctx)
}

// Start is Run in the background: its timers exist when Start returns, so a test
// that steps a fake clock right after cannot step past them. The returned channel
// closes when the loop has ended.
func (o *LockOrchestrator) Start(ctx context.Context) <-chan struct{} {
	ticker := o.clock.NewTicker(o.cfg.DeadlockCheckInterval)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer ticker.Stop()
		o.loop(ctx, ticker)
	}()
	return done
}

func (o *LockOrchestrator) loop(ctx context.Context, ticker clock.Ticker) {
	for {
		// Deadlines already passed are served before waiting: a timer of zero
		// duration fires at once on a real clock but only at the next step of a
		// fake one.
		for _, ref := range o.timeouts.Due(o.clock.Now()) {
			_ = o.syncLocalUntilDone(ctx, ref)
		}
		var timerC <-chan time.Time
		var timer interface{ Stop() bool }
		if next, ok := o.timeouts.Next(); ok {
			t := o.timerUntil(next)
			timerC, timer = t.C(), t
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-o.timeouts.Wake():
		case <-timerC:
		case <-ticker.C():
			for _, dl := range o.DetectDeadlocks() {
				_ = o.syncLocalUntilDone(ctx, dl.Victim.Lock)
			}
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// timerUntil returns a timer that fires at deadline. A timer takes a duration, so
// the clock is read again after the timer exists: if time moved in between (a fake
// clock stepped, or a real clock crossed the deadline), the timer is made again
// rather than firing late.
func (o *LockOrchestrator) timerUntil(deadline time.Time) clock.Timer {
	for {
		now := o.clock.Now()
		t := o.clock.NewTimer(deadline.Sub(now))
		if o.clock.Now().Equal(now) {
			return t
		}
		t.Stop()
	}
}
