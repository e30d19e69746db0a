package lockclient

import (
	"context"

	coordinationv1 "k8s.io/api/coordination/v1"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// WaitFor lets the tests wait on the client's own watch loop.
func WaitFor(ctx context.Context, c *Client, name string, cond func(*lockingv1alpha1.LockRequest) (bool, error)) (*lockingv1alpha1.LockRequest, error) {
	return c.waitFor(ctx, name, cond)
}

// DeletePinned lets the tests force-unlock from a LockInfo read earlier, as if the
// key changed hands between ForceUnlock's read and its delete.
func DeletePinned(ctx context.Context, c *Client, info *LockInfo) (*lockingv1alpha1.ProjectLock, error) {
	return c.deletePinned(ctx, info)
}

// WaitForLock lets the tests wait on the ProjectLock of a key with the client's own
// watch loop: the ProjectLock's status is written after the request's, so a wait on
// the request alone can miss it.
func WaitForLock(ctx context.Context, c *Client, name string, cond func(*lockingv1alpha1.ProjectLock) (bool, error)) (*lockingv1alpha1.ProjectLock, error) {
	return c.waitForLock(ctx, name, cond)
}

// LostHold lets the tests ask whether a status shows the hold held lost.
func LostHold(held *Status, cur *lockingv1alpha1.LockRequest) *Status { return lostHold(held, cur) }

// GrantsAnew lets the tests check the rule by which a Lease write is a grant: the
// write that turned the Lease before (nil: none) into lease.
func GrantsAnew(before, lease *coordinationv1.Lease, id string) bool {
	var was holdOf
	if before != nil {
		was = holdOfLease(before)
	}
	grant, _ := grantsAnew(was, lease, id)
	return grant
}
