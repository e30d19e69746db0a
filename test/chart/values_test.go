package chart

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
)

// Every value in values.yaml has a comment above it, or sits inside a value that has
// one (such as the keys of resources).
func TestValuesDocumented(t *testing.T) {
	data, err := os.ReadFile(repoPath(t, "charts", "atlantis-lock-operator", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		indent     int
		documented bool
	}
	var path []key // the keys enclosing the current line
	commented := false
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			commented = false
			continue
		case strings.HasPrefix(trimmed, "#"):
			commented = true
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if strings.HasPrefix(trimmed, "- ") {
			indent += 2 // a list item belongs to the key above it, even at its indent
		}
		for len(path) > 0 && path[len(path)-1].indent >= indent {
			path = path[:len(path)-1]
		}
		inDocumented := false
		for _, k := range path {
			inDocumented = inDocumented || k.documented
		}
		name, _, isKey := strings.Cut(trimmed, ":")
		if isKey && !strings.HasPrefix(trimmed, "-") && !strings.ContainsAny(name, " {[") {
			if !commented && !inDocumented && !strings.HasSuffix(trimmed, ":") {
				t.Errorf("values.yaml:%d: %s has no comment above it", i+1, name)
			}
			path = append(path, key{indent: indent, documented: commented || inDocumented})
		}
		commented = false
	}
}

// values.schema.json and values.yaml name the same values: nothing in the schema that
// values.yaml does not show and document.
func TestSchemaCoversValues(t *testing.T) {
	var schema map[string]any
	data, err := os.ReadFile(repoPath(t, "charts", "atlantis-lock-operator", "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	values := *readYAMLFile[map[string]any](t, "charts", "atlantis-lock-operator", "values.yaml")
	var walk func(prefix string, s map[string]any, v map[string]any)
	walk = func(prefix string, s map[string]any, v map[string]any) {
		props, _ := s["properties"].(map[string]any)
		names := make([]string, 0, len(props))
		for n := range props {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if prefix == "" && n == "global" {
				continue // given by parent charts, never in values.yaml
			}
			sub, inValues := v[n]
			if !inValues {
				t.Errorf("schema property %s%s is not in values.yaml", prefix, n)
				continue
			}
			if m, ok := sub.(map[string]any); ok {
				walk(prefix+n+".", props[n].(map[string]any), m)
			}
		}
		for n := range v {
			if _, ok := props[n]; !ok && props != nil {
				t.Errorf("values.yaml has %s%s, which the schema does not describe", prefix, n)
			}
		}
	}
	walk("", schema, values)
}
