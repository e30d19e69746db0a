package chart

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
)

// fullValues turns on everything optional and changes most defaults; values_test
// reuses it for the configuration file.
const fullValues = `
replicaCount: 3
watchNamespaces: [team-a, team-b]
image: {repository: registry.example.com/alo, tag: v1.2.3}
config:
  worker_count: 16
  audit_log: /var/log/atlantis-lock-operator/audit.jsonl
  webhooks:
  - url: https://hooks.example.com/atlantis-locks
    secretRef: {name: hooks, key: hmac}
metrics:
  serviceMonitor: {enabled: true, labels: {release: prom}}
  prometheusRule: {enabled: true, labels: {release: prom}}
grafanaDashboard: {enabled: true}
atlantis:
  rbac: {create: true}
  serviceAccount: {name: atlantis, namespace: team-a}
`

// The chart passes `helm lint --strict` with its defaults and with everything on.
// (`make test` runs helm lint through this test rather than a Makefile target, so that
// `go test ./...` alone checks the chart.)
func TestHelmLint(t *testing.T) {
	chart := repoPath(t, "charts", "atlantis-lock-operator")
	if out, err := run(t, "helm", "lint", "--strict", chart, "--kube-version", kubeVersion); err != nil {
		t.Errorf("helm lint --strict (defaults): %v\n%s", err, out)
	}
	if out, err := runStdin(t, fullValues, "helm", "lint", "--strict", chart, "--kube-version", kubeVersion, "--values", "-"); err != nil {
		t.Errorf("helm lint --strict (full values): %v\n%s", err, out)
	}
}

// Every rendered object of a built-in kind converts strictly to its Go type: no
// misspelt or misplaced field hides in a template.
func TestRenderedObjectsAreValid(t *testing.T) {
	for name, values := range map[string]string{"defaults": "", "full": fullValues} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, u := range mustRender(t, values) {
				obj, err := clientgoscheme.Scheme.New(u.GroupVersionKind())
				if err != nil {
					continue // ServiceMonitor and PrometheusRule: checked in monitoring_test.go
				}
				if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, obj, true); err != nil {
					t.Errorf("%s %s: %v", u.GetKind(), u.GetName(), err)
				}
				for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
					if u.GetLabels()[l] == "" {
						t.Errorf("%s %s has no label %s", u.GetKind(), u.GetName(), l)
					}
				}
			}
		})
	}
}

func deploymentOf(t *testing.T, m manifest) *appsv1.Deployment {
	t.Helper()
	return typed[appsv1.Deployment](t, m.one(t, "Deployment"))
}

func managerContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "manager" {
			return c
		}
	}
	t.Fatalf("Deployment %s has no container named manager", d.Name)
	return corev1.Container{}
}

