package lockclient_test

import (
	"context"
	"errors"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// TestAWaitEndedByItsContextSaysSo: when the caller's context ends, client-go's
// watch stream fails too ("unable to decode an event from the watch stream:
// context canceled") and may deliver that error before the wait sees its context
// done. Either way the wait returns the context's error, so that a cancelled Lock
// reports context.Canceled (TestCancelledLockWithdrawsItsRequest met the other
// order now and then). Both orders are equally likely, so the rounds leave the old
// behaviour no real chance to pass.
func TestAWaitEndedByItsContextSaysSo(t *testing.T) {
	for range 32 {
		w := watch.NewFakeWithChanSize(1, false)
		kc := interceptor.NewClient(fake.NewClientBuilder().WithScheme(lockclient.NewScheme()).Build(), interceptor.Funcs{
			Watch: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) (watch.Interface, error) {
				return w, nil
			},
		})
		ctx, cancel := context.WithCancel(t.Context())
		waiting := func(*lockingv1alpha1.LockRequest) (bool, error) { return false, nil }
		// Both are ready when the wait first looks: the context ended, and the
		// stream's error waits in its channel.
		cancel()
		w.Error(&apierrors.NewInternalError(errors.New("unable to decode an event from the watch stream: context canceled")).ErrStatus)
		_, err := lockclient.WaitFor(ctx, lockclient.New(kc, "atlantis"), "pr1", waiting)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a wait whose context ended returned %v, want context.Canceled", err)
		}
	}
}
