//go:build e2e

package apivalidation

// RBAC of the Atlantis ServiceAccount: the chart's client Role and RoleBinding,
// rendered by bin/helm and applied to the test API server (envtest authorizes with
// RBAC), exercised by a client that impersonates the ServiceAccount.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

// atlantisRBAC renders the chart with atlantis.rbac.create for ServiceAccount sa of
// saNamespace and the lock namespace lockNamespace, and returns the Atlantis Role
// and RoleBinding it renders, checking that it renders exactly one of each.
func atlantisRBAC(t *testing.T, sa, saNamespace, lockNamespace string) (*rbacv1.Role, *rbacv1.RoleBinding) {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	values := fmt.Sprintf("atlantis: {rbac: {create: true}, serviceAccount: {name: %s, namespace: %s}, lockNamespaces: [%s]}",
		sa, saNamespace, lockNamespace)
	// The chart refuses Kubernetes older than 1.35; helm built from Go modules
	// assumes v1.20 unless told (test/chart does the same).
	cmd := exec.CommandContext(t.Context(), filepath.Join(root, "bin", "helm"), "template", "alo",
		filepath.Join(root, "charts", "atlantis-lock-operator"), "--namespace", "lock-system", "--kube-version", "1.37.2", "--values", "-")
	cmd.Stdin = strings.NewReader(values)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bin/helm template (run `make tools`): %v: %s", err, stderr.String())
	}
	var roles []*rbacv1.Role
	var bindings []*rbacv1.RoleBinding
	reader := utilyaml.NewYAMLReader(bufio.NewReader(&stdout))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "Role":
			r := &rbacv1.Role{}
			if err := yaml.UnmarshalStrict(doc, r); err != nil {
				t.Fatal(err)
			}
			if r.Namespace == lockNamespace {
				roles = append(roles, r)
			}
		case "RoleBinding":
			b := &rbacv1.RoleBinding{}
			if err := yaml.UnmarshalStrict(doc, b); err != nil {
				t.Fatal(err)
			}
			if b.Namespace == lockNamespace {
				bindings = append(bindings, b)
			}
		}
	}
	if len(roles) != 1 || len(bindings) != 1 {
		t.Fatalf("the chart rendered %d Roles and %d RoleBindings in %s; want the Atlantis Role and its binding", len(roles), len(bindings), lockNamespace)
	}
	return roles[0], bindings[0]
}

