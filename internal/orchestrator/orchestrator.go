// Package orchestrator is the lock orchestrator: the whole lock policy (queues,
// re-entrancy, timeouts, expiry, force unlock, deadlock detection) over a Backend
// whose compare-and-swap makes every grant exclusive.
//
// It is plain Go: no controller-runtime types, an injected clock. The controller
// feeds it the LockRequests of a key (Sync). Its in-memory state is a cache of what
// it last decided, used
// for deadlock detection, status and metrics; the Backend and the requests are the
// truth, so a new instance rebuilds everything from them.
package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// Config is the orchestrator's policy.
type Config struct {
	// DefaultQueueTimeout applies to requests that set none; NoQueueTimeout waits
	// without limit.
	DefaultQueueTimeout time.Duration
	// DefaultTTL applies to requests that set none; 0 means holds do not expire.
	DefaultTTL time.Duration
	// MaxQueueLength refuses new waiters beyond it with QueueFull; 0 is unbounded.
	MaxQueueLength int
	// DeadlockCheckInterval is how often the deadlock detector runs.
	DeadlockCheckInterval time.Duration
	// IdleRecordGrace is how long the lock record of a key whose holder let go,
	// with nobody waiting, is kept before it is deleted; 0 deletes it with the
	// release. The holder's request is gone, so the key is free all along, but a
	// request that comes within the grace is granted with one compare-and-swap on
	// the kept record instead of a delete and a create: a busy key's short idle
	// moments cost no record writes.
	IdleRecordGrace time.Duration
	// WaiterUpdateDelay is how long after joining the queue a waiter's status
	// keeps the position and blocker it was queued with: a change to them within
	// that time is persisted when it is over, and not at all when the waiter is
	// granted (or ends) first. On a busy key every hand-off moves every waiter up,
	// and most waiters are granted within a second; the order of the queue does not
	// depend on positions (see sortQueue), so only what a person reads waits. 0
	// persists every change at once.
	WaiterUpdateDelay time.Duration
	// GrantStatusDelay is how long the grant of a request that learns of it from
	// the lock record (Request.LearnsGrantFromRecord) may go without being
	// persisted: the record write is the grant, and the persisted state, for
	// people, follows when the hold has lasted this long, or never when it ends
	// first. A grant not yet persisted is read back from the record (its version
	// is the fencing token), so any decision that writes the record persists it
	// first. 0 persists every grant at once.
	GrantStatusDelay time.Duration
}

// DefaultConfig returns the defaults: wait without limit, holds without expiry, a
// queue of at most 1000 waiters per key, a deadlock check every 10 seconds, an
// idle key's record kept for a second, a waiter's first second in the queue
// without position updates, and the first second of a grant that its client
// learns of from the record without a persisted state.
func DefaultConfig() Config {
	return Config{
		DefaultQueueTimeout:   NoQueueTimeout,
		MaxQueueLength:        1000,
		DeadlockCheckInterval: 10 * time.Second,
		IdleRecordGrace:       DefaultIdleRecordGrace,
		WaiterUpdateDelay:     DefaultWaiterUpdateDelay,
		GrantStatusDelay:      DefaultWaiterUpdateDelay,
	}
}

// DefaultWaiterUpdateDelay is WaiterUpdateDelay's default: a busy key hands its lock
// on several times a second, and a person reading a waiter sees its position at
// most a second old.
const DefaultWaiterUpdateDelay = time.Second

// DefaultIdleRecordGrace is IdleRecordGrace's default: longer than the moments a
// busy key spends idle between lock cycles, short enough that an idle key's Lease
// is gone by the time anyone looks.
const DefaultIdleRecordGrace = time.Second

// ErrStale means the requests given to Sync are older than the lock record: the
// record names a holder request that exists but was not given. Retry with fresher
// requests.
var ErrStale = errors.New("the lock record names a holder request that the given requests lack; they are stale")

// LockOrchestrator decides who holds each lock key. Decisions for one key are
// serialized; different keys proceed in parallel.
type LockOrchestrator struct {
	backend  Backend
	clock    clock.WithTicker
	cfg      Config
	timeouts *TimeoutManager
	stats    *stats
	started  time.Time

	mu      sync.Mutex
	locks   map[lockID]*lockState
	victims map[lockID]map[string]bool
	// kept holds the keys whose released holder's record is kept for
	// IdleRecordGrace (see keptRecord).
	kept map[lockID]keptRecord

	observersMu sync.RWMutex
	observers   []Observer
	// health is the component health source, if any; guarded by observersMu.
	health HealthSource
}

