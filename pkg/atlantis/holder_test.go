package atlantis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runatlantis/atlantis/server/events/models"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/atlantis"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// TryLock looks at the key by name (its Lease, then the request the Lease names):
// taking a free key and being refused a held one list no LockRequests, whatever
// the namespace holds, and wait for no watch cache. A client that may not read
// Leases reads the whole lock instead, and is refused with the same holder once
// the holder's status says it holds.
func TestTryLockReadsTheKeyByName(t *testing.T) {
	t.Parallel()
	cl := newCountedLocker(t)
	ns, counted, locker := cl.ns, cl.counted, cl.locker
	p := models.NewProject("acme/infra", "modules/by-name", "")

	got, err := locker.TryLock(p, "default", pullOf("acme/infra", 1, commitA), alice)
	if err != nil || !got.LockAcquired {
		t.Fatalf("TryLock of the free key by pull 1 = %+v, %v; want it taken", got, err)
	}
	got, err = locker.TryLock(p, "default", pullOf("acme/infra", 2, commitA), alice)
	if err != nil || got.LockAcquired || got.CurrLock.Pull.Num != 1 {
		t.Fatalf("TryLock of the held key by pull 2 = %+v, %v; want refused, held by pull 1", got, err)
	}
	if n := counted.RequestLists(); n != 0 {
		t.Errorf("TryLock listed LockRequests %d times; want none (the key is read by name)", n)
	}

	// Without access to Leases: the whole lock, from the requests' statuses, once
	// the operator has written pull 1's (status_update_interval after its grant).
	err = wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, testTimeout, true, func(context.Context) (bool, error) {
		for _, st := range requests(t, ns) {
			if st.State == lockclient.StateAcquired && st.Request.Status.FencingToken != "" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("pull 1's request never said Acquired: %v", err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-leases"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{lockingv1alpha1.GroupVersion.Group}, Resources: []string{"lockrequests"}, Verbs: []string{"get", "list", "watch", "create", "delete"}},
			{APIGroups: []string{lockingv1alpha1.GroupVersion.Group}, Resources: []string{"projectlocks"}, Verbs: []string{"get", "list"}},
		}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-leases"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "no-leases"}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}}
	for _, obj := range []client.Object{role, binding} {
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "no-leases"}
	restricted, err := client.NewWithWatch(cfg, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	got, err = atlantis.NewLocker(lockclient.New(restricted, ns)).TryLock(p, "default", pullOf("acme/infra", 3, commitA), alice)
	if err != nil || got.LockAcquired || got.CurrLock.Pull.Num != 1 {
		t.Fatalf("TryLock by pull 3, which may not read Leases = %+v, %v; want refused, held by pull 1", got, err)
	}
}

// TryLockSeenFree asks the operator at once: a free key is taken without a read of
// its Lease or a list of the namespace. A key taken since it was seen free gets
// TryLock's answers all the same: another pull is refused with the holder and
// leaves nothing behind (ModeExact) or stays queued behind it (ModeQueue), and the
// holding pull is told that the key is held, by itself.
func TestTryLockSeenFree(t *testing.T) {
	t.Parallel()
	cl := newCountedLocker(t)
	p := models.NewProject("acme/infra", "modules/seen-free", "")

	got, err := cl.locker.TryLockSeenFree(p, "default", pullOf("acme/infra", 1, commitA), alice)
	if err != nil || !got.LockAcquired || got.CurrLock.Pull.Num != 1 {
		t.Fatalf("TryLockSeenFree of the free key by pull 1 = %+v, %v; want it taken", got, err)
	}
	if gets, lists := cl.counted.LeaseGets(), cl.counted.RequestLists(); gets != 0 || lists != 0 {
		t.Errorf("taking a free key read %d Leases and listed LockRequests %d times; want neither", gets, lists)
	}

	got, err = cl.locker.TryLockSeenFree(p, "default", pullOf("acme/infra", 2, commitA), bob)
	if err != nil || got.LockAcquired || got.CurrLock.Pull.Num != 1 {
		t.Fatalf("TryLockSeenFree of the held key by pull 2 = %+v, %v; want refused, held by pull 1", got, err)
	}
	if reqs := requests(t, cl.ns); len(reqs) != 1 {
		t.Errorf("after pull 2 was refused the namespace has requests %s; want pull 1's alone", describeRequests(reqs))
	}

	got, err = cl.locker.TryLockSeenFree(p, "default", pullOf("acme/infra", 1, commitA), alice)
	if err != nil || got.LockAcquired || got.CurrLock.Pull.Num != 1 {
		t.Fatalf("TryLockSeenFree of the key pull 1 holds, by pull 1 = %+v, %v; want not acquired, held by pull 1", got, err)
	}

	queue := atlantis.NewLocker(cl.client, atlantis.WithMode(atlantis.ModeQueue))
	got, err = queue.TryLockSeenFree(p, "default", pullOf("acme/infra", 3, commitA), bob)
	if err != nil || got.LockAcquired || got.CurrLock.Pull.Num != 1 {
		t.Fatalf("TryLockSeenFree in ModeQueue of the held key by pull 3 = %+v, %v; want queued behind pull 1", got, err)
	}
	reqs := requests(t, cl.ns)
	waiting := 0
	for name, st := range reqs {
		if strings.HasPrefix(name, "pr3-") && st.State == lockclient.StateQueued {
			waiting++
		}
	}
	if len(reqs) != 2 || waiting != 1 {
		t.Errorf("in ModeQueue the namespace has requests %s; want pull 1's and pull 3's, queued", describeRequests(reqs))
	}
}
