package orchestrator

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// fuzzBytes hands out a fuzz input piece by piece; once it runs out it yields zeros,
// so that every input, however short, builds a KeyInput.
type fuzzBytes []byte

func (b *fuzzBytes) next() byte {
	if len(*b) == 0 {
		return 0
	}
	v := (*b)[0]
	*b = (*b)[1:]
	return v
}

// pick returns a number in [0, n).
func (b *fuzzBytes) pick(n int) int { return int(b.next()) % n }

// offset returns a time offset from t0 between -4 s and +250 s in 1 s steps, with a
// zero time now and then: the decisions compare times, so a few distinct ones reach
// every branch (expired or not, timed out or not, equal enqueue times).
func (b *fuzzBytes) offset() time.Time {
	v := b.next()
	if v == 255 {
		return time.Time{}
	}
	return t0.Add(time.Duration(int(v)-4) * time.Second)
}

// duration returns a queue timeout or ttl: none, zero, a few seconds, or NoQueueTimeout.
func (b *fuzzBytes) duration() time.Duration {
	switch v := b.next(); {
	case v < 32:
		return 0
	case v < 48:
		return NoQueueTimeout
	default:
		return time.Duration(v%64) * time.Second
	}
}

// fuzzOwners are few, so that owners share keys and hold re-entrantly.
var fuzzOwners = []string{"acme/infra#1", "acme/infra#2", "alice", "bob"}

// fuzzTerminalReasons are the reasons of ended requests.
var fuzzTerminalReasons = []string{
	lockingv1alpha1.ReasonConflict, lockingv1alpha1.ReasonQueueTimeout, lockingv1alpha1.ReasonQueueFull,
	lockingv1alpha1.ReasonDeadlockVictim, lockingv1alpha1.ReasonExpired, lockingv1alpha1.ReasonRevoked,
	lockingv1alpha1.ReasonReleased,
}

// fuzzNewReasons are what an undecided request's status may say: nothing, Pending,
// or a reason this version does not know.
var fuzzNewReasons = []string{"", lockingv1alpha1.ReasonPending, "SomethingNew"}

// phaseAndReason returns a phase and reason as the controller reads them back from a
// status (see stateOf in internal/controller): Acquired, Queued, an ended request
// with a terminal reason, or an undecided one.
func (b *fuzzBytes) phaseAndReason() (Phase, string) {
	switch p := Phase(b.pick(4)); p {
	case PhaseAcquired:
		return p, lockingv1alpha1.ReasonAcquired
	case PhaseQueued:
		return p, lockingv1alpha1.ReasonQueued
	case PhaseTerminal:
		return p, fuzzTerminalReasons[b.pick(len(fuzzTerminalReasons))]
	default:
		return p, fuzzNewReasons[b.pick(len(fuzzNewReasons))]
	}
}

