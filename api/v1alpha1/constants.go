package v1alpha1

// Names shared by the operator, its clients and its manifests.
const (
	// ReleaseFinalizer keeps every ProjectLock until the operator has seen its
	// deletion, which is a force unlock, and served it. LockRequests do not need it:
	// a request's lock is held by the key's Lease, which names the request, and the
	// operator releases the Lease when it finds the request gone, so deleting a
	// request is never lost (not even while no operator runs). The operator still
	// removes it from a deleted request that carries it (requests made by earlier
	// releases, which set it).
	ReleaseFinalizer = "locking.runatlantis.io/release"

	// FieldManager is the field manager of every write the operator makes, and the
	// source of the Kubernetes Events it records.
	FieldManager = "atlantis-lock-operator"

	// OwnerAnnotation on a Lease records the owner (see LockRequestSpec) that holds it,
	// so that any operator replica can tell re-entrant requests from competing ones by
	// reading the Lease alone.
	OwnerAnnotation = "locking.runatlantis.io/owner"

	// LockNameLabel names the ProjectLock (and Lease) of a key. The operator sets
	// it on the Leases it manages (its cache watches only those); pkg/lockclient
	// sets it on the LockRequests it creates, so that
	// `kubectl get lr -l locking.runatlantis.io/lock=NAME` lists one key's requests,
	// and its GetLock lists those and the requests without the label (made by
	// hand) rather than the namespace. The operator does not rely on it on
	// LockRequests: status.lockName says the same for every request.
	LockNameLabel = "locking.runatlantis.io/lock"

	// GrantNoticeAnnotation on a LockRequest says how its client learns of its
	// grant. With the value GrantNoticeLease (pkg/lockclient sets it on every
	// request it creates), the client watches the key's Lease, whose
	// compare-and-swap is the grant, so the operator writes the request's
	// Acquired status only once the hold has lasted status_update_interval, and
	// not at all for a shorter hold: the status is then for people, like a
	// waiter's position. With GrantNoticeLeaseOnly (pkg/lockclient's blocking
	// Lock) the client needs no word while it waits either, so the operator
	// writes its Queued status too only once the wait has lasted
	// status_update_interval. Without it (kubectl), the status says Queued or
	// Acquired at once.
	GrantNoticeAnnotation = "locking.runatlantis.io/grant-notice"
	// GrantNoticeLease is GrantNoticeAnnotation's value for a client that learns
	// of its grant from the key's Lease and of anything else (its place in the
	// queue, a conflict) from the request's status, as a try-lock does.
	GrantNoticeLease = "lease"
	// GrantNoticeLeaseOnly is GrantNoticeAnnotation's value for a client that
	// learns of its grant from the key's Lease and waits for nothing else: a
	// blocking lock, which reads the request's status only for how it ended.
	GrantNoticeLeaseOnly = "lease-only"
)

// Condition types of a LockRequest.
const (
	// ConditionAcquired is True while the request holds its lock. When False, its
	// reason says why: Queued, Conflict, QueueTimeout, QueueFull, DeadlockVictim,
	// Expired, Revoked or Released.
	ConditionAcquired = "Acquired"

	// ConditionQueued is True while the request waits in its key's queue.
	ConditionQueued = "Queued"
)

// Condition types of a ProjectLock.
const (
	// ConditionLocked is True while some owner holds the lock key.
	ConditionLocked = "Locked"
)

// Reasons of the Acquired and Queued conditions. Reasons marked terminal end the
// request: it never holds the lock again, and the caller should delete it.
const (
	// ReasonAcquired: the request holds the lock (Acquired=True).
	ReasonAcquired = "Acquired"
	// ReasonPending: the operator has seen the request but not yet decided on it.
	ReasonPending = "Pending"
	// ReasonQueued: another owner holds the key and the request waits its turn.
	ReasonQueued = "Queued"
	// ReasonNotQueued: the request is not waiting (Queued=False) because it holds
	// the lock or has ended.
	ReasonNotQueued = "NotQueued"
	// ReasonConflict (terminal): queueTimeout is 0s and another owner holds the key.
	ReasonConflict = "Conflict"
	// ReasonQueueTimeout (terminal): the request waited longer than its queueTimeout.
	ReasonQueueTimeout = "QueueTimeout"
	// ReasonQueueFull (terminal): the key's queue was at the configured maximum length.
	ReasonQueueFull = "QueueFull"
	// ReasonDeadlockVictim (terminal): the deadlock detector failed this request to
	// break a cycle of owners waiting for each other.
	ReasonDeadlockVictim = "DeadlockVictim"
	// ReasonExpired (terminal): the request held the lock, but its ttl passed without
	// a newer renewTime; the lock went to the next waiter.
	ReasonExpired = "Expired"
	// ReasonRevoked (terminal): someone force-unlocked the key by deleting its
	// ProjectLock while this request held it.
	ReasonRevoked = "Revoked"
	// ReasonReleased (terminal): the request was deleted and no longer holds or waits.
	ReasonReleased = "Released"
)

// Reasons of a ProjectLock's Locked condition.
const (
	// ReasonHeld: an owner holds the key (Locked=True).
	ReasonHeld = "Held"
	// ReasonFree: nobody holds the key (Locked=False).
	ReasonFree = "Free"
)

// The fixed condition messages the operator writes. Every other message names
// an owner or a position; these recur on every held, free or settled object, so
// the operator's cache keeps one copy of each (internal/operator.CacheOptions).
const (
	// MessageHeld is the Acquired condition's message while the request holds.
	MessageHeld = "the lock is held"
	// MessageHolds is the Queued condition's message while the request holds.
	MessageHolds = "holds the lock"
	// MessageNotWaiting is the Queued condition's message of a request that
	// neither holds nor waits.
	MessageNotWaiting = "not waiting"
	// MessageNotDecided is the Acquired condition's message before the first
	// decision.
	MessageNotDecided = "not decided yet"
	// MessageFree is the Locked condition's message of a ProjectLock nobody holds.
	MessageFree = "nobody holds the lock"
)

// FixedMessages lists the constant messages above.
var FixedMessages = []string{MessageHeld, MessageHolds, MessageNotWaiting, MessageNotDecided, MessageFree}

// IsTerminalReason reports whether an Acquired reason ends the request for good.
func IsTerminalReason(reason string) bool {
	switch reason {
	case ReasonConflict, ReasonQueueTimeout, ReasonQueueFull, ReasonDeadlockVictim,
		ReasonExpired, ReasonRevoked, ReasonReleased:
		return true
	}
	return false
}
