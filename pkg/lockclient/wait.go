package lockclient

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// condition inspects the latest copy of a request (nil once it is gone) and says
// whether the wait is over.
type condition func(lr *lockingv1alpha1.LockRequest) (done bool, err error)

// waitFor reads the named request and then follows it on a watch until cond is done,
// cond fails or ctx ends; it returns the last copy seen (nil when gone).
func (c *Client) waitFor(ctx context.Context, name string, cond condition) (*lockingv1alpha1.LockRequest, error) {
	return waitObject(ctx, c, name, "LockRequest", func() *lockingv1alpha1.LockRequest { return &lockingv1alpha1.LockRequest{} },
		&lockingv1alpha1.LockRequestList{}, cond)
}

// waitForLock is waitFor for the named ProjectLock.
func (c *Client) waitForLock(ctx context.Context, name string, cond func(*lockingv1alpha1.ProjectLock) (bool, error)) (*lockingv1alpha1.ProjectLock, error) {
	return waitObject(ctx, c, name, "ProjectLock", func() *lockingv1alpha1.ProjectLock { return &lockingv1alpha1.ProjectLock{} },
		&lockingv1alpha1.ProjectLockList{}, cond)
}

// waitObject reads the named object of kind (newObj makes an empty one, list is the
// kind's list) and then follows it on a watch until cond is done, cond fails or ctx
// ends, and returns the last copy seen (nil when gone). A watch that closes or
// expires (410 Gone) is resumed from a fresh read, so no change is missed and nothing
// polls.
func waitObject[T client.Object](ctx context.Context, c *Client, name, kind string, newObj func() T, list client.ObjectList, cond func(T) (bool, error)) (T, error) {
	var zero T
	for {
		obj, err := readObject(ctx, c, name, kind, newObj)
		if err != nil {
			return zero, err
		}
		if done, err := cond(obj); done || err != nil {
			return obj, err
		}
		rv := ""
		if any(obj) != any(zero) {
			rv = obj.GetResourceVersion()
		}
		last, done, err := followObject(ctx, c, name, kind, rv, list, obj, cond)
		if done || err != nil {
			return last, err
		}
		// The watch ended without an answer: read again and watch again.
	}
}

// readObject reads the named object, or returns nil (the zero T) when it is gone.
func readObject[T client.Object](ctx context.Context, c *Client, name, kind string, newObj func() T) (T, error) {
	var zero T
	obj := newObj()
	err := c.c.Get(ctx, types.NamespacedName{Namespace: c.namespace, Name: name}, obj)
	switch {
	case apierrors.IsNotFound(err):
		return zero, nil
	case err != nil:
		return zero, wrap(err, "reading %s %s/%s", kind, c.namespace, name)
	}
	return obj, nil
}

// followObject watches the named object from resourceVersion rv. It returns done
// when cond is, and done=false with no error when the watch closed or expired, to be
// resumed.
func followObject[T client.Object](ctx context.Context, c *Client, name, kind, rv string, list client.ObjectList, last T, cond func(T) (bool, error)) (T, bool, error) {
	var zero T
	w, err := c.c.Watch(ctx, list,
		client.InNamespace(c.namespace),
		&client.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", name),
			Raw:           &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true},
		})
	if err != nil {
		if ctx.Err() != nil {
			return last, false, ctx.Err()
		}
		return last, false, wrap(err, "watching %s %s/%s", kind, c.namespace, name)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return last, false, ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return last, false, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				obj, ok := ev.Object.(T)
				if !ok {
					continue
				}
				last = obj
			case watch.Deleted:
				last = zero
			case watch.Error:
				if ctx.Err() != nil {
					// The stream broke because ctx ended ("unable to decode an
					// event from the watch stream: context canceled"): the
					// caller is told why it stopped, not how.
					return last, false, ctx.Err()
				}
				// Usually 410 Gone: the resourceVersion is too old. Read afresh.
				if st := apierrors.FromObject(ev.Object); !apierrors.IsGone(st) && !apierrors.IsResourceExpired(st) {
					return last, false, wrap(st, "watching %s %s/%s", kind, c.namespace, name)
				}
				return last, false, nil
			default: // bookmarks
				continue
			}
			if done, err := cond(last); done || err != nil {
				return last, done, err
			}
		}
	}
}

// get reads the named request; a NotFound error is returned wrapped.
func (c *Client) get(ctx context.Context, name string) (*lockingv1alpha1.LockRequest, error) {
	lr := &lockingv1alpha1.LockRequest{}
	if err := c.c.Get(ctx, types.NamespacedName{Namespace: c.namespace, Name: name}, lr); err != nil {
		return nil, wrap(err, "reading LockRequest %s/%s", c.namespace, name)
	}
	return lr, nil
}

// deleteAndWait deletes the named request (only the object with uid, when uid is
// set) and waits until it is gone. This client makes requests without finalizers, so
// that is at once unless another finalizer holds it (a request made by an operator
// release that still set one is let go by the operator). A request already gone is
// fine. The operator releases the Lease when it sees the holder gone; no other
// request can be granted the key before that compare-and-swap.
func (c *Client) deleteAndWait(ctx context.Context, name string, uid types.UID) error {
	deleted, err := c.deleteRequest(ctx, name, uid)
	if err != nil || !deleted {
		return err
	}
	_, err = c.waitFor(ctx, name, func(lr *lockingv1alpha1.LockRequest) (bool, error) {
		return lr == nil || (uid != "" && lr.UID != uid), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for LockRequest %s/%s to be gone (finalizers hold it): %w", c.namespace, name, err)
	}
	return nil
}

// deleteRequest deletes the named request (only the object with uid, when uid is
// set). deleted is false when there was nothing of ours to delete: the request is
// gone already, or the object of that name is a newer one.
func (c *Client) deleteRequest(ctx context.Context, name string, uid types.UID) (deleted bool, err error) {
	lr := &lockingv1alpha1.LockRequest{ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: name}}
	var opts []client.DeleteOption
	if uid != "" {
		opts = append(opts, client.Preconditions{UID: &uid})
	}
	err = c.c.Delete(ctx, lr, opts...)
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case apierrors.IsConflict(err) && uid != "":
		// The precondition failed: the object of that name is a newer one, not ours.
		return false, nil
	case err != nil:
		return false, wrap(err, "deleting LockRequest %s/%s", c.namespace, name)
	}
	return true, nil
}

// cleanup withdraws a request after the caller's context has ended, with a context of
// its own, and joins any failure to cause.
func (c *Client) cleanup(ctx context.Context, lr *lockingv1alpha1.LockRequest, cause error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cleanupTimeout)
	defer cancel()
	if err := c.deleteAndWait(cctx, lr.Name, lr.UID); err != nil {
		return errors.Join(cause, fmt.Errorf("withdrawing LockRequest %s/%s: %w", c.namespace, lr.Name, err))
	}
	return cause
}
