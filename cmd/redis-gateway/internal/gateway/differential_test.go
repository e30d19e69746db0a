package gateway_test

// The differential test: random sequences of every call of Atlantis's RedisDB
// (project locks, the global apply lock, pull statuses) go to the gateway on a real
// API server with the operator running, and to miniredis, each through its own
// RedisDB. Every answer must be the same, and so must the whole lock table (List)
// after every call that may change it, except for the gateway's one deliberate
// difference in these calls, asserted where it shows:
//
//   - a lock read back (GetLock, List, Unlock, UnlockIfOwnedByPull, UnlockByPull,
//     a TryLock refused) has an empty Pull.BaseRepo.CloneURL and Pull.Body: the
//     gateway keeps locks in LockRequests through pkg/atlantis, which never stores
//     the clone URL's VCS token in an object that every reader of LockRequests sees,
//     nor the pull's description. miniredis hands both back.
//
// The other differences (a SET of a key another pull holds is refused; SET
// options, other commands and other key shapes are refused) are never reached by
// RedisDB's calls one at a time; race_test.go and resp's tests assert them.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	atlantisredis "github.com/runatlantis/atlantis/server/core/redis"
	"github.com/runatlantis/atlantis/server/events/command"
	"github.com/runatlantis/atlantis/server/events/models"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// cloneToken is the VCS token in the clone URLs of the test's pulls.
const cloneToken = "ghp_gatewayDifferentialToken"

// The space the generator draws from: repositories that are prefixes of each other
// (Atlantis's UnlockByPull matches by prefix, through SCAN, on both sides), nested
// paths, named and unnamed projects.
var (
	repos      = []string{"acme/infra", "acme/infra2", "group/sub/repo"}
	paths      = []string{".", "modules/vpc"}
	workspaces = []string{"default", "prod"}
	names      = []string{"", "vpc"}
	pullNums   = []int{1, 2, 3}
)

// op is one call of RedisDB.
type op struct {
	method    string
	project   models.Project
	workspace string
	pull      models.PullRequest
	user      models.User
	when      time.Time
	results   []command.ProjectResult
	status    models.ProjectPlanStatus
}

func (o op) String() string {
	switch o.method {
	case "TryLock", "Unlock", "GetLock", "UnlockIfOwnedByPull":
		return fmt.Sprintf("%s(%s, pull %d)", o.method, models.GenerateLockKey(o.project, o.workspace), o.pull.Num)
	case "UnlockByPull":
		return fmt.Sprintf("UnlockByPull(%s, %d)", o.project.RepoFullName, o.pull.Num)
	case "UpdatePullWithResults", "GetPullStatus", "DeletePullStatus", "UpdateProjectStatus":
		return fmt.Sprintf("%s(%s#%d@%s, %d results)", o.method, o.pull.BaseRepo.FullName, o.pull.Num, o.pull.HeadCommit, len(o.results))
	}
	return o.method + "()"
}

// answer is everything a call returned, comparable with cmp.
type answer struct {
	Acquired bool
	Lock     *models.ProjectLock
	Locks    []models.ProjectLock
	Command  *command.Lock
	Status   *models.PullStatus
	Err      bool
	errText  string
}

// pullRequest is pull n of repo, as a VCS event gives it to Atlantis, with a clone
// URL carrying a token and a description.
func pullRequest(repo string, n int, head string) models.PullRequest {
	owner, name, _ := strings.Cut(repo, "/")
	return models.PullRequest{
		Num: n, HeadCommit: head, URL: fmt.Sprintf("https://github.com/%s/pull/%d", repo, n),
		HeadBranch: fmt.Sprintf("feature-%d", n), BaseBranch: "main", Author: fmt.Sprintf("author%d", n),
		State: models.OpenPullState, Body: "a description of pull " + strconv.Itoa(n),
		BaseRepo: models.Repo{
			FullName: repo, Owner: owner, Name: name,
			CloneURL:          fmt.Sprintf("https://atlantis:%s@github.com/%s.git", cloneToken, repo),
			SanitizedCloneURL: fmt.Sprintf("https://atlantis:<redacted>@github.com/%s.git", repo),
			VCSHost:           models.VCSHost{Hostname: "github.com", Type: models.Github},
		},
	}
}

