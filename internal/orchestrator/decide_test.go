package orchestrator

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// req builds a test Request: req("r1", "o1") is a new Normal request of owner o1.
type reqBuilder struct{ r *Request }

func req(id, owner string) *reqBuilder {
	return &reqBuilder{r: &Request{ID: id, UID: "u-" + id, Owner: owner, User: owner, Priority: 1,
		Created: t0, QueueTimeout: NoQueueTimeout}}
}

func (b *reqBuilder) prio(p lockingv1alpha1.Priority) *reqBuilder { b.r.Priority = p.Rank(); return b }
func (b *reqBuilder) qt(d time.Duration) *reqBuilder              { b.r.QueueTimeout = d; return b }
func (b *reqBuilder) ttl(d time.Duration) *reqBuilder             { b.r.TTL = d; return b }
func (b *reqBuilder) renewed(t time.Time) *reqBuilder             { b.r.RenewTime = t; return b }
func (b *reqBuilder) deleting() *reqBuilder                       { b.r.Deleting = true; return b }
func (b *reqBuilder) queued(at time.Time) *reqBuilder {
	b.r.State = RequestState{Phase: PhaseQueued, Reason: lockingv1alpha1.ReasonQueued, EnqueuedAt: at}
	return b
}
func (b *reqBuilder) acquired(at time.Time, token string) *reqBuilder {
	b.r.State = RequestState{Phase: PhaseAcquired, Reason: lockingv1alpha1.ReasonAcquired, AcquiredAt: at, FencingToken: token}
	if b.r.TTL > 0 {
		b.r.State.ExpiresAt = at.Add(b.r.TTL)
	}
	return b
}
func (b *reqBuilder) terminal(reason string) *reqBuilder {
	b.r.State = RequestState{Phase: PhaseTerminal, Reason: reason}
	return b
}
func (b *reqBuilder) obj() *Request { return b.r }

func heldBy(r *Request) Record {
	return Record{HolderID: HolderIdentity(r), Owner: r.Owner, AcquiredAt: r.State.AcquiredAt,
		RenewedAt: r.State.AcquiredAt, TTL: r.TTL, Version: r.State.FencingToken}
}

// summary is what a decision test compares: each request's phase, reason and position.
type summary struct {
	ID       string
	Phase    string
	Reason   string
	Position int
}

func summarize(outs []Outcome) []summary {
	var s []summary
	for _, o := range outs {
		s = append(s, summary{o.Request.ID, o.State.Phase.String(), o.State.Reason, o.State.Position})
	}
	return s
}

