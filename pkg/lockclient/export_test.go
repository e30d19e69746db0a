package lockclient

import (
	"context"

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
