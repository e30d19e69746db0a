package operator

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/controller"
	"github.com/runatlantis/atlantis-lock-operator/internal/leasebackend"
)

// CacheOptions keeps the informer caches small, since they hold every LockRequest,
// ProjectLock and lock Lease of the cluster (docs/benchmarks.md, "Scale", measures
// what each of these saves):
//
//   - Leases: only those of lock keys (label locking.runatlantis.io/lock), not
//     node heartbeats or leader elections;
//   - every object: no managedFields;
//   - LockRequests and ProjectLocks: also no labels or annotations (kubectl apply
//     leaves the whole object in an annotation), and LockRequests without the
//     fields the operator never reads (spec.user.teams, spec.pull.author,
//     spec.pull.headCommit). The operator writes these kinds only with status
//     updates, which the API server applies to the status alone, and with patches
//     of the finalizers, so a cached copy without these fields never overwrites
//     them. Of ProjectLocks the operator caches the metadata only (their status
//     follows from the requests and the Lease; see controller.LockReconciler).
//
// Leases keep their annotations (the holder's owner, a force unlock's mark) and
// spec: the operator updates them whole. Their labels map is dropped when it holds
// exactly the two labels every write of the operator sets again
// (leasebackend.OnlyOwnLabels); a label someone else added keeps the map.
func CacheOptions() cache.Options {
	ours, err := labels.NewRequirement(lockingv1alpha1.LockNameLabel, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant requirement; it cannot fail
	}
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&coordinationv1.Lease{}:        {Label: labels.NewSelector().Add(*ours), Transform: stripLease},
			&lockingv1alpha1.LockRequest{}: {Transform: stripLockRequest},
			&lockingv1alpha1.ProjectLock{}: {Transform: stripProjectLock},
		},
	}
}

var (
	_ toolscache.TransformFunc = stripLockRequest
	_ toolscache.TransformFunc = stripProjectLock
	_ toolscache.TransformFunc = stripLease
)

// cached keeps one copy of the strings that recur across the cached objects.
var cached interner

// fixedMessages are the condition messages kept once (lockingv1alpha1.FixedMessages).
var fixedMessages = func() map[string]bool {
	m := make(map[string]bool, len(lockingv1alpha1.FixedMessages))
	for _, msg := range lockingv1alpha1.FixedMessages {
		m[msg] = true
	}
	return m
}()

// grantNoticeAnnotations are the annotations of a cached LockRequest whose client
// learns of its grant from the Lease, by the annotation's value: the only ones the
// operator reads.
var grantNoticeAnnotations = map[string]map[string]string{
	lockingv1alpha1.GrantNoticeLease:     {lockingv1alpha1.GrantNoticeAnnotation: lockingv1alpha1.GrantNoticeLease},
	lockingv1alpha1.GrantNoticeLeaseOnly: {lockingv1alpha1.GrantNoticeAnnotation: lockingv1alpha1.GrantNoticeLeaseOnly},
}

// stripLockRequest drops what the operator never reads from a cached LockRequest,
// and shares the strings that recur. The status fields derived from the spec go
// too (controller.DropDerivedRequestStatus).
func stripLockRequest(in any) (any, error) {
	lr, ok := in.(*lockingv1alpha1.LockRequest)
	if !ok {
		return in, nil // a DeletedFinalStateUnknown tombstone: its object was stripped before
	}
	notice := grantNoticeAnnotations[lr.Annotations[lockingv1alpha1.GrantNoticeAnnotation]]
	stripMeta(lr)
	// The one annotation the operator reads (controller.toRequest); every copy
	// with one value shares one map, which readers get deep-copied.
	lr.Annotations = notice
	lr.TypeMeta = metav1.TypeMeta{} // the cache's readers set it again on every copy
	lr.Namespace = cached.of(lr.Namespace)
	spec := &lr.Spec
	spec.Project.Repository = cached.of(spec.Project.Repository)
	spec.Workspace = cached.of(spec.Workspace)
	spec.Priority = lockingv1alpha1.Priority(cached.of(string(spec.Priority)))
	spec.User.Teams = nil
	if spec.Pull != nil {
		spec.Pull.Author, spec.Pull.HeadCommit = "", ""
	}
	controller.DropDerivedRequestStatus(lr)
	shareConditions(lr.Status.Conditions)
	return lr, nil
}

// stripProjectLock drops what the operator never reads from a cached ProjectLock,
// of which it caches the metadata only (controller.LockReconciler), and shares
// the strings that recur: its namespace and finalizer.
func stripProjectLock(in any) (any, error) {
	pl, ok := in.(*metav1.PartialObjectMetadata)
	if !ok {
		return in, nil // a tombstone, stripped before
	}
	stripMeta(pl)
	pl.TypeMeta = metav1.TypeMeta{} // the cache's readers set it again on every copy
	pl.Namespace = cached.of(pl.Namespace)
	for i, f := range pl.Finalizers {
		pl.Finalizers[i] = cached.of(f)
	}
	return pl, nil
}

// shareConditions replaces the strings of conditions that recur (types, statuses,
// reasons, the operator's fixed messages) by shared copies, and lets a message
// repeated by a later condition of the same object (a waiter's Acquired and
// Queued conditions say the same) share the earlier one's.
func shareConditions(conds []metav1.Condition) {
	for i := range conds {
		c := &conds[i]
		c.Type = cached.of(c.Type)
		c.Status = metav1.ConditionStatus(cached.of(string(c.Status)))
		c.Reason = cached.of(c.Reason)
		if fixedMessages[c.Message] {
			c.Message = cached.of(c.Message)
			continue
		}
		for j := range i {
			if conds[j].Message == c.Message {
				c.Message = conds[j].Message
				break
			}
		}
	}
}

// stripLease drops what a cached lock Lease repeats of every write the operator
// makes: its managed fields, and its labels when they are only the operator's own;
// and shares its annotations' names.
func stripLease(in any) (any, error) {
	lease, ok := in.(*coordinationv1.Lease)
	if !ok {
		return in, nil // a tombstone, stripped before
	}
	lease.ManagedFields = nil
	lease.TypeMeta = metav1.TypeMeta{}
	lease.Namespace = cached.of(lease.Namespace)
	if leasebackend.OnlyOwnLabels(lease) {
		lease.Labels = nil
	}
	if len(lease.Annotations) > 0 {
		// Every lock Lease has the same few annotation names: one copy of each.
		shared := make(map[string]string, len(lease.Annotations))
		for k, v := range lease.Annotations {
			shared[cached.of(k)] = v
		}
		lease.Annotations = shared
	}
	return lease, nil
}

// stripMeta drops managed fields, labels and annotations.
func stripMeta(obj client.Object) {
	obj.SetManagedFields(nil)
	obj.SetLabels(nil)
	obj.SetAnnotations(nil)
}
