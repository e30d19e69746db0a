// Package apivalidation checks the LockRequest and ProjectLock schemas where they are
// enforced: a real kube-apiserver with the generated CRDs installed. It covers the
// samples, defaulting, every class of invalid object, immutability and the field
// documentation that `kubectl explain` shows.
package apivalidation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

// env is the API server every test talks to; TestMain starts it once.
var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	e, err := testenv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "apivalidation: cannot start the test API server: %v\n", err)
		return 1
	}
	env = e
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "apivalidation: stopping the test API server: %v\n", err)
		}
	}()
	return m.Run()
}

// ---------------------------------------------------------------------------
// Builders

// validSpec is a valid LockRequest spec with every optional field set: pull #42 of
// acme/infra locks modules/vpc, workspace default.
func validSpec() lockingv1alpha1.LockRequestSpec {
	return lockingv1alpha1.LockRequestSpec{
		Project: lockingv1alpha1.ProjectRef{
			Repository: "acme/infra",
			Path:       "modules/vpc",
			Name:       "vpc-prod",
		},
		Workspace: "default",
		Pull: &lockingv1alpha1.PullRequestRef{
			Number:     42,
			URL:        "https://github.com/acme/infra/pull/42",
			Author:     "alice",
			HeadCommit: "3f2c1e9",
		},
		User:         lockingv1alpha1.UserRef{Username: "alice", Teams: []string{"platform"}},
		Priority:     lockingv1alpha1.PriorityNormal,
		QueueTimeout: duration(10 * time.Minute),
		TTL:          duration(24 * time.Hour),
	}
}

// specMut changes a spec; rawMut changes the spec as it is sent, for values the Go
// types cannot express (a malformed duration, a missing required field).
type (
	specMut func(*lockingv1alpha1.LockRequestSpec)
	rawMut  func(spec map[string]any)
)

func duration(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func lockRequest(ns, name string, spec lockingv1alpha1.LockRequestSpec) *lockingv1alpha1.LockRequest {
	return &lockingv1alpha1.LockRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: lockingv1alpha1.GroupVersion.String(), Kind: "LockRequest"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       spec,
	}
}

func projectLock(ns, name string, spec lockingv1alpha1.ProjectLockSpec) *lockingv1alpha1.ProjectLock {
	return &lockingv1alpha1.ProjectLock{
		TypeMeta:   metav1.TypeMeta{APIVersion: lockingv1alpha1.GroupVersion.String(), Kind: "ProjectLock"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       spec,
	}
}

func validProjectLockSpec() lockingv1alpha1.ProjectLockSpec {
	return lockingv1alpha1.ProjectLockSpec{
		Project:   lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "modules/vpc", Name: "vpc-prod"},
		Workspace: "default",
	}
}

// raw is obj as the typed client would send it, with raw applied to its spec.
func raw(t *testing.T, obj client.Object, mut rawMut) *unstructured.Unstructured {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	delete(u.Object, "status")
	if mut != nil {
		spec, ok := u.Object["spec"].(map[string]any)
		if !ok {
			t.Fatalf("%T has no spec", obj)
		}
		mut(spec)
	}
	return u
}

// set returns a rawMut that sets the value at a dotted path below spec ("pull.number").
func set(path string, value any) rawMut {
	return func(spec map[string]any) {
		fields := strings.Split(path, ".")
		if err := unstructured.SetNestedField(spec, value, fields...); err != nil {
			panic(err)
		}
	}
}

// unset returns a rawMut that removes the field at a dotted path below spec.
func unset(path string) rawMut {
	return func(spec map[string]any) {
		unstructured.RemoveNestedField(spec, strings.Split(path, ".")...)
	}
}

var nameSeq atomic.Int64

// objectName turns the running (sub)test's name into a unique DNS-1123 object name.
func objectName(t *testing.T) string {
	s := strings.ToLower(t.Name())
	s = regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(s, "-")
	if len(s) > 40 {
		s = s[len(s)-40:]
	}
	return strings.Trim(fmt.Sprintf("%s-%d", strings.Trim(s, "-"), nameSeq.Add(1)), "-")
}

