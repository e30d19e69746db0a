package atlantis

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runatlantis/atlantis/server/core/locking"
	"github.com/runatlantis/atlantis/server/events/models"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

var (
	testKey  = lockkey.Key{Repository: "gitlab-org/platform/terraform", Path: "modules/vpc", Workspace: "default", ProjectName: "vpc"}
	testTime = time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	testPull = models.PullRequest{
		Num: 42, HeadCommit: "3f2c1e9a", URL: "https://gitlab.com/gitlab-org/platform/terraform/-/merge_requests/42",
		HeadBranch: "feature", BaseBranch: "main", Author: "alice", Body: "a long description", State: models.OpenPullState,
		BaseRepo: models.Repo{
			FullName: "gitlab-org/platform/terraform", Owner: "gitlab-org/platform", Name: "terraform",
			CloneURL:          "https://atlantis:glpat-secret@gitlab.com/gitlab-org/platform/terraform.git",
			SanitizedCloneURL: "https://atlantis:<redacted>@gitlab.com/gitlab-org/platform/terraform.git",
			VCSHost:           models.VCSHost{Hostname: "gitlab.com", Type: models.Gitlab},
		},
	}
	testUser = models.User{Username: "alice", Teams: []string{"platform", "sre"}}
)

// request builds the LockRequest the client library would create for r, as the API
// server would return it.
func request(r lockclient.Request) *lockingv1alpha1.LockRequest {
	return &lockingv1alpha1.LockRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "atlantis", Name: lockclient.RequestName(r), Annotations: r.Annotations},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project: r.Project, Workspace: r.Workspace, Pull: r.Pull, User: r.User,
		},
	}
}

func TestRequestRoundTrip(t *testing.T) {
	r, err := newRequest(testKey, testPull, testUser, testTime)
	if err != nil {
		t.Fatal(err)
	}
	wantSpec := lockclient.Request{
		Project:   lockingv1alpha1.ProjectRef{Repository: "gitlab-org/platform/terraform", Path: "modules/vpc", Name: "vpc"},
		Workspace: "default",
		Pull:      &lockingv1alpha1.PullRequestRef{Number: 42, URL: testPull.URL, Author: "alice", HeadCommit: "3f2c1e9a"},
		User:      lockingv1alpha1.UserRef{Username: "alice", Teams: []string{"platform", "sre"}},
	}
	if diff := cmp.Diff(wantSpec, r, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Annotations" }, cmp.Ignore())); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if strings.Contains(r.Annotations[LockAnnotation], "glpat-secret") || strings.Contains(r.Annotations[LockAnnotation], "long description") {
		t.Errorf("annotation %s stores the clone URL or the body: %s", LockAnnotation, r.Annotations[LockAnnotation])
	}

	got, err := projectLockOf(request(r))
	if err != nil {
		t.Fatal(err)
	}
	want := models.ProjectLock{
		Project:   models.Project{ProjectName: "vpc", RepoFullName: "gitlab-org/platform/terraform", Path: "modules/vpc"},
		Pull:      testPull,
		User:      testUser,
		Workspace: "default",
		Time:      testTime,
	}
	want.Pull.Body, want.Pull.BaseRepo.CloneURL = "", ""
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lock read back (-want +got):\n%s", diff)
	}
}

// Atlantis's values that a LockRequest's spec cannot hold stay in the annotation,
// and the request stays valid.
func TestRequestKeepsWhatTheSpecCannotHold(t *testing.T) {
	pull := testPull
	pull.URL = "https://example.com/" + strings.Repeat("x", 3000)
	pull.HeadCommit = "not-hex"
	pull.Author = strings.Repeat("a", 300)
	user := models.User{Username: "", Teams: []string{"a", "a"}}
	r, err := newRequest(testKey, pull, user, testTime)
	if err != nil {
		t.Fatal(err)
	}
	wantPull := &lockingv1alpha1.PullRequestRef{Number: 42}
	if diff := cmp.Diff(wantPull, r.Pull); diff != "" {
		t.Errorf("spec.pull (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(lockingv1alpha1.UserRef{Username: fallbackUsername}, r.User); diff != "" {
		t.Errorf("spec.user (-want +got):\n%s", diff)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("the request is not valid: %v", err)
	}
	got, err := projectLockOf(request(r))
	if err != nil {
		t.Fatal(err)
	}
	if got.Pull.URL != pull.URL || got.Pull.HeadCommit != "not-hex" || got.Pull.Author != pull.Author || got.User.Username != "" || len(got.User.Teams) != 2 {
		t.Errorf("the annotation lost a value: %+v", got)
	}
}

// A pull number a LockRequest cannot hold (Atlantis's API-driven runs have 0) makes
// the user the owner; the number reads back.
func TestRequestWithoutPullNumber(t *testing.T) {
	for _, num := range []int{0, -1, math.MaxInt32 + 1} {
		pull := testPull
		pull.Num = num
		r, err := newRequest(testKey, pull, testUser, testTime)
		if err != nil {
			t.Fatal(err)
		}
		if r.Pull != nil || r.Owner() != "alice" {
			t.Errorf("pull %d: spec.pull = %+v, owner %q; want no pull, owner alice", num, r.Pull, r.Owner())
		}
		got, err := projectLockOf(request(r))
		if err != nil {
			t.Fatal(err)
		}
		if got.Pull.Num != num {
			t.Errorf("pull %d read back as %d", num, got.Pull.Num)
		}
	}
}

// A request made with kubectl or the client library has no annotation: the lock
// comes from the spec, with the base repository Atlantis needs to comment on the pull.
func TestProjectLockOfRequestWithoutAnnotation(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	acquired := metav1.NewTime(time.Date(2026, 11, 25, 9, 0, 1, 0, time.UTC))
	lr := &lockingv1alpha1.LockRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "by-hand", CreationTimestamp: created},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project:   lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "."},
			Workspace: "default",
			Pull:      &lockingv1alpha1.PullRequestRef{Number: 7, URL: "https://github.com/acme/infra/pull/7", Author: "bob", HeadCommit: "abc"},
			User:      lockingv1alpha1.UserRef{Username: "bob"},
		},
		Status: lockingv1alpha1.LockRequestStatus{AcquiredTime: &acquired},
	}
	got, err := projectLockOf(lr)
	if err != nil {
		t.Fatal(err)
	}
	want := models.ProjectLock{
		Project: models.Project{RepoFullName: "acme/infra", Path: "."},
		Pull: models.PullRequest{Num: 7, URL: "https://github.com/acme/infra/pull/7", Author: "bob", HeadCommit: "abc", State: models.OpenPullState,
			BaseRepo: models.Repo{FullName: "acme/infra", Owner: "acme", Name: "infra"}},
		User:      models.User{Username: "bob"},
		Workspace: "default",
		Time:      acquired.Local(),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lock (-want +got):\n%s", diff)
	}
	lr.Status.AcquiredTime = nil
	if got, _ := projectLockOf(lr); !got.Time.Equal(created.Time) {
		t.Errorf("Time of an undecided request = %s, want its creation %s", got.Time, created)
	}
}