// fuzzKeyInput builds a KeyInput with up to 15 requests from data: any mix of phases,
// owners, priorities, times, deletions, a record that names one of them (or a gone
// request, or nobody), a force unlock, deadlock victims and a queue bound. Persisted
// states may be ones the operator never writes (a queued request with no enqueue
// time, a holder without a token): Decide must cope with whatever a status says.
func fuzzKeyInput(data []byte) KeyInput {
	b := fuzzBytes(data)
	in := KeyInput{Now: t0.Add(time.Duration(b.next()) * time.Second), MaxQueueLength: b.pick(5), Victims: map[string]bool{}}
	n := b.pick(16)
	for i := range n {
		id := "r" + strconv.Itoa(i)
		r := &Request{
			ID: id, UID: "u" + strconv.Itoa(i), Owner: fuzzOwners[b.pick(len(fuzzOwners))], Priority: b.pick(5) - 1,
			Created: b.offset(), QueueTimeout: b.duration(), TTL: b.duration(), RenewTime: b.offset(),
			Deleting: b.pick(6) == 0, Generation: int64(b.pick(3)), ObservedGeneration: int64(b.pick(3)),
		}
		r.User = r.Owner
		if r.TTL < 0 {
			r.TTL = 0
		}
		phase, reason := b.phaseAndReason()
		r.State = RequestState{
			Phase: phase, Reason: reason, Position: b.pick(4),
			EnqueuedAt: b.offset(), AcquiredAt: b.offset(), ExpiresAt: b.offset(), ObservedRenewTime: b.offset(),
		}
		if b.pick(2) == 0 {
			r.State.FencingToken = strconv.Itoa(b.pick(50))
		}
		if b.pick(4) == 0 {
			r.State.BlockedBy = &Holder{Request: "r0", Owner: fuzzOwners[b.pick(len(fuzzOwners))]}
		}
		if b.pick(8) == 0 {
			in.Victims[id] = true
		}
		in.Requests = append(in.Requests, r)
	}
	switch v := b.pick(4); {
	case v == 0 || n == 0:
		// free: no record, or one that was released
		if b.pick(2) == 0 {
			in.Record.Version = strconv.Itoa(b.pick(50))
		}
	case v == 1:
		// held by a request that is no longer listed
		in.Record = Record{HolderID: "gone/ugone", Owner: fuzzOwners[b.pick(len(fuzzOwners))], Version: "7"}
	default:
		h := in.Requests[b.pick(n)]
		in.Record = Record{HolderID: HolderIdentity(h), Owner: h.Owner, AcquiredAt: b.offset(),
			RenewedAt: b.offset(), TTL: h.TTL, Transitions: int32(b.pick(3)), Version: strconv.Itoa(b.pick(50))}
	}
	if b.pick(4) == 0 {
		in.ForceUnlock, in.ForceUnlockID = true, "pl-"+strconv.Itoa(b.pick(2))
	}
	if b.pick(2) == 0 {
		in.Record.RevokedFor = "pl-" + strconv.Itoa(b.pick(2))
	}
	return in
}

// FuzzDecide feeds Decide any mix of persisted states, owners, times, force unlocks
// and victims, including combinations the operator never writes (a holder without a
// token while the record is free, a queued request without an enqueue time), and checks that it never
// panics and that every decision keeps the lock's invariants (checkDecision).
func FuzzDecide(f *testing.F) {
	for _, seed := range [][]byte{
		{},
		{10, 3, 4},
		// one new request on a free key
		{10, 0, 1, 0, 2, 10, 0, 0, 10, 1, 0, 0, 0, 0},
		// a holder with a ttl that expired, and two waiters
		{200, 0, 3, 0, 1, 10, 60, 66, 10, 1, 0, 0, 2, 2, 0, 10, 10, 10, 10, 1, 1, 0, 0},
		{120, 2, 8, 1, 2, 20, 40, 90, 5, 3, 1, 1, 3, 1, 0, 4, 5, 6, 7, 0, 3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 3, 0, 0},
		[]byte("force unlock and deadlock victims in a long queue of many owners"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzKeyInput(data)
		d := Decide(in)
		if err := checkDecision(in, d); err != nil {
			t.Fatalf("%v\ninput: %s", err, describeInput(in))
		}
	})
}

