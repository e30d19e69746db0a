package orchestrator

import (
	"fmt"
	"sort"
	"time"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// KeyInput is everything a decision about one lock key depends on.
type KeyInput struct {
	// Record is the key's lock record as read from the Backend.
	Record Record
	// Requests are the key's requests, terminal and withdrawn ones included.
	Requests []*Request
	// ForceUnlock is set while the key's lock object is being deleted: the holder
	// is revoked once per lock object, identified by ForceUnlockID.
	ForceUnlock bool
	// ForceUnlockID identifies the force unlock (the lock object's UID).
	ForceUnlockID string
	// ForceUnlockToken pins the force unlock to the hold it was asked for: the
	// fencing token the lock object showed when it was deleted. A key that changed
	// hands since (the object's view lags a hand-off by up to
	// status_update_interval) revokes nobody; "" revokes whoever holds.
	ForceUnlockToken string
	// Victims are request IDs the deadlock detector chose to fail.
	Victims map[string]bool
	// MaxQueueLength refuses new waiters beyond it; 0 means unbounded.
	MaxQueueLength int
	// Now is the decision time.
	Now time.Time
	// RecordName names the lock record in messages (for example "Lease
	// atlantis/acme-infra-...").
	RecordName string
}

// Decision says what to do about one key. Apply it in this order: persist Revoked
// and Expired outcomes (Losers), write the record (the compare-and-swap), then
// persist every other outcome with the new fencing token.
type Decision struct {
	// Outcomes holds the new state of every request that is not terminal and not
	// withdrawn in the input, in queue order: holders first, then waiters.
	Outcomes []Outcome
	// Losers are the holders that lose the lock (Expired or Revoked); they must be
	// persisted before the record is written, so that a crash in between never
	// leaves a former holder looking like a waiter.
	Losers []Outcome
	// Write is the new lock record, or nil when the record stays as it is.
	Write *Record
	// Grants lists the outcomes (by index into Outcomes) that the Write grants; their
	// fencing token is the version the write returns.
	Grants []int
	// WrittenVersion is the version the Write stored (Sync sets it), or "" when
	// nothing was written or the record was deleted.
	WrittenVersion string
	// Idle is true when nobody holds or waits: the record and the lock object can go.
	Idle bool
	// KeepsRecord is true when an idle key's record is kept for IdleRecordGrace
	// (Sync sets it); NextDeadline is when it is to go.
	KeepsRecord bool
	// Holder describes the holder after the decision, or nil.
	Holder *Holder
	// HeldSince is when the holding owner was granted the key, as the lock record
	// keeps it (to the microsecond, where a request's status keeps seconds), or
	// zero when nobody holds.
	HeldSince time.Time
	// QueueLength counts the waiters after the decision.
	QueueLength int
	// NextDeadline is the earliest queue timeout or hold expiry to come, or zero.
	NextDeadline time.Time
	// HandOff is true when the lock passed from one owner to another (or to a first
	// owner) in this decision.
	HandOff bool
	// Released is true when the holding owner let go (withdrew, expired or was
	// revoked) in this decision.
	Released bool
	// PreviousOwner is the owner that held the key before the decision, or "".
	PreviousOwner string
	// LostHolds is true when Losers include holds that the record no longer backs
	// (see lostHold): before they are ended, the record must be confirmed with a
	// read past any cache (Backend.GetLatest).
	LostHolds bool
	// Key is the lock key as the Sync knew it (Sync sets it): the caller's, or,
	// for a lock the caller knew by name only, the one an earlier decision was
	// given; zero when no decision since the start knew it.
	Key lockkey.Key
}

// Outcome is the decided state of one request.
type Outcome struct {
	// Request is the input request.
	Request *Request
	// State is its new state.
	State RequestState
}

// Changed reports whether the outcome differs from what was persisted, or the
// request changed since its state was last persisted.
func (o Outcome) Changed() bool {
	return !statesEqual(o.Request.State, o.State) || o.Request.Generation != o.Request.ObservedGeneration
}

// Decide is the whole lock policy for one key, as a pure function: re-entrancy per
// owner, hold expiry, force unlock, deadlock victims, queue timeouts, the grant to the
// head of the queue, fail fast, queue length and positions.
func Decide(in KeyInput) Decision {
	var d Decision
	now := in.Now

	live := make([]*Request, 0, len(in.Requests))
	for _, r := range in.Requests {
		if r.State.Phase != PhaseTerminal && !r.Deleting {
			live = append(live, r)
		}
	}

	// A hold the record no longer backs (its Lease was deleted, replaced or
	// restored from an older copy) ends here, before anything else is decided: it
	// is never queued again, and it is ended before anyone else can be granted.
	held := live[:0:0]
	for _, r := range live {
		if lostHold(in.Record, r) {
			d.Losers = append(d.Losers, Outcome{r, terminal(r.State, lockingv1alpha1.ReasonRevoked, lostHoldMessage(in))})
			d.LostHolds = true
			continue
		}
		held = append(held, r)
	}
	live = held

	// Who holds the key: the record's owner, if the record names one of its live
	// requests or the owner still has a granted one.
	owner := in.Record.Owner
	var holding, waiting []*Request
	if !in.Record.Free() && ownerStillHolds(in.Record, live) {
		for _, r := range live {
			if r.Owner == owner {
				holding = append(holding, r)
			} else {
				waiting = append(waiting, r)
			}
		}
	} else {
		owner = ""
		waiting = live
	}
	hadHolder := !in.Record.Free()
	if hadHolder {
		d.PreviousOwner = in.Record.Owner
	}

	// Holds that end now: expired without renewal, or revoked by a force unlock.
	if in.ForceUnlock && owner != "" && !holdsToken(holding, in.ForceUnlockToken) {
		// The force unlock is for a hold that has ended: the key changed hands
		// after its lock object showed it. It is served by revoking nobody, and
		// writes nothing.
		in.ForceUnlock = false
	}
	revoke := in.ForceUnlock && owner != "" && in.Record.RevokedFor != in.ForceUnlockID
	var kept []*Request
	for _, r := range holding {
		st := r.State
		st.Position, st.BlockedBy = 0, nil
		if r.State.Phase == PhaseAcquired {
			st = renew(r, st, now)
			switch {
			case revoke:
				d.Losers = append(d.Losers, Outcome{r, terminal(st, lockingv1alpha1.ReasonRevoked,
					"the lock was force-unlocked by deleting its ProjectLock")})
				continue
			case !st.ExpiresAt.IsZero() && !now.Before(st.ExpiresAt):
				d.Losers = append(d.Losers, Outcome{r, terminal(st, lockingv1alpha1.ReasonExpired,
					fmt.Sprintf("the hold expired: no renewal within ttl %s", r.TTL))})
				continue
			}
		}
		kept = append(kept, r)
		d.Outcomes = append(d.Outcomes, Outcome{r, st})
	}
	if revoke {
		// A revoked owner's other requests queue again like anyone else's.
		for _, r := range kept {
			if r.State.Phase != PhaseAcquired {
				waiting = append(waiting, r)
			}
		}
		kept = nil
		d.Outcomes = d.Outcomes[:0]
	}
	if len(kept) == 0 {
		owner = ""
	}

	sortQueue(waiting, now)

	// Waiters that end without ever holding: deadlock victims and queue timeouts.
	var queue []*Request
	for _, r := range waiting {
		st := r.State
		switch {
		case in.Victims[r.ID]:
			d.Outcomes = append(d.Outcomes, Outcome{r, terminal(st, lockingv1alpha1.ReasonDeadlockVictim,
				"failed to break a deadlock between owners waiting for each other")})
		case r.State.Phase == PhaseQueued && r.QueueTimeout > 0 && !now.Before(r.State.EnqueuedAt.Add(r.QueueTimeout)):
			d.Outcomes = append(d.Outcomes, Outcome{r, terminal(st, lockingv1alpha1.ReasonQueueTimeout,
				fmt.Sprintf("waited longer than queueTimeout %s", r.QueueTimeout))})
		default:
			queue = append(queue, r)
		}
	}

	// A free key goes to the owner at the head of the queue, with all its requests.
	if owner == "" && len(queue) > 0 {
		owner = queue[0].Owner
		rest := queue[:0:0]
		for _, r := range queue {
			if r.Owner == owner {
				kept = append(kept, r)
				d.Outcomes = append(d.Outcomes, Outcome{r, r.State})
			} else {
				rest = append(rest, r)
			}
		}
		queue = rest
	}

	// Grant every held request that is not yet granted, in one record write.
	holderIdx := -1
	for i := range d.Outcomes {
		o := &d.Outcomes[i]
		if o.State.Phase == PhaseTerminal || o.Request.Owner != owner {
			continue
		}
		switch {
		case o.State.Phase == PhaseAcquired:
			// Already granted.
		case in.Record.Owner == owner && in.Record.HolderID == HolderIdentity(o.Request) && in.Record.Version != "":
			// Granted by the record, but the grant was never persisted on the
			// request (a crash in between): the record's version is its token.
			o.State = acquired(o.Request, o.State, now, in.Record.Version)
		default:
			o.State = acquired(o.Request, o.State, now, "")
			d.Grants = append(d.Grants, i)
		}
		if holderIdx < 0 || in.Record.HolderID == HolderIdentity(o.Request) {
			holderIdx = i
		}
	}

	d.Write = nextRecord(in, &d, owner, holderIdx, hadHolder)

	// Whoever still waits: fail fast, refuse beyond the queue length, or queue.
	var blockedBy *Holder
	if holderIdx >= 0 {
		h := holderOf(d.Outcomes[holderIdx])
		d.Holder = &h
		d.HeldSince = in.Record.AcquiredAt
		if d.Write != nil {
			d.HeldSince = d.Write.AcquiredAt
		}
		// Waiters keep only who holds, not the details of the hold, so that their
		// state changes when the holder does and not on every renewal.
		blockedBy = &Holder{Request: h.Request, Owner: h.Owner, Pull: h.Pull, User: h.User}
	}
	queued := 0
	for _, r := range queue {
		if r.State.Phase == PhaseQueued {
			queued++
		}
	}
	position := 0
	for _, r := range queue {
		st := r.State
		switch {
		case r.State.Phase == PhaseNew && r.QueueTimeout == 0:
			st = terminal(st, lockingv1alpha1.ReasonConflict,
				fmt.Sprintf("held by %s and queueTimeout is 0s", ownerName(blockedBy)))
			st.BlockedBy = blockedBy // who it conflicted with
			d.Outcomes = append(d.Outcomes, Outcome{r, st})
			continue
		case r.State.Phase == PhaseNew && in.MaxQueueLength > 0 && queued >= in.MaxQueueLength:
			d.Outcomes = append(d.Outcomes, Outcome{r, terminal(st, lockingv1alpha1.ReasonQueueFull,
				fmt.Sprintf("the queue already holds the maximum of %d waiters", in.MaxQueueLength))})
			continue
		case r.State.Phase == PhaseNew:
			queued++
		}
		position++
		st.Phase = PhaseQueued
		st.Reason = lockingv1alpha1.ReasonQueued
		st.Message = fmt.Sprintf("waiting for %s; position %d", ownerName(blockedBy), position)
		st.Position = position
		st.BlockedBy = blockedBy
		if st.EnqueuedAt.IsZero() {
			st.EnqueuedAt = now
		}
		st.AcquiredAt, st.ExpiresAt, st.ObservedRenewTime, st.FencingToken = time.Time{}, time.Time{}, time.Time{}, ""
		d.Outcomes = append(d.Outcomes, Outcome{r, st})
	}
	d.QueueLength = position
	d.Idle = owner == "" && position == 0
	d.NextDeadline = nextDeadline(d.Outcomes)
	return d
}

// lostHold reports whether r says it holds the key while the record does not name
// its owner: the record is free, or names another owner. Every grant is written to
// the record before the request's status says Acquired, and a holder's hold is
// ended on its status before the record names anyone else; so such a request holds
// nothing any more, and a status that still says Acquired would make two holders.
func lostHold(rec Record, r *Request) bool {
	return r.State.Phase == PhaseAcquired && (rec.Free() || rec.Owner != r.Owner)
}

// lostHoldMessage explains the end of a lost hold.
func lostHoldMessage(in KeyInput) string {
	name := in.RecordName
	if name == "" {
		name = "lock record"
	}
	if in.Record.Free() {
		return fmt.Sprintf("the hold was lost: its %s was deleted or no longer names a holder (deleted by hand, lost with its namespace or in an etcd restore), so the grant cannot be trusted and the key is served anew", name)
	}
	return fmt.Sprintf("the hold was lost: its %s names %s instead (replaced or restored from an older copy), so the grant cannot be trusted", name, in.Record.Owner)
}

// ownerStillHolds reports whether the record's owner still holds: the record names
// one of its live requests, or the owner has a live granted request.
func ownerStillHolds(rec Record, live []*Request) bool {
	for _, r := range live {
		if r.Owner != rec.Owner {
			continue
		}
		if rec.HolderID == HolderIdentity(r) || r.State.Phase == PhaseAcquired {
			return true
		}
	}
	return false
}

// holdsToken reports whether the holding requests hold the grant of fencing token
// token; any hold matches "".
func holdsToken(holding []*Request, token string) bool {
	if token == "" {
		return true
	}
	for _, r := range holding {
		if r.State.Phase == PhaseAcquired && r.State.FencingToken == token {
			return true
		}
	}
	return false
}

// nextRecord returns the record write the decision needs, or nil.
func nextRecord(in KeyInput, d *Decision, owner string, holderIdx int, hadHolder bool) *Record {
	rec := in.Record
	revokedFor := rec.RevokedFor
	if in.ForceUnlock {
		revokedFor = in.ForceUnlockID
	}
	if owner == "" {
		d.Released = hadHolder
		if !hadHolder && revokedFor == rec.RevokedFor {
			return nil
		}
		return &Record{Transitions: rec.Transitions, RevokedFor: revokedFor, Version: rec.Version}
	}
	h := d.Outcomes[holderIdx]
	next := Record{
		HolderID:    HolderIdentity(h.Request),
		Owner:       owner,
		AcquiredAt:  rec.AcquiredAt,
		RenewedAt:   rec.RenewedAt,
		TTL:         ceilSeconds(h.Request.TTL),
		Transitions: rec.Transitions,
		RevokedFor:  revokedFor,
		Version:     rec.Version,
	}
	if rec.Owner != owner || rec.Free() {
		d.HandOff = true
		d.Released = hadHolder
		next.AcquiredAt = in.Now
		next.RenewedAt = in.Now
		if hadHolder {
			next.Transitions++
		}
	}
	if !h.State.ObservedRenewTime.IsZero() && h.State.ObservedRenewTime.After(next.RenewedAt) {
		next.RenewedAt = h.State.ObservedRenewTime
	}
	if len(d.Grants) > 0 {
		next.RenewedAt = grantRenewTime(in.Now, rec.RenewedAt)
	}
	if recordsEqual(next, rec) {
		return nil
	}
	return &next
}

// grantRenewTime is the renew time of a record write that grants: now, or, if the
// record was last renewed at the same microsecond (the precision a Lease keeps),
// one microsecond later. A grant's fencing token is the version its write creates,
// so that write must change the record: the API server keeps the resourceVersion
// of an update that changes nothing, and the decision would skip it altogether.
func grantRenewTime(now, renewed time.Time) time.Time {
	if now.Truncate(time.Microsecond).Equal(renewed.Truncate(time.Microsecond)) {
		return renewed.Truncate(time.Microsecond).Add(time.Microsecond)
	}
	return now
}

// renew moves a hold's expiry when the request states a renewal not seen before,
// and sets the first expiry of a hold that has none.
func renew(r *Request, st RequestState, now time.Time) RequestState {
	if r.TTL <= 0 {
		st.ExpiresAt = time.Time{}
		return st
	}
	if !r.RenewTime.IsZero() && !r.RenewTime.Equal(st.ObservedRenewTime) {
		// Expiry runs from when the renewal was observed, not from the holder's
		// clock, so that clock skew cannot shorten or stretch a hold.
		st.ObservedRenewTime = r.RenewTime
		st.ExpiresAt = now.Add(r.TTL)
	}
	if st.ExpiresAt.IsZero() {
		st.ExpiresAt = st.AcquiredAt.Add(r.TTL)
	}
	return st
}

func acquired(r *Request, st RequestState, now time.Time, token string) RequestState {
	st.Phase = PhaseAcquired
	st.Reason = lockingv1alpha1.ReasonAcquired
	st.Message = lockingv1alpha1.MessageHeld
	st.Position, st.BlockedBy = 0, nil
	st.AcquiredAt = now
	st.FencingToken = token
	st.ObservedRenewTime = r.RenewTime
	st.ExpiresAt = time.Time{}
	if r.TTL > 0 {
		st.ExpiresAt = now.Add(r.TTL)
	}
	return st
}

func terminal(st RequestState, reason, message string) RequestState {
	st.Phase = PhaseTerminal
	st.Reason = reason
	st.Message = message
	st.Position, st.BlockedBy = 0, nil
	return st
}

func holderOf(o Outcome) Holder {
	return Holder{
		Request:      o.Request.ID,
		Owner:        o.Request.Owner,
		Pull:         o.Request.Pull,
		PullURL:      o.Request.PullURL,
		User:         o.Request.User,
		AcquiredAt:   o.State.AcquiredAt,
		ExpiresAt:    o.State.ExpiresAt,
		FencingToken: o.State.FencingToken,
	}
}

func ownerName(h *Holder) string {
	if h == nil {
		return "nobody"
	}
	return h.Owner
}

// sortQueue orders waiters as they are served: higher priority first, then earlier
// enqueue time (requests not yet enqueued count as enqueued now), then earlier
// creation, then name. Every term is persisted, so the order survives restarts.
func sortQueue(q []*Request, now time.Time) {
	enq := func(r *Request) time.Time {
		if r.State.EnqueuedAt.IsZero() {
			return now
		}
		return r.State.EnqueuedAt
	}
	sort.SliceStable(q, func(i, j int) bool {
		a, b := q[i], q[j]
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		if ea, eb := enq(a), enq(b); !ea.Equal(eb) {
			return ea.Before(eb)
		}
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.ID < b.ID
	})
}

func nextDeadline(outcomes []Outcome) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, o := range outcomes {
		switch o.State.Phase {
		case PhaseQueued:
			if o.Request.QueueTimeout > 0 {
				consider(o.State.EnqueuedAt.Add(o.Request.QueueTimeout))
			}
		case PhaseAcquired:
			consider(o.State.ExpiresAt)
		}
	}
	return next
}

