// Package controller runs the lock orchestrator over the API: one reconciler per lock
// key (the ProjectLock's name) turns LockRequests, the ProjectLock and the Lease of
// the key into a Sync, and writes back what was decided.
package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/apicalls"
	"github.com/runatlantis/atlantis-lock-operator/internal/indexes"
	"github.com/runatlantis/atlantis-lock-operator/internal/leasebackend"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// LockReconciler decides about one lock key per reconcile. The work queue never
// hands one key to two workers at once, which serializes the decisions of a key;
// different keys run in parallel up to the worker count.
type LockReconciler struct {
	// Client reads from the informer cache and writes to the API server.
	Client client.Client
	// APIReader reads the API server directly; it confirms that a holder missing
	// from the cache is really gone before its lock is given away.
	APIReader client.Reader
	// Orchestrator makes the decisions.
	Orchestrator *orchestrator.LockOrchestrator
	// Wake carries locks to reconcile outside watch events: deadlock victims.
	Wake chan event.GenericEvent
	// Breaker, if set, pauses decisions while the API server fails them (see
	// internal/breaker); a paused key is decided again when the breaker lets it.
	Breaker Gate
	// ProjectLockDelay is how long a key is held, or waited for, before its
	// ProjectLock is created (project_lock_delay); 0 creates it with the first
	// grant or the first waiter.
	ProjectLockDelay time.Duration
	// ProjectLockUpdateInterval is the least time between two status writes of a
	// ProjectLock (status_update_interval): a change within it is written when it
	// is over, as the key's latest state. 0 writes every change at once.
	ProjectLockUpdateInterval time.Duration
	// LeaseSeen, if set, is told of every Lease the cache delivers, so that the
	// lock record backend can drop its copy of a write the cache now shows
	// (leasebackend.Backend.Seen).
	LeaseSeen func(client.Object)

	// gone holds the objects let go of that the cache still shows.
	gone goneObjects
	// shown holds the ProjectLock statuses last written.
	shown shownStatus
	// written holds the LockRequests whose status was last written.
	written writtenRequests
	// deleted holds the UIDs of LockRequests the informer saw deleted.
	deleted deletedRequests
	// own holds the versions of the objects this operator last wrote, whose watch
	// events wake nobody.
	own ownWrites
}

// Gate says whether a decision may run now: release must be called when it is done;
// when it may not, wait says when to ask again (breaker.Breaker.Allow).
type Gate interface {
	Allow() (release func(), wait time.Duration)
}

