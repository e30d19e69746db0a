package chart

import (
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
)

// grant is one verb on one resource of one API group.
type grant struct{ group, resource, verb string }

// grants flattens rules into single grants, failing on anything a least-privilege
// role must not have: wildcards, resource names or non-resource URLs.
func grants(t *testing.T, what string, rules []rbacv1.PolicyRule) map[grant]bool {
	t.Helper()
	out := map[grant]bool{}
	for _, r := range rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Errorf("%s: rule %+v has resourceNames or nonResourceURLs", what, r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					if g == "*" || res == "*" || v == "*" {
						t.Errorf("%s: wildcard in rule %+v", what, r)
					}
					out[grant{g, res, v}] = true
				}
			}
		}
	}
	return out
}

func sortedGrants(m map[grant]bool) []grant {
	out := make([]grant, 0, len(m))
	for g := range m {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.group+"/"+a.resource+"/"+a.verb < b.group+"/"+b.resource+"/"+b.verb
	})
	return out
}

// generatedGrants are the manager's rules that controller-gen writes from the
// +kubebuilder:rbac markers.
func generatedGrants(t *testing.T) map[grant]bool {
	t.Helper()
	role := readYAMLFile[rbacv1.ClusterRole](t, "config", "rbac", "role.yaml")
	g := grants(t, "config/rbac/role.yaml", role.Rules)
	if len(g) == 0 {
		t.Fatal("config/rbac/role.yaml has no rules: run make manifests")
	}
	return g
}

// checkManagerRules checks that a chart role grants at least what the controllers'
// markers ask for (or the operator fails at run time), and nothing more (least
// privilege).
func checkManagerRules(t *testing.T, what string, rules []rbacv1.PolicyRule) {
	t.Helper()
	want := generatedGrants(t)
	got := grants(t, what, rules)
	for _, g := range sortedGrants(want) {
		if !got[g] {
			t.Errorf("%s lacks %q on %s of group %q, which config/rbac/role.yaml grants", what, g.verb, g.resource, g.group)
		}
	}
	for _, g := range sortedGrants(got) {
		if !want[g] {
			t.Errorf("%s grants %q on %s of group %q beyond config/rbac/role.yaml", what, g.verb, g.resource, g.group)
		}
	}
}

// checkSubject checks that a binding binds the chart's ServiceAccount to the role.
func checkBinding(t *testing.T, what string, roleRef rbacv1.RoleRef, subjects []rbacv1.Subject, kind, role, serviceAccount string) {
	t.Helper()
	want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: serviceAccount, Namespace: releaseNamespace}}
	if diff := cmp.Diff(want, subjects); diff != "" {
		t.Errorf("%s subjects (-want +got):\n%s", what, diff)
	}
	if roleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role}) {
		t.Errorf("%s roleRef %+v, want %s %s", what, roleRef, kind, role)
	}
}

// By default the manager gets the generated rules cluster-wide.
func TestManagerRBACClusterWide(t *testing.T) {
	t.Parallel()
	m := mustRender(t, "")
	sa := m.one(t, "ServiceAccount").GetName()
	cr := typed[rbacv1.ClusterRole](t, m.one(t, "ClusterRole"))
	checkManagerRules(t, "ClusterRole "+cr.Name, cr.Rules)
	crb := typed[rbacv1.ClusterRoleBinding](t, m.one(t, "ClusterRoleBinding"))
	checkBinding(t, "ClusterRoleBinding "+crb.Name, crb.RoleRef, crb.Subjects, "ClusterRole", cr.Name, sa)
	if v, ok := argValue(managerContainer(t, deploymentOf(t, m)).Args, "watch-namespaces"); ok {
		t.Errorf("--watch-namespaces=%s with a ClusterRole", v)
	}
	checkLeaderElection(t, m, sa)
	// Only the leader election Role is namespaced.
	if roles := m.ofKind("Role"); len(roles) != 1 {
		t.Errorf("%d Roles, want only the leader election Role", len(roles))
	}
}

// With watchNamespaces the manager gets the generated rules in those namespaces only,
// nothing cluster-wide, and watches only them.
func TestManagerRBACWatchNamespaces(t *testing.T) {
	t.Parallel()
	m := mustRender(t, "watchNamespaces: [team-a, team-b, team-a]")
	sa := m.one(t, "ServiceAccount").GetName()
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding"} {
		if objs := m.ofKind(kind); len(objs) != 0 {
			t.Errorf("%d %s rendered with watchNamespaces, want none", len(objs), kind)
		}
	}
	for _, ns := range []string{"team-a", "team-b"} {
		role := typed[rbacv1.Role](t, m.find("Role", ns, fullName+"-manager"))
		checkManagerRules(t, "Role "+ns+"/"+role.Name, role.Rules)
		rb := typed[rbacv1.RoleBinding](t, m.find("RoleBinding", ns, fullName+"-manager"))
		checkBinding(t, "RoleBinding "+ns+"/"+rb.Name, rb.RoleRef, rb.Subjects, "Role", role.Name, sa)
	}
	if n := len(m.ofKind("Role")); n != 3 {
		t.Errorf("%d Roles, want one per watched namespace (2) and the leader election Role", n)
	}
	if v, _ := argValue(managerContainer(t, deploymentOf(t, m)).Args, "watch-namespaces"); v != "team-a,team-b" {
		t.Errorf("--watch-namespaces=%q, want team-a,team-b", v)
	}
	checkLeaderElection(t, m, sa)
}

