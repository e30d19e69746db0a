package orchestrator

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
)

// leaseNotice marks the request as learning of its grant from the record.
func (b *reqBuilder) leaseNotice() *reqBuilder { b.r.LearnsGrantFromRecord = true; return b }

// newDeferringHarness is a syncHarness over the memory backend whose clock the
// test moves.
func newDeferringHarness(t *testing.T) (*syncHarness, *MemoryBackend, *clocktesting.FakeClock) {
	mem := NewMemoryBackend()
	h := newSyncHarness(t, mem)
	clk := clocktesting.NewFakeClock(t0)
	h.o = New(loggingBackend{mem, h}, clk, DefaultConfig())
	h.o.AddObserver(ObserverFunc(func(n Notice) { h.notices = append(h.notices, n) }))
	return h, mem, clk
}

// kinds lists the kinds of the notices of h since the last call.
func (h *syncHarness) kinds() []NoticeKind {
	var out []NoticeKind
	for _, n := range h.notices {
		out = append(out, n.Kind)
	}
	h.notices = nil
	return out
}

// TestSyncDefersTheGrantOfARequestThatLearnsItFromTheRecord: the grant is the
// record write; the request's state follows GrantStatusDelay later, with the
// grant's own fencing token and acquired time, and the grant is told once.
func TestSyncDefersTheGrantOfARequestThatLearnsItFromTheRecord(t *testing.T) {
	h, mem, clk := newDeferringHarness(t)
	delay := DefaultConfig().GrantStatusDelay

	a := h.add(req("a", "pr1").leaseNotice().obj())
	d := h.sync()
	if diff := cmp.Diff([]string{"record a/u-a"}, h.log); diff != "" {
		t.Errorf("the grant wrote (-want +got):\n%s", diff)
	}
	if a.State.Phase != PhaseNew {
		t.Errorf("a's persisted state is %s right after the grant, want it not yet persisted", a.State.Phase)
	}
	if want := t0.Add(delay); !d.NextDeadline.Equal(want) {
		t.Errorf("next deadline %v, want the end of the delay %v", d.NextDeadline, want)
	}
	if d.Holder == nil || d.Holder.Request != "a" || d.Holder.FencingToken == "" {
		t.Fatalf("the decision's holder is %+v, want a with the grant's token", d.Holder)
	}
	token := d.Holder.FencingToken
	if rec, _ := mem.Get(t.Context(), h.ref); rec.Version != token {
		t.Fatalf("the record's version is %q, the holder's token %q", rec.Version, token)
	}
	if diff := cmp.Diff([]NoticeKind{NoticeRequested, NoticeAcquired}, h.kinds()); diff != "" {
		t.Errorf("notices of the deferred grant (-want +got):\n%s", diff)
	}

	clk.Step(delay / 2)
	h.log = nil
	d = h.sync()
	if len(h.log) != 0 || len(h.kinds()) != 0 {
		t.Errorf("within the delay a decision wrote %v and told again", h.log)
	}
	if d.Holder == nil || d.Holder.FencingToken != token {
		t.Errorf("within the delay the holder is %+v, want a with token %s", d.Holder, token)
	}

	clk.Step(delay / 2)
	h.log = nil
	h.sync()
	if diff := cmp.Diff([]string{"a Acquired Acquired"}, h.log); diff != "" {
		t.Errorf("at the end of the delay (-want +got):\n%s", diff)
	}
	if a.State.FencingToken != token || !a.State.AcquiredAt.Equal(t0) {
		t.Errorf("persisted grant: token %q acquired %v, want %q at %v (the grant's)", a.State.FencingToken, a.State.AcquiredAt, token, t0)
	}
	if got := h.kinds(); len(got) != 0 {
		t.Errorf("persisting the grant told it again: %v", got)
	}
}