// randomOp draws a call.
func randomOp(rng *rand.Rand, now time.Time) op {
	repo := repos[rng.IntN(len(repos))]
	p := models.NewProject(repo, paths[rng.IntN(len(paths))], names[rng.IntN(len(names))])
	n := pullNums[rng.IntN(len(pullNums))]
	heads := []string{"aaaa111", "bbbb222"}
	o := op{
		project: p, workspace: workspaces[rng.IntN(len(workspaces))],
		pull: pullRequest(repo, n, heads[rng.IntN(len(heads))]),
		user: models.User{Username: fmt.Sprintf("user%d", n), Teams: []string{"platform"}},
		when: now,
	}
	methods := []struct {
		name   string
		weight int
	}{
		{"TryLock", 30}, {"Unlock", 6}, {"UnlockIfOwnedByPull", 8}, {"GetLock", 8}, {"List", 4},
		{"UnlockByPull", 6}, {"LockCommand", 4}, {"UnlockCommand", 3}, {"CheckCommandLock", 3},
		{"UpdatePullWithResults", 8}, {"GetPullStatus", 4}, {"UpdateProjectStatus", 3}, {"DeletePullStatus", 3},
	}
	total := 0
	for _, m := range methods {
		total += m.weight
	}
	pick := rng.IntN(total)
	for _, m := range methods {
		if pick < m.weight {
			o.method = m.name
			break
		}
		pick -= m.weight
	}
	for range 1 + rng.IntN(2) {
		r := command.ProjectResult{
			Command: command.Apply, RepoRelDir: p.Path, Workspace: o.workspace, ProjectName: p.ProjectName,
		}
		if rng.IntN(2) == 0 {
			r.Failure = "terraform failed"
		}
		o.results = append(o.results, r)
	}
	o.status = []models.ProjectPlanStatus{models.PlannedPlanStatus, models.AppliedPlanStatus, models.DiscardedPlanStatus}[rng.IntN(3)]
	return o
}

// do makes the call on db.
func (o op) do(db *atlantisredis.RedisDB) answer {
	var a answer
	var err error
	switch o.method {
	case "TryLock":
		var lock models.ProjectLock
		a.Acquired, lock, err = db.TryLock(models.ProjectLock{Project: o.project, Workspace: o.workspace, Pull: o.pull, User: o.user, Time: o.when})
		a.Lock = &lock
	case "Unlock":
		a.Lock, err = db.Unlock(o.project, o.workspace)
	case "UnlockIfOwnedByPull":
		a.Lock, err = db.UnlockIfOwnedByPull(o.project, o.workspace, o.pull.Num)
	case "GetLock":
		a.Lock, err = db.GetLock(o.project, o.workspace)
	case "List":
		a.Locks, err = db.List()
	case "UnlockByPull":
		a.Locks, err = db.UnlockByPull(o.project.RepoFullName, o.pull.Num)
	case "LockCommand":
		a.Command, err = db.LockCommand(command.Apply, o.when)
	case "UnlockCommand":
		err = db.UnlockCommand(command.Apply)
	case "CheckCommandLock":
		a.Command, err = db.CheckCommandLock(command.Apply)
	case "UpdatePullWithResults":
		var st models.PullStatus
		st, err = db.UpdatePullWithResults(o.pull, o.results)
		a.Status = &st
	case "GetPullStatus":
		a.Status, err = db.GetPullStatus(o.pull)
	case "UpdateProjectStatus":
		err = db.UpdateProjectStatus(o.pull, o.workspace, o.project.Path, o.status)
	case "DeletePullStatus":
		err = db.DeletePullStatus(o.pull)
	default:
		panic("no such method " + o.method)
	}
	a.Err, a.errText = err != nil, errorText(err)
	slices.SortFunc(a.Locks, func(x, y models.ProjectLock) int {
		return strings.Compare(models.GenerateLockKey(x.Project, x.Workspace), models.GenerateLockKey(y.Project, y.Workspace))
	})
	return a
}

// stripped returns a lock as the gateway hands it back: without the clone URL and
// the pull's description (the deliberate difference), and reports whether that
// changed anything.
func stripped(l models.ProjectLock) (models.ProjectLock, bool) {
	changed := l.Pull.BaseRepo.CloneURL != "" || l.Pull.Body != ""
	l.Pull.BaseRepo.CloneURL, l.Pull.Body = "", ""
	return l, changed
}

// expected is what the gateway must answer where miniredis answered a: the same,
// with locks read back stripped. TryLock's lock when acquired is the caller's own
// lock, which neither side read back.
func (o op) expected(a answer) (answer, int) {
	n := 0
	if a.Lock != nil && (o.method != "TryLock" || !a.Acquired) {
		l, changed := stripped(*a.Lock)
		a.Lock = &l
		if changed {
			n++
		}
	}
	if a.Locks != nil {
		locks := make([]models.ProjectLock, len(a.Locks))
		for i, l := range a.Locks {
			var changed bool
			locks[i], changed = stripped(l)
			if changed {
				n++
			}
		}
		a.Locks = locks
	}
	return a, n
}

// mutating reports whether a call may change what List answers.
func (o op) mutating() bool {
	switch o.method {
	case "TryLock", "Unlock", "UnlockIfOwnedByPull", "UnlockByPull":
		return true
	}
	return false
}

