package testenv

import (
	"context"
	"sync/atomic"

	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// RequestListCounter is a client that counts the lists of LockRequests it makes: the
// reads of a whole namespace, which a read of one key by name does without.
type RequestListCounter struct {
	client.WithWatch
	lists atomic.Int32
}

// List counts a list of LockRequests, then lists.
func (c *RequestListCounter) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*lockingv1alpha1.LockRequestList); ok {
		c.lists.Add(1)
	}
	return c.WithWatch.List(ctx, list, opts...)
}

// RequestLists returns how many lists of LockRequests the client has made.
func (c *RequestListCounter) RequestLists() int { return int(c.lists.Load()) }
