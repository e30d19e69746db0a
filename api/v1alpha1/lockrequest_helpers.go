package v1alpha1

import (
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

// NewProjectLock returns the ProjectLock of key in namespace, as the operator creates
// it: named key.ObjectName(), with the release finalizer that turns its deletion
// into a force unlock. The client library's force unlock creates the same object
// for a key held too briefly to have one yet.
func NewProjectLock(namespace string, key lockkey.Key) *ProjectLock {
	return &ProjectLock{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: key.ObjectName(), Finalizers: []string{ReleaseFinalizer}},
		Spec: ProjectLockSpec{
			Project:   ProjectRef{Repository: key.Repository, Path: key.Path, Name: key.ProjectName},
			Workspace: key.Workspace,
		},
	}
}
