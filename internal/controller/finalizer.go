package controller

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// removeFinalizer removes the operator's finalizer with a JSON patch that tests the
// entry before removing it. Unlike an update, it needs no fresh resourceVersion: a
// cached copy that is behind by a status write (the usual case right after a
// decision) still removes exactly our entry, and never anyone else's.
func removeFinalizer(ctx context.Context, c client.Client, obj client.Object) error {
	i := slices.Index(obj.GetFinalizers(), lockingv1alpha1.ReleaseFinalizer)
	if i < 0 {
		return nil
	}
	patch := fmt.Sprintf(`[{"op":"test","path":"/metadata/finalizers/%d","value":%q},{"op":"remove","path":"/metadata/finalizers/%d"}]`,
		i, lockingv1alpha1.ReleaseFinalizer, i)
	err := c.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, []byte(patch)), client.FieldOwner(lockingv1alpha1.FieldManager))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing the finalizer of %s %s/%s: %w", obj.GetObjectKind().GroupVersionKind().Kind,
			obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}