// ceilSeconds rounds a record's TTL up to whole seconds, the precision a Lease keeps,
// so that a sub-second TTL does not make every decision rewrite the record.
func ceilSeconds(d time.Duration) time.Duration {
	return (d + time.Second - 1) / time.Second * time.Second
}

func statesEqual(a, b RequestState) bool {
	if (a.BlockedBy == nil) != (b.BlockedBy == nil) || (a.BlockedBy != nil && *a.BlockedBy != *b.BlockedBy) {
		return false
	}
	a.BlockedBy, b.BlockedBy = nil, nil
	return a.Phase == b.Phase && a.Reason == b.Reason && a.Message == b.Message && a.Position == b.Position &&
		a.EnqueuedAt.Equal(b.EnqueuedAt) && a.AcquiredAt.Equal(b.AcquiredAt) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.ObservedRenewTime.Equal(b.ObservedRenewTime) && a.FencingToken == b.FencingToken
}

func recordsEqual(a, b Record) bool {
	return a.HolderID == b.HolderID && a.Owner == b.Owner && a.AcquiredAt.Equal(b.AcquiredAt) &&
		a.RenewedAt.Equal(b.RenewedAt) && a.TTL == b.TTL && a.Transitions == b.Transitions &&
		a.RevokedFor == b.RevokedFor && a.Version == b.Version
}
