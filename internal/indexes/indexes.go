// Package indexes defines the informer-cache index of the operator, in one place
// that both the manager and the tests set up.
package indexes

import (
	"context"
	"fmt"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// LockRequestLockName indexes LockRequests by the name of their key's ProjectLock,
// computed from the spec, so that a key's requests are found before the operator has
// ever written their status. List them with client.InNamespace and
// client.MatchingFields{LockRequestLockName: name}.
const LockRequestLockName = "locking.runatlantis.io/lock-name"

// LockName returns the name of the ProjectLock (and Lease) a request's key maps to.
func LockName(lr *lockingv1alpha1.LockRequest) string {
	return lr.Spec.Key().ObjectName()
}

// Setup registers every index with the informers of c.
//
// The index is added to the informer itself, under the name and with the
// "<namespace>/<value>" keys that controller-runtime's cache looks up for a List
// with a namespace and a field selector. controller-runtime's own IndexField
// files every object a second time, under all namespaces, for Lists across
// namespaces, which the operator never makes: at 10,000 keys with two requests
// each that copy was about 5 MB of the operator's heap (docs/benchmarks.md,
// issue 13). TestLockRequestsByLockName (internal/controller) lists through it.
func Setup(ctx context.Context, c cache.Cache) error {
	informer, err := c.GetInformer(ctx, &lockingv1alpha1.LockRequest{})
	if err != nil {
		return fmt.Errorf("getting the LockRequest informer: %w", err)
	}
	err = informer.AddIndexers(toolscache.Indexers{fieldIndexName(LockRequestLockName): func(obj any) ([]string, error) {
		lr, ok := obj.(*lockingv1alpha1.LockRequest)
		if !ok {
			return nil, nil
		}
		return []string{lr.Namespace + "/" + LockName(lr)}, nil
	}})
	if err != nil {
		return fmt.Errorf("indexing LockRequests by %s: %w", LockRequestLockName, err)
	}
	return nil
}

// fieldIndexName is the name controller-runtime's cache gives the informer index
// of a field selector's field.
func fieldIndexName(field string) string { return "field:" + field }
