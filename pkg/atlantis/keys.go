package atlantis

import (
	"fmt"
	"strings"

	"github.com/runatlantis/atlantis/server/events/models"

	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// keyOf returns the lock key of a project and workspace, checked against what a
// LockRequest can hold. The key text is models.GenerateLockKey's, so that the
// operator's status.lockKey, Atlantis's UI and this adapter all show one string.
// The path must already be clean, as models.NewProject leaves it: a lock for
// "modules/vpc/" would have a key that no LockRequest can carry.
func keyOf(p models.Project, workspace string) (lockkey.Key, error) {
	k := lockkey.Key{Repository: p.RepoFullName, Path: p.Path, Workspace: workspace, ProjectName: p.ProjectName}
	if err := k.Validate(); err != nil {
		return lockkey.Key{}, fmt.Errorf("lock key %q (repository %q, path %q, workspace %q, project name %q): %w",
			models.GenerateLockKey(p, workspace), p.RepoFullName, p.Path, workspace, p.ProjectName, err)
	}
	return k, nil
}

// checkKeyShape accepts what Atlantis's locking.Client accepts as a lock key: at
// least "{owner}/{repo}/{path}/{workspace}/{project name}", five "/"-separated
// segments, any of them possibly empty.
//
// An Atlantis key does not say where the repository ends and the path begins:
// "group/sub/repo/modules/vpc/default/" may be repository "group/sub/repo" with path
// "modules/vpc", or repository "group/sub" with path "repo/modules/vpc". Atlantis
// splits after the second segment and joins the parts again, so its backends only
// ever use the whole string. So does the adapter: it never splits a key, but finds
// the lock whose key text (models.GenerateLockKey of its spec) is the given string,
// and takes the real repository from that lock's spec.
func checkKeyShape(key string) error {
	if strings.Count(key, "/") < 4 {
		return fmt.Errorf("lock key %q: want \"{repository}/{path}/{workspace}/{project name}\", as models.GenerateLockKey writes it", key)
	}
	return nil
}
