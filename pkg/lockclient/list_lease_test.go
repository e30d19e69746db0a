package lockclient_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// TestListShowsAGrantTheLeaseMakes: the operator grants with a compare-and-swap on
// the key's Lease and writes the request's status one write later; Lock and TryLock
// return on the Lease, so List and GetLock, asked right after, must show that
// holder too (the Redis gateway's List after TryLock did not). With nobody
// deciding in this namespace, the test writes the Lease as the operator would.
func TestListShowsAGrantTheLeaseMakes(t *testing.T) {
	ctx := deadline(t)
	c := newClientIn(t, unattendedNamespace)
	lr := unattendedRequest(ctx, t, "lease-grant", 7)
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

// TestLeaseHolderOf: the holder read by name follows the key's Lease to the request
// it names, and finds the key free when that request is gone (a Lease kept for
// idle_lease_retention after its holder let go), was made again under its name, or
// ended; a client that may not read Leases gets ErrHolderUnknown, to read the whole
// lock instead. With nobody deciding in this namespace, the test writes the Lease
// and the statuses as the operator would.
func TestLeaseHolderOf(t *testing.T) {
	ctx := deadline(t)
	c := newClientIn(t, unattendedNamespace)
	holderIs := func(what, want string) *lockingv1alpha1.LockRequest {
		t.Helper()
		got, err := c.LeaseHolderOf(ctx, lockkey.New("acme/infra", "holder-by-name", "default", "").ObjectName())
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		switch {
		case want == "" && got != nil:
			t.Fatalf("%s: holder %s, want none", what, got.Name)
		case want != "" && (got == nil || got.Name != want):
			t.Fatalf("%s: holder %v, want %s", what, got, want)
		}
		return got
	}

	holderIs("no Lease", "")
	lr := unattendedRequest(ctx, t, "holder-by-name", 8)
	lease := grantByHand(ctx, t, lr, metav1.NewMicroTime(time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)))
	got := holderIs("the Lease names the request, whose status is not written yet", lr.Name)
	if st := lockclient.StatusOf(got); st.State != lockclient.StateAcquired || st.FencingToken != lease.ResourceVersion {
		t.Fatalf("shown %s with token %q; want Acquired with the Lease's version %s", st.State, st.FencingToken, lease.ResourceVersion)
	}

	// Ended: the operator's status says the request holds no more.
	lr.Status.Conditions = []metav1.Condition{{Type: lockingv1alpha1.ConditionAcquired, Status: metav1.ConditionFalse,
		Reason: lockingv1alpha1.ReasonExpired, Message: "expired", LastTransitionTime: metav1.Now()}}
	if err := env.Client.Status().Update(ctx, lr); err != nil {
		t.Fatal(err)
	}
	holderIs("the request the Lease names has ended", "")

	// Gone, then made again under the same name: the Lease names the first one's UID.
	if err := env.Client.Delete(ctx, lr); err != nil {
		t.Fatal(err)
	}
	holderIs("the request the Lease names is gone", "")
	unattendedRequest(ctx, t, "holder-by-name", 8)
	holderIs("a new request under the name the Lease names", "")

	// A client that may not read Leases.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: unattendedNamespace, Name: "requests-only"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{lockingv1alpha1.GroupVersion.Group}, Resources: []string{"lockrequests"}, Verbs: []string{"get", "list"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: unattendedNamespace, Name: "requests-only"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "requests-only"}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}}
	for _, obj := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "requests-only"}
	kc, err := client.NewWithWatch(cfg, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockclient.New(kc, unattendedNamespace).LeaseHolderOf(ctx, lease.Name)
	if !errors.Is(err, lockclient.ErrHolderUnknown) || !apierrors.IsForbidden(err) {
		t.Fatalf("without access to Leases: %v; want ErrHolderUnknown and the API server's Forbidden", err)
	}
}

// unattendedRequest creates the request of pull for path in acme/infra, named
// "<path>-pr<pull>", in the namespace no operator serves, and deletes it when the
// test ends.
func unattendedRequest(ctx context.Context, t *testing.T, path string, pull int32) *lockingv1alpha1.LockRequest {
	t.Helper()
	lr := &lockingv1alpha1.LockRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: unattendedNamespace, Name: fmt.Sprintf("%s-pr%d", path, pull)},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: path},
			Pull:    &lockingv1alpha1.PullRequestRef{Number: pull}, User: lockingv1alpha1.UserRef{Username: "alice"},
		},
	}
	if err := env.Client.Create(ctx, lr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), lr) })
	return lr
}
