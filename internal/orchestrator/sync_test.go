package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// syncHarness runs Sync over requests it keeps itself, as the controller does over
// LockRequests: Persist stores each outcome's state on its request, and the log
// records, in order, every persisted outcome and every record write.
type syncHarness struct {
	t        *testing.T
	o        *LockOrchestrator
	backend  Backend
	ref      LockRef
	requests []*Request
	log      []string
	notices  []Notice
}

func newSyncHarness(t *testing.T, backend Backend) *syncHarness {
	h := &syncHarness{t: t, backend: backend,
		ref: LockRef{Namespace: "ns", Name: "l", Key: lockkey.New("acme/infra", ".", "default", "")}}
	h.o = New(loggingBackend{backend, h}, clocktesting.NewFakeClock(t0), DefaultConfig())
	h.o.AddObserver(ObserverFunc(func(n Notice) { h.notices = append(h.notices, n) }))
	return h
}

func (h *syncHarness) add(r *Request) *Request {
	h.requests = append(h.requests, r)
	return r
}

func (h *syncHarness) sync() Decision {
	h.t.Helper()
	d, err := h.trySync()
	if err != nil {
		h.t.Fatalf("Sync: %v", err)
	}
	return d
}

// trySync is sync that returns Sync's error.
func (h *syncHarness) trySync() (Decision, error) {
	// Sync reads copies, as the controller reads objects: Persist writes back to
	// the harness's requests, never to what Sync was given.
	// By ID, as the controller finds its objects: an outcome may be decided for a
	// copy Sync made (liftUnpersisted).
	stored := map[string]*Request{}
	var copies []*Request
	for _, r := range h.requests {
		c := *r
		copies = append(copies, &c)
		stored[r.ID] = r
	}
	d, err := h.o.Sync(context.Background(), SyncInput{Ref: h.ref, Requests: copies,
		Persist: func(_ context.Context, outs []Outcome) ([]Outcome, error) {
			for _, out := range outs {
				stored[out.Request.ID].State = out.State
				h.log = append(h.log, out.Request.ID+" "+out.State.Phase.String()+" "+out.State.Reason)
			}
			return outs, nil
		}})
	return d, err
}

// loggingBackend logs the record writes of a syncHarness.
type loggingBackend struct {
	Backend
	h *syncHarness
}

func (b loggingBackend) Write(ctx context.Context, ref LockRef, rec Record) (string, error) {
	v, err := b.Backend.Write(ctx, ref, rec)
	if err == nil {
		b.h.log = append(b.h.log, "record "+rec.HolderID)
	}
	return v, err
}

// TestSyncEndsAHoldWhoseRecordIsGone is the lost Lease of issue 15 on the memory
// backend: a holder with a waiter behind it, and the record deleted under them
// (a Lease deleted by hand, a restart of the memory backend). The holder must end
// Revoked, persisted before the record names the waiter, whose token is larger.
func TestSyncEndsAHoldWhoseRecordIsGone(t *testing.T) {
	mem := NewMemoryBackend()
	h := newSyncHarness(t, mem)
	a := h.add(req("a", "pr1").obj())
	h.sync()
	b := h.add(req("b", "pr2").obj())
	h.sync()
	if a.State.Phase != PhaseAcquired || b.State.Phase != PhaseQueued {
		t.Fatalf("before: a %s, b %s; want a Acquired, b Queued", a.State.Phase, b.State.Phase)
	}
	rec, _ := mem.Get(context.Background(), h.ref)
	if err := mem.Delete(context.Background(), h.ref, rec.Version); err != nil {
		t.Fatal(err)
	}
	h.log, h.notices = nil, nil

	h.sync()
	want := []string{"a Terminal Revoked", "record b/u-b", "b Acquired Acquired"}
	if diff := cmp.Diff(want, h.log); diff != "" {
		t.Errorf("what was persisted and written, in order (-want +got):\n%s", diff)
	}
	if tokA, tokB := mustInt(t, a.State.FencingToken), mustInt(t, b.State.FencingToken); tokB <= tokA {
		t.Errorf("b's fencing token %d does not exceed a's %d", tokB, tokA)
	}
	var ended []string
	for _, n := range h.notices {
		if n.Kind == NoticeEnded {
			ended = append(ended, n.Request.ID+" "+n.State.Reason)
		}
	}
	if diff := cmp.Diff([]string{"a " + lockingv1alpha1.ReasonRevoked}, ended); diff != "" {
		t.Errorf("Ended notices (-want +got):\n%s", diff)
	}
}