// The leader election Role is config/rbac/leader_election_role.yaml, in the release
// namespace, where --leader-election-namespace puts the Lease.
func checkLeaderElection(t *testing.T, m manifest, sa string) {
	t.Helper()
	name := fullName + "-leader-election"
	role := typed[rbacv1.Role](t, m.find("Role", releaseNamespace, name))
	want := readYAMLFile[rbacv1.Role](t, "config", "rbac", "leader_election_role.yaml")
	if diff := cmp.Diff(sortedGrants(grants(t, "config/rbac/leader_election_role.yaml", want.Rules)), sortedGrants(grants(t, "leader election Role", role.Rules)), cmp.AllowUnexported(grant{})); diff != "" {
		t.Errorf("leader election Role differs from config/rbac/leader_election_role.yaml (-want +got):\n%s", diff)
	}
	rb := typed[rbacv1.RoleBinding](t, m.find("RoleBinding", releaseNamespace, name))
	checkBinding(t, "leader election RoleBinding", rb.RoleRef, rb.Subjects, "Role", name, sa)
	if v, _ := argValue(managerContainer(t, deploymentOf(t, m)).Args, "leader-election-namespace"); v != releaseNamespace {
		t.Errorf("--leader-election-namespace=%q, want the namespace of the leader election Role %q", v, releaseNamespace)
	}
}

// The Atlantis Role grants exactly what pkg/lockclient does: LockRequests to ask,
// renew and release, ProjectLocks and Leases to read (a grant is seen on the
// Lease); force unlock only when allowed; no status, no Lease writes.
func TestAtlantisRole(t *testing.T) {
	t.Parallel()
	lockrequests := []string{"create", "delete", "get", "list", "patch", "update", "watch"}
	for _, tc := range []struct {
		name, values     string
		namespaces       []string
		projectlockVerbs []string
	}{
		{
			name:             "serviceaccount namespace",
			values:           "atlantis: {rbac: {create: true}, serviceAccount: {name: atlantis-sa, namespace: atlantis}}",
			namespaces:       []string{"atlantis"},
			projectlockVerbs: []string{"get", "list", "watch"},
		},
		{
			name:             "lock namespaces and force unlock",
			values:           "atlantis: {rbac: {create: true}, serviceAccount: {name: atlantis-sa, namespace: atlantis}, lockNamespaces: [locks-a, locks-b], allowForceUnlock: true}",
			namespaces:       []string{"locks-a", "locks-b"},
			projectlockVerbs: []string{"create", "delete", "get", "list", "watch"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := mustRender(t, tc.values)
			want := map[grant]bool{}
			for _, v := range lockrequests {
				want[grant{"locking.runatlantis.io", "lockrequests", v}] = true
			}
			for _, v := range tc.projectlockVerbs {
				want[grant{"locking.runatlantis.io", "projectlocks", v}] = true
			}
			for _, v := range []string{"get", "list", "watch"} {
				want[grant{"coordination.k8s.io", "leases", v}] = true
			}
			var namespaces []string
			for _, r := range m.ofKind("Role") {
				if r.GetName() != fullName+"-atlantis" {
					continue
				}
				namespaces = append(namespaces, r.GetNamespace())
				role := typed[rbacv1.Role](t, r)
				got := grants(t, "Atlantis Role", role.Rules)
				if diff := cmp.Diff(sortedGrants(want), sortedGrants(got), cmp.AllowUnexported(grant{})); diff != "" {
					t.Errorf("Atlantis Role in %s (-want +got):\n%s", r.GetNamespace(), diff)
				}
				rb := typed[rbacv1.RoleBinding](t, m.find("RoleBinding", r.GetNamespace(), r.GetName()))
				wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "atlantis-sa", Namespace: "atlantis"}}
				if diff := cmp.Diff(wantSubjects, rb.Subjects); diff != "" || rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != r.GetName() {
					t.Errorf("Atlantis RoleBinding in %s: roleRef %+v, subjects (-want +got):\n%s", r.GetNamespace(), rb.RoleRef, diff)
				}
			}
			slices.Sort(namespaces)
			if !slices.Equal(namespaces, tc.namespaces) {
				t.Errorf("Atlantis Roles in %v, want %v", namespaces, tc.namespaces)
			}
		})
	}
}