// newNamespace creates a namespace of its own for a test, so that tests can run again
// (-count) against the same API server without name clashes.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "validation-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

// wantInvalid fails unless err is the API server's 422 Invalid with a cause on field
// whose message contains fragment, and no cause on any other field. It also refuses
// CEL evaluation errors: a rule must say what is wrong, not fail to run.
func wantInvalid(t *testing.T, err error, field, fragment string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want refused: %s: ...%s...", field, fragment)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("error = %v; want 422 Invalid naming %s", err, field)
	}
	if msg := err.Error(); !strings.Contains(msg, field) || !strings.Contains(msg, fragment) {
		t.Errorf("error = %q; want it to name %q and say %q", msg, field, fragment)
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		t.Fatalf("error %v has no details", err)
	}
	found := false
	for _, c := range status.Status().Details.Causes {
		switch {
		case strings.Contains(c.Message, "evaluating rule"):
			t.Errorf("a validation rule failed to evaluate: %s: %s", c.Field, c.Message)
		case c.Field == field:
			found = found || strings.Contains(c.Message, fragment)
		case c.Field == "" || c.Field == "<nil>":
			// "some validation rules were not checked because the object was invalid"
		default:
			t.Errorf("unexpected cause on another field: %s: %s", c.Field, c.Message)
		}
	}
	if !found {
		t.Errorf("no cause on %s says %q; causes: %+v", field, fragment, status.Status().Details.Causes)
	}
}

// ---------------------------------------------------------------------------
// a. Samples and defaults

const samplesDir = "config/samples"

func readSample(t *testing.T, file string) *lockingv1alpha1.LockRequest {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, samplesDir, file))
	if err != nil {
		t.Fatal(err)
	}
	lr := &lockingv1alpha1.LockRequest{}
	// Strict: a misspelt field in a sample would otherwise be dropped in silence.
	if err := yaml.UnmarshalStrict(data, lr); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if got, want := lr.GroupVersionKind(), lockingv1alpha1.GroupVersion.WithKind("LockRequest"); got != want {
		t.Fatalf("%s: kind %v; want %v", file, got, want)
	}
	if lr.Namespace != "" {
		t.Errorf("%s: namespace %q; samples go to the current namespace and must not set one", file, lr.Namespace)
	}
	return lr
}

// withDefaults is spec as the API server should store it.
func withDefaults(spec lockingv1alpha1.LockRequestSpec) lockingv1alpha1.LockRequestSpec {
	if spec.Project.Path == "" {
		spec.Project.Path = "."
	}
	if spec.Workspace == "" {
		spec.Workspace = "default"
	}
	if spec.Priority == "" {
		spec.Priority = lockingv1alpha1.PriorityNormal
	}
	return spec
}

