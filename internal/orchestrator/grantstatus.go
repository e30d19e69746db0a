package orchestrator

import (
	"context"
	"slices"
	"time"
)

// A grant is made by the lock record write (the Lease compare-and-swap); the
// request's persisted state saying Acquired is one API write later, and for a
// client that learns of its grant from the record (Request.LearnsGrantFromRecord,
// pkg/lockclient's requests), it is for people only. Persisting it late, once the
// hold has lasted Config.GrantStatusDelay, takes that write off the lock cycle of
// every shorter hold, which is most of them on a busy key (docs/benchmarks.md,
// step 24). Likewise a client that waits for nothing but its grant
// (Request.WaitsForGrant, pkg/lockclient's blocking Lock) needs no Queued state:
// persisting it once the wait has lasted GrantStatusDelay takes that write off
// every shorter wait (step 25). This file holds the two halves of both: showing a
// grant or a wait not yet persisted on its request (from the record, or from the
// orchestrator's memory of what it told), and deciding when it is persisted.

// liftedRequests maps the copies liftUnpersisted made to what they were made from.
type liftedRequests map[*Request]lift

// lift is the request a copy was made from, and whether the copy shows a grant
// (rather than a wait).
type lift struct {
	from  *Request
	grant bool
}

// liftUnpersisted returns reqs with a grant or a wait not yet persisted shown on
// its request (a grant deferred by GrantStatusDelay, or one whose state write
// failed or was never made before a restart; a deferred wait), so that every rule
// about holds (expiry, force unlock by token, re-entrancy, a lost record) applies
// to such a grant as to any hold, and every rule about the queue to such a wait:
//   - the request the record names as its holder is shown granted by the record:
//     the record's version is the fencing token (a grant not yet persisted is
//     persisted before any decision writes the record again, persistLiftedGrant,
//     so the record read is the one its grant wrote) and its time the grant's;
//   - a request whose grant this orchestrator deferred (deferred) and that the
//     record no longer names is shown as it was granted: its record was lost
//     (deleted by hand, restored from an older copy), and Decide ends the hold;
//   - a request whose first wait this orchestrator deferred (waiting) is shown
//     waiting as it was enqueued, so that it keeps its place in the queue.
//
// The copies stand in for the requests; lifted maps them back.
func liftUnpersisted(reqs []*Request, rec Record, deferred deferredGrants, waiting waitingStates, now time.Time) ([]*Request, liftedRequests) {
	var out []*Request
	var lifted liftedRequests
	for i, r := range reqs {
		if r.Deleting || (r.State.Phase != PhaseNew && r.State.Phase != PhaseQueued) {
			continue
		}
		var st RequestState
		grant := true
		granted, isDeferred := deferred[r.UID]
		queued, isWaiting := waiting[r.UID]
		switch {
		case !rec.Free() && rec.Version != "" && HolderIdentity(r) == rec.HolderID && r.Owner == rec.Owner:
			at := rec.AcquiredAt
			if at.IsZero() {
				at = now
			}
			st = acquired(r, r.State, at, rec.Version)
		case isDeferred:
			st = granted
		case isWaiting && r.State.Phase == PhaseNew:
			st, grant = queued, false
		default:
			continue
		}
		if out == nil {
			out = slices.Clone(reqs)
			lifted = liftedRequests{}
		}
		c := *r
		c.State = st
		out[i] = &c
		lifted[&c] = lift{from: r, grant: grant}
	}
	if out == nil {
		return reqs, nil
	}
	return out, lifted
}

// original returns the request out was decided for, as its persisted state has it:
// out with the lifted copy replaced by the request it was made from; and whether
// the copy showed a grant not yet persisted.
func (l liftedRequests) original(out Outcome) (Outcome, bool) {
	from, ok := l[out.Request]
	if ok {
		out.Request = from.from
	}
	return out, ok && from.grant
}

// grantStatusDeferred says whether out, a grant not yet persisted, waits until the
// returned time (GrantStatusDelay after the grant) to be persisted. Only the
// grant of the request the record names as holder waits, and only while the
// record stays as that grant wrote it: a grant made by this decision's record
// write, or one made earlier (lifted) when this decision writes no record. So the
// record's version stays the grant's fencing token for as long as the grant is
// not persisted, even across a restart. A re-entrant grant to another request of
// the holder's owner is persisted at once: the record does not name it. decided
// is the request d decided out for (a copy liftUnpersisted made, or out's own).
func (o *LockOrchestrator) grantStatusDeferred(out Outcome, decided *Request, lifted bool, d *Decision, rec Record, now time.Time) (time.Time, bool) {
	r := out.Request
	if o.cfg.GrantStatusDelay <= 0 || !r.LearnsGrantFromRecord || out.State.Phase != PhaseAcquired ||
		(r.State.Phase != PhaseNew && r.State.Phase != PhaseQueued) {
		return time.Time{}, false
	}
	holder := rec.HolderID
	if d.Write != nil {
		holder = d.Write.HolderID
	}
	if holder != HolderIdentity(r) {
		return time.Time{}, false
	}
	if lifted {
		if d.Write != nil {
			return time.Time{}, false
		}
	} else if !grantedBy(d, decided) {
		return time.Time{}, false
	}
	until := out.State.AcquiredAt.Add(o.cfg.GrantStatusDelay)
	return until, now.Before(until)
}