// lockState is the cached view of one key, and the mutex that serializes
// decisions about it.
type lockState struct {
	// mu serializes the decisions about the key; it is held through a whole Sync,
	// API calls included.
	mu sync.Mutex
	// viewMu guards holder, queue and viewKey, the cached view that status,
	// metrics and the deadlock detector read: they must not wait for a Sync in
	// flight, which on a long queue can take seconds.
	viewMu sync.Mutex
	holder *Holder
	// queue holds the waiters of the last decision that had a holder, in order;
	// waitEdges turns them into the wait-for graph's edges when it is scanned,
	// rather than every decision keeping edges that repeat the lock and both
	// owners' graph names for each waiter.
	queue   []queuedWaiter
	viewKey lockkey.Key
	// key is the lock key, as the last Sync that knew it was given it (guarded by
	// mu): a later Sync may know the lock by name only.
	key lockkey.Key
	// deferred are the grants reported before they were persisted (guarded by mu).
	deferred deferredGrants
	// waiting are the first Queued states reported before they were persisted
	// (guarded by mu).
	waiting waitingStates
}

// New returns a LockOrchestrator over backend. clk is the only source of time.
func New(backend Backend, clk clock.WithTicker, cfg Config) *LockOrchestrator {
	if cfg.DeadlockCheckInterval <= 0 {
		cfg.DeadlockCheckInterval = DefaultConfig().DeadlockCheckInterval
	}
	return &LockOrchestrator{
		backend:  backend,
		clock:    clk,
		cfg:      cfg,
		timeouts: NewTimeoutManager(),
		stats:    newStats(),
		started:  clk.Now(),
		locks:    map[lockID]*lockState{},
		victims:  map[lockID]map[string]bool{},
	}
}

// Config returns the policy the orchestrator runs with.
func (o *LockOrchestrator) Config() Config { return o.cfg }

// Clock returns the orchestrator's clock.
func (o *LockOrchestrator) Clock() clock.WithTicker { return o.clock }

// Timeouts returns the deadline structure of all locks.
func (o *LockOrchestrator) Timeouts() *TimeoutManager { return o.timeouts }

// SyncInput is one key's requests and how to persist what is decided about them.
type SyncInput struct {
	// Ref names the lock.
	Ref LockRef
	// Requests are all requests of the key, terminal and withdrawn ones included.
	Requests []*Request
	// ForceUnlock is set while the lock is being force-unlocked, identified by
	// ForceUnlockID (the ProjectLock's UID).
	ForceUnlock   bool
	ForceUnlockID string
	// ForceUnlockToken is the fencing token of the hold the force unlock is for
	// (KeyInput.ForceUnlockToken).
	ForceUnlockToken string
	// RequestGone answers whether the request with the given ID and UID no longer
	// exists. It is asked only when the lock record names a holder that Requests
	// lack, which happens when they come from a cache that is behind.
	RequestGone func(ctx context.Context, id, uid string) (bool, error)
	// Persist stores outcomes, in order, and returns those it stored (not those of
	// requests that turned out to be gone). Sync calls it twice: with the holders
	// that lose the lock (before the record is written), then with every other
	// changed outcome.
	Persist func(ctx context.Context, outcomes []Outcome) ([]Outcome, error)
}