func TestSamplesAreAccepted(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	files := []string{
		"locking_v1alpha1_lockrequest_1_plain.yaml",
		"locking_v1alpha1_lockrequest_2_queued.yaml",
		"locking_v1alpha1_lockrequest_3_failfast.yaml",
		"locking_v1alpha1_lockrequest_4_ttl.yaml",
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			lr := readSample(t, file)
			want := withDefaults(lr.Spec)
			lr.Namespace = ns
			if err := env.Client.Create(ctx, lr); err != nil {
				t.Fatalf("creating %s: %v", file, err)
			}
			got := &lockingv1alpha1.LockRequest{}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(lr), got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got.Spec); diff != "" {
				t.Errorf("stored spec (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSamplesTellTheirStory checks that the samples show what their comments say:
// the queued and fail-fast requests compete with the plain one for one key, and the
// ttl sample is a manual lock of another key.
func TestSamplesTellTheirStory(t *testing.T) {
	plain := readSample(t, "locking_v1alpha1_lockrequest_1_plain.yaml")
	queued := readSample(t, "locking_v1alpha1_lockrequest_2_queued.yaml")
	failfast := readSample(t, "locking_v1alpha1_lockrequest_3_failfast.yaml")
	ttl := readSample(t, "locking_v1alpha1_lockrequest_4_ttl.yaml")

	key := func(lr *lockingv1alpha1.LockRequest) string {
		spec := withDefaults(lr.Spec)
		return spec.Key().String()
	}
	owner := func(lr *lockingv1alpha1.LockRequest) string { return lr.Spec.Owner() }

	if plain.Spec.Pull == nil {
		t.Errorf("plain sample has no pull")
	}
	for _, lr := range []*lockingv1alpha1.LockRequest{queued, failfast} {
		if key(lr) != key(plain) {
			t.Errorf("%s asks for key %q; want the plain sample's %q", lr.Name, key(lr), key(plain))
		}
		if owner(lr) == owner(plain) {
			t.Errorf("%s has the plain sample's owner %q; it would be re-entrant, not compete", lr.Name, owner(lr))
		}
	}
	if queued.Spec.Priority != lockingv1alpha1.PriorityHigh {
		t.Errorf("queued sample priority %q; want High", queued.Spec.Priority)
	}
	if queued.Spec.QueueTimeout == nil || queued.Spec.QueueTimeout.Duration != 30*time.Minute {
		t.Errorf("queued sample queueTimeout %v; want 30m", queued.Spec.QueueTimeout)
	}
	if failfast.Spec.QueueTimeout == nil || failfast.Spec.QueueTimeout.Duration != 0 {
		t.Errorf("fail-fast sample queueTimeout %v; want 0s", failfast.Spec.QueueTimeout)
	}
	if ttl.Spec.Pull != nil {
		t.Errorf("ttl sample has a pull; want a manual lock")
	}
	if key(ttl) == key(plain) {
		t.Errorf("ttl sample asks for the plain sample's key %q; want another", key(ttl))
	}
	if ttl.Spec.TTL == nil || ttl.Spec.TTL.Duration != time.Hour {
		t.Errorf("ttl sample ttl %v; want 1h", ttl.Spec.TTL)
	}
}

func TestDefaults(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)

	t.Run("LockRequest", func(t *testing.T) {
		// Only the required fields.
		lr := lockRequest(ns, objectName(t), lockingv1alpha1.LockRequestSpec{
			Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra"},
			User:    lockingv1alpha1.UserRef{Username: "alice"},
		})
		if err := env.Client.Create(ctx, lr); err != nil {
			t.Fatal(err)
		}
		want := lockingv1alpha1.LockRequestSpec{
			Project:   lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "."},
			Workspace: "default",
			User:      lockingv1alpha1.UserRef{Username: "alice"},
			Priority:  lockingv1alpha1.PriorityNormal,
		}
		if diff := cmp.Diff(want, lr.Spec); diff != "" {
			t.Errorf("defaulted spec (-want +got):\n%s", diff)
		}
	})

	t.Run("ProjectLock", func(t *testing.T) {
		pl := projectLock(ns, objectName(t), lockingv1alpha1.ProjectLockSpec{
			Project:   lockingv1alpha1.ProjectRef{Repository: "acme/infra"},
			Workspace: "default",
		})
		if err := env.Client.Create(ctx, pl); err != nil {
			t.Fatal(err)
		}
		want := lockingv1alpha1.ProjectLockSpec{
			Project:   lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "."},
			Workspace: "default",
		}
		if diff := cmp.Diff(want, pl.Spec); diff != "" {
			t.Errorf("defaulted spec (-want +got):\n%s", diff)
		}
	})
}

