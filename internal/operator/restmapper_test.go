package operator

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// countingMapper counts the RESTMapping calls that reach it.
type countingMapper struct {
	meta.RESTMapper
	calls int
}

func (c *countingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	c.calls++
	return c.RESTMapper.RESTMapping(gk, versions...)
}

func TestMemoMapperKeepsWhatItFound(t *testing.T) {
	gv := schema.GroupVersion{Group: "locking.runatlantis.io", Version: "v1alpha1"}
	known := meta.NewDefaultRESTMapper([]schema.GroupVersion{gv})
	known.Add(gv.WithKind("LockRequest"), meta.RESTScopeNamespace)
	behind := &countingMapper{RESTMapper: known}
	m := &memoMapper{RESTMapper: behind}
	gk := schema.GroupKind{Group: gv.Group, Kind: "LockRequest"}

	for i := range 3 {
		mapping, err := m.RESTMapping(gk, gv.Version)
		if err != nil {
			t.Fatal(err)
		}
		if mapping.Scope.Name() != meta.RESTScopeNameNamespace || mapping.Resource.Resource != "lockrequests" {
			t.Fatalf("lookup %d: %+v; want the namespaced resource lockrequests", i, mapping)
		}
		mapping.Resource.Resource = "changed by a caller"
	}
	if behind.calls != 1 {
		t.Errorf("three lookups of one kind at one version reached the mapper %d times; want 1", behind.calls)
	}

	// Not found: asked again every time, so that a kind installed later is found.
	missing := schema.GroupKind{Group: gv.Group, Kind: "Missing"}
	for range 2 {
		if _, err := m.RESTMapping(missing, gv.Version); !meta.IsNoMatchError(err) {
			t.Fatalf("lookup of an unknown kind: %v; want a no-match error", err)
		}
	}
	// Without exactly one version the answer may change (the preferred version).
	if _, err := m.RESTMapping(gk); err != nil {
		t.Fatal(err)
	}
	if behind.calls != 4 {
		t.Errorf("two lookups of an unknown kind and one without a version reached the mapper %d times in all with the first; want 4", behind.calls)
	}
}
