package testenv

import (
	"context"
	"sync/atomic"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// ReadCounter is a client that counts two kinds of its reads: the lists of
// LockRequests, the reads of a whole namespace that a read of one key by name does
// without, and the reads of single Leases, a look at one key's holder.
type ReadCounter struct {
	client.WithWatch
	lists     atomic.Int32
	leaseGets atomic.Int32
}

// List counts a list of LockRequests, then lists.
func (c *ReadCounter) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*lockingv1alpha1.LockRequestList); ok {
		c.lists.Add(1)
	}
	return c.WithWatch.List(ctx, list, opts...)
}

// Get counts a read of a Lease, then reads.
func (c *ReadCounter) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*coordinationv1.Lease); ok {
		c.leaseGets.Add(1)
	}
	return c.WithWatch.Get(ctx, key, obj, opts...)
}

// RequestLists returns how many lists of LockRequests the client has made.
func (c *ReadCounter) RequestLists() int { return int(c.lists.Load()) }

// LeaseGets returns how many Leases the client has read one by one.
func (c *ReadCounter) LeaseGets() int { return int(c.leaseGets.Load()) }
