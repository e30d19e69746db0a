package testenv

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// ReadCounter is a client that counts the kinds of its reads that tell a read of
// one key by name from a read of the namespace: the lists of LockRequests (and
// which requests they returned), the lists of Leases, and the reads of single
// Leases, a look at one key's holder.
type ReadCounter struct {
	client.WithWatch
	lists      atomic.Int32
	leaseGets  atomic.Int32
	leaseLists atomic.Int32

	mu     sync.Mutex
	listed []string // names of the LockRequests the lists returned, in order
}

// List counts a list of LockRequests or Leases, then lists, and records the names
// of the LockRequests it returns.
func (c *ReadCounter) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	switch list.(type) {
	case *lockingv1alpha1.LockRequestList:
		c.lists.Add(1)
	case *coordinationv1.LeaseList:
		c.leaseLists.Add(1)
	}
	err := c.WithWatch.List(ctx, list, opts...)
	if requests, ok := list.(*lockingv1alpha1.LockRequestList); ok && err == nil {
		c.mu.Lock()
		for i := range requests.Items {
			c.listed = append(c.listed, requests.Items[i].Name)
		}
		c.mu.Unlock()
	}
	return err
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

// LeaseLists returns how many lists of Leases the client has made.
func (c *ReadCounter) LeaseLists() int { return int(c.leaseLists.Load()) }

// LeaseGets returns how many Leases the client has read one by one.
func (c *ReadCounter) LeaseGets() int { return int(c.leaseGets.Load()) }

// ListedRequests returns the names of the LockRequests that the lists made since
// from returned (from: a length it returned before, or 0), in order, with repeats.
func (c *ReadCounter) ListedRequests(from int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.listed[min(from, len(c.listed)):])
}