// grantedBy reports whether d's record write grants r.
func grantedBy(d *Decision, r *Request) bool {
	for _, i := range d.Grants {
		if d.Outcomes[i].Request == r {
			return true
		}
	}
	return false
}

// deferredGrants are the grants of a key that were told (notices, metrics) before
// they were persisted, by request UID, as they were granted: the persist that
// follows tells them no more, and a record lost meanwhile ends them
// (liftUnpersisted).
type deferredGrants map[string]RequestState

// tellDeferred reports outs, the grants deferred by this decision, that were not
// told yet, and remembers them.
func (o *LockOrchestrator) tellDeferred(st *lockState, ref LockRef, now time.Time, outs []Outcome) {
	var fresh []Outcome
	for _, out := range outs {
		if _, ok := st.deferred[out.Request.UID]; ok {
			continue
		}
		if st.deferred == nil {
			st.deferred = deferredGrants{}
		}
		st.deferred[out.Request.UID] = out.State
		fresh = append(fresh, st.asTold(out))
	}
	o.recordOutcomes(ref, now, fresh)
}

// waitingStates are the first Queued states of a key's requests that were told
// (notices, metrics) before they were persisted, by request UID, as last decided:
// later decisions keep the requests' places in the queue from them
// (liftUnpersisted), and the persist that follows tells them no more.
type waitingStates map[string]RequestState

// queuedStatusDeferred says whether out, a request's first Queued state, waits
// until the returned time (GrantStatusDelay after it was enqueued) to be
// persisted: only a request whose client waits for its grant and learns of it
// from the record (Request.WaitsForGrant) needs no word of its wait, so a wait
// shorter than that, most of them on a busy key, costs no status write.
func (o *LockOrchestrator) queuedStatusDeferred(out Outcome, now time.Time) (time.Time, bool) {
	r := out.Request
	if o.cfg.GrantStatusDelay <= 0 || !r.WaitsForGrant || !r.LearnsGrantFromRecord ||
		r.State.Phase != PhaseNew || out.State.Phase != PhaseQueued {
		return time.Time{}, false
	}
	until := out.State.EnqueuedAt.Add(o.cfg.GrantStatusDelay)
	return until, now.Before(until)
}

// tellWaiting reports outs, the waits deferred by this decision, that were not
// told yet, and remembers all of them as decided now.
func (o *LockOrchestrator) tellWaiting(st *lockState, ref LockRef, now time.Time, outs []Outcome) {
	var fresh []Outcome
	for _, out := range outs {
		if _, ok := st.waiting[out.Request.UID]; !ok {
			fresh = append(fresh, out)
		}
		if st.waiting == nil {
			st.waiting = waitingStates{}
		}
		st.waiting[out.Request.UID] = out.State
	}
	o.recordOutcomes(ref, now, fresh)
}

// asTold returns out with its request's state as the notices told it: a request
// whose wait was told before it was persisted was told Queued, and is told from
// there on (not Requested again).
func (st *lockState) asTold(out Outcome) Outcome {
	if told, ok := st.waiting[out.Request.UID]; ok {
		delete(st.waiting, out.Request.UID)
		r := *out.Request
		r.State = told
		out.Request = &r
	}
	return out
}

// untold returns stored without the grants told when they were deferred, the
// waits told when they were deferred as told, and forgets every stored request's
// deferred grant and wait: its state now says what it is.
func (st *lockState) untold(stored []Outcome) []Outcome {
	if len(st.deferred) == 0 && len(st.waiting) == 0 {
		return stored
	}
	out := stored[:0:0]
	for _, s := range stored {
		_, told := st.deferred[s.Request.UID]
		delete(st.deferred, s.Request.UID)
		if told && s.State.Phase == PhaseAcquired {
			continue
		}
		out = append(out, st.asTold(s))
	}
	return out
}

// forgetDeferredExcept forgets the deferred grants and waits of requests that are
// no longer among reqs (released before their state was persisted).
func (st *lockState) forgetDeferredExcept(reqs []*Request) {
	live := func(uid string) bool {
		return slices.ContainsFunc(reqs, func(r *Request) bool { return r.UID == uid && !r.Deleting })
	}
	for uid := range st.deferred {
		if !live(uid) {
			delete(st.deferred, uid)
		}
	}
	for uid := range st.waiting {
		if !live(uid) {
			delete(st.waiting, uid)
		}
	}
}

// persistLiftedGrant persists the grant the record shows and the request's state
// does not (liftUnpersisted) before a decision writes the record, and returns its
// request: once the record moves past the version that granted it, the record no
// longer tells the grant's fencing token, so the request's state must, first. A
// client that sees the record name its request while the state is not yet
// persisted can so take the record's version for the token.
func (o *LockOrchestrator) persistLiftedGrant(ctx context.Context, st *lockState, in SyncInput, d *Decision, lifted liftedRequests, now time.Time) (*Request, error) {
	if d.Write == nil || len(lifted) == 0 {
		return nil, nil
	}
	for _, out := range d.Outcomes {
		out, ok := lifted.original(out)
		if !ok || out.State.Phase != PhaseAcquired || !out.Changed() {
			continue
		}
		stored, err := in.Persist(ctx, []Outcome{out})
		o.recordOutcomes(in.Ref, now, st.untold(stored))
		if err != nil {
			return nil, o.failed(in.Ref, "persisting a grant before the lock record moves on", err)
		}
		return out.Request, nil
	}
	return nil, nil
}