// staleBackend answers Get with a record older than the store's, as an informer
// cache behind the API server does, and GetLatest with the store's.
type staleBackend struct {
	*MemoryBackend
	stale Record
	gets  int
}

func (b *staleBackend) Get(context.Context, LockRef) (Record, error) { return b.stale, nil }

func (b *staleBackend) GetLatest(ctx context.Context, ref LockRef) (Record, error) {
	b.gets++
	return b.MemoryBackend.Get(ctx, ref)
}

// TestSyncNeverEndsAHoldOnAStaleRecord: a cache that has not seen the grant shows a
// free record while the holder's status says Acquired. Sync must confirm with
// GetLatest and leave the hold alone.
func TestSyncNeverEndsAHoldOnAStaleRecord(t *testing.T) {
	mem := NewMemoryBackend()
	h := newSyncHarness(t, mem)
	a := h.add(req("a", "pr1").obj())
	h.sync()
	b := h.add(req("b", "pr2").obj())
	stale := &staleBackend{MemoryBackend: mem}
	h.o.backend = loggingBackend{stale, h}
	h.log = nil

	d := h.sync()
	if a.State.Phase != PhaseAcquired || b.State.Phase != PhaseQueued {
		t.Errorf("after a stale read: a %s %s, b %s; want a Acquired, b Queued", a.State.Phase, a.State.Reason, b.State.Phase)
	}
	if stale.gets != 1 || d.LostHolds {
		t.Errorf("GetLatest asked %d times, LostHolds %t; want one confirmation that finds the hold", stale.gets, d.LostHolds)
	}
	if diff := cmp.Diff([]string{"b Queued Queued"}, h.log); diff != "" {
		t.Errorf("what was persisted and written (-want +got):\n%s", diff)
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("fencing token %q: %v", s, err)
	}
	return n
}

// TestBackendErrorsAreReportedByKind: a failing record write fails Sync with the
// backend's error, is counted once, reported as a backend or timeout error by
// kind, and shows in the metrics.
func TestBackendErrorsAreReportedByKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want NoticeKind
	}{
		{"backend error", errors.New("etcd unavailable"), NoticeBackendError},
		{"API server timeout", fmt.Errorf("%w: the server was unable to return a response in the time allotted", ErrTimeout), NoticeTimeoutError},
		{"deadline", fmt.Errorf("writing: %w", context.DeadlineExceeded), NoticeTimeoutError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := NewMemoryBackend()
			mem.FailWrites = tc.err
			h := newSyncHarness(t, mem)
			h.add(req("a", "pr1").obj())
			if _, err := h.trySync(); !errors.Is(err, tc.err) {
				t.Fatalf("Sync over a failing backend: %v; want its error", err)
			}
			var kinds []NoticeKind
			for _, n := range h.notices {
				if n.Kind == NoticeBackendError || n.Kind == NoticeTimeoutError {
					kinds = append(kinds, n.Kind)
				}
			}
			if len(kinds) != 1 || kinds[0] != tc.want {
				t.Errorf("notices %v, want one %s", kinds, tc.want)
			}
			m := h.o.GetMetrics()
			if got := m.BackendErrors + m.TimeoutErrors; got != 1 || !strings.Contains(m.LastError, tc.err.Error()) {
				t.Errorf("%d errors counted, last %q; want 1, the backend's", got, m.LastError)
			}
		})
	}
}

func (b loggingBackend) Delete(ctx context.Context, ref LockRef, version string) error {
	err := b.Backend.Delete(ctx, ref, version)
	if err == nil {
		b.h.log = append(b.h.log, "delete record")
	}
	return err
}

