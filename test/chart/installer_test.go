package chart

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

// config/default, which `make build-installer` writes to dist/install.yaml, renders
// with kubectl's built-in kustomize into one namespace with the CRDs, the generated
// RBAC bound to the manager's ServiceAccount, and the restricted manager Deployment.
func TestInstallerRenders(t *testing.T) {
	t.Parallel()
	out, err := run(t, "kubectl", "kustomize", repoPath(t, "config", "default"))
	if err != nil {
		t.Fatalf("kubectl kustomize config/default: %v", err)
	}
	m := parseManifest(t, out)

	ns := m.one(t, "Namespace").GetName()
	if got := m.one(t, "Namespace").GetLabels()["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("Namespace %s enforces Pod Security %q, want restricted", ns, got)
	}
	for _, u := range m {
		switch u.GetKind() {
		case "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding":
			if u.GetNamespace() != "" {
				t.Errorf("cluster-scoped %s %s has namespace %s", u.GetKind(), u.GetName(), u.GetNamespace())
			}
		default:
			if u.GetNamespace() != ns {
				t.Errorf("%s %s in namespace %q, want %q", u.GetKind(), u.GetName(), u.GetNamespace(), ns)
			}
		}
	}

	// The CRDs are the generated ones.
	crds := m.ofKind("CustomResourceDefinition")
	if len(crds) != len(readDir(t, "config", "crd", "bases")) {
		t.Errorf("%d CRDs, want those of config/crd/bases", len(crds))
	}
	for _, u := range crds {
		// Generated CRDs are named <plural>.<group>, their files <group>_<plural>.yaml.
		plural, group, _ := strings.Cut(u.GetName(), ".")
		want := readYAMLFile[map[string]any](t, "config", "crd", "bases", group+"_"+plural+".yaml")
		if diff := cmp.Diff((*want)["spec"], u.Object["spec"]); diff != "" {
			t.Errorf("CRD %s differs from config/crd/bases (-want +got):\n%s", u.GetName(), diff)
		}
	}

	// The manager runs as the ServiceAccount that the generated rules are bound to.
	d := deploymentOf(t, m)
	sa := d.Spec.Template.Spec.ServiceAccountName
	if m.find("ServiceAccount", ns, sa) == nil {
		t.Errorf("the Deployment runs as ServiceAccount %s, which is not rendered", sa)
	}
	if got := ptr.Deref(d.Spec.Replicas, 0); got != 2 {
		t.Errorf("replicas = %d, want 2", got)
	}
	if v, ok := argValue(managerContainer(t, d).Args, "leader-elect"); ok && v != "true" {
		t.Errorf("--leader-elect=%s with 2 replicas", v)
	}
	c := managerContainer(t, d)
	if c.Image != "controller:latest" {
		t.Errorf("image %q, want the placeholder controller:latest that make build-installer replaces with IMG", c.Image)
	}
	sc := c.SecurityContext
	pod := d.Spec.Template.Spec.SecurityContext
	if pod == nil || !ptr.Deref(pod.RunAsNonRoot, false) || pod.SeccompProfile == nil ||
		sc == nil || ptr.Deref(sc.AllowPrivilegeEscalation, true) || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("manager security context pod %+v container %+v, want restricted", pod, sc)
	}

	cr := typed[rbacv1.ClusterRole](t, m.one(t, "ClusterRole"))
	checkManagerRules(t, "config/default ClusterRole", cr.Rules)
	crb := typed[rbacv1.ClusterRoleBinding](t, m.one(t, "ClusterRoleBinding"))
	wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}
	if diff := cmp.Diff(wantSubjects, crb.Subjects); diff != "" || crb.RoleRef.Name != cr.Name {
		t.Errorf("ClusterRoleBinding roleRef %s (ClusterRole %s), subjects (-want +got):\n%s", crb.RoleRef.Name, cr.Name, diff)
	}
	for _, rb := range m.ofKind("RoleBinding") {
		b := typed[rbacv1.RoleBinding](t, rb)
		if m.find("Role", ns, b.RoleRef.Name) == nil {
			t.Errorf("RoleBinding %s refers to Role %s, which is not rendered", b.Name, b.RoleRef.Name)
		}
		if diff := cmp.Diff(wantSubjects, b.Subjects); diff != "" {
			t.Errorf("RoleBinding %s subjects (-want +got):\n%s", b.Name, diff)
		}
	}

	svc := m.one(t, "Service")
	sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	for k, v := range sel {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("metrics Service selects %s=%s, the pods have %q", k, v, d.Spec.Template.Labels[k])
		}
	}
}