// Sync decides about one key, writes its lock record by compare-and-swap, and
// persists the outcomes. On ErrConflict or ErrStale nothing was granted: call it
// again with fresh input.
func (o *LockOrchestrator) Sync(ctx context.Context, in SyncInput) (Decision, error) {
	st := o.lockState(in.Ref)
	st.mu.Lock()
	defer st.mu.Unlock()
	in.Ref = o.withKey(in.Ref, st)

	o.stats.sync()
	rec, err := o.backend.Get(ctx, in.Ref)
	if err != nil {
		return Decision{}, o.failed(in.Ref, "reading lock record", err)
	}
	kept, isKept := o.keptRecordOf(in.Ref, rec)
	if isKept {
		// The holder it names let go, and the record was kept as it was: the key
		// is free.
		rec = rec.released()
	}
	if err := checkHolderKnown(ctx, rec, in); err != nil {
		return Decision{}, o.failed(in.Ref, "checking the holder", err)
	}

	now := o.clock.Now()
	st.forgetDeferredExcept(in.Requests)
	var lifted liftedRequests
	decide := func(rec Record) Decision {
		var reqs []*Request
		reqs, lifted = liftUnpersisted(in.Requests, rec, st.deferred, st.waiting, now)
		return Decide(KeyInput{
			Record:           rec,
			Requests:         reqs,
			ForceUnlock:      in.ForceUnlock,
			ForceUnlockID:    in.ForceUnlockID,
			ForceUnlockToken: in.ForceUnlockToken,
			Victims:          o.victimsOf(in.Ref),
			MaxQueueLength:   o.cfg.MaxQueueLength,
			Now:              now,
			RecordName:       o.backend.Describe(in.Ref),
		})
	}
	d := decide(rec)
	if d.LostHolds {
		// A hold is ended only on the store's word, never on a cache's: a cache
		// behind the store may not have seen the write that granted it.
		latest, err := o.backend.GetLatest(ctx, in.Ref)
		if err != nil {
			return Decision{}, o.failed(in.Ref, "confirming the lock record", err)
		}
		if latest.Version != rec.Version {
			if err := checkHolderKnown(ctx, latest, in); err != nil {
				return Decision{}, o.failed(in.Ref, "checking the holder", err)
			}
			rec, isKept = latest, false
			d = decide(rec)
		}
	}
	keep := o.keepIdleRecord(in, now, rec, &d, kept, isKept)

	// Notices and the results counted per outcome follow only what was really
	// persisted: a decision that fails half-way is decided again, and must not be
	// counted twice. Grants are counted on the record write that makes them
	// (stats.recordDecision).
	if len(d.Losers) > 0 {
		stored, err := in.Persist(ctx, d.Losers)
		o.recordOutcomes(in.Ref, now, st.untold(stored))
		if err != nil {
			return Decision{}, o.failed(in.Ref, "persisting the end of the hold", err)
		}
	}
	early, err := o.persistLiftedGrant(ctx, st, in, &d, lifted, now)
	if err != nil {
		return Decision{}, err
	}
	if err := o.writeRecord(ctx, in.Ref, &d); err != nil {
		return Decision{}, err
	}
	o.setKept(in.Ref, keep)
	o.recordDecision(in.Ref, now, rec, d)
	var changed, deferred, waits []Outcome
	for _, decided := range d.Outcomes {
		out, wasLifted := lifted.original(decided)
		if !out.Changed() || out.Request == early {
			continue
		}
		if until, ok := o.waiterUpdateDeferred(out, now); ok {
			d.NextDeadline = earliestTime(d.NextDeadline, until)
			continue
		}
		if until, ok := o.queuedStatusDeferred(out, now); ok {
			d.NextDeadline = earliestTime(d.NextDeadline, until)
			waits = append(waits, out)
			continue
		}
		if until, ok := o.grantStatusDeferred(out, decided.Request, wasLifted, &d, rec, now); ok {
			d.NextDeadline = earliestTime(d.NextDeadline, until)
			deferred = append(deferred, out)
			continue
		}
		changed = append(changed, out)
	}
	// A deferred grant is told now: the record write made it; so is a deferred
	// wait, which this decision made.
	o.tellWaiting(st, in.Ref, now, waits)
	o.tellDeferred(st, in.Ref, now, deferred)
	if len(changed) > 0 {
		stored, err := in.Persist(ctx, changed)
		o.recordOutcomes(in.Ref, now, st.untold(stored))
		if err != nil {
			return Decision{}, o.failed(in.Ref, "persisting decisions", err)
		}
	}
	o.remember(in.Ref, st, d)
	d.Key = in.Ref.Key
	return d, nil
}

