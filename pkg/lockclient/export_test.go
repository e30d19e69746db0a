package lockclient

import (
	"context"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// WaitFor lets the tests wait on the client's own watch loop.
func WaitFor(ctx context.Context, c *Client, name string, cond func(*lockingv1alpha1.LockRequest) (bool, error)) (*lockingv1alpha1.LockRequest, error) {
	return c.waitFor(ctx, name, cond)
}