// TestValidEdgeCases makes sure that the rules do not refuse what they should allow.
func TestValidEdgeCases(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	teams := make([]string, 64)
	for i := range teams {
		teams[i] = fmt.Sprintf("team-%d", i)
	}
	cases := []struct {
		name string
		spec specMut
		raw  rawMut
	}{
		{name: "nested groups", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Repository = "group/subgroup/repo" }},
		{name: "repository of 255 chars", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Repository = "acme/" + strings.Repeat("r", 250) }},
		{name: "root path", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Path = "." }},
		{name: "path with dotted names", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Path = ".github/..x/x../.../a.b" }},
		{name: "path of 512 chars", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Path = strings.Repeat("abcdefg/", 63) + "abcdefgh" }},
		{name: "workspace with dots", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Workspace = "prod.eu-west-1_b" }},
		{name: "no project name", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Name = "" }},
		{name: "no pull", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Pull = nil }},
		{name: "64 teams", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.User.Teams = teams }},
		{name: "every priority", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Priority = lockingv1alpha1.PriorityCritical }},
		{name: "queueTimeout 0s", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.QueueTimeout = duration(0) }},
		{name: "queueTimeout 1h30m", raw: set("queueTimeout", "1h30m")},
		{name: "queueTimeout 1.5h", raw: set("queueTimeout", "1.5h")},
		{name: "ttl 1ms", raw: set("ttl", "1ms")},
		{name: "renewTime", spec: func(s *lockingv1alpha1.LockRequestSpec) { now := metav1.NowMicro(); s.RenewTime = &now }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := validSpec()
			if tc.spec != nil {
				tc.spec(&spec)
			}
			obj := raw(t, lockRequest(ns, objectName(t), spec), tc.raw)
			if err := env.Client.Create(ctx, obj); err != nil {
				t.Errorf("refused: %v", err)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// b. Invalid objects

func TestInvalidLockRequests(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	tooManyTeams := make([]string, 65)
	for i := range tooManyTeams {
		tooManyTeams[i] = fmt.Sprintf("team-%d", i)
	}
	repository := func(v string) specMut {
		return func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Repository = v }
	}
	path := func(v string) specMut {
		return func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Path = v }
	}
	workspace := func(v string) specMut {
		return func(s *lockingv1alpha1.LockRequestSpec) { s.Workspace = v }
	}
	const (
		notRelative = "path must be relative to the repository root"
		dotDot      = "path must not contain '..'"
		notCleaned  = "path must be cleaned"
		shouldMatch = "should match"
		tooLong     = "Too long"
	)
	cases := []struct {
		name     string
		spec     specMut
		raw      rawMut
		field    string
		fragment string
	}{
		{name: "empty repository", spec: repository(""), field: "spec.project.repository", fragment: "at least 3 chars long"},
		{name: "repository without owner", spec: repository("no-slash"), field: "spec.project.repository", fragment: shouldMatch},
		{name: "repository with empty segment", spec: repository("a//b"), field: "spec.project.repository", fragment: shouldMatch},
		{name: "repository with trailing slash", spec: repository("a/b/"), field: "spec.project.repository", fragment: shouldMatch},
		{name: "repository of 300 chars", spec: repository("acme/" + strings.Repeat("r", 295)), field: "spec.project.repository", fragment: tooLong},
		{name: "missing repository", raw: unset("project.repository"), field: "spec.project.repository", fragment: "Required value"},

		{name: "absolute path", spec: path("/x"), field: "spec.project.path", fragment: notRelative},
		{name: "path ../x", spec: path("../x"), field: "spec.project.path", fragment: dotDot},
		{name: "path a/../b", spec: path("a/../b"), field: "spec.project.path", fragment: dotDot},
		{name: "path ..", spec: path(".."), field: "spec.project.path", fragment: dotDot},
		{name: "path a/..", spec: path("a/.."), field: "spec.project.path", fragment: dotDot},
		{name: "path with trailing slash", spec: path("a/"), field: "spec.project.path", fragment: notCleaned},
		{name: "path with double slash", spec: path("a//b"), field: "spec.project.path", fragment: notCleaned},
		{name: "path ./a", spec: path("./a"), field: "spec.project.path", fragment: notCleaned},
		{name: "path a/./b", spec: path("a/./b"), field: "spec.project.path", fragment: notCleaned},
		{name: "path of 600 chars", spec: path(strings.Repeat("a", 600)), field: "spec.project.path", fragment: tooLong},
		{name: "empty path", raw: set("project.path", ""), field: "spec.project.path", fragment: "at least 1 chars long"},
		{name: "bad project name", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Name = "vpc prod" }, field: "spec.project.name", fragment: shouldMatch},

		{name: "workspace with space", spec: workspace("a b"), field: "spec.workspace", fragment: shouldMatch},
		{name: "workspace with slash", spec: workspace("ws/1"), field: "spec.workspace", fragment: shouldMatch},
		{name: "workspace with dollar", spec: workspace("$x"), field: "spec.workspace", fragment: shouldMatch},
		{name: "workspace starting with dot", spec: workspace(".hidden"), field: "spec.workspace", fragment: shouldMatch},
		{name: "workspace of 91 chars", spec: workspace(strings.Repeat("w", 91)), field: "spec.workspace", fragment: tooLong},

		{name: "unknown priority", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Priority = "Urgent" }, field: "spec.priority", fragment: `Unsupported value: "Urgent"`},

		{name: "negative queueTimeout", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.QueueTimeout = duration(-5 * time.Minute) }, field: "spec.queueTimeout", fragment: "queueTimeout must not be negative"},
		{name: "malformed queueTimeout", raw: set("queueTimeout", "10 minutes"), field: "spec.queueTimeout", fragment: shouldMatch},
		{name: "queueTimeout in days", raw: set("queueTimeout", "1d"), field: "spec.queueTimeout", fragment: shouldMatch},
		{name: "negative ttl", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.TTL = duration(-time.Hour) }, field: "spec.ttl", fragment: "ttl must be positive"},
		{name: "zero ttl", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.TTL = duration(0) }, field: "spec.ttl", fragment: "ttl must be positive"},
		{name: "malformed ttl", raw: set("ttl", "10 minutes"), field: "spec.ttl", fragment: shouldMatch},

		{name: "pull number 0", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Pull.Number = 0 }, field: "spec.pull.number", fragment: "greater than or equal to 1"},
		{name: "pull number -1", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Pull.Number = -1 }, field: "spec.pull.number", fragment: "greater than or equal to 1"},
		{name: "missing pull number", raw: unset("pull.number"), field: "spec.pull.number", fragment: "Required value"},
		{name: "headCommit not hex", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Pull.HeadCommit = "main" }, field: "spec.pull.headCommit", fragment: shouldMatch},
		{name: "url of 3000 chars", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Pull.URL = "https://" + strings.Repeat("u", 2992) }, field: "spec.pull.url", fragment: tooLong},

		{name: "missing username", raw: unset("user.username"), field: "spec.user.username", fragment: "Required value"},
		{name: "empty username", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.User.Username = "" }, field: "spec.user.username", fragment: "at least 1 chars long"},
		{name: "username of 300 chars", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.User.Username = strings.Repeat("u", 300) }, field: "spec.user.username", fragment: tooLong},
		{name: "65 teams", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.User.Teams = tooManyTeams }, field: "spec.user.teams", fragment: "Too many"},
		{name: "team of 300 chars", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.User.Teams = []string{strings.Repeat("t", 300)} }, field: "spec.user.teams[0]", fragment: tooLong},
		{name: "duplicate teams", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.User.Teams = []string{"platform", "platform"} }, field: "spec.user.teams[1]", fragment: "Duplicate value"},

		{name: "missing project", raw: unset("project"), field: "spec.project", fragment: "Required value"},
		{name: "missing user", raw: unset("user"), field: "spec.user", fragment: "Required value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := validSpec()
			if tc.spec != nil {
				tc.spec(&spec)
			}
			obj := raw(t, lockRequest(ns, objectName(t), spec), tc.raw)
			wantInvalid(t, env.Client.Create(ctx, obj), tc.field, tc.fragment)
		})
	}
}