// TestSyncKeepsAnIdleRecordForItsGrace: a release with nobody waiting keeps the
// record for IdleRecordGrace instead of deleting it; a request within the grace is
// granted with one write over it (a grant on a free key, not a hand-off, with a
// larger token), and a record kept past its grace is deleted.
func TestSyncKeepsAnIdleRecordForItsGrace(t *testing.T) {
	mem := NewMemoryBackend()
	h := newSyncHarness(t, mem)
	clk := clocktesting.NewFakeClock(t0)
	h.o = New(loggingBackend{mem, h}, clk, DefaultConfig())
	h.o.AddObserver(ObserverFunc(func(n Notice) { h.notices = append(h.notices, n) }))

	a := h.add(req("a", "pr1").obj())
	h.sync()
	h.requests = nil // a's request deleted: released
	h.log, h.notices = nil, nil
	d := h.sync()
	if !d.Idle || !d.KeepsRecord || !d.Released || !d.NextDeadline.Equal(t0.Add(DefaultIdleRecordGrace)) {
		t.Errorf("the release: idle %t, keeps record %t, released %t, next deadline %v; want all three, at the grace's end",
			d.Idle, d.KeepsRecord, d.Released, d.NextDeadline)
	}
	if len(h.log) != 0 {
		t.Errorf("the release wrote %v; want the record kept", h.log)
	}
	if rec, _ := mem.Get(context.Background(), h.ref); rec.HolderID != HolderIdentity(a) {
		t.Errorf("the kept record names %q, want the released %q", rec.HolderID, HolderIdentity(a))
	}

	clk.Step(DefaultIdleRecordGrace / 2)
	b := h.add(req("b", "pr2").obj())
	h.log, h.notices = nil, nil
	d = h.sync()
	if diff := cmp.Diff([]string{"record b/u-b", "b Acquired Acquired"}, h.log); diff != "" {
		t.Errorf("the grant within the grace (-want +got):\n%s", diff)
	}
	if d.PreviousOwner != "" || d.Released {
		t.Errorf("the grant over the kept record: previous owner %q, released %t; want a grant on a free key", d.PreviousOwner, d.Released)
	}
	if tokA, tokB := mustInt(t, a.State.FencingToken), mustInt(t, b.State.FencingToken); tokB <= tokA {
		t.Errorf("b's fencing token %d does not exceed a's %d", tokB, tokA)
	}

	h.requests = nil
	h.sync() // kept again
	clk.Step(DefaultIdleRecordGrace)
	h.log = nil
	d = h.sync()
	if diff := cmp.Diff([]string{"delete record"}, h.log); diff != "" || d.KeepsRecord {
		t.Errorf("after the grace: keeps record %t, wrote (-want +got):\n%s", d.KeepsRecord, diff)
	}
	if rec, _ := mem.Get(context.Background(), h.ref); rec.Version != "" {
		t.Errorf("the record after its grace: %+v, want none", rec)
	}
}

// TestSyncKnowsALockByNameOnly: once a holder's request is gone and the key has no
// ProjectLock, the controller knows the lock by namespace and name only. That
// Sync must find the state of the Syncs that knew the key: the release counts once,
// names the key, and leaves nothing held.
func TestSyncKnowsALockByNameOnly(t *testing.T) {
	h := newSyncHarness(t, NewMemoryBackend())
	h.add(req("a", "pr1").obj())
	h.sync()
	if got := h.o.Load().LocksHeld; got != 1 {
		t.Fatalf("locks held after the grant: %d, want 1", got)
	}
	h.requests, h.notices = nil, nil
	keyed := h.ref
	h.ref = LockRef{Namespace: keyed.Namespace, Name: keyed.Name}
	h.sync()
	h.sync()
	if got := h.o.Load().LocksHeld; got != 0 {
		t.Errorf("locks held after the release by name: %d, want 0", got)
	}
	var released []string
	for _, n := range h.notices {
		if n.Kind == NoticeReleased {
			released = append(released, n.Lock.Key.String())
		}
	}
	if diff := cmp.Diff([]string{keyed.Key.String()}, released); diff != "" {
		t.Errorf("release notices by key (-want +got):\n%s", diff)
	}
}