func TestDecide(t *testing.T) {
	r1held := req("r1", "o1").acquired(t0, "10").obj()
	r1ttl := req("r1", "o1").ttl(time.Hour).acquired(t0, "10").obj()

	tests := []struct {
		name         string
		in           KeyInput
		want         []summary
		wantLosers   []summary
		wantHolder   string // HolderID of the record written, "-" when no write
		wantGrants   int
		wantIdle     bool
		wantHandOff  bool
		wantDeadline time.Time
	}{{
		name:        "free key is granted to the first request",
		in:          KeyInput{Requests: []*Request{req("r1", "o1").obj()}},
		want:        []summary{{"r1", "Acquired", "Acquired", 0}},
		wantHolder:  "r1/u-r1",
		wantGrants:  1,
		wantHandOff: true,
	}, {
		name: "same owner is re-entrant",
		in: KeyInput{Record: heldBy(r1held),
			Requests: []*Request{r1held, req("r2", "o1").obj()}},
		want:       []summary{{"r1", "Acquired", "Acquired", 0}, {"r2", "Acquired", "Acquired", 0}},
		wantHolder: "r1/u-r1",
		wantGrants: 1,
	}, {
		name: "another owner queues behind the holder",
		in: KeyInput{Record: heldBy(r1held),
			Requests: []*Request{r1held, req("r2", "o2").obj()}},
		want:       []summary{{"r1", "Acquired", "Acquired", 0}, {"r2", "Queued", "Queued", 1}},
		wantHolder: "-",
	}, {
		name: "queue order: priority, then enqueue time, then creation, then name",
		in: KeyInput{Record: heldBy(r1held), Now: t0.Add(time.Hour),
			Requests: []*Request{
				r1held,
				req("low", "o2").prio(lockingv1alpha1.PriorityLow).queued(t0).obj(),
				req("late", "o3").queued(t0.Add(2 * time.Second)).obj(),
				req("b-early", "o4").queued(t0.Add(time.Second)).obj(),
				req("a-early", "o5").queued(t0.Add(time.Second)).obj(),
				req("crit", "o6").prio(lockingv1alpha1.PriorityCritical).obj(),
				req("new", "o7").obj(),
			}},
		want: []summary{
			{"r1", "Acquired", "Acquired", 0},
			{"crit", "Queued", "Queued", 1},
			{"a-early", "Queued", "Queued", 2},
			{"b-early", "Queued", "Queued", 3},
			{"late", "Queued", "Queued", 4},
			{"new", "Queued", "Queued", 5},
			{"low", "Queued", "Queued", 6},
		},
		wantHolder: "-",
	}, {
		name: "fail fast conflicts and changes nothing else",
		in: KeyInput{Record: heldBy(r1held),
			Requests: []*Request{r1held, req("r2", "o2").queued(t0).obj(), req("r3", "o3").qt(0).obj()}},
		want: []summary{{"r1", "Acquired", "Acquired", 0}, {"r2", "Queued", "Queued", 1},
			{"r3", "Terminal", "Conflict", 0}},
		wantHolder: "-",
	}, {
		name:        "fail fast on a free key acquires",
		in:          KeyInput{Requests: []*Request{req("r1", "o1").qt(0).obj()}},
		want:        []summary{{"r1", "Acquired", "Acquired", 0}},
		wantHolder:  "r1/u-r1",
		wantGrants:  1,
		wantHandOff: true,
	}, {
		name: "deleting the holder hands off to the head waiter",
		in: KeyInput{Record: heldBy(r1held),
			Requests: []*Request{req("r1", "o1").deleting().acquired(t0, "10").obj(),
				req("r2", "o2").queued(t0).obj(), req("r3", "o3").queued(t0.Add(time.Second)).obj()}},
		want:        []summary{{"r2", "Acquired", "Acquired", 0}, {"r3", "Queued", "Queued", 1}},
		wantHolder:  "r2/u-r2",
		wantGrants:  1,
		wantHandOff: true,
	}, {
		name: "the holder's last request gone leaves the key idle",
		in: KeyInput{Record: heldBy(r1held),
			Requests: []*Request{req("r1", "o1").deleting().acquired(t0, "10").obj()}},
		wantHolder: "",
		wantIdle:   true,
	}, {
		name: "the lock stays with the owner until its last request is gone",
		in: KeyInput{Record: heldBy(r1held),
			Requests: []*Request{req("r1", "o1").deleting().acquired(t0, "10").obj(),
				req("r1b", "o1").acquired(t0, "11").obj(), req("r2", "o2").queued(t0).obj()}},
		want:       []summary{{"r1b", "Acquired", "Acquired", 0}, {"r2", "Queued", "Queued", 1}},
		wantHolder: "r1b/u-r1b",
	}, {
		name: "queue timeout ends a waiter at its deadline",
		in: KeyInput{Record: heldBy(r1held), Now: t0.Add(5 * time.Minute),
			Requests: []*Request{r1held, req("r2", "o2").qt(5 * time.Minute).queued(t0).obj(),
				req("r3", "o3").qt(10 * time.Minute).queued(t0).obj()}},
		want: []summary{{"r1", "Acquired", "Acquired", 0}, {"r2", "Terminal", "QueueTimeout", 0},
			{"r3", "Queued", "Queued", 1}},
		wantHolder:   "-",
		wantDeadline: t0.Add(10 * time.Minute),
	}, {
		name: "an expired hold passes to the next waiter",
		in: KeyInput{Record: heldBy(r1ttl), Now: t0.Add(time.Hour),
			Requests: []*Request{r1ttl, req("r2", "o2").queued(t0).obj()}},
		want:        []summary{{"r2", "Acquired", "Acquired", 0}},
		wantLosers:  []summary{{"r1", "Terminal", "Expired", 0}},
		wantHolder:  "r2/u-r2",
		wantGrants:  1,
		wantHandOff: true,
	}, {
		name: "a renewal moves the expiry",
		in: KeyInput{Record: heldBy(r1ttl), Now: t0.Add(50 * time.Minute),
			Requests: []*Request{req("r1", "o1").ttl(time.Hour).renewed(t0.Add(49*time.Minute)).acquired(t0, "10").obj()}},
		want:         []summary{{"r1", "Acquired", "Acquired", 0}},
		wantHolder:   "r1/u-r1",
		wantDeadline: t0.Add(110 * time.Minute),
	}, {
		name: "force unlock revokes the holder it shows and serves the next waiter",
		in: KeyInput{Record: heldBy(r1held), ForceUnlock: true, ForceUnlockID: "pl-1", ForceUnlockToken: "10",
			Requests: []*Request{r1held, req("r2", "o2").queued(t0).obj()}},
		want:        []summary{{"r2", "Acquired", "Acquired", 0}},
		wantLosers:  []summary{{"r1", "Terminal", "Revoked", 0}},
		wantHolder:  "r2/u-r2",
		wantGrants:  1,
		wantHandOff: true,
	}, {
		name: "a force unlock pinned to an earlier hold revokes nobody and writes nothing",
		in: KeyInput{ForceUnlock: true, ForceUnlockID: "pl-1", ForceUnlockToken: "10",
			Record:   Record{HolderID: "r2/u-r2", Owner: "o2", Version: "11"},
			Requests: []*Request{req("r2", "o2").acquired(t0, "11").obj(), req("r3", "o3").queued(t0).obj()}},
		want:       []summary{{"r2", "Acquired", "Acquired", 0}, {"r3", "Queued", "Queued", 1}},
		wantHolder: "-",
	}, {
		name: "a force unlock already served never revokes the next holder",
		in: KeyInput{ForceUnlock: true, ForceUnlockID: "pl-1",
			Record:   Record{HolderID: "r2/u-r2", Owner: "o2", RevokedFor: "pl-1", Version: "11"},
			Requests: []*Request{req("r2", "o2").acquired(t0, "11").obj()}},
		want:       []summary{{"r2", "Acquired", "Acquired", 0}},
		wantHolder: "-",
	}, {
		name: "a full queue refuses new waiters only",
		in: KeyInput{Record: heldBy(r1held), MaxQueueLength: 1,
			Requests: []*Request{r1held, req("r2", "o2").queued(t0).obj(), req("r3", "o3").obj()}},
		want: []summary{{"r1", "Acquired", "Acquired", 0}, {"r2", "Queued", "Queued", 1},
			{"r3", "Terminal", "QueueFull", 0}},
		wantHolder: "-",
	}, {
		name: "a deadlock victim fails",
		in: KeyInput{Record: heldBy(r1held), Victims: map[string]bool{"r2": true},
			Requests: []*Request{r1held, req("r2", "o2").queued(t0).obj()}},
		want:       []summary{{"r1", "Acquired", "Acquired", 0}, {"r2", "Terminal", "DeadlockVictim", 0}},
		wantHolder: "-",
	}, {
		name: "a grant written but never persisted is recovered with the record's token",
		in: KeyInput{Record: Record{HolderID: "r2/u-r2", Owner: "o2", Version: "12"},
			Requests: []*Request{req("r2", "o2").queued(t0).obj(), req("r3", "o3").prio(lockingv1alpha1.PriorityCritical).queued(t0).obj()}},
		want:       []summary{{"r2", "Acquired", "Acquired", 0}, {"r3", "Queued", "Queued", 1}},
		wantHolder: "-",
	}, {
		name: "a holder whose record is gone is revoked before the next waiter is granted",
		in: KeyInput{Record: Record{Version: ""},
			Requests: []*Request{r1held, req("r2", "o2").queued(t0).obj()}},
		want:        []summary{{"r2", "Acquired", "Acquired", 0}},
		wantLosers:  []summary{{"r1", "Terminal", "Revoked", 0}},
		wantHolder:  "r2/u-r2",
		wantGrants:  1,
		wantHandOff: true,
	}, {
		name: "a holder whose record was released under it is revoked, and the key goes idle",
		in: KeyInput{Record: Record{Version: "15", Transitions: 3},
			Requests: []*Request{r1held}},
		wantLosers: []summary{{"r1", "Terminal", "Revoked", 0}},
		wantHolder: "-",
		wantIdle:   true,
	}, {
		name: "a holder the record no longer names is revoked; the record's owner keeps the key",
		in: KeyInput{Record: heldBy(req("r2", "o2").acquired(t0, "20").obj()),
			Requests: []*Request{r1held, req("r2", "o2").acquired(t0, "20").obj(), req("r3", "o3").queued(t0).obj()}},
		want:       []summary{{"r2", "Acquired", "Acquired", 0}, {"r3", "Queued", "Queued", 1}},
		wantLosers: []summary{{"r1", "Terminal", "Revoked", 0}},
		wantHolder: "-",
	}, {
		name: "the lost holder's other request waits its turn like anyone's",
		in: KeyInput{
			Requests: []*Request{r1held, req("r2", "o2").queued(t0).obj(), req("r1b", "o1").queued(t0.Add(time.Second)).obj()}},
		want:        []summary{{"r2", "Acquired", "Acquired", 0}, {"r1b", "Queued", "Queued", 1}},
		wantLosers:  []summary{{"r1", "Terminal", "Revoked", 0}},
		wantHolder:  "r2/u-r2",
		wantGrants:  1,
		wantHandOff: true,
	}, {
		name: "terminal requests are ignored",
		in: KeyInput{
			Requests: []*Request{req("r1", "o1").terminal(lockingv1alpha1.ReasonQueueTimeout).obj(), req("r2", "o2").obj()}},
		want:        []summary{{"r2", "Acquired", "Acquired", 0}},
		wantHolder:  "r2/u-r2",
		wantGrants:  1,
		wantHandOff: true,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.Now.IsZero() {
				tc.in.Now = t0.Add(time.Minute)
			}
			d := Decide(tc.in)
			if diff := cmp.Diff(tc.want, summarize(d.Outcomes)); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantLosers, summarize(d.Losers)); diff != "" {
				t.Errorf("losers (-want +got):\n%s", diff)
			}
			gotHolder := "-"
			if d.Write != nil {
				gotHolder = d.Write.HolderID
			}
			if gotHolder != tc.wantHolder {
				t.Errorf("record written for holder %q, want %q", gotHolder, tc.wantHolder)
			}
			if len(d.Grants) != tc.wantGrants {
				t.Errorf("%d grants, want %d", len(d.Grants), tc.wantGrants)
			}
			if d.Idle != tc.wantIdle {
				t.Errorf("idle = %v, want %v", d.Idle, tc.wantIdle)
			}
			if d.HandOff != tc.wantHandOff {
				t.Errorf("hand-off = %v, want %v", d.HandOff, tc.wantHandOff)
			}
			if !tc.wantDeadline.IsZero() && !d.NextDeadline.Equal(tc.wantDeadline) {
				t.Errorf("next deadline %v, want %v", d.NextDeadline, tc.wantDeadline)
			}
		})
	}
}

