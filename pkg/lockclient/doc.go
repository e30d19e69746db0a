// Package lockclient takes and releases atlantis-lock-operator locks from Go: it
// creates a LockRequest (locking.runatlantis.io/v1alpha1), waits on a watch for the
// operator's decision, and deletes the request to release the lock or leave the queue.
//
// # Names: one request per owner and key
//
// The owner of a request is its pull request ("repository#number") when Request.Pull
// is set and the username otherwise, as the operator defines it. RequestName derives
// the object name from the owner and the lock key alone (a readable slug and a hash),
// so that a retried call (after a timeout, a crash or a lost response) finds the
// object the first call made instead of making a second request. The operator treats
// all requests of one owner for one key as one hold anyway (re-entrancy), so one
// object per owner and key loses nothing.
//
// When the create finds an object of that name (AlreadyExists), the client decides
// from what it reads back:
//
//   - same owner and key, and the same policy (priority, queueTimeout, ttl), not
//     ended: the client adopts it and carries on as if it had created it. Fields that
//     do not change what the operator decides (the user of a pull-owned request, the
//     pull's URL, author and head commit, teams, labels, annotations) are not
//     compared: another person planning the same pull at a newer commit is the same
//     owner asking for the same lock;
//   - ended (Conflict, QueueTimeout, Expired, Revoked, ...): an ended request never
//     holds the lock again, so the client deletes it (only that object, by UID),
//     waits until it is gone and creates a new one;
//   - being deleted (a release in progress): the client waits until it is gone and
//     creates a new one;
//   - a different policy: the call fails with a *SpecMismatchError naming the field,
//     because the spec is immutable and silently using the other policy would be
//     wrong; Unlock first to replace it.
//
// # Waiting, cancelling, ending
//
// Lock waits on a watch of the one object (never by polling) until it is Acquired, or
// ended. It follows the key's Lease too: the operator grants a key with one
// compare-and-swap on its Lease, which then names the request. Every request this
// client makes carries the annotation locking.runatlantis.io/grant-notice, which
// tells the operator that the client follows the Lease: the operator writes its
// Acquired status only once the hold has lasted status_update_interval (1s by
// default), and not at all for a shorter hold. Lock's requests say lease-only: they
// need no word while they wait either, so their first Queued status too comes only
// once the wait has lasted status_update_interval (LockWithProgress reports no
// progress for a shorter wait); TryLock's say lease, and are told Queued at once. A
// grant the Lease shows ends the wait at once, with the write's resourceVersion as
// the fencing token (the same token the status then shows) and the returned
// Status.Request showing that grant. Only a change that gives the Lease to the
// request for a new owner, or with a new acquireTime, counts (a hold passed between
// two requests of one owner is left to the status, whose token is the earlier,
// re-entrant grant's), and only when the client follows the Lease without a gap from
// the request's creation on; without permission to read Leases it waits for the
// status, up to status_update_interval longer. Until the status is written it says
// Pending or Queued: Get, Renew, List and GetLock read the key's Lease before the
// request and report the grant the Lease shows, so what they report never goes back
// from what Lock returned. If the context ends first, the request is deleted with a
// fresh, short context, so that nothing is left queued for a caller that has gone; if
// the grant raced the cancellation, that deletion releases the lock, since the caller
// never learned that it held it. TryLock returns the first decision (Acquired, Queued
// or Ended) and leaves a queued request queued. Both delete a request that has ended,
// so ended requests do not pile up, and report its reason and message.
//
// Unlock deletes the request and waits until the object is gone, which with no
// finalizer on it is at once. The lock is held by the key's Lease, which names the
// request: the operator, seeing the request gone (it confirms that with a read past
// its cache), releases the Lease or hands it to the next waiter with one
// compare-and-swap, so no other request can hold the key before that release, and
// the fencing token of the next grant is greater.
//
// # Errors
//
// API errors are returned wrapped with the object they concern, so apierrors.IsNotFound,
// apierrors.IsForbidden and errors.Is/As keep working. When the cluster has no
// LockRequest CRD, errors also match ErrNotInstalled.
package lockclient
