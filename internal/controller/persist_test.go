package controller

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
	"github.com/runatlantis/atlantis-lock-operator/internal/scheme"
)

// TestPersistCountsAGrantWhoseRequestIsGone: a client that learns of its grant from
// the Lease may release (delete its request) before the operator writes the grant
// to the request's status. That write finds the request gone; the grant still
// happened, on the Lease, so it is reported as persisted (counted, told to the
// event bus and the audit trail) once. A waiter whose status write finds it gone
// has withdrawn: nothing to report. Both are remembered as gone.
func TestPersistCountsAGrantWhoseRequestIsGone(t *testing.T) {
	request := func(name string) *lockingv1alpha1.LockRequest {
		return &lockingv1alpha1.LockRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: "atlantis", Name: name, UID: types.UID("uid-" + name)},
			Spec: lockingv1alpha1.LockRequestSpec{Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "vpc"},
				User: lockingv1alpha1.UserRef{Username: "alice"}},
		}
	}
	granted, waiter := request("granted"), request("waiter")
	c := fake.NewClientBuilder().WithScheme(scheme.New()).
		WithObjects(granted.DeepCopy(), waiter.DeepCopy()).
		WithStatusSubresource(&lockingv1alpha1.LockRequest{}).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourceUpdate: func(_ context.Context, _ client.Client, _ string, obj client.Object, _ ...client.SubResourceUpdateOption) error {
				return apierrors.NewNotFound(lockingv1alpha1.GroupVersion.WithResource("lockrequests").GroupResource(), obj.GetName())
			},
		}).Build()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	r := &LockReconciler{Client: c, Orchestrator: orchestrator.New(nil, clk, orchestrator.DefaultConfig())}
	ref := orchestrator.LockRef{Namespace: "atlantis", Name: "acme-infra-vpc-default-x"}
	outs := []orchestrator.Outcome{
		{Request: &orchestrator.Request{ID: "granted"}, State: orchestrator.RequestState{Phase: orchestrator.PhaseAcquired,
			Reason: lockingv1alpha1.ReasonAcquired, FencingToken: "41", AcquiredAt: clk.Now()}},
		{Request: &orchestrator.Request{ID: "waiter"}, State: orchestrator.RequestState{Phase: orchestrator.PhaseQueued,
			Reason: lockingv1alpha1.ReasonQueued, Position: 1, EnqueuedAt: clk.Now()}},
	}
	objs := map[string]*lockingv1alpha1.LockRequest{"granted": granted, "waiter": waiter}
	stored, err := r.persist(ref, objs)(context.Background(), outs)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].Request.ID != "granted" {
		t.Fatalf("persisted %+v; want the grant alone", stored)
	}
	// Both are known gone: the next decision leaves them out, and the release
	// of the grant needs no read past the cache to confirm it.
	lock := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
	for _, lr := range []*lockingv1alpha1.LockRequest{granted, waiter} {
		if !r.gone.has(lock, lr.UID) || !r.deleted.has(lr.UID) {
			t.Errorf("%s is not remembered as gone (gone %t, deleted %t)", lr.Name, r.gone.has(lock, lr.UID), r.deleted.has(lr.UID))
		}
	}
}
