package chart

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	// releaseName and releaseNamespace are the release every test renders.
	releaseName      = "alo"
	releaseNamespace = "lock-system"
	// kubeVersion is given to `helm template`: helm built from Go modules without
	// release ldflags assumes Kubernetes v1.20, older than the chart's kubeVersion.
	// It is the version the tools in bin/ are built from (hack/tools/go.mod).
	kubeVersion = "1.37.2"
	// fullName is the prefix of the chart's object names for releaseName.
	fullName = releaseName + "-atlantis-lock-operator"
)

// repoPath returns a path inside the repository: the directory above the test's
// that holds the chart and go.mod. (Not testenv.RepoRoot, which would link envtest
// and the whole operator into this test.)
func repoPath(t *testing.T, elem ...string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, errChart := os.Stat(filepath.Join(dir, "charts", "atlantis-lock-operator", "Chart.yaml"))
		_, errMod := os.Stat(filepath.Join(dir, "go.mod"))
		if errChart == nil && errMod == nil {
			return filepath.Join(append([]string{dir}, elem...)...)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no repository root (go.mod and charts/atlantis-lock-operator) above the working directory")
		}
		dir = parent
	}
}

// tool returns the path of a binary in bin/, or fails saying how to build it.
func tool(t *testing.T, name string) string {
	t.Helper()
	p := repoPath(t, "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found (%v): run `make tools`", p, err)
	}
	return p
}

// run runs a tool and returns its standard output; a failure's error carries its
// standard error.
func run(t *testing.T, name string, args ...string) ([]byte, error) {
	t.Helper()
	return runStdin(t, "", name, args...)
}

// runStdin is run with stdin as the tool's standard input.
func runStdin(t *testing.T, stdin, name string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), tool(t, name), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New(strings.TrimSpace(stderr.String()) + " (" + err.Error() + ")")
	}
	return stdout.Bytes(), nil
}

// helmTemplate renders the chart as release alo in namespace lock-system with the
// given values (YAML) and extra flags.
func helmTemplate(t *testing.T, values string, flags ...string) (manifest, error) {
	t.Helper()
	args := []string{"template", releaseName, repoPath(t, "charts", "atlantis-lock-operator"),
		"--namespace", releaseNamespace, "--kube-version", kubeVersion}
	if values != "" {
		// From standard input: --values splits file names at commas, which
		// t.TempDir() names of subtests may contain.
		args = append(args, "--values", "-")
	}
	out, err := runStdin(t, values, "helm", append(args, flags...)...)
	if err != nil {
		return nil, err
	}
	return parseManifest(t, out), nil
}

// mustRender is helmTemplate without flags that fails the test on errors.
func mustRender(t *testing.T, values string) manifest {
	t.Helper()
	m, err := helmTemplate(t, values)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return m
}

// manifest is a list of rendered objects.
type manifest []*unstructured.Unstructured

func parseManifest(t *testing.T, data []byte) manifest {
	t.Helper()
	var m manifest
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return m
		}
		if err != nil {
			t.Fatalf("reading rendered YAML: %v", err)
		}
		obj := map[string]any{}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if len(obj) == 0 {
			continue // a document of comments only
		}
		m = append(m, &unstructured.Unstructured{Object: obj})
	}
}

// ofKind returns the objects of a kind.
func (m manifest) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range m {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// one returns the single object of a kind, failing when there is not exactly one.
func (m manifest) one(t *testing.T, kind string) *unstructured.Unstructured {
	t.Helper()
	objs := m.ofKind(kind)
	if len(objs) != 1 {
		t.Fatalf("want exactly one %s, rendered %d", kind, len(objs))
	}
	return objs[0]
}

// find returns the object of a kind, namespace and name, or nil.
func (m manifest) find(kind, namespace, name string) *unstructured.Unstructured {
	for _, u := range m {
		if u.GetKind() == kind && u.GetNamespace() == namespace && u.GetName() == name {
			return u
		}
	}
	return nil
}

// typed converts u into T, failing on fields T does not have: a typo in a template
// must not pass as an ignored field.
func typed[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	if u == nil {
		t.Fatalf("no object to convert to %T", *new(T))
	}
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &v, true); err != nil {
		t.Fatalf("%s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return &v
}

// readYAMLFile reads one object from a YAML file of the repository.
func readYAMLFile[T any](t *testing.T, elem ...string) *T {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := yaml.UnmarshalStrict(data, &v); err != nil {
		t.Fatalf("%s: %v", filepath.Join(elem...), err)
	}
	return &v
}
