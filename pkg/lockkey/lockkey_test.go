package lockkey

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestKeyString(t *testing.T) {
	tests := []struct {
		name string
		key  Key
		want string
	}{
		{
			name: "unnamed root project",
			key:  Key{Repository: "acme/infra", Path: ".", Workspace: "default"},
			want: "acme/infra/./default/",
		},
		{
			name: "nested path",
			key:  Key{Repository: "acme/infra", Path: "modules/vpc", Workspace: "default"},
			want: "acme/infra/modules/vpc/default/",
		},
		{
			name: "named project",
			key:  Key{Repository: "acme/infra", Path: "modules/vpc", Workspace: "prod", ProjectName: "vpc-prod"},
			want: "acme/infra/modules/vpc/prod/vpc-prod",
		},
		{
			name: "GitLab subgroup repository",
			key:  Key{Repository: "group/subgroup/infra", Path: ".", Workspace: "default", ProjectName: "root"},
			want: "group/subgroup/infra/./default/root",
		},
		{
			name: "New builds the same key as Atlantis's GenerateLockKey",
			key:  New("acme/infra", "modules/vpc/", "staging", "vpc"),
			want: "acme/infra/modules/vpc/staging/vpc",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.key.String()); diff != "" {
				t.Errorf("String() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewCleansPath(t *testing.T) {
	tests := []struct {
		path string
		want string
	}{
		{path: "modules/vpc/", want: "modules/vpc"},
		{path: "./modules/vpc", want: "modules/vpc"},
		{path: "modules//vpc", want: "modules/vpc"},
		{path: "modules/./vpc", want: "modules/vpc"},
		{path: "modules/x/../vpc", want: "modules/vpc"},
		// path.Clean("") is ".", so an empty path is the root, as in Atlantis.
		{path: "", want: "."},
		{path: ".", want: "."},
		{path: "./", want: "."},
		// models.NewProject maps "/" to the root as well.
		{path: "/", want: "."},
		{path: "//", want: "."},
		// Other absolute or escaping paths are kept for Validate to reject.
		{path: "/modules/vpc", want: "/modules/vpc"},
		{path: "../vpc", want: "../vpc"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got := New("acme/infra", tt.path, "default", "")
			want := Key{Repository: "acme/infra", Path: tt.want, Workspace: "default"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("New(..., %q, ...) mismatch (-want +got):\n%s", tt.path, diff)
			}
			if got := CleanPath(tt.path); got != tt.want {
				t.Errorf("CleanPath(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestNewSpellingsShareOneKey(t *testing.T) {
	a := New("acme/infra", "modules/vpc/", "default", "")
	b := New("acme/infra", "./modules/vpc", "default", "")
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("keys differ (-a +b):\n%s", diff)
	}
	if a.ObjectName() != b.ObjectName() {
		t.Errorf("ObjectName %q != %q", a.ObjectName(), b.ObjectName())
	}
	if a, b := New("acme/infra", "", "default", ""), New("acme/infra", ".", "default", ""); a != b {
		t.Errorf("empty path and root differ: %+v vs %+v", a, b)
	}
}

func TestParseRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		input string
		// depth is the repository depth to pass to ParseWithRepositoryDepth.
		depth int
		want  Key
	}{
		{
			name:  "unnamed root",
			input: "acme/infra/./default/",
			depth: 2,
			want:  Key{Repository: "acme/infra", Path: ".", Workspace: "default"},
		},
		{
			name:  "multi-segment path, named project",
			input: "acme/infra/envs/prod/us-east-1/vpc/prod/vpc-prod",
			depth: 2,
			want:  Key{Repository: "acme/infra", Path: "envs/prod/us-east-1/vpc", Workspace: "prod", ProjectName: "vpc-prod"},
		},
		{
			name:  "nested-group repository, root",
			input: "group/subgroup/infra/./default/",
			depth: 3,
			want:  Key{Repository: "group/subgroup/infra", Path: ".", Workspace: "default"},
		},
		{
			name:  "nested-group repository, multi-segment path",
			input: "group/a/b/infra/modules/vpc/staging/vpc",
			depth: 4,
			want:  Key{Repository: "group/a/b/infra", Path: "modules/vpc", Workspace: "staging", ProjectName: "vpc"},
		},
		{
			name:  "Bitbucket Server repository with a space",
			input: "Bitbucket Server/infra/./default/",
			depth: 2,
			want:  Key{Repository: "Bitbucket Server/infra", Path: ".", Workspace: "default"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.depth == 2 {
				got, err := Parse(tt.input)
				if err != nil {
					t.Fatalf("Parse(%q): %v", tt.input, err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("Parse mismatch (-want +got):\n%s", diff)
				}
			}

			got, err := ParseWithRepositoryDepth(tt.input, tt.depth)
			if err != nil {
				t.Fatalf("ParseWithRepositoryDepth(%q, %d): %v", tt.input, tt.depth, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseWithRepositoryDepth mismatch (-want +got):\n%s", diff)
			}

			got, err = ParseWithRepository(tt.input, tt.want.Repository)
			if err != nil {
				t.Fatalf("ParseWithRepository(%q, %q): %v", tt.input, tt.want.Repository, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseWithRepository mismatch (-want +got):\n%s", diff)
			}

			if diff := cmp.Diff(tt.input, got.String()); diff != "" {
				t.Errorf("String() of parsed key mismatch (-input +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate() of parsed key: %v", err)
			}
		})
	}
}

func TestStringParseRoundTrip(t *testing.T) {
	keys := []Key{
		New("acme/infra", ".", "default", ""),
		New("acme/infra", "a/b/c/d", "ws-1", "proj"),
		New("group/sub/infra", "modules/vpc", "default", "vpc"),
		New("a/b/c/d/e", "x", "y", "z"),
	}
	for _, k := range keys {
		t.Run(k.String(), func(t *testing.T) {
			got, err := ParseWithRepository(k.String(), k.Repository)
			if err != nil {
				t.Fatalf("ParseWithRepository: %v", err)
			}
			if diff := cmp.Diff(k, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
			got, err = ParseWithRepositoryDepth(k.String(), strings.Count(k.Repository, "/")+1)
			if err != nil {
				t.Fatalf("ParseWithRepositoryDepth: %v", err)
			}
			if diff := cmp.Diff(k, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		// withRepository selects ParseWithRepository(input, repository); a
		// non-zero depth selects ParseWithRepositoryDepth; otherwise Parse.
		withRepository bool
		repository     string
		depth          int
		// wantErr are substrings the error must contain, naming the problem.
		wantErr []string
	}{
		{name: "empty", input: "", wantErr: []string{`lock key ""`, "{repository}/{path}/{workspace}/{project name}"}},
		{name: "too few segments", input: "acme/infra/default/", wantErr: []string{"{repository}/{path}/{workspace}/{project name}", "2-segment repository"}},
		{name: "too few segments for depth", input: "group/sub/infra/default/", depth: 3, wantErr: []string{"3-segment repository"}},
		{name: "depth below 2", input: "acme/infra/./default/", depth: 1, wantErr: []string{"repository depth must be at least 2"}},
		{name: "empty owner segment", input: "/infra/./default/", wantErr: []string{`repository "/infra" has an empty segment`}},
		{name: "empty repo segment", input: "acme//./default/", wantErr: []string{`repository "acme/" has an empty segment`}},
		{name: "empty path", input: "acme/infra//default/", wantErr: []string{"path must not be empty"}},
		{name: "absolute path", input: "acme/infra//modules/vpc/default/", wantErr: []string{`path "/modules/vpc" must be relative`}},
		{name: "dot-dot path", input: "acme/infra/../default/", wantErr: []string{`path ".." must not leave the repository`}},
		{name: "path escaping the repository", input: "acme/infra/../secrets/default/", wantErr: []string{`path "../secrets" must not leave the repository`}},
		{name: "unclean path with dot segment", input: "acme/infra/modules/./vpc/default/", wantErr: []string{`path "modules/./vpc" is not clean`, `want "modules/vpc"`}},
		{name: "unclean path with dot-dot inside", input: "acme/infra/modules/../vpc/default/", wantErr: []string{`path "modules/../vpc" is not clean`, `want "vpc"`}},
		{name: "unclean path with empty segment", input: "acme/infra/modules//vpc/default/", wantErr: []string{`path "modules//vpc" is not clean`}},
		{name: "unclean path with leading dot", input: "acme/infra/./modules/default/", wantErr: []string{`path "./modules" is not clean`}},
		{name: "empty workspace", input: "acme/infra/.//", wantErr: []string{"workspace must not be empty"}},
		{name: "subgroup repository parsed at depth 2", input: "group/sub/infra/./default/", wantErr: []string{`path "infra/." is not clean`}},
		{name: "key of another repository", input: "acme/infra/./default/", withRepository: true, repository: "acme/other", wantErr: []string{`does not belong to repository "acme/other"`}},
		// Atlantis's UnlockByPull matches "owner/repo" as a bare prefix, which
		// also catches "owner/repo2"; ParseWithRepository must not.
		{name: "repository that is a prefix of another", input: "acme/infra2/./default/", withRepository: true, repository: "acme/infra", wantErr: []string{`does not belong to repository "acme/infra"`}},
		{name: "empty repository", input: "acme/infra/./default/", withRepository: true, repository: "", wantErr: []string{"does not belong"}},
		{name: "repository with empty segment", input: "acme//infra/./default/", withRepository: true, repository: "acme//infra", wantErr: []string{"has an empty segment"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				k   Key
				err error
			)
			switch {
			case tt.withRepository:
				k, err = ParseWithRepository(tt.input, tt.repository)
			case tt.depth != 0:
				k, err = ParseWithRepositoryDepth(tt.input, tt.depth)
			default:
				k, err = Parse(tt.input)
			}
			if err == nil {
				t.Fatalf("parse of %q = %+v, want an error", tt.input, k)
			}
			if diff := cmp.Diff(Key{}, k); diff != "" {
				t.Errorf("key returned with error is not zero (-want +got):\n%s", diff)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	valid := Key{Repository: "acme/infra", Path: "modules/vpc", Workspace: "default", ProjectName: "vpc"}
	tests := []struct {
		name    string
		mutate  func(*Key)
		wantErr string // "" for a valid key
	}{
		{name: "valid", mutate: func(*Key) {}},
		{name: "valid root, unnamed", mutate: func(k *Key) { k.Path, k.ProjectName = ".", "" }},
		{name: "valid subgroup", mutate: func(k *Key) { k.Repository = "group/sub/infra" }},
		{name: "valid path with dots in names", mutate: func(k *Key) { k.Path = "..modules/.vpc/v1..2" }},
		{name: "valid unicode", mutate: func(k *Key) { k.Repository, k.ProjectName = "ácme/ínfra", "Проект" }},
		{name: "empty repository", mutate: func(k *Key) { k.Repository = "" }, wantErr: `repository "" must be "owner/repo"`},
		{name: "repository without owner", mutate: func(k *Key) { k.Repository = "infra" }, wantErr: `repository "infra" must be "owner/repo"`},
		{name: "repository with trailing slash", mutate: func(k *Key) { k.Repository = "acme/" }, wantErr: `repository "acme/" has an empty segment`},
		{name: "repository with leading slash", mutate: func(k *Key) { k.Repository = "/infra" }, wantErr: `repository "/infra" has an empty segment`},
		{name: "repository with double slash", mutate: func(k *Key) { k.Repository = "acme//infra" }, wantErr: `repository "acme//infra" has an empty segment`},
		{name: "empty path", mutate: func(k *Key) { k.Path = "" }, wantErr: `path must not be empty; the repository root is "."`},
		{name: "absolute path", mutate: func(k *Key) { k.Path = "/modules" }, wantErr: `path "/modules" must be relative to the repository root`},
		{name: "root slash", mutate: func(k *Key) { k.Path = "/" }, wantErr: `path "/" must be relative to the repository root`},
		{name: "trailing slash", mutate: func(k *Key) { k.Path = "modules/" }, wantErr: `path "modules/" is not clean; want "modules"`},
		{name: "dot prefix", mutate: func(k *Key) { k.Path = "./modules" }, wantErr: `path "./modules" is not clean; want "modules"`},
		{name: "dot-dot", mutate: func(k *Key) { k.Path = ".." }, wantErr: `path ".." must not leave the repository`},
		{name: "dot-dot prefix", mutate: func(k *Key) { k.Path = "../x" }, wantErr: `path "../x" must not leave the repository`},
		{name: "empty workspace", mutate: func(k *Key) { k.Workspace = "" }, wantErr: "workspace must not be empty"},
		{name: "workspace with slash", mutate: func(k *Key) { k.Workspace = "prod/eu" }, wantErr: `workspace "prod/eu" must not contain '/'`},
		{name: "project name with slash", mutate: func(k *Key) { k.ProjectName = "a/b" }, wantErr: `project name "a/b" must not contain '/'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := valid
			tt.mutate(&k)
			err := k.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", k, err)
				}
				// A valid key parses back from its string.
				got, perr := ParseWithRepository(k.String(), k.Repository)
				if perr != nil {
					t.Fatalf("ParseWithRepository(%q): %v", k.String(), perr)
				}
				if diff := cmp.Diff(k, got); diff != "" {
					t.Errorf("round trip mismatch (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want %q", k, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantErr, err.Error()); diff != "" {
				t.Errorf("Validate error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// checkObjectName fails t unless name is a DNS-1123 label of at most 63
// characters ending in "-" and a 10-character lower-case base32 hash.
func checkObjectName(t testing.TB, k Key, name string) {
	t.Helper()
	if errs := validation.IsDNS1123Label(name); len(errs) != 0 {
		t.Errorf("ObjectName of %q = %q, not a DNS-1123 label: %v", k.String(), name, errs)
	}
	if len(name) > 63 {
		t.Errorf("ObjectName of %q = %q, %d characters, want <= 63", k.String(), name, len(name))
	}
	if len(name) < hashLength+2 || name[len(name)-hashLength-1] != '-' {
		t.Errorf("ObjectName of %q = %q, want it to end in \"-\" and a %d-character hash", k.String(), name, hashLength)
		return
	}
	for _, r := range name[len(name)-hashLength:] {
		if (r < 'a' || r > 'z') && (r < '2' || r > '7') {
			t.Errorf("ObjectName of %q = %q: hash has %q, not lower-case base32", k.String(), name, r)
		}
	}
}

func TestObjectNameGolden(t *testing.T) {
	// Pinned: changing these renames every ProjectLock and Lease in a cluster.
	tests := []struct {
		key  Key
		want string
	}{
		{key: New("acme/infra", "modules/vpc", "default", ""), want: "acme-infra-modules-vpc-default-yj5hopsrbf"},
		{key: New("acme/infra", ".", "default", ""), want: "acme-infra-default-qq4odiynk7"},
	}
	for _, tt := range tests {
		t.Run(tt.key.String(), func(t *testing.T) {
			got := tt.key.ObjectName()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ObjectName() mismatch (-want +got):\n%s", diff)
			}
			checkObjectName(t, tt.key, got)
			// Stable: the same key, built again, gets the same name.
			again := New(tt.key.Repository, tt.key.Path, tt.key.Workspace, tt.key.ProjectName)
			if got2 := again.ObjectName(); got2 != got {
				t.Errorf("ObjectName() not stable: %q then %q", got, got2)
			}
		})
	}
}

func TestObjectNameValid(t *testing.T) {
	long := func(s string, n int) string { return strings.Repeat(s, n)[:n] }
	tests := []struct {
		name       string
		key        Key
		wantPrefix string // the readable slug, "" to skip
	}{
		{name: "nested path", key: New("acme/infra", "modules/vpc", "default", ""), wantPrefix: "acme-infra-modules-vpc-default-"},
		{name: "named", key: New("acme/infra", "modules/vpc", "prod", "vpc-prod"), wantPrefix: "acme-infra-modules-vpc-prod-vpc-prod-"},
		{name: "upper case is lowered", key: New("Acme/Infra", "Modules/VPC", "Prod", "VPC"), wantPrefix: "acme-infra-modules-vpc-prod-vpc-"},
		{name: "punctuation collapses", key: New("acme_corp/infra.git", "modules/__vpc__", "default", "--x--"), wantPrefix: "acme-corp-infra-git-modules-vpc-default-x-"},
		{name: "subgroup", key: New("group/sub/infra", ".", "default", ""), wantPrefix: "group-sub-infra-default-"},
		{name: "all unicode slugs to nothing", key: Key{Repository: "Ωмега/ЖЖ", Path: ".", Workspace: "ψ"}, wantPrefix: "lock-"},
		{name: "zero key", key: Key{}, wantPrefix: "lock-"},
		{name: "only separators", key: Key{Repository: "-/-", Path: "-", Workspace: "-", ProjectName: "-"}, wantPrefix: "lock-"},
		{name: "invalid UTF-8", key: Key{Repository: "\xff/\xfe", Path: ".", Workspace: "\x80"}, wantPrefix: "lock-"},
		{name: "Kelvin sign lowers to ASCII k", key: Key{Repository: "\u212a/\u212a", Path: ".", Workspace: "w"}, wantPrefix: "k-k-w-"},
		{name: "very long", key: New(long("acme/", 255), long("modules/vpc/", 512), long("workspace", 90), long("project", 200))},
		{name: "very long, single run", key: New("a/"+long("b", 253), long("c", 512), "d", "")},
		{name: "very long, unicode", key: New(long("ж/", 255), long("я", 512), "ψ", "")},
	}
	// Every slug length around the limit, where the separator and the next
	// character may not both fit.
	for n := 1; n <= 80; n++ {
		tests = append(tests, struct {
			name       string
			key        Key
			wantPrefix string
		}{name: "boundary", key: Key{Repository: "a/" + strings.Repeat("b", n), Path: ".", Workspace: "c"}})
		tests = append(tests, struct {
			name       string
			key        Key
			wantPrefix string
		}{name: "boundary, short segments", key: Key{Repository: "a/" + long("b/", n) + "b", Path: "x/y", Workspace: "c"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.key.ObjectName()
			checkObjectName(t, tt.key, got)
			if tt.wantPrefix != "" && !strings.HasPrefix(got, tt.wantPrefix) {
				t.Errorf("ObjectName() = %q, want prefix %q", got, tt.wantPrefix)
			}
			if got2 := tt.key.ObjectName(); got2 != got {
				t.Errorf("ObjectName() not deterministic: %q then %q", got, got2)
			}
		})
	}
}

func TestObjectNameLongKeyKeepsReadablePrefix(t *testing.T) {
	k := New("acme/infra", "modules/"+strings.Repeat("x", 600), "default", "")
	got := k.ObjectName()
	checkObjectName(t, k, got)
	if len(got) != 63 {
		t.Errorf("ObjectName() = %q, %d characters, want exactly 63 for a key this long", got, len(got))
	}
	if !strings.HasPrefix(got, "acme-infra-modules-xxx") {
		t.Errorf("ObjectName() = %q, want the readable prefix of the key", got)
	}
}

func TestObjectNameDistinguishesKeysThatSlugAlike(t *testing.T) {
	tests := []struct {
		name string
		a, b Key
	}{
		{name: "slash vs dash in repository", a: New("a/b", ".", "default", ""), b: New("a-b/x", ".", "default", "")},
		{name: "repository a/b vs a-b", a: Key{Repository: "o/a/b", Path: ".", Workspace: "w"}, b: Key{Repository: "o/a-b", Path: ".", Workspace: "w"}},
		{name: "path x/y vs x-y", a: New("acme/infra", "x/y", "default", ""), b: New("acme/infra", "x-y", "default", "")},
		{name: "path vs repository boundary", a: Key{Repository: "acme/infra", Path: "x", Workspace: "w"}, b: Key{Repository: "acme/infra-x", Path: ".", Workspace: "w"}},
		{name: "project name case", a: New("acme/infra", "vpc", "default", "VPC"), b: New("acme/infra", "vpc", "default", "vpc")},
		{name: "workspace case", a: New("acme/infra", ".", "Prod", ""), b: New("acme/infra", ".", "prod", "")},
		{name: "repository case", a: New("Acme/Infra", ".", "default", ""), b: New("acme/infra", ".", "default", "")},
		{name: "Cyrillic а vs Latin a", a: New("acme/infr\u0430", ".", "default", ""), b: New("acme/infra", ".", "default", "")},
		{name: "Kelvin sign vs k", a: New("acme/\u212aube", ".", "default", ""), b: New("acme/kube", ".", "default", "")},
		{name: "unicode-only keys", a: Key{Repository: "ж/ж", Path: ".", Workspace: "ж"}, b: Key{Repository: "я/я", Path: ".", Workspace: "я"}},
		{name: "underscore vs dot", a: New("acme/infra", "a_b", "default", ""), b: New("acme/infra", "a.b", "default", "")},
		{name: "empty vs named project", a: New("acme/infra", ".", "default", ""), b: New("acme/infra", ".", "default", "-")},
		{name: "differ after the truncated slug", a: New("acme/infra", strings.Repeat("m", 100)+"/a", "default", ""), b: New("acme/infra", strings.Repeat("m", 100)+"/b", "default", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.a.String() == tt.b.String() {
				t.Fatalf("test keys are equal: %q", tt.a.String())
			}
			na, nb := tt.a.ObjectName(), tt.b.ObjectName()
			checkObjectName(t, tt.a, na)
			checkObjectName(t, tt.b, nb)
			if na == nb {
				t.Errorf("keys %q and %q share the ObjectName %q", tt.a.String(), tt.b.String(), na)
			}
		})
	}
}

func TestSlugify(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{in: "acme/infra/./default/", limit: 52, want: "acme-infra-default"},
		{in: "--A--B--", limit: 52, want: "a-b"},
		{in: "", limit: 52, want: ""},
		{in: "ЖЖЖ", limit: 52, want: ""},
		{in: "abc/def", limit: 3, want: "abc"},
		// "abc-" would end in a dash and "abc-d" is too long: stop at "abc".
		{in: "abc/def", limit: 4, want: "abc"},
		{in: "abc/def", limit: 5, want: "abc-d"},
		{in: "abcdef", limit: 4, want: "abcd"},
	}
	for _, tt := range tests {
		if got := slugify(tt.in, tt.limit); got != tt.want {
			t.Errorf("slugify(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
		}
	}
}