// TestOverflowingDurationsAreRefused: a duration that matches the pattern but does
// not fit a Go time.Duration must not be stored, or no Go client (the operator's
// informers included) could decode the list of LockRequests any more.
func TestOverflowingDurationsAreRefused(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	for _, field := range []string{"queueTimeout", "ttl"} {
		t.Run(field, func(t *testing.T) {
			obj := raw(t, lockRequest(ns, objectName(t), validSpec()), set(field, "9999999999h"))
			err := env.Client.Create(ctx, obj)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec."+field) {
				t.Fatalf("error = %v; want 422 Invalid naming spec.%s", err, field)
			}
			t.Logf("refused: %v", err)
		})
	}
}

func TestInvalidProjectLocks(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	cases := []struct {
		name     string
		spec     func(*lockingv1alpha1.ProjectLockSpec)
		raw      rawMut
		field    string
		fragment string
	}{
		{name: "missing workspace", raw: unset("workspace"), field: "spec.workspace", fragment: "Required value"},
		{name: "bad workspace", spec: func(s *lockingv1alpha1.ProjectLockSpec) { s.Workspace = "a b" }, field: "spec.workspace", fragment: "should match"},
		{name: "bad repository", spec: func(s *lockingv1alpha1.ProjectLockSpec) { s.Project.Repository = "no-slash" }, field: "spec.project.repository", fragment: "should match"},
		{name: "missing repository", raw: unset("project.repository"), field: "spec.project.repository", fragment: "Required value"},
		{name: "path with ..", spec: func(s *lockingv1alpha1.ProjectLockSpec) { s.Project.Path = "a/../b" }, field: "spec.project.path", fragment: "path must not contain '..'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := validProjectLockSpec()
			if tc.spec != nil {
				tc.spec(&spec)
			}
			obj := raw(t, projectLock(ns, objectName(t), spec), tc.raw)
			wantInvalid(t, env.Client.Create(ctx, obj), tc.field, tc.fragment)
		})
	}
}