// TestDifferential runs random sequences of RedisDB calls against the gateway and
// against miniredis, and compares every answer. GATEWAY_DIFF_SEEDS and
// GATEWAY_DIFF_CALLS make the run longer.
func TestDifferential(t *testing.T) {
	seeds, calls := 3, 80
	if v, err := strconv.Atoi(os.Getenv("GATEWAY_DIFF_SEEDS")); err == nil {
		seeds = v
	}
	if v, err := strconv.Atoi(os.Getenv("GATEWAY_DIFF_CALLS")); err == nil {
		calls = v
	}
	seen := map[string]int{}
	for seed := range seeds {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			differential(t, uint64(seed), calls, seen)
		})
	}
	// Every kind of answer must have come up, or the generator no longer reaches
	// it and the comparison proves less than it claims.
	for _, want := range []string{
		"TryLock acquired", "TryLock refused", "Unlock released", "Unlock nothing",
		"UnlockIfOwnedByPull released", "UnlockIfOwnedByPull nothing", "GetLock a lock", "GetLock nothing",
		"UnlockByPull released", "LockCommand acquired", "LockCommand error", "UnlockCommand ok", "UnlockCommand error",
		"CheckCommandLock a lock", "CheckCommandLock nothing", "UpdatePullWithResults ok", "GetPullStatus a status",
		"GetPullStatus nothing", "UpdateProjectStatus ok", "DeletePullStatus ok", "clone URL and body stripped",
	} {
		if seen[want] == 0 {
			t.Errorf("no call answered %q; the generator must reach it (seen: %v)", want, seen)
		}
	}
}

func differential(t *testing.T, seed uint64, calls int, seen map[string]int) {
	ns := newNamespace(t)
	gw := startGateway(t, ns, nil)
	ours := gw.redisDB(t, "")
	_, ref := newMiniredis(t)
	rng := rand.New(rand.NewPCG(seed, 42))
	// Lock times are Atlantis's time.Now(); the test's own advancing clock keeps
	// them distinct and reproducible.
	now := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.Local)
	var history []string
	compare := func(what string, want, got answer) {
		t.Helper()
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(answer{}), cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".errText" }, cmp.Ignore())); diff != "" {
			t.Fatalf("seed %d, %s: the gateway answered differently from miniredis (-miniredis +gateway):\n%s\nminiredis's error: %s\ngateway's error: %s\ncalls so far:\n%s",
				seed, what, diff, want.errText, got.errText, strings.Join(history, "\n"))
		}
	}
	for i := range calls {
		now = now.Add(time.Duration(1+rng.IntN(5000)) * time.Millisecond)
		o := randomOp(rng, now)
		history = append(history, fmt.Sprintf("%3d %s", i+1, o))
		want, strippedLocks := o.expected(o.do(ref))
		got := o.do(ours)
		compare(o.String(), want, got)
		seen[kindOf(o, got)]++
		if strippedLocks > 0 {
			seen["clone URL and body stripped"]++
		}
		if o.mutating() {
			list := op{method: "List"}
			w, _ := list.expected(list.do(ref))
			compare("List() after "+o.String(), w, list.do(ours))
		}
	}
	// No LockRequest may carry the token; the pull statuses in Secrets do (they
	// are read back byte for byte), which is why they are Secrets.
	var lrs lockingv1alpha1.LockRequestList
	if err := env.Client.List(context.Background(), &lrs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(lrs)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), cloneToken) {
		t.Errorf("a LockRequest in %s carries the clone URL's token", ns)
	}
}

// kindOf names what a call exercised, by the gateway's answer.
func kindOf(o op, a answer) string {
	switch {
	case o.method == "TryLock" && a.Acquired:
		return "TryLock acquired"
	case o.method == "TryLock" && !a.Err:
		return "TryLock refused"
	case a.Err:
		return o.method + " error"
	case o.method == "LockCommand" && a.Command != nil:
		return "LockCommand acquired"
	case o.method == "CheckCommandLock" && a.Command != nil, o.method == "GetLock" && a.Lock != nil:
		return o.method + " a lock"
	case (o.method == "Unlock" || o.method == "UnlockIfOwnedByPull") && a.Lock != nil,
		o.method == "UnlockByPull" && len(a.Locks) > 0:
		return o.method + " released"
	case o.method == "GetPullStatus" && a.Status != nil:
		return "GetPullStatus a status"
	case o.method == "UnlockCommand", o.method == "UpdatePullWithResults", o.method == "UpdateProjectStatus", o.method == "DeletePullStatus":
		return o.method + " ok"
	case o.method == "Unlock", o.method == "UnlockIfOwnedByPull", o.method == "GetLock", o.method == "CheckCommandLock", o.method == "GetPullStatus":
		return o.method + " nothing"
	}
	return o.method
}
