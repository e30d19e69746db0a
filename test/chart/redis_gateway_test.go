package chart

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// With atlantis.redisGateway.enabled, Atlantis's ServiceAccount gets the LockRequest
// Role (as with atlantis.rbac.create) and, in the store namespace, exactly the
// Secrets verbs the Redis gateway uses; the sidecar snippet (a ConfigMap, in the
// Atlantis chart's values shape) points Atlantis at it and runs the gateway with the
// namespaces of the Roles.
func TestRedisGatewayRBACAndSidecar(t *testing.T) {
	t.Parallel()
	m := mustRender(t, "atlantis: {serviceAccount: {name: atlantis-sa, namespace: atlantis}, redisGateway: {enabled: true, storeNamespace: atlantis-state, port: 6380}}")
	subjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "atlantis-sa", Namespace: "atlantis"}}

	lockRole := m.find("Role", "atlantis", fullName+"-atlantis")
	if lockRole == nil {
		t.Fatal("no Atlantis LockRequest Role in namespace atlantis")
	}
	got := grants(t, "Atlantis Role", typed[rbacv1.Role](t, lockRole).Rules)
	if !got[grant{"locking.runatlantis.io", "lockrequests", "watch"}] || !got[grant{"locking.runatlantis.io", "lockrequests", "create"}] {
		t.Errorf("the Atlantis Role lacks LockRequest watch or create: %v", sortedGrants(got))
	}
	// Leases are read (a grant is seen on them, the gateway reads a free key's),
	// never written.
	for _, v := range []string{"get", "list", "watch", "create", "update", "patch", "delete"} {
		if has, want := got[grant{"coordination.k8s.io", "leases", v}], v == "get" || v == "list" || v == "watch"; has != want {
			t.Errorf("the Atlantis Role with the gateway: Lease %s granted %v, want %v", v, has, want)
		}
	}

	role := m.find("Role", "atlantis-state", fullName+"-redis-gateway")
	if role == nil {
		t.Fatal("no Redis gateway Role in the store namespace atlantis-state")
	}
	want := map[grant]bool{}
	for _, v := range []string{"create", "delete", "get", "list", "update"} {
		want[grant{"", "secrets", v}] = true
	}
	if diff := cmp.Diff(sortedGrants(want), sortedGrants(grants(t, "Redis gateway Role", typed[rbacv1.Role](t, role).Rules)), cmp.AllowUnexported(grant{})); diff != "" {
		t.Errorf("Redis gateway Role (-want +got):\n%s", diff)
	}
	rb := typed[rbacv1.RoleBinding](t, m.find("RoleBinding", "atlantis-state", fullName+"-redis-gateway"))
	if diff := cmp.Diff(subjects, rb.Subjects); diff != "" || rb.RoleRef.Name != role.GetName() || rb.RoleRef.Kind != "Role" {
		t.Errorf("Redis gateway RoleBinding: roleRef %+v, subjects (-want +got):\n%s", rb.RoleRef, diff)
	}

	u := m.find("ConfigMap", releaseNamespace, fullName+"-redis-gateway-sidecar")
	if u == nil {
		t.Fatal("no sidecar ConfigMap")
	}
	cm := typed[corev1.ConfigMap](t, u)
	var values struct {
		Environment     map[string]string  `json:"environment"`
		ExtraContainers []corev1.Container `json:"extraContainers"`
	}
	if err := yaml.UnmarshalStrict([]byte(cm.Data["atlantis-values.yaml"]), &values); err != nil {
		t.Fatalf("the sidecar snippet is not Atlantis chart values: %v\n%s", err, cm.Data["atlantis-values.yaml"])
	}
	wantEnv := map[string]string{"ATLANTIS_LOCKING_DB_TYPE": "redis", "ATLANTIS_REDIS_HOST": "127.0.0.1", "ATLANTIS_REDIS_PORT": "6380"}
	if diff := cmp.Diff(wantEnv, values.Environment); diff != "" {
		t.Errorf("Atlantis's environment (-want +got):\n%s", diff)
	}
	if len(values.ExtraContainers) != 1 {
		t.Fatalf("%d extra containers, want the gateway", len(values.ExtraContainers))
	}
	c := values.ExtraContainers[0]
	for _, arg := range []string{"--namespace=atlantis", "--store-namespace=atlantis-state", "--listen=127.0.0.1:6380"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("the gateway's arguments %v lack %s", c.Args, arg)
		}
	}
	if !slices.Equal(c.Command, []string{"/redis-gateway"}) || !strings.HasPrefix(c.Image, "ghcr.io/runatlantis/atlantis-lock-operator:") {
		t.Errorf("the gateway runs %v from %s, want /redis-gateway from the operator's image", c.Command, c.Image)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("the gateway's security context %+v is not read-only and non-root", sc)
	}
}

// Without atlantis.redisGateway.enabled the chart renders none of it.
func TestRedisGatewayOffByDefault(t *testing.T) {
	t.Parallel()
	m := mustRender(t, "")
	for _, kind := range []string{"Role", "RoleBinding", "ConfigMap"} {
		for _, u := range m.ofKind(kind) {
			if strings.Contains(u.GetName(), "redis-gateway") {
				t.Errorf("%s %s rendered without atlantis.redisGateway.enabled", kind, u.GetName())
			}
		}
	}
}