// In queueing mode the lock is taken when the request reaches the head of the queue,
// not when TryLock asked.
func TestProjectLockTimeOfQueuedRequest(t *testing.T) {
	r, err := newRequest(testKey, testPull, testUser, testTime)
	if err != nil {
		t.Fatal(err)
	}
	lr := request(r)
	if got, _ := projectLockOf(lr); !got.Time.Equal(testTime) {
		t.Errorf("Time granted at once = %s, want the call's %s", got.Time, testTime)
	}
	enqueued := metav1.NewMicroTime(testTime)
	acquired := metav1.NewTime(testTime.Add(time.Hour).Truncate(time.Second))
	lr.Status.EnqueuedTime, lr.Status.AcquiredTime = &enqueued, &acquired
	if got, _ := projectLockOf(lr); !got.Time.Equal(acquired.Time) {
		t.Errorf("Time after waiting = %s, want the grant's %s", got.Time, acquired)
	}
}

func TestProjectLockOfBadAnnotation(t *testing.T) {
	lr := &lockingv1alpha1.LockRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "atlantis", Name: "broken", Annotations: map[string]string{LockAnnotation: "{"}}}
	_, err := projectLockOf(lr)
	if err == nil || !strings.Contains(err.Error(), "atlantis/broken") || !strings.Contains(err.Error(), LockAnnotation) {
		t.Errorf("error = %v; want one naming the request and the annotation", err)
	}
}

// The annotation is plain JSON of Atlantis's own field names, readable with jq.
func TestLockAnnotationFormat(t *testing.T) {
	r, err := newRequest(testKey, testPull, testUser, testTime)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Annotations[LockAnnotation]), &m); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"Pull", "User", "Time"} {
		if _, ok := m[field]; !ok {
			t.Errorf("annotation has no %q: %s", field, r.Annotations[LockAnnotation])
		}
	}
}

func TestKeyOf(t *testing.T) {
	for _, tc := range []struct {
		project   models.Project
		workspace string
		wantErr   string // "" for no error
	}{
		{models.NewProject("acme/infra", ".", ""), "default", ""},
		{models.NewProject("group/sub/repo", "a/b/c", "name"), "staging", ""},
		{models.Project{RepoFullName: "acme/infra", Path: "modules/vpc/"}, "default", `path "modules/vpc/" is not clean`},
		{models.Project{RepoFullName: "acme/infra", Path: "/abs"}, "default", `path "/abs" must be relative`},
		{models.Project{RepoFullName: "acme/infra", Path: ""}, "default", "path must not be empty"},
		{models.NewProject("acme", ".", ""), "default", `repository "acme"`},
		{models.NewProject("acme/infra", ".", ""), "a/b", `workspace "a/b"`},
		{models.NewProject("acme/infra", ".", "x/y"), "default", `project name "x/y"`},
	} {
		_, err := keyOf(tc.project, tc.workspace)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("keyOf(%+v, %q): %v", tc.project, tc.workspace, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("keyOf(%+v, %q) = %v; want an error containing %q", tc.project, tc.workspace, err, tc.wantErr)
		}
	}
}

// checkKeyShape accepts what Atlantis's key pattern accepts: four "/" at least.
func TestCheckKeyShape(t *testing.T) {
	agree := func(key string) {
		_, upstream := locking.IsCurrentLocking(key)
		if ours := checkKeyShape(key); (ours == nil) != (upstream == nil) {
			t.Errorf("checkKeyShape(%q) = %v, but Atlantis's key pattern says %v", key, ours, upstream)
		}
	}
	for key, ok := range map[string]bool{
		"acme/infra/./default/":               true,
		"group/sub/repo/a/b/c/default/name":   true,
		"a/b/c/d/e":                           true,
		"////":                                true,
		"acme/infra/./default":                false,
		"":                                    false,
		"acme/infra/modules/vpc/default/name": true,
	} {
		if err := checkKeyShape(key); (err == nil) != ok {
			t.Errorf("checkKeyShape(%q) = %v, want ok=%v", key, err, ok)
		}
		agree(key)
	}
}
