package orchestrator

import (
	"time"
)

// Phase is where a request stands, as last persisted.
type Phase int

const (
	// PhaseNew: nothing has been decided about the request yet.
	PhaseNew Phase = iota
	// PhaseQueued: the request waits in its key's queue.
	PhaseQueued
	// PhaseAcquired: the request holds its key's lock.
	PhaseAcquired
	// PhaseTerminal: the request ended (Reason says why) and never holds the lock again.
	PhaseTerminal
)

// String names the phase for logs and test failures.
func (p Phase) String() string {
	switch p {
	case PhaseNew:
		return "New"
	case PhaseQueued:
		return "Queued"
	case PhaseAcquired:
		return "Acquired"
	case PhaseTerminal:
		return "Terminal"
	}
	return "Unknown"
}

// NoQueueTimeout means a request waits in the queue for as long as it takes.
const NoQueueTimeout time.Duration = -1

// Request is one lock request as the orchestrator sees it: what was asked, and what
// was last decided and persisted about it. The API objects are the truth; a Request
// is a copy of them.
type Request struct {
	// ID names the request uniquely within its lock's namespace.
	ID string
	// UID tells a request from an earlier one of the same ID.
	UID string
	// Owner is the pull ("repo#42") or the username; one owner's requests are re-entrant.
	Owner string
	// Priority ranks the request in the queue; larger is served first.
	Priority int
	// Created is when the request was created; it orders requests enqueued together.
	Created time.Time
	// QueueTimeout is the longest wait in the queue, 0 to fail fast, or NoQueueTimeout.
	QueueTimeout time.Duration
	// TTL makes a hold expire unless renewed; 0 means the hold does not expire.
	TTL time.Duration
	// RenewTime is the holder's latest renewal as the request states it.
	RenewTime time.Time
	// Deleting is true once the request was withdrawn (deleted); it then holds and
	// waits no more.
	Deleting bool
	// LearnsGrantFromRecord is true when the request's client learns of its grant
	// from the lock record (the key's Lease) rather than from the persisted
	// State: a grant of it may then be persisted late (Config.GrantStatusDelay).
	LearnsGrantFromRecord bool
	// WaitsForGrant is true when, besides, the request's client needs no word
	// while it waits (a blocking lock, not a try): its first Queued state may then
	// be persisted late too, once the wait has lasted Config.GrantStatusDelay.
	WaitsForGrant bool

	// Generation counts changes to what was asked (metadata.generation), and
	// ObservedGeneration is the Generation the persisted State was decided for; a
	// difference makes the next decision persist the state again.
	Generation         int64
	ObservedGeneration int64

	// Pull is the pull request number, 0 for a manual lock.
	Pull int32
	// PullURL links to the pull request.
	PullURL string
	// User is the username.
	User string

	// State is what was last decided and persisted.
	State RequestState
}

// RequestState is the decided part of a request: the orchestrator's output and, once
// persisted, part of its next input.
type RequestState struct {
	// Phase is where the request stands.
	Phase Phase
	// Reason is the Acquired condition's reason (see api/v1alpha1); for terminal
	// requests it says why they ended.
	Reason string
	// Message explains Reason to a person.
	Message string
	// Position is the 1-based queue position while queued.
	Position int
	// BlockedBy is the holder while queued.
	BlockedBy *Holder
	// EnqueuedAt is when the request first waited; it fixes its place in the queue.
	EnqueuedAt time.Time
	// AcquiredAt is when the request was granted the lock.
	AcquiredAt time.Time
	// ExpiresAt is when a hold with a TTL expires unless renewed.
	ExpiresAt time.Time
	// ObservedRenewTime is the RenewTime that ExpiresAt accounts for.
	ObservedRenewTime time.Time
	// FencingToken is the version of the lock record write that granted the lock.
	FencingToken string
}

// Holder describes who holds a lock.
type Holder struct {
	// Request is the ID of the holding request named in the lock record.
	Request string
	// Owner is the holding owner.
	Owner string
	// Pull is the holder's pull request number, or 0.
	Pull int32
	// PullURL links to the holder's pull request.
	PullURL string
	// User is the holder's username.
	User string
	// AcquiredAt is when the owner was granted the lock.
	AcquiredAt time.Time
	// ExpiresAt is when the hold expires unless renewed, or zero.
	ExpiresAt time.Time
	// FencingToken is the token of the holding request's grant.
	FencingToken string
}

// Record is a key's lock record in the Backend: the single source of truth for who
// holds the key. Every change to it is a compare-and-swap on Version.
type Record struct {
	// HolderID is "<request ID>/<request UID>" of the holding request, or "" when free.
	HolderID string
	// Owner is the holding owner, or "".
	Owner string
	// AcquiredAt is when the current owner was granted the lock.
	AcquiredAt time.Time
	// RenewedAt is the latest grant or renewal.
	RenewedAt time.Time
	// TTL of the holding request, or 0.
	TTL time.Duration
	// Transitions counts how often the lock changed owner.
	Transitions int32
	// RevokedFor is the UID of the lock object whose force unlock this record has
	// already served, so that a retried force unlock never revokes the next holder.
	RevokedFor string
	// Version is the record's version ("" when the record does not exist). Versions
	// of one key only grow, including across deletion and re-creation.
	Version string
}

// Free reports whether nobody holds the lock.
func (r Record) Free() bool { return r.HolderID == "" }

// released returns r as it reads once its holder has let go: free, with its
// version, transitions and force-unlock mark.
func (r Record) released() Record {
	return Record{Transitions: r.Transitions, RevokedFor: r.RevokedFor, Version: r.Version}
}

// HolderIdentity is the Record.HolderID of a request.
func HolderIdentity(r *Request) string { return r.ID + "/" + r.UID }