// argValue returns the value of --name=value in args, and whether it is there.
func argValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func TestDeploymentDefaults(t *testing.T) {
	t.Parallel()
	m := mustRender(t, "")
	d := deploymentOf(t, m)
	if d.Namespace != releaseNamespace {
		t.Errorf("Deployment namespace %q, want the release namespace %q", d.Namespace, releaseNamespace)
	}
	if got := ptr.Deref(d.Spec.Replicas, 0); got != 2 {
		t.Errorf("replicas = %d, want 2", got)
	}
	c := managerContainer(t, d)
	if c.Image != "ghcr.io/runatlantis/atlantis-lock-operator:0.1.0" {
		t.Errorf("image %q, want the chart's appVersion as tag", c.Image)
	}
	wantArgs := map[string]string{
		"leader-elect":              "true",
		"leader-election-namespace": releaseNamespace,
		"metrics-bind-address":      ":8080",
		"health-probe-bind-address": ":8081",
	}
	for name, want := range wantArgs {
		if got, ok := argValue(c.Args, name); !ok || got != want {
			t.Errorf("--%s = %q (given: %v), want %q; args %v", name, got, ok, want, c.Args)
		}
	}
	if v, ok := argValue(c.Args, "watch-namespaces"); ok {
		t.Errorf("--watch-namespaces=%s by default, want every namespace", v)
	}

	// Probes on the health port, where the manager serves /healthz and /readyz.
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[name]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port != intstr.FromString("health") {
			t.Errorf("%s probe = %+v, want GET %s on port health", name, p, want)
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if diff := cmp.Diff(map[string]int32{"metrics": 8080, "health": 8081}, ports); diff != "" {
		t.Errorf("container ports (-want +got):\n%s", diff)
	}

	// Requests and limits, the Go runtime's soft memory limit at the container's
	// limit, and the collector's target (goGC).
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v, want cpu and memory requests and a memory limit", c.Resources)
	}
	if diff := cmp.Diff(map[string]string{"CONTAINER_MEMORY_LIMIT": "limits.memory", "GOGC": "100"}, goEnv(c)); diff != "" {
		t.Errorf("Go runtime environment (-want +got):\n%s", diff)
	}
	if got, _ := argValue(c.Args, "memory-limit-percent"); got != "60" {
		t.Errorf("--memory-limit-percent=%q, want 60", got)
	}

	// Spread over nodes and zones.
	spec := d.Spec.Template.Spec
	if spec.Affinity == nil || spec.Affinity.PodAntiAffinity == nil || len(spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Errorf("no preferred pod anti-affinity: %+v", spec.Affinity)
	}
	keys := map[string]bool{}
	for _, tsc := range spec.TopologySpreadConstraints {
		keys[tsc.TopologyKey] = true
		if tsc.LabelSelector == nil || !cmp.Equal(tsc.LabelSelector.MatchLabels, d.Spec.Selector.MatchLabels) {
			t.Errorf("topology spread on %s selects %v, want the pods' selector %v", tsc.TopologyKey, tsc.LabelSelector, d.Spec.Selector.MatchLabels)
		}
	}
	if !keys["kubernetes.io/hostname"] || !keys["topology.kubernetes.io/zone"] {
		t.Errorf("topology spread keys %v, want hostname and zone", keys)
	}

	// The PodDisruptionBudget keeps a replica, and selects the pods.
	pdb := typed[policyv1.PodDisruptionBudget](t, m.one(t, "PodDisruptionBudget"))
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) || !cmp.Equal(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("PodDisruptionBudget %+v, want minAvailable 1 over the pods", pdb.Spec)
	}

	// The metrics Service reaches the metrics port of the pods.
	svc := typed[corev1.Service](t, m.one(t, "Service"))
	if !cmp.Equal(svc.Spec.Selector, d.Spec.Selector.MatchLabels) || len(svc.Spec.Ports) != 1 ||
		svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].TargetPort != intstr.FromString("metrics") {
		t.Errorf("metrics Service %+v, want port metrics to the pods' metrics port", svc.Spec)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("pod template label %s = %q, the selector wants %q", k, d.Spec.Template.Labels[k], v)
		}
	}

	// The ServiceAccount exists and runs the pods.
	sa := m.one(t, "ServiceAccount")
	if spec.ServiceAccountName != sa.GetName() || sa.GetNamespace() != releaseNamespace {
		t.Errorf("pods run as %q, the chart creates ServiceAccount %s/%s", spec.ServiceAccountName, sa.GetNamespace(), sa.GetName())
	}
}

// The pods meet the restricted Pod Security Standard, with defaults and with
// everything turned on.
func TestRestrictedSecurityContext(t *testing.T) {
	for name, values := range map[string]string{"defaults": "", "full": fullValues} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := deploymentOf(t, mustRender(t, values))
			pod := d.Spec.Template.Spec.SecurityContext
			if pod == nil || !ptr.Deref(pod.RunAsNonRoot, false) || pod.SeccompProfile == nil || pod.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod security context %+v, want runAsNonRoot and seccomp RuntimeDefault", pod)
			}
			if pod != nil && ptr.Deref(pod.RunAsUser, 0) == 0 {
				t.Errorf("pod runAsUser %v, want a non-zero user (distroless nonroot is 65532)", pod.RunAsUser)
			}
			for _, c := range d.Spec.Template.Spec.Containers {
				sc := c.SecurityContext
				if sc == nil {
					t.Fatalf("container %s has no security context", c.Name)
				}
				if ptr.Deref(sc.AllowPrivilegeEscalation, true) || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) ||
					ptr.Deref(sc.Privileged, false) || sc.Capabilities == nil ||
					!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
					t.Errorf("container %s security context %+v, want no privilege escalation, a read-only root filesystem and all capabilities dropped", c.Name, sc)
				}
			}
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.HostPath != nil {
					t.Errorf("volume %s is a hostPath", v.Name)
				}
			}
		})
	}
}