// waiterUpdateDeferred says whether out, a change to a waiter, waits until the
// returned time (WaiterUpdateDelay after the waiter joined the queue) to be
// persisted: it must change nothing but the waiter's position, its blocker and
// the message that names them, and the request's spec must have been observed.
func (o *LockOrchestrator) waiterUpdateDeferred(out Outcome, now time.Time) (time.Time, bool) {
	was, is := out.Request.State, out.State
	if o.cfg.WaiterUpdateDelay <= 0 || was.Phase != PhaseQueued || is.Phase != PhaseQueued ||
		out.Request.Generation != out.Request.ObservedGeneration || was.EnqueuedAt.IsZero() {
		return time.Time{}, false
	}
	until := was.EnqueuedAt.Add(o.cfg.WaiterUpdateDelay)
	if !now.Before(until) {
		return time.Time{}, false
	}
	is.Position, is.BlockedBy, is.Message = was.Position, was.BlockedBy, was.Message
	return until, statesEqual(was, is)
}

// withKey returns ref with its lock key: a reconcile that finds neither requests
// nor a ProjectLock (a released key whose Lease is kept) knows the lock by name
// only, and the notices of its decision still name the key. The caller holds
// st.mu.
func (o *LockOrchestrator) withKey(ref LockRef, st *lockState) LockRef {
	if ref.Key != (lockkey.Key{}) {
		st.key = ref.Key
		return ref
	}
	if st.key != (lockkey.Key{}) {
		ref.Key = st.key
		return ref
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if k, ok := o.kept[ref.id()]; ok {
		ref.Key = k.key
	}
	return ref
}

// keptRecord is the lock record of a key whose holder let go with nobody waiting,
// kept for IdleRecordGrace instead of deleted: its version, and when the release
// was decided.
type keptRecord struct {
	version string
	since   time.Time
	key     lockkey.Key
}

// keptRecordOf returns the kept record of ref if rec is still that record; a record
// written since (by another operator) ends the grace.
func (o *LockOrchestrator) keptRecordOf(ref LockRef, rec Record) (keptRecord, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k, ok := o.kept[ref.id()]
	if ok && k.version != rec.Version {
		delete(o.kept, ref.id())
		return keptRecord{}, false
	}
	return k, ok
}

// keepIdleRecord turns the decision d about a kept or releasing record into what
// IdleRecordGrace asks for, and returns the record to remember as kept once d's
// write is done (nil: none). A release with nobody waiting keeps the record
// (d.Write dropped); a kept record whose grace has passed is deleted; a grant over
// a kept record is the compare-and-swap d already writes.
func (o *LockOrchestrator) keepIdleRecord(in SyncInput, now time.Time, rec Record, d *Decision, kept keptRecord, isKept bool) *keptRecord {
	grace := o.cfg.IdleRecordGrace
	switch {
	case isKept && !d.Idle:
		return nil // granted (or queued for) again: the record is the key's again
	case isKept && d.Write == nil:
		if until := kept.since.Add(grace); now.Before(until) {
			d.KeepsRecord = true
			d.NextDeadline = earliestTime(d.NextDeadline, until)
			return &kept
		}
		d.Write = &rec // the released record, deleted: Idle with a write deletes
		return nil
	case isKept:
		return nil // a force unlock of the free key: the record goes, as an idle key's does
	case grace > 0 && d.Idle && d.Released && len(d.Losers) == 0 && !in.ForceUnlock &&
		d.Write != nil && d.Write.Version != "" && d.Write.RevokedFor == rec.RevokedFor:
		d.Write = nil
		d.KeepsRecord = true
		d.NextDeadline = earliestTime(d.NextDeadline, now.Add(grace))
		return &keptRecord{version: rec.Version, since: now, key: in.Ref.Key}
	}
	return nil
}

// setKept remembers ref's record as kept (k), or forgets it (nil).
func (o *LockOrchestrator) setKept(ref LockRef, k *keptRecord) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if k == nil {
		delete(o.kept, ref.id())
		return
	}
	if o.kept == nil {
		o.kept = map[lockID]keptRecord{}
	}
	o.kept[ref.id()] = *k
}

// earliestTime returns the earlier of two times, a zero one counting as none.
func earliestTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// recordOutcomes counts and reports persisted request transitions.
func (o *LockOrchestrator) recordOutcomes(ref LockRef, now time.Time, outs []Outcome) {
	o.stats.recordOutcomes(outs)
	o.notifyOutcomes(ref, now, outs)
}