func TestDecideRecoveredGrantUsesRecordVersion(t *testing.T) {
	d := Decide(KeyInput{Now: t0,
		Record:   Record{HolderID: "r2/u-r2", Owner: "o2", Version: "12"},
		Requests: []*Request{req("r2", "o2").queued(t0).obj()}})
	if got := d.Outcomes[0].State.FencingToken; got != "12" {
		t.Errorf("fencing token %q, want the record's version 12", got)
	}
}

func TestDecideQueuedShowsHolder(t *testing.T) {
	r1 := req("r1", "o1").acquired(t0, "10").obj()
	r1.Pull = 17
	d := Decide(KeyInput{Now: t0, Record: heldBy(r1), Requests: []*Request{r1, req("r2", "o2").obj()}})
	got := d.Outcomes[1].State
	if diff := cmp.Diff(&Holder{Request: "r1", Owner: "o1", Pull: 17, User: "o1"}, got.BlockedBy); diff != "" {
		t.Fatalf("blockedBy (-want +got):\n%s", diff)
	}
	if !got.EnqueuedAt.Equal(t0) {
		t.Errorf("enqueuedAt = %v, want the decision time %v", got.EnqueuedAt, t0)
	}
}

// TestReentrantGrantInTheMicrosecondOfTheLastRenewal: a grant needs a record write,
// whose new version is its fencing token. When the record was renewed in the same
// microsecond (all a Lease keeps) the write must still change it; FuzzDecide found
// a decision that granted without a write, leaving the grant without a token.
func TestReentrantGrantInTheMicrosecondOfTheLastRenewal(t *testing.T) {
	held := req("r1", "o1").acquired(t0, "10").obj()
	renewed := t0.Add(5 * time.Microsecond)
	for _, tc := range []struct {
		name        string
		now         time.Time
		wantRenewed time.Time
	}{
		{"at the renewal", renewed, renewed.Add(time.Microsecond)},
		{"later in its microsecond", renewed.Add(400 * time.Nanosecond), renewed.Add(time.Microsecond)},
		{"a microsecond later", renewed.Add(time.Microsecond), renewed.Add(time.Microsecond)},
		{"later", renewed.Add(time.Second), renewed.Add(time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := heldBy(held)
			rec.RenewedAt = renewed
			d := Decide(KeyInput{Now: tc.now, Record: rec, Requests: []*Request{held, req("r2", "o1").obj()}})
			if len(d.Grants) != 1 || d.Write == nil {
				t.Fatalf("grants %v, write %+v: want one grant and a record write", d.Grants, d.Write)
			}
			if !d.Write.RenewedAt.Equal(tc.wantRenewed) {
				t.Errorf("record renewed at %s, want %s", d.Write.RenewedAt.Format(time.RFC3339Nano), tc.wantRenewed.Format(time.RFC3339Nano))
			}
		})
	}
}