func TestReplicasAndLeaderElection(t *testing.T) {
	t.Parallel()
	d := deploymentOf(t, mustRender(t, "replicaCount: 3"))
	if got := ptr.Deref(d.Spec.Replicas, 0); got != 3 {
		t.Errorf("replicas = %d, want 3", got)
	}

	// One replica without leader election: allowed, and no PodDisruptionBudget that
	// would block node drains.
	m := mustRender(t, "replicaCount: 1\nleaderElection: {enabled: false}")
	if v, _ := argValue(managerContainer(t, deploymentOf(t, m)).Args, "leader-elect"); v != "false" {
		t.Errorf("--leader-elect=%s, want false", v)
	}
	if pdbs := m.ofKind("PodDisruptionBudget"); len(pdbs) != 0 {
		t.Errorf("a PodDisruptionBudget for a single replica")
	}
}

// Value combinations that would break locking are refused at render time.
func TestRefusedCombinations(t *testing.T) {
	for _, tc := range []struct{ values, wantErr string }{
		{"replicaCount: 2\nleaderElection: {enabled: false}", "needs leaderElection.enabled"},
		{"config: {backend: memory}", `"memory" keeps locks in one process`},
		{"config: {audit_log: audit.jsonl}", "give an absolute path"},
		{"watchNamespaces: [team-a]\natlantis: {rbac: {create: true}, serviceAccount: {name: atlantis, namespace: atlantis}}", `"atlantis" is not in watchNamespaces`},
		{"config: {webhooks: [{url: 'https://x.example', secretRef: {name: s, key: k}, secret_env: K}]}", "give one of secretRef, secret_file and secret_env"},
		{"serviceAccount: {create: false}", "serviceAccount.name is required"},
		{"metrics: {service: {enabled: false}, serviceMonitor: {enabled: true}}", "needs metrics.service.enabled"},
	} {
		t.Run(tc.wantErr, func(t *testing.T) {
			t.Parallel()
			_, err := helmTemplate(t, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("values %q: error %v, want one containing %q", tc.values, err, tc.wantErr)
			}
		})
	}
}

// Kubernetes before 1.35 is refused (fencing tokens need comparable resourceVersions);
// development builds of kube-apiserver, like bin/'s, report v0.0.0 and are let through.
func TestKubernetesVersion(t *testing.T) {
	for version, ok := range map[string]bool{"1.34.9": false, "1.35.0": true, "1.37.2": true, "v0.0.0-master+$Format:%H$": true} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			_, err := helmTemplate(t, "", "--kube-version", version)
			if ok && err != nil {
				t.Errorf("Kubernetes %s refused: %v", version, err)
			}
			if !ok && (err == nil || !strings.Contains(err.Error(), "needs 1.35 or later")) {
				t.Errorf("Kubernetes %s: error %v, want it refused as too old", version, err)
			}
		})
	}
}

// values.schema.json refuses wrong types and unknown keys, naming the value.
func TestSchemaRejectsWrongValues(t *testing.T) {
	for _, tc := range []struct {
		flags   []string
		wantErr string
	}{
		{[]string{"--set", "replicaCount=two"}, "/replicaCount"},
		{[]string{"--set", "leaderElection.enabled=maybe"}, "/leaderElection/enabled"},
		{[]string{"--set-string", "config.worker_count=16"}, "/config/worker_count"},
		{[]string{"--set", "config.collection_interval=30"}, "/config/collection_interval"},
		{[]string{"--set", "config.backend=redis"}, "/config/backend"},
		{[]string{"--set", "config.worker_cnt=16"}, "worker_cnt"},
		{[]string{"--set", "config.webhooks[0].url=https://x.example,config.webhooks[0].secret=hunter2"}, "secret"},
		{[]string{"--set", "config.webhooks[0].url=https://x.example,config.webhooks[0].events[0]=lock_aquired"}, "/config/webhooks/0/events/0"},
		{[]string{"--set", "watchNamespaces[0]=Team_A"}, "/watchNamespaces/0"},
		{[]string{"--set", "replicas=2"}, "replicas"},
		{[]string{"--set", "metrics.prometheusRule.errorRateThreshold=high"}, "/metrics/prometheusRule/errorRateThreshold"},
	} {
		t.Run(tc.flags[1], func(t *testing.T) {
			t.Parallel()
			_, err := helmTemplate(t, "", tc.flags...)
			if err == nil || !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: error %v, want a schema error naming %q", tc.flags, err, tc.wantErr)
			}
		})
	}
}

