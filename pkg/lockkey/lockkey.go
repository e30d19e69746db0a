// Package lockkey builds and parses Atlantis lock keys, and derives from a key the
// name of the ProjectLock and Lease that stand for it.
//
// An Atlantis lock key is "{repository}/{path}/{workspace}/{project name}", exactly as
// Atlantis's models.GenerateLockKey writes it: "acme/infra/./default/" for the unnamed
// root project of acme/infra.
package lockkey

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"path"
	"strings"
)

// Key identifies one lockable Atlantis project and workspace.
type Key struct {
	// Repository is the repository's full name, "owner/repo" or "group/sub/repo".
	Repository string
	// Path is the project directory relative to the repository root, cleaned; "." is
	// the root.
	Path string
	// Workspace is the Terraform workspace.
	Workspace string
	// ProjectName is the Atlantis project name, or "".
	ProjectName string
}

// New returns the key of a project, cleaning path the way Atlantis's
// models.NewProject does, so that "modules/vpc/" and "./modules/vpc" name one key.
func New(repository, projectPath, workspace, projectName string) Key {
	return Key{
		Repository:  repository,
		Path:        CleanPath(projectPath),
		Workspace:   workspace,
		ProjectName: projectName,
	}
}

// CleanPath cleans a project path as Atlantis does: the repository root, and an
// empty path, become ".". Like models.NewProject, it also maps "/" (and anything
// that cleans to it, such as "//") to "."; other absolute paths stay absolute,
// for Validate to reject.
func CleanPath(p string) string {
	p = path.Clean(p)
	if p == "/" {
		return "."
	}
	return p
}

// String returns the key in Atlantis's format.
func (k Key) String() string {
	return fmt.Sprintf("%s/%s/%s/%s", k.Repository, k.Path, k.Workspace, k.ProjectName)
}

// Parse splits an Atlantis lock key into its parts. Because both the repository and
// the path may contain "/", it relies on what Atlantis guarantees: the repository is
// the given number of segments long (Atlantis never stores it in the key
// separately). Use ParseWithRepository when the repository is known, and Parse for a
// plain "owner/repo".
func Parse(key string) (Key, error) {
	return ParseWithRepositoryDepth(key, 2)
}

// ParseWithRepositoryDepth parses a key whose repository has depth segments, such as
// 3 for "group/subgroup/repo".
func ParseWithRepositoryDepth(key string, depth int) (Key, error) {
	if depth < 2 {
		return Key{}, fmt.Errorf("lock key %q: repository depth must be at least 2, got %d", key, depth)
	}
	parts := strings.Split(key, "/")
	// repository segments + at least one path segment + workspace + project name.
	if len(parts) < depth+3 {
		return Key{}, fmt.Errorf("lock key %q: want \"{repository}/{path}/{workspace}/{project name}\" with a %d-segment repository", key, depth)
	}
	k := Key{
		Repository:  strings.Join(parts[:depth], "/"),
		Path:        strings.Join(parts[depth:len(parts)-2], "/"),
		Workspace:   parts[len(parts)-2],
		ProjectName: parts[len(parts)-1],
	}
	if err := k.Validate(); err != nil {
		return Key{}, fmt.Errorf("lock key %q: %w", key, err)
	}
	return k, nil
}

// ParseWithRepository parses a key that belongs to the given repository, which may
// have any number of segments.
func ParseWithRepository(key, repository string) (Key, error) {
	if !strings.HasPrefix(key, repository+"/") {
		return Key{}, fmt.Errorf("lock key %q does not belong to repository %q", key, repository)
	}
	return ParseWithRepositoryDepth(key, strings.Count(repository, "/")+1)
}

// Validate reports the first part of the key that Atlantis (and the LockRequest API)
// would not accept, naming it.
func (k Key) Validate() error {
	switch {
	case k.Repository == "" || !strings.Contains(k.Repository, "/"):
		return fmt.Errorf("repository %q must be \"owner/repo\"", k.Repository)
	case hasEmptySegment(k.Repository):
		return fmt.Errorf("repository %q has an empty segment", k.Repository)
	case k.Path == "":
		return fmt.Errorf("path must not be empty; the repository root is \".\"")
	case strings.HasPrefix(k.Path, "/"):
		return fmt.Errorf("path %q must be relative to the repository root", k.Path)
	case CleanPath(k.Path) != k.Path:
		return fmt.Errorf("path %q is not clean; want %q", k.Path, CleanPath(k.Path))
	case k.Path == ".." || strings.HasPrefix(k.Path, "../"):
		return fmt.Errorf("path %q must not leave the repository", k.Path)
	case k.Workspace == "":
		return fmt.Errorf("workspace must not be empty")
	case strings.Contains(k.Workspace, "/"):
		// Terraform forbids path separators in workspace names, and a "/" here
		// would make the key parse back differently.
		return fmt.Errorf("workspace %q must not contain '/'", k.Workspace)
	case strings.Contains(k.ProjectName, "/"):
		return fmt.Errorf("project name %q must not contain '/'", k.ProjectName)
	}
	return nil
}

func hasEmptySegment(s string) bool {
	for _, seg := range strings.Split(s, "/") {
		if seg == "" {
			return true
		}
	}
	return false
}

// maxSlugLength leaves room for "-" and the hash within a 63-character name, the
// limit of a label value and thus the safe length for any object name.
const (
	hashLength    = 10
	maxNameLength = 63
	maxSlugLength = maxNameLength - 1 - hashLength
)

// hashEncoding is lower-case base32 without padding: DNS-1123 safe.
var hashEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ObjectName returns the name of the ProjectLock and Lease of a key: a readable
// DNS-1123 slug of the key followed by a hash of the whole key, so that keys that
// slug alike ("a/b" and "a-b") still get different names, and the same key always
// gets the same name.
func (k Key) ObjectName() string { return NameOf(k.String(), "lock") }

// NameOf returns a DNS-1123 label (at most 63 characters) for any string s, built
// as ObjectName builds the name of a key: a readable slug of s and a hash of all of
// s, or fallback and the hash when s has no letter or digit. Other programs that
// keep one object per string (the Redis gateway's one Secret per key) name their
// objects with it, so that every name in the namespace is made the same way.
func NameOf(s, fallback string) string {
	sum := sha256.Sum256([]byte(s))
	hash := hashEncoding.EncodeToString(sum[:])[:hashLength]
	slug := slugify(s, maxSlugLength)
	if slug == "" {
		return fallback + "-" + hash
	}
	return slug + "-" + hash
}

// slugify lower-cases s, turns every run of characters outside [a-z0-9] into one
// "-", and trims the result to at most limit characters with no "-" at either end.
func slugify(s string, limit int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			// Only ASCII is ever written, so Len counts characters. Stop before a
			// separator and character that would not both fit: the slug must end
			// with a letter or digit and never exceed limit.
			need := 1
			if dash && b.Len() > 0 {
				need = 2
			}
			if b.Len()+need > limit {
				break
			}
			if need == 2 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}