// checkDecision checks the invariants of every decision:
//
//   - every live request (neither terminal nor deleting) has exactly one outcome, in
//     Outcomes or Losers, and no other request has one: a terminal state never
//     changes again and a withdrawn request is never decided about;
//   - at most one owner holds, every grant is of that owner's requests and names no
//     token yet, and the record written names a holding request of that owner;
//   - losers end Expired or Revoked, and only holders lose;
//   - waiters have positions 1..QueueLength in outcome order, are blocked by the
//     holder, and are served by priority;
//   - Idle and Holder agree with the outcomes, and new waiters beyond the queue bound
//     end QueueFull.
func checkDecision(in KeyInput, d Decision) error {
	live := map[string]*Request{}
	for _, r := range in.Requests {
		if r.State.Phase != PhaseTerminal && !r.Deleting {
			live[r.ID] = r
		}
	}
	seen := map[string]bool{}
	for _, o := range append(append([]Outcome(nil), d.Outcomes...), d.Losers...) {
		id := o.Request.ID
		if live[id] == nil {
			return fmt.Errorf("%s (phase %s, deleting %t) got an outcome %s/%s", id, o.Request.State.Phase, o.Request.Deleting, o.State.Phase, o.State.Reason)
		}
		if seen[id] {
			return fmt.Errorf("%s has two outcomes", id)
		}
		seen[id] = true
	}
	if len(seen) != len(live) {
		return fmt.Errorf("%d live requests but %d outcomes", len(live), len(seen))
	}
	if err := checkHoldsEnd(in, d); err != nil {
		return err
	}
	for _, o := range d.Losers {
		if o.State.Phase != PhaseTerminal || (o.State.Reason != lockingv1alpha1.ReasonExpired && o.State.Reason != lockingv1alpha1.ReasonRevoked) {
			return fmt.Errorf("loser %s ends %s/%s, not Expired or Revoked", o.Request.ID, o.State.Phase, o.State.Reason)
		}
		if o.Request.State.Phase != PhaseAcquired {
			return fmt.Errorf("loser %s was %s, not a holder", o.Request.ID, o.Request.State.Phase)
		}
	}
	if err := checkHolders(in, d); err != nil {
		return err
	}
	return checkQueue(in, d)
}

// checkHoldsEnd checks the decision against the states it started from, whatever
// the record says: a request that was Acquired is still Acquired or has ended (it
// never waits again, which would hide that it lost the lock), and nobody is
// granted while a live request of another owner still says Acquired, unless that
// request ends in the same decision (among the Losers, persisted before the grant).
func checkHoldsEnd(in KeyInput, d Decision) error {
	ended := map[string]bool{}
	for _, o := range d.Losers {
		ended[o.Request.ID] = true
	}
	granted := ""
	for _, o := range append(append([]Outcome(nil), d.Outcomes...), d.Losers...) {
		was, now := o.Request.State.Phase, o.State.Phase
		if was == PhaseAcquired && now != PhaseAcquired && now != PhaseTerminal {
			return fmt.Errorf("%s was Acquired and is now %s/%s: a holder must hold or end, never wait again", o.Request.ID, now, o.State.Reason)
		}
		if was != PhaseAcquired && now == PhaseAcquired {
			granted = o.Request.Owner
		}
	}
	if granted == "" {
		return nil
	}
	for _, r := range in.Requests {
		if r.State.Phase == PhaseAcquired && !r.Deleting && r.Owner != granted && !ended[r.ID] {
			return fmt.Errorf("%s granted while %s of %s still says Acquired and does not end before the grant", granted, r.ID, r.Owner)
		}
	}
	return nil
}

