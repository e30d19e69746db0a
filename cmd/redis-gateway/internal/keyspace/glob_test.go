package keyspace_test

import (
	"context"
	"slices"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/keyspace"
)

// keys and patterns of the glob tests: Atlantis's own patterns ("pr*", "pr/*",
// "pr/<repo>*"), and the rest of Redis's glob syntax.
var (
	globKeys = []string{
		"pr/acme/infra/./default/", "pr/acme/infra2/modules/vpc/prod/vpc", "pr/group/sub/repo/./default/",
		"prod.example.com::acme/infra::1", "github.com::acme/infra::12", "global/apply/lock", "p", "", "a*b", `a\b`, "[x]",
	}
	globPatterns = []string{
		"", "*", "pr*", "pr/*", "pr/acme/infra*", "pr/acme/infra/*", "pr/group/sub*", "global/*/lock",
		"?", "p?", "*::*::1", "*::*::1?", "[gp]*", "[^p]*", "[a-h]*", `a\*b`, `a\\b`, `\[x\]`, "*/default/",
		"pr/*/*/./default/", "**", "*a*", "[!p]*",
	}
)

func TestMatchTable(t *testing.T) {
	for _, tc := range []struct {
		pattern, key string
		want         bool
	}{
		{"pr*", "pr/acme/infra/./default/", true},
		{"pr*", "prod.example.com::acme/infra::1", true},      // as in Redis: Atlantis's List scans those too
		{"pr/acme/infra*", "pr/acme/infra2/./default/", true}, // Atlantis's UnlockByPull prefix
		{"pr/*", "pr/", true},
		{"*", "", true},
		{"?", "", false},
		{"[abc]", "b", true},
		{"[^abc]", "b", false},
		{"[a-c]x", "bx", true},
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"[abc", "b", true},                   // an open set runs to the end, as in Redis
		{"[h-a]*", "global/apply/lock", true}, // a reversed range is swapped, as in Redis (miniredis panics on it)
	} {
		if got := keyspace.Match(tc.pattern, tc.key); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.key, got, tc.want)
		}
	}
}

// TestMatchAsMiniredis compares Match with miniredis's KEYS on every key and pattern.
func TestMatchAsMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	for _, k := range globKeys {
		if err := c.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range globPatterns {
		if p == "" {
			continue // KEYS needs a pattern; SCAN without MATCH is "*"
		}
		want, err := c.Keys(ctx, p).Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(want)
		var got []string
		for _, k := range globKeys {
			if keyspace.Match(p, k) {
				got = append(got, k)
			}
		}
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("pattern %q: miniredis matches %q, Match %q", p, want, got)
		}
	}
}
