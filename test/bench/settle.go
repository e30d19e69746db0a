package main

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// settle waits, on a watch, until the namespace has no lock Lease left. Requests
// carry no finalizer, so a released request is gone before the operator has
// released its Lease: a measurement that counts the operator's writes must wait
// for those releases, or its last cycles' would fall outside it.
func settle(ctx context.Context, c client.WithWatch, namespace string) error {
	req, err := labels.NewRequirement(lockingv1alpha1.LockNameLabel, selection.Exists, nil)
	if err != nil {
		return err
	}
	sel := client.MatchingLabelsSelector{Selector: labels.NewSelector().Add(*req)}
	for {
		var leases coordinationv1.LeaseList
		if err := c.List(ctx, &leases, client.InNamespace(namespace), sel); err != nil {
			return fmt.Errorf("listing the lock Leases: %w", err)
		}
		left := map[string]bool{}
		for _, l := range leases.Items {
			left[l.Name] = true
		}
		if len(left) == 0 {
			return nil
		}
		w, err := c.Watch(ctx, &coordinationv1.LeaseList{}, client.InNamespace(namespace), sel,
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: leases.ResourceVersion}})
		if err != nil {
			return fmt.Errorf("watching the lock Leases: %w", err)
		}
		done, err := drain(ctx, w, left)
		w.Stop()
		if done || err != nil {
			return err
		}
		// The watch closed or expired: list again.
	}
}

// drain follows w until every Lease of left is deleted (done) or the watch ends.
func drain(ctx context.Context, w watch.Interface, left map[string]bool) (bool, error) {
	for {
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("waiting for the operator to release %d Leases: %w", len(left), ctx.Err())
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, nil
			}
			lease, isLease := ev.Object.(*coordinationv1.Lease)
			switch {
			case ev.Type == watch.Error:
				return false, nil
			case !isLease:
				continue
			case ev.Type == watch.Deleted:
				delete(left, lease.Name)
			default:
				left[lease.Name] = true
			}
			if len(left) == 0 {
				return true, nil
			}
		}
	}
}
