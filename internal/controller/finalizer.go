package controller

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

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

// addFinalizer adds the release finalizer to obj with a merge patch of the
// finalizers alone, guarded by obj's resourceVersion. An update would send the whole
// object back, and a spec that the API server stores as written ("8h") but Go
// writes differently ("8h0m0s") would look changed and bump its generation.
func addFinalizer(ctx context.Context, c client.Client, obj client.Object) error {
	orig, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("adding the finalizer: %T is not a client.Object", obj)
	}
	if !controllerutil.AddFinalizer(obj, lockingv1alpha1.ReleaseFinalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})
	err := c.Patch(ctx, obj, patch, client.FieldOwner(lockingv1alpha1.FieldManager))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("adding the finalizer of %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}
