package atlantis

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/runatlantis/atlantis/server/events/models"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// Annotations the adapter writes on the LockRequests it creates.
const (
	// LockAnnotation holds, as JSON, the parts of Atlantis's models.ProjectLock that a
	// LockRequest's spec cannot hold exactly: the whole pull request (head and base
	// branch, state, base repository and VCS host, which Atlantis needs to comment on
	// the pull and delete its plans when the lock is deleted), the user with their
	// teams, and the time of the lock to the nanosecond. The project and workspace
	// are the spec's. Two fields of the pull are never stored: BaseRepo.CloneURL,
	// which carries the VCS token in Atlantis ("https://user:token@host/..."), and
	// Body, the pull request's description, which Atlantis does not need for locks
	// and which can be tens of kilobytes. Both read back as "".
	LockAnnotation = "locking.runatlantis.io/atlantis-lock"

	// AttemptAnnotation is a random value unique to one TryLock call. The client
	// library adopts an existing request of the same owner and key instead of making a
	// second one; the adapter compares this value to tell "this call took the key"
	// (LockAcquired=true) from "the pull already held it" (LockAcquired=false), as
	// Atlantis's locking.Client does.
	AttemptAnnotation = "locking.runatlantis.io/atlantis-attempt"
)

// fallbackUsername stands in for an empty models.User.Username, which a LockRequest
// cannot have; the annotation keeps the empty name for Atlantis.
const fallbackUsername = "atlantis"

// storedLock is the JSON of LockAnnotation.
type storedLock struct {
	Pull models.PullRequest
	User models.User
	Time time.Time
}

// The LockRequest API's limits on the informational fields (see api/v1alpha1): a
// value outside them stays in LockAnnotation only, so that Atlantis's data never
// makes a request invalid.
const (
	maxURLLength      = 2048
	maxNameLength     = 255
	maxTeams          = 64
	maxHeadCommitHexs = 64
)

var hexPattern = regexp.MustCompile(`^[0-9a-fA-F]*$`)

// newRequest turns the arguments of Locker.TryLock into a lockclient.Request. The
// project and workspace become the key, exactly. The spec gets what it can hold of
// the pull and the user, for kubectl and the operator's events; the annotation keeps
// all of it for Atlantis. A pull number the API cannot hold (0 or less, as for
// Atlantis's API-driven runs without a pull request) makes the user the owner.
func newRequest(key lockkey.Key, pull models.PullRequest, user models.User, now time.Time) (lockclient.Request, error) {
	stored := storedLock{Pull: pull, User: user, Time: now}
	stored.Pull.Body = ""
	stored.Pull.BaseRepo.CloneURL = ""
	annotation, err := json.Marshal(stored)
	if err != nil {
		return lockclient.Request{}, fmt.Errorf("encoding the lock of %s for annotation %s: %w", key, LockAnnotation, err)
	}
	r := lockclient.Request{
		Project:     lockingv1alpha1.ProjectRef{Repository: key.Repository, Path: key.Path, Name: key.ProjectName},
		Workspace:   key.Workspace,
		User:        userRef(user),
		Annotations: map[string]string{LockAnnotation: string(annotation)},
	}
	if pull.Num > 0 && pull.Num <= math.MaxInt32 {
		r.Pull = &lockingv1alpha1.PullRequestRef{Number: int32(pull.Num)}
		if len(pull.URL) <= maxURLLength {
			r.Pull.URL = pull.URL
		}
		if len(pull.Author) <= maxNameLength {
			r.Pull.Author = pull.Author
		}
		if len(pull.HeadCommit) <= maxHeadCommitHexs && hexPattern.MatchString(pull.HeadCommit) {
			r.Pull.HeadCommit = pull.HeadCommit
		}
	}
	return r, nil
}

// userRef is the spec's user: the username (or fallbackUsername), and the teams when
// the API can hold them as a set.
func userRef(u models.User) lockingv1alpha1.UserRef {
	ref := lockingv1alpha1.UserRef{Username: u.Username}
	if ref.Username == "" || len(ref.Username) > maxNameLength {
		ref.Username = fallbackUsername
	}
	if len(u.Teams) > 0 && len(u.Teams) <= maxTeams {
		seen := map[string]bool{}
		for _, t := range u.Teams {
			if t == "" || len(t) > maxNameLength || seen[t] {
				return ref
			}
			seen[t] = true
		}
		ref.Teams = append([]string(nil), u.Teams...)
	}
	return ref
}

// projectLockOf returns Atlantis's view of a LockRequest that holds (or asks for) a
// lock: the project and workspace from the spec, and the pull, user and time from
// LockAnnotation. A request made without the adapter (kubectl, another program) has
// no annotation; its pull and user then come from the spec, with the pull's base
// repository derived from the project's repository, so that Atlantis can still
// comment on the pull when someone deletes the lock from its UI.
//
// Time is when the lock was taken: the annotated time of the TryLock call when the
// request was granted at once, and status.acquiredTime when it waited in the queue
// first (queueing mode), since the call's time is then not when the pull got the lock.
func projectLockOf(lr *lockingv1alpha1.LockRequest) (models.ProjectLock, error) {
	spec := &lr.Spec
	lock := models.ProjectLock{
		Project:   models.Project{ProjectName: spec.Project.Name, RepoFullName: spec.Project.Repository, Path: spec.Project.Path},
		Workspace: spec.Workspace,
	}
	text, annotated := lr.Annotations[LockAnnotation]
	if annotated {
		var stored storedLock
		if err := json.Unmarshal([]byte(text), &stored); err != nil {
			return models.ProjectLock{}, fmt.Errorf("LockRequest %s/%s: annotation %s is not the JSON of an Atlantis lock: %w", lr.Namespace, lr.Name, LockAnnotation, err)
		}
		lock.Pull, lock.User, lock.Time = stored.Pull, stored.User, stored.Time
	} else {
		lock.User = models.User{Username: spec.User.Username}
		if len(spec.User.Teams) > 0 {
			lock.User.Teams = append([]string(nil), spec.User.Teams...)
		}
		if spec.Pull != nil {
			owner, name := splitRepository(spec.Project.Repository)
			lock.Pull = models.PullRequest{
				Num:        int(spec.Pull.Number),
				URL:        spec.Pull.URL,
				Author:     spec.Pull.Author,
				HeadCommit: spec.Pull.HeadCommit,
				State:      models.OpenPullState,
				BaseRepo:   models.Repo{FullName: spec.Project.Repository, Owner: owner, Name: name},
			}
		}
	}
	acquired := lr.Status.AcquiredTime
	switch {
	case acquired != nil && (lr.Status.EnqueuedTime != nil || !annotated):
		lock.Time = acquired.Local()
	case !annotated:
		lock.Time = lr.CreationTimestamp.Local()
	}
	return lock, nil
}

// ProjectLockOf returns Atlantis's view of a LockRequest that holds a lock, as the
// Locker answers it (GetLock, List): the project and workspace from the spec, the
// pull, user and time from LockAnnotation (or from the spec for a request made
// without the adapter). It is for programs that find the holding LockRequest
// themselves, such as the Redis gateway's reads from its watch cache.
func ProjectLockOf(lr *lockingv1alpha1.LockRequest) (models.ProjectLock, error) {
	return projectLockOf(lr)
}

// splitRepository splits a full repository name as Atlantis's models.Repo does: the
// name is the last segment, the owner everything before it ("group/sub" for
// "group/sub/repo").
func splitRepository(full string) (owner, name string) {
	i := strings.LastIndex(full, "/")
	if i < 0 {
		return "", full
	}
	return full[:i], full[i+1:]
}