// TestAHoldShorterThanTheDelayWritesNoState: released before GrantStatusDelay, a
// lock cycle writes the record once (the grant; the release keeps it for
// IdleRecordGrace) and no request state.
func TestAHoldShorterThanTheDelayWritesNoState(t *testing.T) {
	h, _, clk := newDeferringHarness(t)

	h.add(req("a", "pr1").leaseNotice().obj())
	h.sync()
	clk.Step(10 * time.Millisecond)
	h.requests[0].Deleting = true
	d := h.sync()
	if diff := cmp.Diff([]string{"record a/u-a"}, h.log); diff != "" {
		t.Errorf("a short lock cycle wrote (-want +got):\n%s", diff)
	}
	if !d.Released {
		t.Errorf("the release was not decided: %+v", d)
	}
	if diff := cmp.Diff([]NoticeKind{NoticeRequested, NoticeAcquired, NoticeReleased}, h.kinds()); diff != "" {
		t.Errorf("notices of the short hold (-want +got):\n%s", diff)
	}
	if len(h.o.lockState(h.ref).deferred) != 0 {
		t.Errorf("the told grant of a released request is still remembered")
	}
}

// TestADeferredGrantIsPersistedBeforeTheRecordMovesOn: a re-entrant grant to the
// holder's owner writes the record again; the deferred grant's state is persisted
// before that write, with the token of the write that granted it.
func TestADeferredGrantIsPersistedBeforeTheRecordMovesOn(t *testing.T) {
	h, _, clk := newDeferringHarness(t)
	delay := DefaultConfig().GrantStatusDelay

	a := h.add(req("a", "pr1").leaseNotice().obj())
	token := h.sync().Holder.FencingToken
	clk.Step(delay / 4)
	b := h.add(req("b", "pr1").leaseNotice().obj())
	h.log = nil
	h.sync()
	if diff := cmp.Diff([]string{"a Acquired Acquired", "record a/u-a", "b Acquired Acquired"}, h.log); diff != "" {
		t.Errorf("the re-entrant grant wrote (-want +got):\n%s", diff)
	}
	if a.State.FencingToken != token {
		t.Errorf("a's persisted token is %q, want %q: the write that granted it", a.State.FencingToken, token)
	}
	if b.State.Phase != PhaseAcquired || b.State.FencingToken == token {
		t.Errorf("b: %+v, want Acquired with a token of its own", b.State)
	}
}

// TestADeferredGrantSurvivesARestart: an orchestrator that starts over (a restart,
// another replica taking over) reads the deferred grant back from the record,
// keeps deferring it, and persists it with the grant's token and time.
func TestADeferredGrantSurvivesARestart(t *testing.T) {
	h, mem, clk := newDeferringHarness(t)
	delay := DefaultConfig().GrantStatusDelay

	a := h.add(req("a", "pr1").leaseNotice().obj())
	token := h.sync().Holder.FencingToken

	clk.Step(delay / 2)
	h.o = New(loggingBackend{mem, h}, clk, DefaultConfig())
	h.log = nil
	d := h.sync()
	if len(h.log) != 0 {
		t.Errorf("after a restart, within the delay, a decision wrote %v", h.log)
	}
	if d.Holder == nil || d.Holder.FencingToken != token {
		t.Errorf("after a restart the holder is %+v, want a with token %s", d.Holder, token)
	}
	clk.Step(delay / 2)
	h.sync()
	if diff := cmp.Diff([]string{"a Acquired Acquired"}, h.log); diff != "" {
		t.Errorf("after a restart, at the end of the delay (-want +got):\n%s", diff)
	}
	if a.State.FencingToken != token || !a.State.AcquiredAt.Equal(t0) {
		t.Errorf("persisted grant: token %q acquired %v, want %q at %v", a.State.FencingToken, a.State.AcquiredAt, token, t0)
	}
}

