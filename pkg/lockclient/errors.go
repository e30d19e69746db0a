package lockclient

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
)

// ErrNotInstalled matches (errors.Is) every error that comes from a cluster without
// the locking.runatlantis.io CRDs.
var ErrNotInstalled = errors.New("the locking.runatlantis.io CRDs (LockRequest, ProjectLock) are not installed in this cluster: " +
	"install the atlantis-lock-operator chart or `kubectl apply -f config/crd/bases`")

// wrap returns err with what the client was doing, and ErrNotInstalled too when the
// API server does not know the kind. It returns nil for nil.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("%s: %w: %w", what, ErrNotInstalled, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