// +kubebuilder:rbac:groups=locking.runatlantis.io,resources=lockrequests,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=locking.runatlantis.io,resources=lockrequests/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=locking.runatlantis.io,resources=lockrequests/finalizers,verbs=update
// +kubebuilder:rbac:groups=locking.runatlantis.io,resources=projectlocks,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=locking.runatlantis.io,resources=projectlocks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=locking.runatlantis.io,resources=projectlocks/finalizers,verbs=update
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile decides about the lock key req names.
func (r *LockReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if r.Breaker != nil {
		release, wait := r.Breaker.Allow()
		if release == nil {
			// The API server is failing decisions: ask again when the breaker
			// lets a probe through, rather than each key retrying on its own.
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		defer release()
	}
	// Every API call of this decision counts for the breaker.
	ctx = apicalls.OnDecisionPath(ctx)
	res, err := r.reconcile(ctx, req)
	if errors.Is(err, orchestrator.ErrConflict) || errors.Is(err, orchestrator.ErrStale) || apierrors.IsConflict(err) {
		// Someone else (the client, a cache event not yet seen, another operator)
		// changed an object of the key first: decide again with fresh input. This is
		// the normal course of optimistic concurrency, not an error.
		log.FromContext(ctx).V(1).Info("the key changed while deciding; deciding again", "reason", err.Error())
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	return res, err
}

// conflictRetry is how soon a key is decided again after losing a race. The next
// decision reads objects that are at least as new, so it converges.
const conflictRetry = 5 * time.Millisecond

func (r *LockReconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {

	pl, err := r.projectLock(ctx, req.NamespacedName)
	if err != nil {
		return ctrl.Result{}, err
	}
	var list lockingv1alpha1.LockRequestList
	list.Items, err = r.written.listFresher(req.NamespacedName, func() ([]lockingv1alpha1.LockRequest, error) {
		var cached lockingv1alpha1.LockRequestList
		if err := r.Client.List(ctx, &cached, client.InNamespace(req.Namespace),
			client.MatchingFields{indexes.LockRequestLockName: req.Name}); err != nil {
			return nil, fmt.Errorf("listing the requests of %s: %w", req, err)
		}
		for i := range cached.Items {
			RestoreDerivedRequestStatus(&cached.Items[i])
		}
		return cached.Items, nil
	})
	if err != nil {
		return ctrl.Result{}, err
	}
	pl, list.Items = r.withoutGone(req.NamespacedName, pl, list.Items)
	ref := lockRef(req.NamespacedName, list.Items)

	objs := map[string]*lockingv1alpha1.LockRequest{}
	requests := make([]*orchestrator.Request, 0, len(list.Items))
	cfg := r.Orchestrator.Config()
	for i := range list.Items {
		lr := &list.Items[i]
		objs[lr.Name] = lr
		requests = append(requests, toRequest(lr, cfg))
	}
	in := orchestrator.SyncInput{
		Ref:         ref,
		Requests:    requests,
		RequestGone: r.requestGone(req.Namespace),
		Persist:     r.persist(ref, objs),
	}
	if pl != nil && pl.DeletionTimestamp != nil {
		in.ForceUnlock, in.ForceUnlockID = true, string(pl.UID)
		// The deleted object's status is what its deleter saw: the force unlock
		// is for that hold, not for one granted since.
		known, _, err := r.knownStatus(ctx, req.NamespacedName, pl)
		if err != nil {
			return ctrl.Result{}, err
		}
		in.ForceUnlockToken = known.token
	}
	// The orchestrator reports the failures of its calls itself, with the lock.
	d, err := r.Orchestrator.Sync(apicalls.FailuresReported(ctx), in)
	if err != nil {
		return ctrl.Result{}, err
	}
	if ref.Key == (lockkey.Key{}) {
		ref.Key = d.Key // known from an earlier decision, or still zero
	}
	r.own.wrote(kindLease, req.NamespacedName, d.WrittenVersion,
		r.cacheShows(&coordinationv1.Lease{}, req.NamespacedName, "", d.WrittenVersion))

	if err := r.finishWithdrawn(ctx, req.NamespacedName, list.Items); err != nil {
		return ctrl.Result{}, err
	}
	now := r.Orchestrator.Clock().Now()
	next := d.NextDeadline
	if pl == nil {
		show, at := r.showAt(d)
		switch {
		case show && at.After(now):
			if next.IsZero() || at.Before(next) {
				next = at // wake the key when its hold or wait is old enough to be shown
			}
		case show && hasLiveRequest(list.Items):
			if pl, err = r.createProjectLock(ctx, ref); err != nil {
				return ctrl.Result{}, err
			}
		}
	}
	shownAt, err := r.reconcileProjectLock(ctx, pl, ref, d, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !shownAt.IsZero() && (next.IsZero() || shownAt.Before(next)) {
		next = shownAt // write the ProjectLock's status when its interval is over
	}
	if d.Idle {
		r.Orchestrator.Forget(ref)
	}
	if !next.IsZero() {
		return ctrl.Result{RequeueAfter: max(next.Sub(now), time.Millisecond)}, nil
	}
	return ctrl.Result{}, nil
}

// showAt says whether the key of decision d, which has no ProjectLock, is to get
// one, and from when: once its hold or the wait of its longest waiter has lasted
// ProjectLockDelay. A lock cycle that ends sooner (an uncontended acquire and
// release, or a hand-off to a waiter that waited less: the common cases of the
// lock path) writes no ProjectLock at all; the Lease holds the lock and the
// LockRequests' statuses tell their clients, so the ProjectLock is only the view
// for people (who look at holds and waits that last) and for force unlock, which
// creates it when it is missing.
func (r *LockReconciler) showAt(d orchestrator.Decision) (bool, time.Time) {
	var since time.Time
	if d.Holder != nil {
		since = d.HeldSince
	}
	for _, out := range d.Outcomes {
		at := out.State.EnqueuedAt
		if out.State.Phase == orchestrator.PhaseQueued && !at.IsZero() && (since.IsZero() || at.Before(since)) {
			since = at
		}
	}
	if since.IsZero() {
		return false, time.Time{}
	}
	return true, since.Add(r.ProjectLockDelay)
}

// withoutGone leaves out of the cached ProjectLock and requests of key nn those this
// operator has already let go of: the API server no longer has them, and deciding
// about them again would only repeat the writes that let them go.
func (r *LockReconciler) withoutGone(nn types.NamespacedName, pl *metav1.PartialObjectMetadata, reqs []lockingv1alpha1.LockRequest) (*metav1.PartialObjectMetadata, []lockingv1alpha1.LockRequest) {
	r.gone.keepOnly(nn, func(uid types.UID) bool {
		return (pl != nil && pl.UID == uid) || slices.ContainsFunc(reqs, func(lr lockingv1alpha1.LockRequest) bool { return lr.UID == uid })
	})
	if pl != nil && r.gone.has(nn, pl.UID) {
		pl = nil
	}
	return pl, slices.DeleteFunc(reqs, func(lr lockingv1alpha1.LockRequest) bool { return r.gone.has(nn, lr.UID) })
}

// letGo removes the release finalizer from obj, which is being deleted or about to
// be, and remembers it as gone for key nn when that finalizer was all that kept it.
func (r *LockReconciler) letGo(ctx context.Context, nn types.NamespacedName, obj client.Object) error {
	onlyOurs := len(obj.GetFinalizers()) == 0 ||
		(len(obj.GetFinalizers()) == 1 && obj.GetFinalizers()[0] == lockingv1alpha1.ReleaseFinalizer)
	uid := obj.GetUID()
	if err := removeFinalizer(ctx, r.Client, obj); err != nil {
		return err
	}
	if onlyOurs && obj.GetDeletionTimestamp() != nil {
		r.gone.add(nn, uid)
	}
	return nil
}

// projectLock returns the key's ProjectLock as the cache has it: its metadata
// (SetupWithManager), or nil when there is none. Its status is known from
// shownStatus.
//
// A ProjectLock this operator has written but whose write the cache has not shown
// yet is read past the cache. Its watch may be re-listing (after the API server
// restarted, say): the list then brings the object at the version this operator
// wrote, an echo that wakes nobody (ownWrites), so a decision made without it in
// the meantime (the key went idle) would leave it behind for good.
func (r *LockReconciler) projectLock(ctx context.Context, nn types.NamespacedName) (*metav1.PartialObjectMetadata, error) {
	pl := projectLockMeta()
	err := r.Client.Get(ctx, nn, pl)
	if apierrors.IsNotFound(err) && r.own.unseen(kindProjectLock, nn) {
		pl = projectLockMeta()
		if err = r.APIReader.Get(ctx, nn, pl); apierrors.IsNotFound(err) {
			r.own.forget(kindProjectLock, nn) // gone since: no event will bring the write
		}
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			r.shown.forget(nn)
			return nil, nil
		}
		return nil, fmt.Errorf("reading ProjectLock %s: %w", nn, err)
	}
	return pl, nil
}

// projectLockMeta returns an empty ProjectLock metadata object, to read from the
// cache.
func projectLockMeta() *metav1.PartialObjectMetadata {
	pl := &metav1.PartialObjectMetadata{}
	pl.SetGroupVersionKind(lockingv1alpha1.GroupVersion.WithKind(kindProjectLock))
	return pl
}

// knownStatus returns what is known of the status of pl, key nn's ProjectLock as
// the cache shows it, and reads it past the cache when nothing is (after a start,
// or after someone else changed the object); it then also returns the lock key
// from the ProjectLock's spec. A ProjectLock gone meanwhile is known with an empty
// status.
func (r *LockReconciler) knownStatus(ctx context.Context, nn types.NamespacedName, pl *metav1.PartialObjectMetadata) (shown, lockkey.Key, error) {
	if known, ok := r.shown.knownAt(nn, pl.UID, pl.ResourceVersion); ok {
		return known, lockkey.Key{}, nil
	}
	if r.shown.prime(ctx, nn.Namespace, r.listProjectLocks) {
		if known, ok := r.shown.knownAt(nn, pl.UID, pl.ResourceVersion); ok {
			return known, lockkey.Key{}, nil
		}
	}
	return r.readStatus(ctx, nn, pl)
}

// projectLockPage is how many ProjectLocks one read of shownStatus.prime asks for.
const projectLockPage = 500

// listProjectLocks reads the ProjectLocks of namespace past the cache, a page at a
// time, and gives each to each.
func (r *LockReconciler) listProjectLocks(ctx context.Context, namespace string, each func(*lockingv1alpha1.ProjectLock)) error {
	cont := ""
	for {
		var page lockingv1alpha1.ProjectLockList
		if err := r.APIReader.List(ctx, &page, client.InNamespace(namespace), client.Limit(projectLockPage), client.Continue(cont)); err != nil {
			return fmt.Errorf("reading the ProjectLocks of namespace %s: %w", namespace, err)
		}
		for i := range page.Items {
			each(&page.Items[i])
		}
		if cont = page.Continue; cont == "" {
			return nil
		}
	}
}

// readStatus reads key nn's ProjectLock past the cache, remembers what its status
// is, and returns it with the lock key of its spec.
func (r *LockReconciler) readStatus(ctx context.Context, nn types.NamespacedName, pl *metav1.PartialObjectMetadata) (shown, lockkey.Key, error) {
	live := &lockingv1alpha1.ProjectLock{}
	if err := r.APIReader.Get(ctx, nn, live); err != nil {
		if apierrors.IsNotFound(err) {
			return shown{uid: pl.UID, version: pl.ResourceVersion}, lockkey.Key{}, nil
		}
		return shown{}, lockkey.Key{}, fmt.Errorf("reading ProjectLock %s: %w", nn, err)
	}
	known := shownOf(live, live.Status, time.Time{})
	if live.UID == pl.UID {
		r.shown.set(nn, known)
		// With when this operator last wrote it, which set keeps.
		known, _ = r.shown.knownAt(nn, live.UID, live.ResourceVersion)
	}
	return known, live.Spec.Key(), nil
}

// lockRef names the lock, with its key when any of its requests says it.
func lockRef(nn types.NamespacedName, reqs []lockingv1alpha1.LockRequest) orchestrator.LockRef {
	ref := orchestrator.LockRef{Namespace: nn.Namespace, Name: nn.Name}
	if len(reqs) > 0 {
		ref.Key = reqs[0].Spec.Key()
	}
	return ref
}

func hasLiveRequest(reqs []lockingv1alpha1.LockRequest) bool {
	for i := range reqs {
		lr := &reqs[i]
		if lr.DeletionTimestamp == nil && !isTerminal(lr) {
			return true
		}
	}
	return false
}

func isTerminal(lr *lockingv1alpha1.LockRequest) bool {
	c := meta.FindStatusCondition(lr.Status.Conditions, lockingv1alpha1.ConditionAcquired)
	return c != nil && lockingv1alpha1.IsTerminalReason(c.Reason)
}

// createProjectLock creates the key's ProjectLock, with the finalizer that turns its
// deletion into a force unlock. Its status is written by reconcileProjectLock in
// the same reconcile.
func (r *LockReconciler) createProjectLock(ctx context.Context, ref orchestrator.LockRef) (*metav1.PartialObjectMetadata, error) {
	pl := lockingv1alpha1.NewProjectLock(ref.Namespace, ref.Key)
	err := r.Client.Create(ctx, pl, client.FieldOwner(lockingv1alpha1.FieldManager))
	if apierrors.IsAlreadyExists(err) {
		// Created by another reconcile or operator since the cache was read; the
		// watch brings it and its own reconcile.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("creating ProjectLock %s: %w", ref, err)
	}
	r.shown.set(client.ObjectKeyFromObject(pl), shownOf(pl, pl.Status, time.Time{}))
	created := projectLockMeta()
	created.ObjectMeta = pl.ObjectMeta
	return created, nil
}

// requestGone asks the API server itself whether a holder request is gone, so that a
// cache that has not yet seen a new request can never release its lock.
func (r *LockReconciler) requestGone(namespace string) func(context.Context, string, string) (bool, error) {
	return func(ctx context.Context, name, uid string) (bool, error) {
		if r.deleted.has(types.UID(uid)) {
			return true, nil
		}
		lr := &lockingv1alpha1.LockRequest{}
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, lr)
		switch {
		case apierrors.IsNotFound(err):
			return true, nil
		case err != nil:
			return false, err
		}
		return string(lr.UID) != uid || lr.DeletionTimestamp != nil || isTerminal(lr), nil
	}
}

// persist writes decided states into LockRequest statuses: an update with the
// resourceVersion read, so that a status can never be written over a newer one.
func (r *LockReconciler) persist(ref orchestrator.LockRef, objs map[string]*lockingv1alpha1.LockRequest) func(context.Context, []orchestrator.Outcome) ([]orchestrator.Outcome, error) {
	return func(ctx context.Context, outs []orchestrator.Outcome) ([]orchestrator.Outcome, error) {
		now := r.Orchestrator.Clock().Now()
		stored := make([]orchestrator.Outcome, 0, len(outs))
		for _, out := range outs {
			lr := objs[out.Request.ID]
			if lr == nil || lr.DeletionTimestamp != nil {
				continue
			}
			applyState(lr, ref, out.State, now)
			if err := r.Client.Status().Update(ctx, lr, client.FieldOwner(lockingv1alpha1.FieldManager)); err != nil {
				if apierrors.IsNotFound(err) {
					// Deleted since the cache showed it: decide without it
					// until the cache drops it too, rather than write to it
					// again, and take the answer as the proof of its
					// deletion that a holder's release needs.
					r.gone.add(types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, lr.UID)
					r.deleted.add(lr.UID, now)
					if out.State.Phase == orchestrator.PhaseAcquired {
						// The grant stands: the Lease write made it, and the
						// client (which learns of it from the Lease, see
						// lockclient) let go before its status said so. It
						// is told as every grant is (and was counted when
						// the Lease was written).
						stored = append(stored, out)
					}
					continue
				}
				return stored, fmt.Errorf("writing the status of LockRequest %s/%s: %w", lr.Namespace, lr.Name, leasebackend.Classify(err))
			}
			shows := r.cacheShows(&lockingv1alpha1.LockRequest{}, client.ObjectKeyFromObject(lr), lr.UID, lr.ResourceVersion)
			r.written.set(types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, lr, shows)
			r.own.wrote(kindLockRequest, client.ObjectKeyFromObject(lr), lr.ResourceVersion, shows)
			stored = append(stored, out)
		}
		return stored, nil
	}
}

// finishWithdrawn lets deleted requests go: the decision just made no longer counts
// them, so their lock, if any, has moved on.
func (r *LockReconciler) finishWithdrawn(ctx context.Context, nn types.NamespacedName, reqs []lockingv1alpha1.LockRequest) error {
	for i := range reqs {
		lr := &reqs[i]
		if lr.DeletionTimestamp == nil {
			continue
		}
		if err := r.letGo(ctx, nn, lr); err != nil {
			return err
		}
	}
	return nil
}

// reconcileProjectLock shows the decision on the ProjectLock, ends a force unlock
// that has been served, and deletes the ProjectLock of an idle key once its Lease
// goes too (orchestrator.Decision.KeepsRecord: idle_lease_retention after the
// release); until then it shows the key free. A busy key's moments between lock
// cycles so cost neither a deletion nor a re-creation, and with status writes at
// most once per ProjectLockUpdateInterval its free moments cost few writes
// (docs/benchmarks.md, step 12). A status change within ProjectLockUpdateInterval
// of the last write is left for later: it returns when to write it.
func (r *LockReconciler) reconcileProjectLock(ctx context.Context, pl *metav1.PartialObjectMetadata, ref orchestrator.LockRef, d orchestrator.Decision, now time.Time) (time.Time, error) {
	if pl == nil {
		return time.Time{}, nil
	}
	nn := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
	switch {
	case pl.DeletionTimestamp != nil:
		// The force unlock is served (the Lease records it): let the object go.
		// If requests remain, the next reconcile creates a fresh ProjectLock.
		r.shown.forget(nn)
		return time.Time{}, r.letGo(ctx, nn, pl)
	case d.Idle && !d.KeepsRecord:
		if err := removeFinalizer(ctx, r.Client, pl); err != nil {
			return time.Time{}, err
		}
		if err := r.Client.Delete(ctx, pl, client.Preconditions{UID: &pl.UID}); err != nil && !apierrors.IsNotFound(err) {
			return time.Time{}, fmt.Errorf("deleting idle ProjectLock %s: %w", ref, err)
		}
		r.shown.forget(nn)
		if len(pl.Finalizers) == 0 {
			r.gone.add(nn, pl.UID) // nothing held it: deleted at once
		}
		return time.Time{}, nil
	}
	known, key, err := r.knownStatus(ctx, nn, pl)
	if err != nil {
		return time.Time{}, err
	}
	if ref.Key == (lockkey.Key{}) {
		if key == (lockkey.Key{}) {
			// Known from memory, but no decision since the start knew the
			// key: its spec says it.
			if known, key, err = r.readStatus(ctx, nn, pl); err != nil {
				return time.Time{}, err
			}
		}
		ref.Key = key
	}
	status := projectLockStatus(pl.Generation, ref, d, now, known.lockedCondition())
	digest := statusDigest(status)
	if digest == known.digest {
		return time.Time{}, nil
	}
	if due := known.at.Add(r.ProjectLockUpdateInterval); !known.at.IsZero() && now.Before(due) {
		// A busy key changes hands several times a second: show its latest state
		// once the interval is over rather than every state. A force unlock stays
		// pinned to the hold the status shows (see orchestrator.KeyInput), and
		// the client library waits for the status to show the holder it read.
		return due, nil
	}
	// The status subresource takes the status alone: the spec and metadata sent
	// are the API server's business, but for the resourceVersion (the status is
	// written over the version it was known at, which the cache may not show
	// yet) and the UID (never another object of the same name).
	obj := lockingv1alpha1.NewProjectLock(ref.Namespace, ref.Key)
	obj.Name, obj.UID, obj.ResourceVersion, obj.Finalizers = nn.Name, pl.UID, known.version, nil
	obj.Status = status
	if err := r.Client.Status().Update(ctx, obj, client.FieldOwner(lockingv1alpha1.FieldManager)); err != nil {
		if apierrors.IsNotFound(err) {
			return time.Time{}, nil // gone: the next reconcile finds out
		}
		// A conflict too is returned: the key is decided again from the newer
		// ProjectLock (the echo of this operator's own writes wakes nobody, so
		// nothing else may).
		return time.Time{}, fmt.Errorf("writing the status of ProjectLock %s: %w", ref, err)
	}
	r.shown.set(nn, shownOf(obj, status, now))
	r.own.wrote(kindProjectLock, nn, obj.ResourceVersion,
		r.cacheShows(projectLockMeta(), nn, pl.UID, obj.ResourceVersion))
	return time.Time{}, nil
}

// SetupWithManager registers the reconciler: it reconciles ProjectLock names, and is
// woken by the key's LockRequests, its Lease and the deadlock detector; never by
// the echo of its own write (see ownWrites). It also adds the statusPrimer, which
// learns the ProjectLocks' statuses on every replica once the cache has synced.
func (r *LockReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	if r.Wake == nil {
		r.Wake = make(chan event.GenericEvent, 1024)
	}
	if err := mgr.Add(statusPrimer{r: r, cache: mgr.GetCache()}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("lock").
		// ProjectLocks' metadata only: their status is known from shownStatus.
		For(&lockingv1alpha1.ProjectLock{}, builder.OnlyMetadata, builder.WithPredicates(r.notEcho(kindProjectLock))).
		Watches(&lockingv1alpha1.LockRequest{}, r.requestHandler(),
			builder.WithPredicates(r.notEcho(kindLockRequest))).
		Watches(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(leaseToLock),
			builder.WithPredicates(predicate.NewPredicateFuncs(isOurLease), r.notEcho(kindLease))).
		WatchesRawSource(source.Channel(r.Wake, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// The kinds of objects whose own writes are told apart (ownWrites).
const (
	kindLease       = "Lease"
	kindLockRequest = "LockRequest"
	kindProjectLock = "ProjectLock"
)

// notEcho drops the create and update events of objects of kind that bring exactly
// what this operator last wrote. Deletes always pass, and clear what was written.
// Every event also tells the memories of written objects that the cache now shows
// that version, so that they keep nothing the cache has.
func (r *LockReconciler) notEcho(kind string) predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !r.cached(kind, e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool { return !r.cached(kind, e.ObjectNew) },
		DeleteFunc: func(e event.DeleteEvent) bool {
			r.cached(kind, e.Object)
			return true
		},
		GenericFunc: func(event.GenericEvent) bool { return true },
	}
}

// cacheShows returns whether the cache shows object nn (of obj's type, with uid
// unless "") at resourceVersion version or later: the memories of written objects
// keep nothing the cache already has.
func (r *LockReconciler) cacheShows(obj client.Object, nn types.NamespacedName, uid types.UID, version string) func() bool {
	return func() bool {
		if err := r.Client.Get(context.Background(), nn, obj); err != nil {
			return false
		}
		return (uid == "" || obj.GetUID() == uid) && !leasebackend.Newer(version, obj.GetResourceVersion())
	}
}

// cached records that the cache now shows obj, of kind, and reports whether obj
// is the echo of this operator's own last write.
func (r *LockReconciler) cached(kind string, obj client.Object) bool {
	switch o := obj.(type) {
	case *coordinationv1.Lease:
		if r.LeaseSeen != nil {
			r.LeaseSeen(o)
		}
	case *lockingv1alpha1.LockRequest:
		r.written.seen(types.NamespacedName{Namespace: o.Namespace, Name: indexes.LockName(o)}, o)
	}
	return r.own.isEcho(kind, obj)
}

// requestHandler wakes the key of a LockRequest on every change, and remembers the
// UIDs of deleted ones (see deletedRequests).
func (r *LockReconciler) requestHandler() handler.EventHandler {
	wake := handler.EnqueueRequestsFromMapFunc(requestToLock)
	return handler.Funcs{
		CreateFunc: wake.Create,
		UpdateFunc: wake.Update,
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			// Recorded before the key is woken, so that its decision finds it.
			r.deleted.add(e.Object.GetUID(), r.Orchestrator.Clock().Now())
			wake.Delete(ctx, e, q)
		},
		GenericFunc: wake.Generic,
	}
}

func requestToLock(_ context.Context, obj client.Object) []reconcile.Request {
	lr, ok := obj.(*lockingv1alpha1.LockRequest)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: lr.Namespace, Name: indexes.LockName(lr)}}}
}

func leaseToLock(_ context.Context, obj client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(obj)}}
}

// isOurLease tells a lock's Lease: one with the lock label, or one without labels,
// which the operator's cache (operator.CacheOptions: it selects Leases by that
// label) makes of a Lease whose labels are only the operator's own.
func isOurLease(obj client.Object) bool {
	labels := obj.GetLabels()
	_, ok := labels[lockingv1alpha1.LockNameLabel]
	return ok || labels == nil
}
