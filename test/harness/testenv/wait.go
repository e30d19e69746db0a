package testenv

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// WaitForProjectLock follows the ProjectLock namespace/name on a watch until cond
// holds for it (nil while it does not exist) or ctx ends, and returns the copy cond
// accepted. A key's ProjectLock comes after its first grant (project_lock_delay),
// so a test that reads one must wait for it rather than list once.
func (e *Env) WaitForProjectLock(ctx context.Context, namespace, name string, cond func(*lockingv1alpha1.ProjectLock) bool) (*lockingv1alpha1.ProjectLock, error) {
	c, err := client.NewWithWatch(e.Config, client.Options{Scheme: e.Scheme})
	if err != nil {
		return nil, err
	}
	sel := client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", name)}
	for {
		var list lockingv1alpha1.ProjectLockList
		if err := c.List(ctx, &list, client.InNamespace(namespace), sel); err != nil {
			return nil, err
		}
		var cur *lockingv1alpha1.ProjectLock
		if len(list.Items) > 0 {
			cur = &list.Items[0]
		}
		if cond(cur) {
			return cur, nil
		}
		w, err := c.Watch(ctx, &lockingv1alpha1.ProjectLockList{}, client.InNamespace(namespace), sel,
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			return nil, err
		}
		got, done, err := follow(ctx, w, cond)
		w.Stop()
		if done || err != nil {
			return got, err
		}
		// The watch closed or expired: list again.
	}
}

// follow reads w until cond holds for an object it brings (done), the watch ends
// (not done, to be resumed from a fresh list) or ctx does.
func follow(ctx context.Context, w watch.Interface, cond func(*lockingv1alpha1.ProjectLock) bool) (*lockingv1alpha1.ProjectLock, bool, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, false, fmt.Errorf("waiting for a ProjectLock: %w", ctx.Err())
		case ev, ok := <-w.ResultChan():
			if !ok || ev.Type == watch.Error {
				return nil, false, nil
			}
			pl, isPL := ev.Object.(*lockingv1alpha1.ProjectLock)
			switch {
			case !isPL:
				continue
			case ev.Type == watch.Deleted:
				pl = nil
			}
			if cond(pl) {
				return pl, true, nil
			}
		}
	}
}