// recordDecision counts and reports a lock record change that was written over
// the record prev.
func (o *LockOrchestrator) recordDecision(ref LockRef, now time.Time, prev Record, d Decision) {
	o.stats.recordDecision(now, d)
	o.notifyDecision(ref, now, prev, d)
}

// checkHolderKnown makes sure a holder named by the record is either among the
// requests or really gone, so that a lagging cache can never release a live hold.
func checkHolderKnown(ctx context.Context, rec Record, in SyncInput) error {
	if rec.Free() {
		return nil
	}
	for _, r := range in.Requests {
		if HolderIdentity(r) == rec.HolderID {
			return nil
		}
	}
	id, uid := splitHolderID(rec.HolderID)
	if in.RequestGone == nil {
		return nil
	}
	gone, err := in.RequestGone(ctx, id, uid)
	if err != nil {
		return fmt.Errorf("checking whether holder %s of %s still exists: %w", rec.HolderID, in.Ref, err)
	}
	if !gone {
		return ErrStale
	}
	return nil
}

func splitHolderID(holderID string) (id, uid string) {
	for i := len(holderID) - 1; i >= 0; i-- {
		if holderID[i] == '/' {
			return holderID[:i], holderID[i+1:]
		}
	}
	return holderID, ""
}

// writeRecord applies the decision's record change and stamps the fencing token
// on the grants it makes.
func (o *LockOrchestrator) writeRecord(ctx context.Context, ref LockRef, d *Decision) error {
	switch {
	case d.Idle && d.Write != nil && d.Write.Version != "":
		if err := o.backend.Delete(ctx, ref, d.Write.Version); err != nil {
			return o.failed(ref, "deleting lock record", err)
		}
	case d.Write != nil && (d.Write.Version != "" || !d.Write.Free()):
		version, err := o.backend.Write(ctx, ref, *d.Write)
		if err != nil {
			return o.failed(ref, "writing lock record", err)
		}
		d.WrittenVersion = version
		for _, i := range d.Grants {
			d.Outcomes[i].State.FencingToken = version
		}
		if d.Holder != nil && d.Holder.FencingToken == "" {
			d.Holder.FencingToken = version
		}
	}
	return nil
}

// failed counts and reports a failed step of a decision about ref and returns the
// error to give the caller. A compare-and-swap conflict or a stale cache is the
// normal price of optimistic concurrency: counted, never reported as an error.
// Anything else is a backend error, or a timeout error when it ran out of time;
// a context cancelled by the caller (shutdown) is neither.
func (o *LockOrchestrator) failed(ref LockRef, what string, err error) error {
	wrapped := fmt.Errorf("%s %s: %w", what, ref, err)
	switch {
	case errors.Is(err, ErrConflict), errors.Is(err, ErrStale):
		o.stats.conflict()
	case errors.Is(err, context.Canceled):
	case IsTimeout(err):
		o.stats.backendError(o.clock.Now(), wrapped, true)
		o.emit(Notice{Kind: NoticeTimeoutError, Time: o.clock.Now(), Lock: ref, Err: wrapped})
	default:
		o.stats.backendError(o.clock.Now(), wrapped, false)
		o.emit(Notice{Kind: NoticeBackendError, Time: o.clock.Now(), Lock: ref, Err: wrapped})
	}
	return wrapped
}

func (o *LockOrchestrator) lockState(ref LockRef) *lockState {
	o.mu.Lock()
	defer o.mu.Unlock()
	st, ok := o.locks[ref.id()]
	if !ok {
		st = &lockState{}
		o.locks[ref.id()] = st
	}
	return st
}

func (o *LockOrchestrator) victimsOf(ref LockRef) map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.victims[ref.id()]
}

