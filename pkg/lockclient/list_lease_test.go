package lockclient_test

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// TestListShowsAGrantTheLeaseMakes: the operator grants with a compare-and-swap on
// the key's Lease and writes the request's status one write later; Lock and TryLock
// return on the Lease, so List and GetLock, asked right after, must show that
// holder too (the Redis gateway's List after TryLock did not). With nobody
// deciding in this namespace, the test writes the Lease as the operator would.
func TestListShowsAGrantTheLeaseMakes(t *testing.T) {
	ctx := deadline(t)
	c := newClientIn(t, unattendedNamespace)
	lr := &lockingv1alpha1.LockRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: unattendedNamespace, Name: "lease-grant-pr7"},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "lease-grant"},
			Pull:    &lockingv1alpha1.PullRequestRef{Number: 7}, User: lockingv1alpha1.UserRef{Username: "alice"},
		},
	}
	if err := env.Client.Create(ctx, lr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, lr) })
	key := lr.Spec.Key()

	holderOf := func() (list, get *lockingv1alpha1.LockRequest) {
		t.Helper()
		locks, err := c.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range locks {
			if l.Key == key {
				list = l.Holder
			}
		}
		info, err := c.GetLock(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if info != nil {
			get = info.Holder
		}
		return list, get
	}
	if list, get := holderOf(); list != nil || get != nil {
		t.Fatalf("an undecided request shows as the holder (List %v, GetLock %v)", list, get)
	}

	now := metav1.NewMicroTime(time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC))
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: unattendedNamespace, Name: key.ObjectName(),
			Labels:      map[string]string{lockingv1alpha1.LockNameLabel: key.ObjectName()},
			Annotations: map[string]string{lockingv1alpha1.OwnerAnnotation: lr.Spec.Owner()}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(lr.Name + "/" + string(lr.UID)),
			AcquireTime: &now, RenewTime: &now, LeaseTransitions: ptr.To(int32(0))},
	}
	if err := env.Client.Create(ctx, lease); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, lease) })

	list, get := holderOf()
	for what, h := range map[string]*lockingv1alpha1.LockRequest{"List": list, "GetLock": get} {
		if h == nil || h.Name != lr.Name {
			t.Errorf("%s: holder %v; want %s, whom the Lease names", what, h, lr.Name)
			continue
		}
		st := lockclient.StatusOf(h)
		if st.State != lockclient.StateAcquired || h.Status.FencingToken != lease.ResourceVersion {
			t.Errorf("%s: state %s, token %q; want Acquired with the Lease write's version %s", what, st.State, h.Status.FencingToken, lease.ResourceVersion)
		}
	}
}