// checkHolders checks that one owner at most holds, and what the record says.
func checkHolders(in KeyInput, d Decision) error {
	owner := ""
	for i, o := range d.Outcomes {
		if o.State.Phase != PhaseAcquired {
			continue
		}
		if owner != "" && o.Request.Owner != owner {
			return fmt.Errorf("two owners hold: %s and %s", owner, o.Request.Owner)
		}
		owner = o.Request.Owner
		if o.State.Reason != lockingv1alpha1.ReasonAcquired {
			return fmt.Errorf("holder %s has reason %q", o.Request.ID, o.State.Reason)
		}
		if o.Request.State.Phase != PhaseAcquired && o.State.FencingToken == "" && !contains(d.Grants, i) {
			return fmt.Errorf("%s is newly granted without a token but not listed in Grants %v", o.Request.ID, d.Grants)
		}
	}
	for _, i := range d.Grants {
		if i < 0 || i >= len(d.Outcomes) {
			return fmt.Errorf("grant index %d outside the %d outcomes", i, len(d.Outcomes))
		}
		if o := d.Outcomes[i]; o.State.Phase != PhaseAcquired || o.State.FencingToken != "" {
			return fmt.Errorf("grant %d is %s with token %q", i, o.State.Phase, o.State.FencingToken)
		}
	}
	if len(d.Grants) > 0 && d.Write == nil {
		return fmt.Errorf("%d grants without a record write", len(d.Grants))
	}
	if (d.Holder != nil) != (owner != "") {
		return fmt.Errorf("Holder %+v, but the holding owner is %q", d.Holder, owner)
	}
	if d.Holder != nil && d.Holder.Owner != owner {
		return fmt.Errorf("Holder owner %s, but %s holds", d.Holder.Owner, owner)
	}
	if w := d.Write; w != nil {
		if w.Owner != owner {
			return fmt.Errorf("record written for owner %q, but %q holds", w.Owner, owner)
		}
		if (w.HolderID == "") != (owner == "") {
			return fmt.Errorf("record written with holder %q for owner %q", w.HolderID, owner)
		}
		if w.Version != in.Record.Version {
			return fmt.Errorf("record written over version %q, read %q: not a compare-and-swap", w.Version, in.Record.Version)
		}
	}
	if owner == "" && d.Write == nil && !in.Record.Free() {
		return fmt.Errorf("nobody holds but the record held by %s is not written", in.Record.HolderID)
	}
	return nil
}