// remember caches the decision for deadlock detection, status and metrics.
func (o *LockOrchestrator) remember(ref LockRef, st *lockState, d Decision) {
	var queue []queuedWaiter
	if d.Holder != nil {
		n := 0
		for _, out := range d.Outcomes {
			if out.State.Phase == PhaseQueued {
				n++
			}
		}
		if n > 0 {
			queue = make([]queuedWaiter, 0, n)
		}
		for _, out := range d.Outcomes {
			if out.State.Phase != PhaseQueued {
				continue
			}
			queue = append(queue, queuedWaiter{Owner: out.Request.Owner, Request: out.Request.ID,
				RequestUID: out.Request.UID, Priority: out.Request.Priority, EnqueuedAt: out.State.EnqueuedAt})
		}
	}
	st.viewMu.Lock()
	st.holder, st.queue, st.viewKey = d.Holder, queue, ref.Key
	st.viewMu.Unlock()
	o.timeouts.Set(ref, d.NextDeadline)

	o.mu.Lock()
	defer o.mu.Unlock()
	if v := o.victims[ref.id()]; v != nil {
		// A victim stays marked only while it still waits: one that ended, or was
		// withdrawn before its lock's next decision, must not doom a later request
		// of the same name.
		waiting := map[string]bool{}
		for _, out := range d.Outcomes {
			if out.State.Phase == PhaseQueued {
				waiting[out.Request.ID] = true
			}
		}
		for id := range v {
			if !waiting[id] {
				delete(v, id)
			}
		}
		if len(v) == 0 {
			delete(o.victims, ref.id())
		}
	}
	if d.Idle {
		delete(o.locks, ref.id())
	}
}

// graphOwner names an owner in the wait-for graph. Owners are per namespace: one
// Atlantis installation's pull #1 is not another's.
func graphOwner(ref LockRef, owner string) string {
	if ref.Namespace == "" {
		return owner
	}
	return ref.Namespace + "/" + owner
}

// Forget drops the cached state of a lock whose objects are gone.
func (o *LockOrchestrator) Forget(ref LockRef) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.locks, ref.id())
	delete(o.victims, ref.id())
	o.timeouts.Set(ref, time.Time{})
}

// DetectDeadlocks scans the wait-for graph of all cached locks, marks one victim per
// cycle, and returns the cycles. The victims fail with DeadlockVictim at their
// lock's next Sync; the caller makes that Sync happen. A cycle found again before
// its victim has failed is returned again (so the caller wakes its lock again) but
// counted and reported only the first time.
func (o *LockOrchestrator) DetectDeadlocks() []Deadlock {
	start := o.clock.Now()
	edges := o.waitEdges()
	found := FindDeadlocks(edges)
	// A cycle whose victim is already marked was found by an earlier scan and
	// waits for its lock's next decision to fail the victim: it is still a
	// current deadlock, but not a new one to count and report again.
	var fresh []Deadlock
	o.mu.Lock()
	for _, dl := range found {
		v := o.victims[dl.Victim.Lock.id()]
		if v == nil {
			v = map[string]bool{}
			o.victims[dl.Victim.Lock.id()] = v
		}
		if !v[dl.Victim.Request] {
			v[dl.Victim.Request] = true
			fresh = append(fresh, dl)
		}
	}
	o.mu.Unlock()
	o.stats.deadlockScan(start, o.clock.Since(start), len(edges), len(found), len(fresh))
	for _, dl := range fresh {
		o.notifyDeadlock(start, dl)
	}
	return found
}

// queuedWaiter is a waiting request as the view of its key keeps it: one edge of
// the wait-for graph, without what every waiter of the key shares.
type queuedWaiter struct {
	Owner      string
	Request    string
	RequestUID string
	Priority   int
	EnqueuedAt time.Time
}

// waitEdges returns the edges of the wait-for graph: one per waiter of a held key.
func (o *LockOrchestrator) waitEdges() []WaitEdge {
	type idState struct {
		id lockID
		st *lockState
	}
	o.mu.Lock()
	states := make([]idState, 0, len(o.locks))
	for id, st := range o.locks {
		states = append(states, idState{id, st})
	}
	o.mu.Unlock()
	var edges []WaitEdge
	for _, s := range states {
		s.st.viewMu.Lock()
		if h := s.st.holder; h != nil && len(s.st.queue) > 0 {
			ref := LockRef{Namespace: s.id.Namespace, Name: s.id.Name, Key: s.st.viewKey}
			holder := graphOwner(ref, h.Owner)
			for _, w := range s.st.queue {
				edges = append(edges, WaitEdge{Waiter: graphOwner(ref, w.Owner), Holder: holder, Lock: ref,
					Request: w.Request, RequestUID: w.RequestUID, Priority: w.Priority, EnqueuedAt: w.EnqueuedAt})
			}
		}
		s.st.viewMu.Unlock()
	}
	return edges
}