// ServiceMonitor, PrometheusRule, the dashboard and the Atlantis Role are off by
// default and rendered when turned on.
func TestOptionalObjects(t *testing.T) {
	t.Parallel()
	def := mustRender(t, "")
	full := mustRender(t, fullValues)
	for _, o := range []struct{ kind, namespace, name string }{
		{"ServiceMonitor", releaseNamespace, fullName},
		{"PrometheusRule", releaseNamespace, fullName},
		{"ConfigMap", releaseNamespace, fullName + "-dashboard"},
		{"Role", "team-a", fullName + "-atlantis"},
		{"RoleBinding", "team-a", fullName + "-atlantis"},
	} {
		if def.find(o.kind, o.namespace, o.name) != nil {
			t.Errorf("%s %s/%s rendered by default", o.kind, o.namespace, o.name)
		}
		if full.find(o.kind, o.namespace, o.name) == nil {
			t.Errorf("%s %s/%s not rendered when enabled", o.kind, o.namespace, o.name)
		}
	}
	sm := full.find("ServiceMonitor", releaseNamespace, fullName)
	if sm.GetLabels()["release"] != "prom" {
		t.Errorf("ServiceMonitor labels %v, want the extra label release=prom", sm.GetLabels())
	}
	d := deploymentOf(t, full)
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	if !cmp.Equal(sel, d.Spec.Selector.MatchLabels) {
		t.Errorf("ServiceMonitor selects %v, want the metrics Service's labels %v", sel, d.Spec.Selector.MatchLabels)
	}
}

// The chart's crds/ are exactly the CRDs controller-gen writes to config/crd/bases
// (`make manifests` copies them).
func TestCRDsEqualGenerated(t *testing.T) {
	t.Parallel()
	gen := readDir(t, "config", "crd", "bases")
	chart := readDir(t, "charts", "atlantis-lock-operator", "crds")
	if len(gen) == 0 {
		t.Fatal("config/crd/bases is empty: run make manifests")
	}
	for name, data := range gen {
		if c, ok := chart[name]; !ok {
			t.Errorf("chart crds/ lacks %s: run make manifests", name)
		} else if !bytes.Equal(c, data) {
			t.Errorf("chart crds/%s differs from config/crd/bases: run make manifests", name)
		}
	}
	for name := range chart {
		if _, ok := gen[name]; !ok {
			t.Errorf("chart crds/%s is not generated (not in config/crd/bases): remove it", name)
		}
	}
}

func readDir(t *testing.T, elem ...string) map[string][]byte {
	t.Helper()
	dir := repoPath(t, elem...)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		data, err := os.ReadFile(dir + "/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = data
	}
	return out
}

// goEnv returns the Go runtime's variables and the container's memory limit in
// c's environment: a value, or the resource a value comes from.
func goEnv(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		if !strings.HasPrefix(e.Name, "GO") && e.Name != "CONTAINER_MEMORY_LIMIT" {
			continue
		}
		switch {
		case e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil:
			env[e.Name] = e.ValueFrom.ResourceFieldRef.Resource
		default:
			env[e.Name] = e.Value
		}
	}
	return env
}

// TestGoRuntimeMemory: goGC sets GOGC and goMemLimitPercent the manager's
// --memory-limit-percent; 0 leaves either out.
func TestGoRuntimeMemory(t *testing.T) {
	t.Parallel()
	for values, want := range map[string]struct {
		env     map[string]string
		percent string
	}{
		"goGC: 25\ngoMemLimitPercent: 80": {map[string]string{"CONTAINER_MEMORY_LIMIT": "limits.memory", "GOGC": "25"}, "80"},
		"goGC: 0\ngoMemLimitPercent: 0":   {map[string]string{"CONTAINER_MEMORY_LIMIT": "limits.memory"}, ""},
	} {
		c := managerContainer(t, deploymentOf(t, mustRender(t, values)))
		if diff := cmp.Diff(want.env, goEnv(c)); diff != "" {
			t.Errorf("%q: Go runtime environment (-want +got):\n%s", values, diff)
		}
		if got, _ := argValue(c.Args, "memory-limit-percent"); got != want.percent {
			t.Errorf("%q: --memory-limit-percent=%q, want %q", values, got, want.percent)
		}
	}
}