// checkQueue checks the waiters' positions, order, blocker and the queue bound.
func checkQueue(in KeyInput, d Decision) error {
	position, lastPriority := 0, 0
	anyHeld := false
	for _, o := range d.Outcomes {
		switch o.State.Phase {
		case PhaseAcquired:
			anyHeld = true
		case PhaseQueued:
			position++
			if o.State.Position != position {
				return fmt.Errorf("%s at position %d, want %d", o.Request.ID, o.State.Position, position)
			}
			if position > 1 && o.Request.Priority > lastPriority {
				return fmt.Errorf("%s (priority %d) queued behind priority %d", o.Request.ID, o.Request.Priority, lastPriority)
			}
			lastPriority = o.Request.Priority
			if (o.State.BlockedBy == nil) != (d.Holder == nil) || (d.Holder != nil && o.State.BlockedBy.Owner != d.Holder.Owner) {
				return fmt.Errorf("%s is blocked by %+v, but the holder is %+v", o.Request.ID, o.State.BlockedBy, d.Holder)
			}
			if o.State.EnqueuedAt.IsZero() {
				return fmt.Errorf("%s is queued without an enqueue time", o.Request.ID)
			}
		case PhaseNew:
			return fmt.Errorf("%s left undecided", o.Request.ID)
		case PhaseTerminal:
			if o.State.Reason == lockingv1alpha1.ReasonQueueFull && (in.MaxQueueLength == 0 || o.Request.State.Phase != PhaseNew) {
				return fmt.Errorf("%s (was %s) refused as QueueFull with max queue length %d", o.Request.ID, o.Request.State.Phase, in.MaxQueueLength)
			}
		}
	}
	if position != d.QueueLength {
		return fmt.Errorf("QueueLength %d, but %d queued outcomes", d.QueueLength, position)
	}
	if d.Idle != (!anyHeld && position == 0) {
		return fmt.Errorf("Idle %t with a holder %t and %d waiters", d.Idle, anyHeld, position)
	}
	if position > 0 && !anyHeld {
		return fmt.Errorf("%d waiters but nobody holds", position)
	}
	return nil
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// describeInput prints a KeyInput for a failure message.
func describeInput(in KeyInput) string {
	s := fmt.Sprintf("now=%s record=%+v force=%t/%s victims=%v max=%d\n", in.Now.Format(time.TimeOnly), in.Record,
		in.ForceUnlock, in.ForceUnlockID, in.Victims, in.MaxQueueLength)
	for _, r := range in.Requests {
		s += fmt.Sprintf("  %s owner=%s prio=%d qt=%s ttl=%s deleting=%t state=%s/%s pos=%d token=%q enq=%s acq=%s exp=%s\n",
			r.ID, r.Owner, r.Priority, r.QueueTimeout, r.TTL, r.Deleting, r.State.Phase, r.State.Reason, r.State.Position,
			r.State.FencingToken, r.State.EnqueuedAt.Format(time.TimeOnly), r.State.AcquiredAt.Format(time.TimeOnly),
			r.State.ExpiresAt.Format(time.TimeOnly))
	}
	return s
}

// TestCheckDecisionCatches shows that checkDecision, the fuzz target's oracle, fails
// decisions that break each invariant, so a passing fuzz run means something.
func TestCheckDecisionCatches(t *testing.T) {
	holder := req("r1", "o1").acquired(t0, "10").obj()
	waiter := req("r2", "o2").queued(t0).obj()
	in := KeyInput{Record: heldBy(holder), Requests: []*Request{holder, waiter}, Now: t0.Add(time.Second)}
	good := Decide(in)
	if err := checkDecision(in, good); err != nil {
		t.Fatalf("a correct decision fails the check: %v", err)
	}
	corrupt := map[string]func(d *Decision){
		"two owners hold": func(d *Decision) {
			d.Outcomes[1].State.Phase = PhaseAcquired
			d.Outcomes[1].State.Reason = lockingv1alpha1.ReasonAcquired
		},
		"a live request lost":     func(d *Decision) { d.Outcomes = d.Outcomes[:1] },
		"a request decided twice": func(d *Decision) { d.Losers = append(d.Losers, d.Outcomes[0]) },
		"a position skipped":      func(d *Decision) { d.Outcomes[1].State.Position = 2 },
		"idle while held":         func(d *Decision) { d.Idle = true },
		"a holder queued again": func(d *Decision) {
			d.Outcomes[0].State.Phase = PhaseQueued
			d.Outcomes[0].State.Reason = lockingv1alpha1.ReasonQueued
		},
		"record written without compare-and-swap": func(d *Decision) {
			d.Write = &Record{HolderID: HolderIdentity(holder), Owner: "o1", Version: "9"}
		},
	}
	checkCatches(t, in, corrupt)
}

// TestCheckDecisionCatchesLostHolds shows that checkDecision fails a decision about
// a hold whose record is gone unless the hold ends before anyone else is granted:
// queued again (as Decide once did), or ended only after the grant.
func TestCheckDecisionCatchesLostHolds(t *testing.T) {
	holder := req("r1", "o1").acquired(t0, "10").obj()
	waiter := req("r2", "o2").queued(t0).obj()
	in := KeyInput{Requests: []*Request{holder, waiter}, Now: t0.Add(time.Second)}
	if err := checkDecision(in, Decide(in)); err != nil {
		t.Fatalf("a correct decision fails the check: %v", err)
	}
	corrupt := map[string]func(d *Decision){
		"the lost holder queued behind the new one": func(d *Decision) {
			st := d.Losers[0].State
			st.Phase, st.Reason, st.Position = PhaseQueued, lockingv1alpha1.ReasonQueued, 1
			st.EnqueuedAt = t0
			st.BlockedBy = d.Holder
			d.Outcomes = append(d.Outcomes, Outcome{holder, st})
			d.Losers = nil
		},
		"the lost holder ended only after the grant": func(d *Decision) {
			d.Outcomes = append(d.Outcomes, d.Losers[0])
			d.Losers = nil
		},
	}
	checkCatches(t, in, corrupt)
}

// checkCatches runs each corruption on a fresh decision about in and fails the test
// when checkDecision accepts the result.
func checkCatches(t *testing.T, in KeyInput, corrupt map[string]func(d *Decision)) {
	t.Helper()
	for name, mutate := range corrupt {
		t.Run(name, func(t *testing.T) {
			d := Decide(in)
			mutate(&d)
			if err := checkDecision(in, d); err == nil {
				t.Errorf("checkDecision accepted a decision where %s", name)
			}
		})
	}
}
