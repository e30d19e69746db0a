// Package atlantis plugs atlantis-lock-operator into Atlantis: Locker implements
// Atlantis's locking.Locker (project and workspace locks) and ApplyLocker its
// locking.ApplyLocker (the global apply lock), on top of the client library
// pkg/lockclient. Atlantis's server.go builds its lockers with
// locking.NewClient(database) and locking.NewApplyClient(database, ...); put
// NewLocker and NewApplyLocker there instead (docs/usage.md shows the lines).
//
// # A module of its own
//
// This package is a nested Go module (github.com/runatlantis/atlantis-lock-operator/pkg/atlantis),
// because it imports Atlantis (github.com/runatlantis/atlantis, for the interfaces and
// models it implements), and Atlantis's go.mod requires some 160 modules: VCS
// clients, AWS, Redis, Terraform tooling. In the operator's own module those would
// enter every consumer's module graph, every `go mod tidy` and every dependency
// update of the operator, and their versions would be pinned by Atlantis's choices,
// although the operator binary uses none of them. As a module of its own, only
// Atlantis builds (which need Atlantis anyway) and this package's tests see them;
// the operator, pkg/lockclient and kubectl-lock stay free of them. Inside the
// repository the module uses the operator's packages through
// `replace github.com/runatlantis/atlantis-lock-operator => ../..`.
//
// # Exact mode: Atlantis's own semantics
//
// By default (ModeExact) the adapter answers exactly as Atlantis's locking.Client over
// its BoltDB backend, which a test in this module checks by running the same
// sequences of calls against both:
//
//   - Keys are models.GenerateLockKey's "{repository}/{path}/{workspace}/{project name}".
//   - TryLock returns LockAcquired=true only when the call took a free key, and
//     LockAcquired=false with the holding lock whenever the key is held, even by the
//     same pull. It makes a LockRequest with queueTimeout 0s: a refused request
//     ends with reason Conflict and is deleted, so nothing is left behind.
//   - Unlock(key) and GetLock(key) take Atlantis keys whatever the depth of the
//     repository ("group/sub/repo") or the path ("modules/vpc/prod"). A key string
//     does not say where the repository ends, so the adapter never splits it: it
//     finds the lock whose key text is the string and takes the real repository
//     from that lock's spec. The lock's objects are named after that text, so
//     neither lists the namespace: they read the key's ProjectLock and Lease by
//     name and list only the requests labelled with the key's lock, and those
//     made by hand, which carry no label (lockclient.GetLockText). Both return
//     (nil, nil) for a free key, and an error for a string without the key's
//     shape, as Atlantis does.
//   - UnlockIfOwnedByPull releases only a lock of the given pull.
//   - UnlockByPull matches the repository exactly. This is the one intended
//     difference: Atlantis's backends match lock keys by prefix, so that
//     UnlockByPull("owner/repo", 1) also releases pull 1's locks in "owner/repo2".
//   - List maps each held key to its models.ProjectLock.
//
// The project and workspace of a lock are the LockRequest's spec; LockAnnotation
// keeps the rest of Atlantis's models.ProjectLock (the full pull request, the user's
// teams, the time). Two fields are deliberately not stored: the pull's
// BaseRepo.CloneURL, which contains the VCS token in Atlantis and must not end up in
// an object that anyone allowed to read LockRequests can see, and the pull's Body
// (its description), which locks do not use. They read back as "". A lock taken
// without the adapter (kubectl, pkg/lockclient) reads back from its spec.
//
// # Queueing mode
//
// With WithMode(ModeQueue), a TryLock on a key another pull holds still answers
// LockAcquired=false with the holder, so Atlantis comments "locked by pull #N" as
// usual, but leaves the pull's LockRequest queued. When the holder releases, the
// operator grants the lock to the head of the queue; its lock_acquired event (through
// a webhook, see docs/usage.md) tells the pull that it may plan now. UnlockByPull
// withdraws a closed pull's waiting requests.
//
// # Holds with a ttl
//
// A lock with a ttl (WithTTL, or the operator's default_ttl) expires unless it is
// renewed. Locker.RenewHolds, run beside Atlantis's server, renews every hold taken
// through this package in the namespace when a third of its ttl has passed, for as
// long as Atlantis runs; so a ttl means "the locks of an Atlantis that has been gone
// that long are freed". A hold that ended anyway (Expired, Revoked by a force
// unlock or a lost Lease) is not renewed: Atlantis sees the key as free.
//
// # Calls without a context
//
// Atlantis's interfaces take no context.Context, so each call runs with its own
// timeout (WithCallTimeout, default DefaultCallTimeout).
package atlantis
