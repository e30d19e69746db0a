// Package indexes defines the informer-cache field indexes of the operator, in one
// place that both the manager and the tests set up.
package indexes

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// LockRequestLockName indexes LockRequests by the name of their key's ProjectLock,
// computed from the spec, so that a key's requests are found before the operator has
// ever written their status.
const LockRequestLockName = "locking.runatlantis.io/lock-name"

// LockName returns the name of the ProjectLock (and Lease) a request's key maps to.
func LockName(lr *lockingv1alpha1.LockRequest) string {
	return lr.Spec.Key().ObjectName()
}

// Setup registers every index with indexer.
func Setup(ctx context.Context, indexer client.FieldIndexer) error {
	return indexer.IndexField(ctx, &lockingv1alpha1.LockRequest{}, LockRequestLockName, func(obj client.Object) []string {
		lr, ok := obj.(*lockingv1alpha1.LockRequest)
		if !ok {
			return nil
		}
		return []string{LockName(lr)}
	})
}
