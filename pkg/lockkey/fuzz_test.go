package lockkey

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts is a valid
// key that prints back to the input and parses the same way given its repository.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"acme/infra/./default/",
		"acme/infra/modules/vpc/default/",
		"acme/infra/envs/prod/us-east-1/vpc/prod/vpc-prod",
		"group/subgroup/infra/./default/root",
		"Bitbucket Server/infra/./default/",
		"acme/infra/../default/",
		"acme/infra//modules/default/",
		"acme/infra/modules/./vpc/default/",
		"acme/infra/modules/vpc//",
		"acme/infra/.//",
		"/infra/./default/",
		"acme//./default/",
		"acme/infra/default/",
		"acme/infr\u0430/./default/VPC",
		"",
		"/",
		"////",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		k, err := Parse(input)
		if err != nil {
			if k != (Key{}) {
				t.Fatalf("Parse(%q) returned %+v with error %v", input, k, err)
			}
			return
		}
		if got := k.String(); got != input {
			t.Fatalf("Parse(%q).String() = %q", input, got)
		}
		if err := k.Validate(); err != nil {
			t.Fatalf("Parse(%q) = %+v, which does not validate: %v", input, k, err)
		}
		if CleanPath(k.Path) != k.Path {
			t.Fatalf("Parse(%q) path %q is not clean", input, k.Path)
		}
		k2, err := ParseWithRepository(input, k.Repository)
		if err != nil {
			t.Fatalf("ParseWithRepository(%q, %q): %v", input, k.Repository, err)
		}
		if diff := cmp.Diff(k, k2); diff != "" {
			t.Fatalf("ParseWithRepository(%q, %q) differs from Parse (-Parse +ParseWithRepository):\n%s", input, k.Repository, diff)
		}
		k3, err := ParseWithRepositoryDepth(input, strings.Count(k.Repository, "/")+1)
		if err != nil || k3 != k {
			t.Fatalf("ParseWithRepositoryDepth(%q) = %+v, %v; want %+v", input, k3, err, k)
		}
		checkObjectName(t, k, k.ObjectName())
	})
}

// FuzzObjectName checks that ObjectName is always a valid, deterministic DNS-1123
// label of at most 63 characters, and that two keys with different strings never
// share a name.
func FuzzObjectName(f *testing.F) {
	seeds := [][8]string{
		{"acme/infra", ".", "default", "", "acme/infra", "modules/vpc", "default", ""},
		{"a/b", ".", "default", "", "a-b/x", ".", "default", ""},
		{"acme/infra", "x/y", "default", "", "acme/infra", "x-y", "default", ""},
		{"acme/infra", "vpc", "default", "VPC", "acme/infra", "vpc", "default", "vpc"},
		{"acme/infr\u0430", ".", "default", "", "acme/infra", ".", "default", ""},
		{"group/sub/infra", "envs/prod", "prod", "app", "group/sub", "infra/envs/prod", "prod", "app"},
		{"Ωмега/ЖЖ", ".", "ψ", "", "", "", "", ""},
		{strings.Repeat("acme/", 51), strings.Repeat("modules/vpc/", 42), "default", "p", strings.Repeat("acme/", 51), strings.Repeat("modules/vpc/", 42), "default", "q"},
		{"a/" + strings.Repeat("b", 49), ".", "c", "", "a/" + strings.Repeat("b", 50), ".", "c", ""},
		{"\xff/\xfe", ".", "\x80", "", "\u212a/k", ".", "w", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])
	}
	f.Fuzz(func(t *testing.T, repoA, pathA, wsA, nameA, repoB, pathB, wsB, nameB string) {
		a := Key{Repository: repoA, Path: pathA, Workspace: wsA, ProjectName: nameA}
		b := Key{Repository: repoB, Path: pathB, Workspace: wsB, ProjectName: nameB}

		na, nb := a.ObjectName(), b.ObjectName()
		checkObjectName(t, a, na)
		checkObjectName(t, b, nb)
		if again := a.ObjectName(); again != na {
			t.Fatalf("ObjectName of %q not deterministic: %q then %q", a.String(), na, again)
		}
		if again := (Key{Repository: repoA, Path: pathA, Workspace: wsA, ProjectName: nameA}).ObjectName(); again != na {
			t.Fatalf("ObjectName of an equal key %q differs: %q then %q", a.String(), na, again)
		}
		if a.String() != b.String() && na == nb {
			t.Fatalf("keys %q and %q share the ObjectName %q", a.String(), b.String(), na)
		}
		if a.String() == b.String() && na != nb {
			t.Fatalf("keys with the same string %q got names %q and %q", a.String(), na, nb)
		}

		// Keys built through New, as callers do, obey the same rules.
		c := New(repoA, pathA, wsA, nameA)
		checkObjectName(t, c, c.ObjectName())
	})
}