// TestDecideLostHoldSaysWhy checks the end of a lost hold: Revoked, with a message
// that names the record, and LostHolds set so that Sync confirms the record first.
func TestDecideLostHoldSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		record Record
		want   string
	}{
		{"record gone", Record{}, "its Lease ns/l was deleted or no longer names a holder"},
		{"record names another owner", Record{HolderID: "x/u-x", Owner: "o9", Version: "30"}, "its Lease ns/l names o9 instead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(KeyInput{Now: t0, Record: tc.record, RecordName: "Lease ns/l",
				Requests: []*Request{req("r1", "o1").acquired(t0, "10").obj()}})
			if !d.LostHolds || len(d.Losers) != 1 {
				t.Fatalf("LostHolds %t, %d losers; want a lost hold", d.LostHolds, len(d.Losers))
			}
			if got := d.Losers[0].State; got.Reason != lockingv1alpha1.ReasonRevoked || !strings.Contains(got.Message, tc.want) {
				t.Errorf("loser ends %s %q, want Revoked with %q", got.Reason, got.Message, tc.want)
			}
		})
	}
	d := Decide(KeyInput{Now: t0, Record: heldBy(req("r1", "o1").acquired(t0, "10").obj()),
		Requests: []*Request{req("r1", "o1").acquired(t0, "10").obj()}})
	if d.LostHolds || len(d.Losers) != 0 {
		t.Errorf("a hold the record names: LostHolds %t, %d losers; want neither", d.LostHolds, len(d.Losers))
	}
}