// ---------------------------------------------------------------------------
// c. Immutability

func TestLockRequestImmutability(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	noPull := func(s *lockingv1alpha1.LockRequestSpec) { s.Pull = nil }
	noQueueTimeout := func(s *lockingv1alpha1.LockRequestSpec) { s.QueueTimeout = nil }
	noTTL := func(s *lockingv1alpha1.LockRequestSpec) { s.TTL = nil }
	cases := []struct {
		name string
		// create changes validSpec before the request is created; createRaw changes
		// it as sent (e.g. durations spelt as kubectl users write them).
		create    specMut
		createRaw rawMut
		update    specMut
		// field and fragment of the refusal; empty when the update must be accepted.
		field, fragment string
	}{
		{name: "project.repository", update: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Repository = "acme/other" }, field: "spec.project", fragment: "project is immutable"},
		{name: "project.path", update: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Path = "modules/eks" }, field: "spec.project", fragment: "project is immutable"},
		{name: "project.name", update: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Name = "vpc-staging" }, field: "spec.project", fragment: "project is immutable"},
		{name: "project.name removed", update: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Name = "" }, field: "spec.project", fragment: "project is immutable"},
		{name: "workspace", update: func(s *lockingv1alpha1.LockRequestSpec) { s.Workspace = "staging" }, field: "spec.workspace", fragment: "workspace is immutable"},
		{name: "pull.number", update: func(s *lockingv1alpha1.LockRequestSpec) { s.Pull.Number = 43 }, field: "spec.pull", fragment: "pull is immutable"},
		{name: "pull.headCommit", update: func(s *lockingv1alpha1.LockRequestSpec) { s.Pull.HeadCommit = "abcdef0" }, field: "spec.pull", fragment: "pull is immutable"},
		{name: "pull added", create: noPull, update: func(s *lockingv1alpha1.LockRequestSpec) { s.Pull = &lockingv1alpha1.PullRequestRef{Number: 7} }, field: "spec.pull", fragment: "pull is immutable"},
		{name: "pull removed", update: noPull, field: "spec.pull", fragment: "pull is immutable"},
		{name: "user.username", update: func(s *lockingv1alpha1.LockRequestSpec) { s.User.Username = "bob" }, field: "spec.user", fragment: "user is immutable"},
		{name: "user.teams", update: func(s *lockingv1alpha1.LockRequestSpec) { s.User.Teams = append(s.User.Teams, "admins") }, field: "spec.user", fragment: "user is immutable"},
		{name: "priority", update: func(s *lockingv1alpha1.LockRequestSpec) { s.Priority = lockingv1alpha1.PriorityCritical }, field: "spec.priority", fragment: "priority is immutable"},
		{name: "queueTimeout changed", update: func(s *lockingv1alpha1.LockRequestSpec) { s.QueueTimeout = duration(time.Hour) }, field: "spec.queueTimeout", fragment: "queueTimeout is immutable"},
		{name: "queueTimeout added", create: noQueueTimeout, update: func(s *lockingv1alpha1.LockRequestSpec) { s.QueueTimeout = duration(time.Hour) }, field: "spec.queueTimeout", fragment: "queueTimeout is immutable"},
		{name: "queueTimeout removed", update: noQueueTimeout, field: "spec.queueTimeout", fragment: "queueTimeout is immutable"},
		{name: "ttl changed", update: func(s *lockingv1alpha1.LockRequestSpec) { s.TTL = duration(48 * time.Hour) }, field: "spec.ttl", fragment: "ttl is immutable"},
		{name: "ttl added", create: noTTL, update: func(s *lockingv1alpha1.LockRequestSpec) { s.TTL = duration(time.Hour) }, field: "spec.ttl", fragment: "ttl is immutable"},
		{name: "ttl removed", update: noTTL, field: "spec.ttl", fragment: "ttl is immutable"},

		{name: "renewTime set", update: func(s *lockingv1alpha1.LockRequestSpec) { now := metav1.NowMicro(); s.RenewTime = &now }},
		{
			name: "renewTime moved",
			create: func(s *lockingv1alpha1.LockRequestSpec) {
				then := metav1.NewMicroTime(time.Now().Add(-time.Hour))
				s.RenewTime = &then
			},
			update: func(s *lockingv1alpha1.LockRequestSpec) { now := metav1.NowMicro(); s.RenewTime = &now },
		},
		{
			name:   "renewTime removed",
			create: func(s *lockingv1alpha1.LockRequestSpec) { now := metav1.NowMicro(); s.RenewTime = &now },
			update: func(s *lockingv1alpha1.LockRequestSpec) { s.RenewTime = nil },
		},
		{name: "unchanged", update: func(*lockingv1alpha1.LockRequestSpec) {}},
		{
			// A request written with kubectl ("10m", "1h") and updated by a Go client,
			// which spells durations "10m0s" and "1h0m0s": the durations are the same,
			// so the operator can still add its finalizer and a holder can renew.
			name: "durations respelt by a Go client",
			createRaw: func(spec map[string]any) {
				set("queueTimeout", "10m")(spec)
				set("ttl", "1h")(spec)
			},
			update: func(s *lockingv1alpha1.LockRequestSpec) { now := metav1.NowMicro(); s.RenewTime = &now },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := validSpec()
			if tc.create != nil {
				tc.create(&spec)
			}
			key := client.ObjectKey{Namespace: ns, Name: objectName(t)}
			if err := env.Client.Create(ctx, raw(t, lockRequest(key.Namespace, key.Name, spec), tc.createRaw)); err != nil {
				t.Fatalf("creating the request: %v", err)
			}
			lr := &lockingv1alpha1.LockRequest{}
			if err := env.Client.Get(ctx, key, lr); err != nil {
				t.Fatal(err)
			}
			tc.update(&lr.Spec)
			lr.Finalizers = append(lr.Finalizers, lockingv1alpha1.ReleaseFinalizer)
			err := env.Client.Update(ctx, lr)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("update refused: %v", err)
				}
				return
			}
			wantInvalid(t, err, tc.field, tc.fragment)
		})
	}
}

