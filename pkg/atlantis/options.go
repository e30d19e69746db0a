package atlantis

import (
	"context"
	"crypto/rand"
	"time"

	"k8s.io/utils/clock"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// Mode says what Locker.TryLock does when another pull holds the key.
type Mode string

const (
	// ModeExact is Atlantis's own behaviour, as its locking.Client over BoltDB: a
	// TryLock on a held key fails and leaves nothing behind, and the pull has to
	// plan again once the key is free.
	ModeExact Mode = "exact"
	// ModeQueue leaves a queued LockRequest behind when another pull holds the key.
	// TryLock still answers LockAcquired=false with the holder, so Atlantis tells the
	// pull that the project is locked; but the lock passes to the pull by itself when
	// it reaches the head of the queue, and the operator's lock_acquired event (for
	// example through a webhook) says so. UnlockByPull withdraws a closed pull's
	// waiting requests.
	ModeQueue Mode = "queue"
)

// DefaultCallTimeout bounds each call of the adapter: Atlantis's locking interfaces
// take no context, and a lock call must not hang a command forever when the API
// server is unreachable.
const DefaultCallTimeout = 30 * time.Second

// DefaultApplyLockProject is the project of the lock key that stands for Atlantis's
// global apply lock ("disable apply" in its UI). Its owner segment contains a dot,
// which no GitHub, Bitbucket or Azure DevOps owner can, so it does not collide with a
// real repository's locks; WithApplyLockProject picks another.
var DefaultApplyLockProject = lockingv1alpha1.ProjectRef{Repository: "runatlantis.io/global-apply-lock", Path: "."}

// applyLockUsername is the user (and so the owner) of the global apply lock's
// request: Atlantis does not say who took it.
const applyLockUsername = "atlantis-global-apply-lock"

// options are what Option sets, for both Locker and ApplyLocker.
type options struct {
	mode             Mode
	queueTimeout     *time.Duration
	priority         lockingv1alpha1.Priority
	callTimeout      time.Duration
	clock            clock.PassiveClock
	applyLockProject lockingv1alpha1.ProjectRef
	ttl              *time.Duration
	onRenewError     func(error)
}

func newOptions(opts []Option) options {
	o := options{
		mode:             ModeExact,
		callTimeout:      DefaultCallTimeout,
		clock:            clock.RealClock{},
		applyLockProject: DefaultApplyLockProject,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Option configures a Locker or an ApplyLocker.
type Option func(*options)

// WithMode sets how TryLock treats a held key: ModeExact (the default) or ModeQueue.
func WithMode(m Mode) Option { return func(o *options) { o.mode = m } }

// WithQueueTimeout sets, in ModeQueue, how long a pull's request may wait in the
// queue before it ends with reason QueueTimeout. Without it the operator's default
// queue timeout applies. ModeExact ignores it: it never waits.
func WithQueueTimeout(d time.Duration) Option {
	return func(o *options) { o.queueTimeout = &d }
}

// WithPriority sets the priority of the requests the Locker makes, which orders
// queues in ModeQueue. The default is Normal.
func WithPriority(p lockingv1alpha1.Priority) Option { return func(o *options) { o.priority = p } }

// WithTTL gives the Locker's project locks a ttl: a hold expires, with reason
// Expired, unless renewed within d. Run Locker.RenewHolds beside Atlantis, which
// renews them while Atlantis runs, so that only the locks of an Atlantis that has
// stopped for longer than d expire. Without it the operator's default ttl applies
// (by default none). The global apply lock never gets one from this option.
func WithTTL(d time.Duration) Option { return func(o *options) { o.ttl = &d } }

// WithRenewErrors sets a function that Locker.RenewHolds calls with every renewal
// that failed (it retries them), for Atlantis's log.
func WithRenewErrors(f func(error)) Option { return func(o *options) { o.onRenewError = f } }

// WithCallTimeout bounds each call (default DefaultCallTimeout).
func WithCallTimeout(d time.Duration) Option { return func(o *options) { o.callTimeout = d } }

// WithClock sets the clock that stamps the Time of new locks (default the real
// clock), as Atlantis stamps time.Now(). RenewHolds also waits on its timers when
// it has them (a clock.Clock), else on the real clock's.
func WithClock(c clock.PassiveClock) Option { return func(o *options) { o.clock = c } }

// WithApplyLockProject sets the project whose lock (in workspace "default") stands
// for the global apply lock; give the Locker and the ApplyLocker the same one, so
// that Locker.List leaves it out.
func WithApplyLockProject(p lockingv1alpha1.ProjectRef) Option {
	return func(o *options) { o.applyLockProject = p }
}

// applyLockKey is the lock key of the global apply lock.
func (o *options) applyLockKey() lockkey.Key {
	p := o.applyLockProject
	return lockkey.New(p.Repository, p.Path, "default", p.Name)
}

// context returns the context of one call.
func (o *options) context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), o.callTimeout)
}

// newAttempt returns a value unique to one TryLock call (see AttemptAnnotation).
func newAttempt() string { return rand.Text() }
