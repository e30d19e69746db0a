package operator

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
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
//     them.
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

// stripLockRequest drops what the operator never reads from a cached LockRequest.
func stripLockRequest(in any) (any, error) {
	lr, ok := in.(*lockingv1alpha1.LockRequest)
	if !ok {
		return in, nil // a DeletedFinalStateUnknown tombstone: its object was stripped before
	}
	stripMeta(lr)
	lr.Spec.User.Teams = nil
	if lr.Spec.Pull != nil {
		lr.Spec.Pull.Author, lr.Spec.Pull.HeadCommit = "", ""
	}
	return lr, nil
}

// stripProjectLock drops what the operator never reads from a cached ProjectLock.
func stripProjectLock(in any) (any, error) {
	if pl, ok := in.(*lockingv1alpha1.ProjectLock); ok {
		stripMeta(pl)
	}
	return in, nil
}

// stripLease drops what a cached lock Lease repeats of every write the operator
// makes: its managed fields, and its labels when they are only the operator's own.
func stripLease(in any) (any, error) {
	lease, ok := in.(*coordinationv1.Lease)
	if !ok {
		return in, nil // a tombstone, stripped before
	}
	lease.ManagedFields = nil
	if leasebackend.OnlyOwnLabels(lease) {
		lease.Labels = nil
	}
	return lease, nil
}

// stripMeta drops managed fields, labels and annotations.
func stripMeta(obj client.Object) {
	obj.SetManagedFields(nil)
	obj.SetLabels(nil)
	obj.SetAnnotations(nil)
}