// TestADeferredGrantExpires: a hold whose ttl ends within GrantStatusDelay expires
// as any hold does, though its grant was never persisted.
func TestADeferredGrantExpires(t *testing.T) {
	h, _, clk := newDeferringHarness(t)
	ttl := DefaultConfig().GrantStatusDelay / 2

	a := h.add(req("a", "pr1").ttl(ttl).leaseNotice().obj())
	d := h.sync()
	if want := t0.Add(ttl); !d.NextDeadline.Equal(want) {
		t.Errorf("next deadline %v, want the expiry %v", d.NextDeadline, want)
	}
	clk.Step(ttl)
	h.log = nil
	h.sync()
	if a.State.Phase != PhaseTerminal || a.State.Reason != "Expired" {
		t.Errorf("a at its expiry: %s %s, want Terminal Expired (wrote %v)", a.State.Phase, a.State.Reason, h.log)
	}
}

// TestAGrantOfARequestWithoutLeaseNoticeIsPersistedAtOnce: kubectl's requests.
func TestAGrantOfARequestWithoutLeaseNoticeIsPersistedAtOnce(t *testing.T) {
	h, _, _ := newDeferringHarness(t)
	h.add(req("a", "pr1").obj())
	h.sync()
	if diff := cmp.Diff([]string{"record a/u-a", "a Acquired Acquired"}, h.log); diff != "" {
		t.Errorf("the grant wrote (-want +got):\n%s", diff)
	}
}

// TestADeferredGrantWhoseRecordIsLostIsRevoked: the record deleted under a hold
// whose grant is not yet persisted (a Lease deleted by hand) ends the hold as it
// ends any: Revoked, persisted before the waiter's grant, whose token is larger.
func TestADeferredGrantWhoseRecordIsLostIsRevoked(t *testing.T) {
	h, mem, _ := newDeferringHarness(t)
	a := h.add(req("a", "pr1").leaseNotice().obj())
	h.sync()
	b := h.add(req("b", "pr2").obj())
	h.sync()
	if a.State.Phase != PhaseNew || b.State.Phase != PhaseQueued {
		t.Fatalf("before: a %s, b %s; want a's grant not yet persisted, b Queued", a.State.Phase, b.State.Phase)
	}
	rec, _ := mem.Get(t.Context(), h.ref)
	if err := mem.Delete(t.Context(), h.ref, rec.Version); err != nil {
		t.Fatal(err)
	}
	h.log = nil
	h.sync()
	if diff := cmp.Diff([]string{"a Terminal Revoked", "record b/u-b", "b Acquired Acquired"}, h.log); diff != "" {
		t.Errorf("what was persisted and written, in order (-want +got):\n%s", diff)
	}
	if tokA, tokB := mustInt(t, rec.Version), mustInt(t, b.State.FencingToken); tokB <= tokA {
		t.Errorf("b's fencing token %d does not exceed a's %d", tokB, tokA)
	}
}

// waitsForGrant marks the request as a blocking lock's: it learns of its grant
// from the record and needs no word while it waits.
func (b *reqBuilder) waitsForGrant() *reqBuilder {
	b.r.LearnsGrantFromRecord, b.r.WaitsForGrant = true, true
	return b
}

