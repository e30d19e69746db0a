package main

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// settle waits, on watches, until the namespace has no lock Lease and no
// ProjectLock left. Requests carry no finalizer, so a released request is gone
// before the operator has released its Lease (and let its ProjectLock go, if it had
// one): a measurement that counts the operator's writes must wait for those, or
// its last cycles' would fall outside it and the next step's inside.
func settle(ctx context.Context, c client.WithWatch, namespace string) error {
	req, err := labels.NewRequirement(lockingv1alpha1.LockNameLabel, selection.Exists, nil)
	if err != nil {
		return err
	}
	leases := client.MatchingLabelsSelector{Selector: labels.NewSelector().Add(*req)}
	if err := waitNone(ctx, c, namespace, "lock Leases", func() client.ObjectList { return &coordinationv1.LeaseList{} }, leases); err != nil {
		return err
	}
	return waitNone(ctx, c, namespace, "ProjectLocks", func() client.ObjectList { return &lockingv1alpha1.ProjectLockList{} })
}

// waitNone lists the objects newList makes a list of, and watches them from that
// list until none is left.
func waitNone(ctx context.Context, c client.WithWatch, namespace, what string, newList func() client.ObjectList, opts ...client.ListOption) error {
	opts = append(opts, client.InNamespace(namespace))
	for {
		list := newList()
		if err := c.List(ctx, list, opts...); err != nil {
			return fmt.Errorf("listing the %s: %w", what, err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return err
		}
		left := map[string]bool{}
		for _, item := range items {
			if obj, ok := item.(client.Object); ok {
				left[obj.GetName()] = true
			}
		}
		if len(left) == 0 {
			return nil
		}
		w, err := c.Watch(ctx, newList(), append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.GetResourceVersion()}})...)
		if err != nil {
			return fmt.Errorf("watching the %s: %w", what, err)
		}
		done, err := drain(ctx, w, left, what)
		w.Stop()
		if done || err != nil {
			return err
		}
		// The watch closed or expired: list again.
	}
}

// drain follows w until every object of left is deleted (done) or the watch ends.
func drain(ctx context.Context, w watch.Interface, left map[string]bool, what string) (bool, error) {
	for {
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("waiting for the operator to let %d %s go: %w", len(left), what, ctx.Err())
		case ev, ok := <-w.ResultChan():
			if !ok || ev.Type == watch.Error {
				return false, nil
			}
			obj, isObj := ev.Object.(client.Object)
			switch {
			case !isObj || ev.Type == watch.Bookmark:
				continue
			case ev.Type == watch.Deleted:
				delete(left, obj.GetName())
			default:
				left[obj.GetName()] = true
			}
			if len(left) == 0 {
				return true, nil
			}
		}
	}
}