func TestProjectLockImmutability(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	cases := []struct {
		name   string
		update func(*lockingv1alpha1.ProjectLockSpec)
		refuse bool
	}{
		{name: "project.repository", update: func(s *lockingv1alpha1.ProjectLockSpec) { s.Project.Repository = "acme/other" }, refuse: true},
		{name: "project.path", update: func(s *lockingv1alpha1.ProjectLockSpec) { s.Project.Path = "modules/eks" }, refuse: true},
		{name: "project.name", update: func(s *lockingv1alpha1.ProjectLockSpec) { s.Project.Name = "" }, refuse: true},
		{name: "workspace", update: func(s *lockingv1alpha1.ProjectLockSpec) { s.Workspace = "staging" }, refuse: true},
		{name: "unchanged", update: func(*lockingv1alpha1.ProjectLockSpec) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pl := projectLock(ns, objectName(t), validProjectLockSpec())
			if err := env.Client.Create(ctx, pl); err != nil {
				t.Fatalf("creating the lock: %v", err)
			}
			tc.update(&pl.Spec)
			pl.Finalizers = append(pl.Finalizers, lockingv1alpha1.ReleaseFinalizer)
			err := env.Client.Update(ctx, pl)
			if !tc.refuse {
				if err != nil {
					t.Fatalf("update refused: %v", err)
				}
				return
			}
			wantInvalid(t, err, "spec", "spec is immutable")
		})
	}
}

