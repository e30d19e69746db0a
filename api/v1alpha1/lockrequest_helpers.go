package v1alpha1

import (
	"strconv"

	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// Key returns the lock key the request asks for.
func (s *LockRequestSpec) Key() lockkey.Key {
	return lockkey.New(s.Project.Repository, s.Project.Path, s.Workspace, s.Project.Name)
}

// Owner returns who the request acts for: "repository#number" for a pull request,
// else the username. Requests of one owner for one key are re-entrant.
func (s *LockRequestSpec) Owner() string {
	if s.Pull != nil {
		return s.Project.Repository + "#" + strconv.Itoa(int(s.Pull.Number))
	}
	return s.User.Username
}

// Key returns the lock key the ProjectLock stands for.
func (s *ProjectLockSpec) Key() lockkey.Key {
	return lockkey.New(s.Project.Repository, s.Project.Path, s.Workspace, s.Project.Name)
}
