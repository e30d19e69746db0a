package atlantis_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runatlantis/atlantis/server/events/models"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/runatlantis/atlantis-lock-operator/pkg/atlantis"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

// rbacExample is the Role and RoleBinding docs/usage.md gives Atlantis's
// ServiceAccount.
const rbacExample = "docs/examples/atlantis-adapter-rbac.yaml"

// applyRBACExample creates the example's Role and RoleBinding in ns (instead of
// "atlantis"), for the ServiceAccount "atlantis" of ns.
func applyRBACExample(t *testing.T, ns string) {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, rbacExample))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(data), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("%s: want a Role and a RoleBinding, got %d documents", rbacExample, len(docs))
	}
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &role); err != nil {
		t.Fatalf("%s: the Role: %v", rbacExample, err)
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &binding); err != nil {
		t.Fatalf("%s: the RoleBinding: %v", rbacExample, err)
	}
	role.Namespace, binding.Namespace = ns, ns
	for i := range binding.Subjects {
		binding.Subjects[i].Namespace = ns
	}
	for _, obj := range []client.Object{&role, &binding} {
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
	}
}

// adapterAs returns an adapter in ns that acts as the ServiceAccount sa of ns.
func adapterAs(t *testing.T, ns, sa string, opts ...atlantis.Option) adapter {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + sa}
	kc, err := client.NewWithWatch(cfg, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	c := lockclient.New(kc, ns)
	return adapter{ns: ns, locker: atlantis.NewLocker(c, opts...), apply: atlantis.NewApplyLocker(c, false, false, opts...)}
}

// Every call of the adapter works with exactly the documented permissions, and
// without them fails with the API server's Forbidden.
func TestDocumentedRBACSuffices(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	applyRBACExample(t, ns)
	a := adapterAs(t, ns, "atlantis")
	p := models.NewProject("acme/infra", "modules/vpc", "")
	key := models.GenerateLockKey(p, "default")
	steps := []call{
		{Method: tryLock, Project: p, Workspace: "default", Pull: pullOf("acme/infra", 1, commitA), User: alice},
		{Method: tryLock, Project: p, Workspace: "default", Pull: pullOf("acme/infra", 2, commitA), User: bob},
		{Method: getLock, Key: key},
		{Method: list},
		{Method: unlockIfOwnedByPull, Project: p, Workspace: "default", PullNum: 1},
		{Method: tryLock, Project: p, Workspace: "default", Pull: pullOf("acme/infra", 2, commitA), User: bob},
		{Method: unlock, Key: key},
		{Method: tryLock, Project: p, Workspace: "default", Pull: pullOf("acme/infra", 3, commitA), User: carol},
		{Method: unlockByPull, Repo: "acme/infra", PullNum: 3},
		{Method: lockApply},
		{Method: checkApplyLock},
		{Method: unlockApply},
	}
	for _, c := range steps {
		if o := c.do(a.locker, a.apply); o.err != nil {
			t.Fatalf("%s as the documented ServiceAccount: %v", c, o.err)
		}
	}
	// The adapter in queueing mode needs nothing more.
	q := adapterAs(t, ns, "atlantis", atlantis.WithMode(atlantis.ModeQueue))
	for _, c := range steps[:2] {
		if o := c.do(q.locker, q.apply); o.err != nil {
			t.Fatalf("%s in queueing mode as the documented ServiceAccount: %v", c, o.err)
		}
	}

	// RenewHolds, for holds with a ttl, needs nothing more either.
	var renewErrs []error
	ttl := adapterAs(t, ns, "atlantis", atlantis.WithTTL(renewTTL), atlantis.WithRenewErrors(func(err error) { renewErrs = append(renewErrs, err) }))
	ttlProject := models.NewProject("acme/infra", "modules/ttl", "")
	if r, err := ttl.locker.TryLock(ttlProject, "default", pullOf("acme/infra", 4, commitA), alice); err != nil || !r.LockAcquired {
		t.Fatalf("TryLock with a ttl as the documented ServiceAccount: %+v %v", r, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ttl.locker.RenewHolds(ctx) }()
	waitRenewed(t, ns, ttlProject)
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("RenewHolds returned %v, want context.Canceled", err)
	}
	if len(renewErrs) > 0 {
		t.Fatalf("RenewHolds as the documented ServiceAccount: %v", renewErrs)
	}

	stranger := adapterAs(t, ns, "not-bound")
	_, err := stranger.locker.TryLock(p, "default", pullOf("acme/infra", 1, commitA), alice)
	if !apierrors.IsForbidden(err) {
		t.Fatalf("TryLock without the Role = %v; want Forbidden", err)
	}
}