// TestSyncDefersAWaitersPositionInItsFirstDelay: a hand-off moves every waiter up;
// a waiter within WaiterUpdateDelay of joining the queue keeps its persisted
// position and blocker until the delay is over (the key is woken then), and one
// granted first never has them rewritten at all. A waiter past its delay, or one
// whose spec changed, is written at once.
func TestSyncDefersAWaitersPositionInItsFirstDelay(t *testing.T) {
	mem := NewMemoryBackend()
	h := newSyncHarness(t, mem)
	clk := clocktesting.NewFakeClock(t0)
	h.o = New(loggingBackend{mem, h}, clk, DefaultConfig())
	delay := DefaultConfig().WaiterUpdateDelay

	h.add(req("a", "pr1").obj())
	h.sync()
	b, c := h.add(req("b", "pr2").obj()), h.add(req("c", "pr3").obj())
	h.sync()
	if b.State.Position != 1 || c.State.Position != 2 {
		t.Fatalf("queued at positions %d and %d, want 1 and 2", b.State.Position, c.State.Position)
	}

	clk.Step(delay / 4)
	h.requests = h.requests[1:] // a released: b is granted, c moves up
	h.log = nil
	d := h.sync()
	if diff := cmp.Diff([]string{"record b/u-b", "b Acquired Acquired"}, h.log); diff != "" {
		t.Errorf("the hand-off within c's delay wrote (-want +got):\n%s", diff)
	}
	if c.State.Position != 2 || c.State.BlockedBy == nil || c.State.BlockedBy.Owner != "pr1" {
		t.Errorf("c after the hand-off: position %d, blocked by %+v; want its queued position 2 behind pr1 kept", c.State.Position, c.State.BlockedBy)
	}
	if want := t0.Add(delay); !d.NextDeadline.Equal(want) {
		t.Errorf("next deadline %v, want %v: the end of c's delay", d.NextDeadline, want)
	}

	clk.Step(delay)
	h.log = nil
	h.sync()
	if diff := cmp.Diff([]string{"c Queued Queued"}, h.log); diff != "" {
		t.Errorf("after c's delay (-want +got):\n%s", diff)
	}
	if c.State.Position != 1 || c.State.BlockedBy == nil || c.State.BlockedBy.Owner != "pr2" {
		t.Errorf("c after its delay: position %d, blocked by %+v; want 1 behind pr2", c.State.Position, c.State.BlockedBy)
	}

	// A spec change (a new generation) is observed at once, delay or not.
	e := h.add(req("e", "pr5").obj())
	h.sync()
	e.Generation = 2
	h.log = nil
	h.sync()
	if diff := cmp.Diff([]string{"e Queued Queued"}, h.log); diff != "" {
		t.Errorf("a waiter's spec change within its delay (-want +got):\n%s", diff)
	}
}

// TestAGrantIsCountedOnceByTwoOrchestrators: two orchestrators over one store, as
// two operators at once (split brain, a leader hand-over). A grants the key and
// writes the request's status; B, deciding from a copy of the request from before
// that status (a cache behind), finds the grant in the record and persists it
// again, as the controller does when the request is deleted meanwhile (a 404
// reports the outcome stored). The grant is one compare-and-swap of the record,
// and is counted once, by A, which made it.
func TestAGrantIsCountedOnceByTwoOrchestrators(t *testing.T) {
	mem := NewMemoryBackend()
	a, b := newSyncHarness(t, mem), newSyncHarness(t, mem)
	r := a.add(req("r", "pr1").obj())
	stale := *r
	b.add(&stale)
	a.sync()
	b.sync()
	if r.State.Phase != PhaseAcquired || stale.State.Phase != PhaseAcquired {
		t.Fatalf("A persisted %s, B %s; want both Acquired", r.State.Phase, stale.State.Phase)
	}
	if got := []int64{a.o.GetMetrics().Grants, b.o.GetMetrics().Grants}; !cmp.Equal(got, []int64{1, 0}) {
		t.Errorf("grants counted by A and B: %v, want [1 0]: one record write granted the key", got)
	}
}
