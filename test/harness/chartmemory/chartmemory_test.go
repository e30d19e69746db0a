package chartmemory

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeValues(t *testing.T, values string) string {
	t.Helper()
	root := t.TempDir()
	path := filepath.Join(root, ValuesPath)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestRead(t *testing.T) {
	root := writeValues(t, "resources:\n  limits:\n    memory: 192Mi\ngoMemLimitPercent: 60\ngoGC: 50\nreplicaCount: 2\n")
	got, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Memory{LimitBytes: 192 << 20, LimitPercent: 60, GOGC: 50}); got != want {
		t.Fatalf("Read = %+v, want %+v", got, want)
	}
	if args := got.ManagerArgs(); !slices.Equal(args, []string{"--memory-limit-percent=60"}) {
		t.Errorf("managerArgs = %v", args)
	}
	if env := got.ManagerEnv(); !slices.Equal(env, []string{"CONTAINER_MEMORY_LIMIT=201326592", "GOGC=50"}) {
		t.Errorf("managerEnv = %v", env)
	}
	// As the chart's deployment: a zero leaves the flag and GOGC out.
	if args, env := (Memory{LimitBytes: 1 << 30}).ManagerArgs(), (Memory{LimitBytes: 1 << 30}).ManagerEnv(); args != nil || !slices.Equal(env, []string{"CONTAINER_MEMORY_LIMIT=1073741824"}) {
		t.Errorf("without goMemLimitPercent and goGC: args %v, env %v", args, env)
	}
}

func TestReadErrorsNameTheField(t *testing.T) {
	for values, want := range map[string]string{
		"goGC: 50\n": "resources.limits.memory",
		"resources:\n  limits:\n    memory: lots\n":                        "resources.limits.memory",
		"resources:\n  limits:\n    memory: 1Gi\ngoMemLimitPercent: 120\n": "goMemLimitPercent",
	} {
		if _, err := Read(writeValues(t, values)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("values %q: error %v, want one naming %s", values, err, want)
		}
	}
}

// The repository's chart parses, so that `make bench` and `make bench-scale` run the operator as
// the chart does.
func TestReadTheRepositorysChartMemory(t *testing.T) {
	got, err := Read(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if got.LimitBytes <= 0 {
		t.Fatalf("the chart's memory limit = %d bytes", got.LimitBytes)
	}
}