// TestSyncDefersTheFirstWaitOfARequestThatWaitsForItsGrant: a blocking lock's wait
// is persisted only once it has lasted GrantStatusDelay, with the time it was
// enqueued; it is told once, when it is decided; and the waiters whose waits are
// not yet persisted keep their places in the queue.
func TestSyncDefersTheFirstWaitOfARequestThatWaitsForItsGrant(t *testing.T) {
	h, _, clk := newDeferringHarness(t)
	delay := DefaultConfig().GrantStatusDelay

	holder := h.add(req("holder", "pr1").obj())
	h.sync()
	h.kinds()
	clk.Step(10 * time.Millisecond)
	enqueued := clk.Now()
	first := h.add(req("first", "pr2").waitsForGrant().obj())
	h.log = nil
	d := h.sync()
	if len(h.log) != 0 {
		t.Errorf("the first wait of a blocking lock wrote %v at once", h.log)
	}
	if want := enqueued.Add(delay); !d.NextDeadline.Equal(want) {
		t.Errorf("next deadline %v, want the end of the first wait's delay %v", d.NextDeadline, want)
	}
	if diff := cmp.Diff([]NoticeKind{NoticeRequested, NoticeQueued}, h.kinds()); diff != "" {
		t.Errorf("notices of the deferred wait (-want +got):\n%s", diff)
	}

	// A second waiter, of a try-lock, is told Queued at once; the first keeps
	// its place ahead of it, though its wait is not persisted.
	clk.Step(10 * time.Millisecond)
	second := h.add(req("second", "pr3").leaseNotice().obj())
	h.log = nil
	d = h.sync()
	if diff := cmp.Diff([]string{"second Queued Queued"}, h.log); diff != "" {
		t.Errorf("a try-lock's wait (-want +got):\n%s", diff)
	}
	if second.State.Position != 2 {
		t.Errorf("the try-lock waits at position %d, want 2, behind the blocking lock enqueued first", second.State.Position)
	}
	if diff := cmp.Diff([]NoticeKind{NoticeRequested, NoticeQueued}, h.kinds()); diff != "" {
		t.Errorf("notices of the second wait (-want +got):\n%s", diff)
	}

	// At the end of the delay the first wait is persisted as it was enqueued, and
	// not told again.
	clk.Step(delay)
	h.log = nil
	h.sync()
	if diff := cmp.Diff([]string{"first Queued Queued"}, h.log); diff != "" {
		t.Errorf("at the end of the delay (-want +got):\n%s", diff)
	}
	if !first.State.EnqueuedAt.Equal(enqueued) || first.State.Position != 1 {
		t.Errorf("persisted wait: enqueued %v at position %d, want %v at 1", first.State.EnqueuedAt, first.State.Position, enqueued)
	}
	if got := h.kinds(); len(got) != 0 {
		t.Errorf("persisting the wait told it again: %v", got)
	}
	if len(h.o.lockState(h.ref).waiting) != 0 {
		t.Errorf("a persisted wait is still remembered")
	}

	// The hand-off goes to the first waiter.
	holder.Deleting = true
	d = h.sync()
	if d.Holder == nil || d.Holder.Request != "first" {
		t.Errorf("after the holder let go the holder is %+v, want first", d.Holder)
	}
}

// TestAWaitShorterThanTheDelayWritesNoState: a blocking lock granted before
// GrantStatusDelay has passed since it was enqueued, in order ahead of a later
// one, never has its wait persisted, and is told Requested, Queued and Acquired
// once each.
func TestAWaitShorterThanTheDelayWritesNoState(t *testing.T) {
	h, _, clk := newDeferringHarness(t)

	holder := h.add(req("holder", "pr1").obj())
	h.sync()
	clk.Step(10 * time.Millisecond)
	first := h.add(req("first", "pr2").waitsForGrant().obj())
	h.sync()
	clk.Step(10 * time.Millisecond)
	later := h.add(req("later", "pr3").waitsForGrant().obj())
	h.sync()
	h.kinds()
	clk.Step(10 * time.Millisecond)
	holder.Deleting = true
	h.log = nil
	d := h.sync()
	if diff := cmp.Diff([]string{"record first/u-first"}, h.log); diff != "" {
		t.Errorf("the hand-off wrote (-want +got):\n%s", diff)
	}
	if d.Holder == nil || d.Holder.Request != "first" {
		t.Errorf("the holder is %+v, want first, enqueued before later", d.Holder)
	}
	if first.State.Phase != PhaseNew || later.State.Phase != PhaseNew {
		t.Errorf("persisted states %s and %s, want neither persisted", first.State.Phase, later.State.Phase)
	}
	if diff := cmp.Diff([]NoticeKind{NoticeReleased, NoticeHandOff, NoticeAcquired}, h.kinds()); diff != "" {
		t.Errorf("notices of the hand-off (-want +got):\n%s", diff)
	}
	st := h.o.lockState(h.ref)
	if _, ok := st.waiting[first.UID]; ok {
		t.Errorf("the granted request's wait is still remembered")
	}
	if _, ok := st.waiting[later.UID]; !ok {
		t.Errorf("the later request's wait is forgotten")
	}
}
