package leasebackend

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// Classify marks an API error with the orchestrator's sentinel for it, so that the
// orchestrator counts and reports it for what it is: a conflict (409) wraps
// orchestrator.ErrConflict, a timeout (504, or the server's "timeout" status)
// wraps orchestrator.ErrTimeout. Other errors, and nil, are returned as they are.
func Classify(err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsConflict(err):
		return fmt.Errorf("%w: %w", orchestrator.ErrConflict, err)
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err):
		return fmt.Errorf("%w: %w", orchestrator.ErrTimeout, err)
	}
	return err
}