// ---------------------------------------------------------------------------
// d. kubectl explain

// writeKubeconfig writes a kubeconfig for the test API server and returns its path.
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	cfg := env.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
	}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
		Token:                 cfg.BearerToken,
	}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest", Namespace: "default"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKubectlExplain(t *testing.T) {
	kubectl := kubectlPath(t)
	kubeconfig := writeKubeconfig(t)
	cacheDir := t.TempDir()

	cases := []struct {
		field string
		want  []string
	}{
		{field: "lockrequest.spec.queueTimeout", want: []string{"queueTimeout", "longest", "QueueTimeout", "Conflict", "TryLock"}},
		{field: "lr.spec.project.path", want: []string{"path", "relative", "cleaned"}},
		{field: "lockrequest.spec.renewTime", want: []string{"renewTime", "only field that may change"}},
		{field: "lockrequest.status.fencingToken", want: []string{"fencingToken", "resourceVersion"}},
		{field: "projectlock.spec.workspace", want: []string{"workspace", "Terraform workspace"}},
		{field: "pl.status.queueLength", want: []string{"queueLength", "waiting requests"}},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			// The OpenAPI v3 document of a new CRD may appear a moment after the CRD
			// is established: retry for a while.
			var out []byte
			var err error
			for deadline := time.Now().Add(60 * time.Second); ; {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "--cache-dir", cacheDir, "explain", tc.field)
				out, err = cmd.CombinedOutput()
				cancel()
				if err == nil && containsAll(string(out), tc.want) || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Second)
			}
			if err != nil {
				t.Fatalf("kubectl explain %s: %v\n%s", tc.field, err, out)
			}
			// Descriptions are wrapped: compare with runs of white space collapsed.
			text := strings.Join(strings.Fields(string(out)), " ")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("kubectl explain %s does not say %q:\n%s", tc.field, w, out)
				}
			}
		})
	}
}

// kubectlPath returns bin/kubectl, or fails the test with what to do.
func kubectlPath(t *testing.T) string {
	t.Helper()
	assets, err := testenv.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	kubectl := filepath.Join(assets, "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Fatalf("%s is missing: run `make tools` to build kubectl into bin/ (%v)", kubectl, err)
	}
	return kubectl
}

// TestKubectlApplySamples applies config/samples the way the README says
// (`kubectl apply -f config/samples/`), into a namespace of its own.
func TestKubectlApplySamples(t *testing.T) {
	kubectl := kubectlPath(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	args := []string{"--kubeconfig", writeKubeconfig(t), "--cache-dir", t.TempDir(), "--namespace", ns}
	out, err := exec.Command(kubectl, append(args, "apply", "-f", filepath.Join(root, samplesDir))...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply -f %s: %v\n%s", samplesDir, err, out)
	}
	list := &lockingv1alpha1.LockRequestList{}
	if err := env.Client.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, lr := range list.Items {
		got = append(got, lr.Name)
	}
	want := []string{"infra-prod-maintenance", "infra-vpc-pr42", "infra-vpc-pr57", "infra-vpc-pr61"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LockRequests after kubectl apply -f (-want +got):\n%s", diff)
	}
}

func containsAll(s string, words []string) bool {
	s = strings.Join(strings.Fields(s), " ")
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}