// impersonate returns a live client that acts as ServiceAccount sa of ns, as Atlantis
// would with its token.
func impersonate(t *testing.T, ns, sa string) client.WithWatch {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + sa}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAtlantisRoleOfTheChart: the ServiceAccount bound to the chart's Atlantis Role
// can do everything pkg/lockclient does (lock, queue, renew, list, inspect, unlock,
// read the Leases its grants show on) in its lock namespace, and cannot write a
// status, write a Lease, force-unlock, create a ProjectLock, or see or ask for locks
// in another namespace. Each refusal is the API server's Forbidden naming the
// ServiceAccount and the resource.
func TestAtlantisRoleOfTheChart(t *testing.T) {
	ctx := context.Background()
	saNS, lockNS, otherNS := newNamespace(t), newNamespace(t), newNamespace(t)
	const sa = "atlantis"
	role, binding := atlantisRBAC(t, sa, saNS, lockNS)
	for _, obj := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("applying the chart's %T %s: %v", obj, obj.GetName(), err)
		}
	}
	startOperator(t, config.Default(), lockNS)
	atlantis := impersonate(t, saNS, sa)
	user := "system:serviceaccount:" + saNS + ":" + sa

	t.Run("can do what pkg/lockclient needs", func(t *testing.T) {
		lc := lockclient.New(atlantis, lockNS, lockclient.WithDecisionTimeout(decisionTimeout))
		ttl := time.Hour
		first := lockclient.Request{Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "modules/vpc"},
			Pull: &lockingv1alpha1.PullRequestRef{Number: 1}, User: lockingv1alpha1.UserRef{Username: "alice"}, TTL: &ttl}
		second := first
		second.Pull = &lockingv1alpha1.PullRequestRef{Number: 2}
		second.User.Username = "bob"
		steps := []struct {
			what string
			do   func() error
		}{
			{"Lock", func() error {
				st, err := lc.Lock(ctx, first)
				if err == nil && st.FencingToken == "" {
					err = errors.New("granted without a fencing token")
				}
				return err
			}},
			{"TryLock of another pull (queued)", func() error {
				st, err := lc.TryLock(ctx, second)
				if err == nil && st.State != lockclient.StateQueued {
					err = fmt.Errorf("state %s, want Queued", st.State)
				}
				return err
			}},
			{"Renew", func() error { _, err := lc.Renew(ctx, first); return err }},
			{"Get", func() error { _, err := lc.Get(ctx, first); return err }},
			{"GetLock", func() error {
				info, err := lc.GetLock(ctx, lockkey.New("acme/infra", "modules/vpc", "default", ""))
				if err == nil && (info == nil || info.Holder == nil || len(info.Queue) != 1) {
					err = fmt.Errorf("GetLock = %+v, want a holder and one waiter", info)
				}
				return err
			}},
			{"List", func() error {
				locks, err := lc.List(ctx)
				if err == nil && len(locks) != 1 {
					err = fmt.Errorf("List = %d locks, want 1", len(locks))
				}
				return err
			}},
			{"Unlock (hand-off)", func() error { return lc.Unlock(ctx, first) }},
			{"Lock after the hand-off", func() error { _, err := lc.Lock(ctx, second); return err }},
			{"Unlock", func() error { return lc.Unlock(ctx, second) }},
		}
		for _, s := range steps {
			if err := s.do(); err != nil {
				t.Fatalf("%s as %s with the chart's Role: %v", s.what, user, err)
			}
		}
	})

	// A lock held by someone, for the refusals below.
	held := lockRequest(lockNS, "held-by-carol", validSpec())
	if err := atlantis.Create(ctx, held); err != nil {
		t.Fatal(err)
	}
	waitReasons(t, lockNS, func(r map[string]string) bool { return r[held.Name] == lockingv1alpha1.ReasonAcquired })
	if err := atlantis.Get(ctx, client.ObjectKeyFromObject(held), held); err != nil {
		t.Fatal(err)
	}
	lease := &coordinationv1.Lease{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: lockNS, Name: held.Status.LockName}, lease); err != nil {
		t.Fatal(err)
	}
	// The operator creates the ProjectLock once the hold has lasted project_lock_delay.
	if _, err := env.WaitForProjectLock(ctx, lockNS, held.Status.LockName, func(pl *lockingv1alpha1.ProjectLock) bool { return pl != nil }); err != nil {
		t.Fatal(err)
	}
	pl := &lockingv1alpha1.ProjectLock{}
	if err := atlantis.Get(ctx, types.NamespacedName{Namespace: lockNS, Name: held.Status.LockName}, pl); err != nil {
		t.Fatalf("reading the ProjectLock with the chart's Role: %v", err)
	}
	other := lockRequest(otherNS, "elsewhere", validSpec())
	if err := env.Client.Create(ctx, other); err != nil {
		t.Fatal(err)
	}

	refused := []struct {
		name     string
		do       func() error
		resource string // as the Forbidden message names it
	}{
		{"write a LockRequest's status (grant itself the lock)", func() error {
			lr := held.DeepCopy()
			lr.Status.FencingToken = "999999"
			return atlantis.Status().Update(ctx, lr)
		}, `"lockrequests/status"`},
		{"patch a LockRequest's status", func() error {
			return atlantis.Status().Patch(ctx, held.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"status":{"position":1}}`)))
		}, `"lockrequests/status"`},
		{"list Leases of another namespace", func() error {
			return atlantis.List(ctx, &coordinationv1.LeaseList{}, client.InNamespace(otherNS))
		}, `"leases"`},
		{"take over the Lease of a lock", func() error {
			l := lease.DeepCopy()
			l.Spec.HolderIdentity = ptrTo("atlantis")
			return atlantis.Update(ctx, l)
		}, `"leases"`},
		{"create a Lease for a key", func() error {
			return atlantis.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: lockNS, Name: "forged",
				Labels: map[string]string{lockingv1alpha1.LockNameLabel: "forged"}}})
		}, `"leases"`},
		{"delete the Lease of a lock", func() error { return atlantis.Delete(ctx, lease.DeepCopy()) }, `"leases"`},
		{"force-unlock by deleting a ProjectLock", func() error { return atlantis.Delete(ctx, pl.DeepCopy()) }, `"projectlocks"`},
		{"create a ProjectLock", func() error {
			return atlantis.Create(ctx, projectLock(lockNS, "forged", validProjectLockSpec()))
		}, `"projectlocks"`},
		{"write a ProjectLock's status", func() error {
			p := pl.DeepCopy()
			p.Status.Holder = nil
			return atlantis.Status().Update(ctx, p)
		}, `"projectlocks/status"`},
		{"list LockRequests of another namespace", func() error {
			return atlantis.List(ctx, &lockingv1alpha1.LockRequestList{}, client.InNamespace(otherNS))
		}, `"lockrequests"`},
		{"get a LockRequest of another namespace", func() error {
			return atlantis.Get(ctx, client.ObjectKeyFromObject(other), &lockingv1alpha1.LockRequest{})
		}, `"lockrequests"`},
		{"watch ProjectLocks of another namespace", func() error {
			w, err := atlantis.Watch(ctx, &lockingv1alpha1.ProjectLockList{}, client.InNamespace(otherNS))
			if err == nil {
				w.Stop()
			}
			return err
		}, `"projectlocks"`},
		{"ask for a lock in another namespace", func() error {
			return atlantis.Create(ctx, lockRequest(otherNS, "sneaky", validSpec()))
		}, `"lockrequests"`},
		{"list LockRequests of every namespace", func() error {
			return atlantis.List(ctx, &lockingv1alpha1.LockRequestList{})
		}, `"lockrequests"`},
		{"read Secrets of its lock namespace", func() error {
			return atlantis.List(ctx, &corev1.SecretList{}, client.InNamespace(lockNS))
		}, `"secrets"`},
	}
	// Leases are read (the client sees its grant on the key's Lease), never written.
	t.Run("reads the Leases of its lock namespace", func(t *testing.T) {
		if err := atlantis.Get(ctx, client.ObjectKeyFromObject(lease), &coordinationv1.Lease{}); err != nil {
			t.Errorf("get the Lease of a lock: %v", err)
		}
		if err := atlantis.List(ctx, &coordinationv1.LeaseList{}, client.InNamespace(lockNS)); err != nil {
			t.Errorf("list Leases: %v", err)
		}
		w, err := atlantis.Watch(ctx, &coordinationv1.LeaseList{}, client.InNamespace(lockNS))
		if err != nil {
			t.Errorf("watch Leases: %v", err)
		} else {
			w.Stop()
		}
	})
	for _, tc := range refused {
		t.Run("cannot "+tc.name, func(t *testing.T) {
			err := tc.do()
			if !apierrors.IsForbidden(err) {
				t.Fatalf("= %v; want Forbidden", err)
			}
			if msg := err.Error(); !strings.Contains(msg, user) || !strings.Contains(msg, "resource "+tc.resource) {
				t.Errorf("Forbidden message %q does not name %s and resource %s", msg, user, tc.resource)
			}
		})
	}

	// Nothing changed under the refusals: the lock is still carol's, with its token.
	after := &lockingv1alpha1.LockRequest{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(held), after); err != nil {
		t.Fatal(err)
	}
	if after.Status.FencingToken != held.Status.FencingToken {
		t.Errorf("fencing token changed from %s to %s", held.Status.FencingToken, after.Status.FencingToken)
	}
}

func ptrTo[T any](v T) *T { return &v }
