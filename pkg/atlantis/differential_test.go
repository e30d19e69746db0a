package atlantis_test

// The differential test: the same sequences of calls go to Atlantis's own
// locking.Client and locking.ApplyClient over its BoltDB backend, and to the adapter
// over a real API server with the operator running, and every answer must be the
// same once time stamps are normalised (see outcome.normalised and upstream.do for the
// only two adjustments, both deliberate differences of the adapter). After every
// call that may change something, the whole lock table (List) of both sides is
// compared too, and at the end of each sequence the adapter's namespace must hold
// no LockRequest besides the holders: a refused TryLock leaves nothing behind.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/runatlantis/atlantis/server/events/models"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// cloneToken is the VCS token in the clone URLs of the test's pull requests: it
// must never reach the API server.
const cloneToken = "ghp_differentialTestToken"

// differ runs calls on both sides and compares their outcomes.
type differ struct {
	t        *testing.T
	atlantis *upstream
	ours     adapter
	context  string // what to rerun, for failure messages
	history  []string
	calls    int
	// seen counts what the calls exercised (see kinds), so that a generator that
	// stopped reaching a case fails the test instead of passing vacuously.
	seen map[string]int
}

func newDiffer(t *testing.T, context string) *differ {
	t.Helper()
	return &differ{t: t, atlantis: newUpstream(t), ours: newAdapter(t), context: context, seen: map[string]int{}}
}

// mutates reports whether a call may change the lock table.
func mutates(m method) bool {
	switch m {
	case list, getLock, checkApplyLock:
		return false
	}
	return true
}

// step makes c on both sides and fails the test when they answer differently.
func (d *differ) step(c call) {
	d.t.Helper()
	d.calls++
	want := d.atlantis.do(d.t, c)
	if d.atlantis.collateral > 0 {
		d.seen["UnlockByPull: Atlantis's prefix match also released other repositories' locks"]++
		d.atlantis.collateral = 0
	}
	got := c.do(d.ours.locker, d.ours.apply)
	d.history = append(d.history, fmt.Sprintf("%3d %s", d.calls, c))
	d.compare(c.String(), want, got)
	d.seen[kind(c, got)]++
	if mutates(c.Method) {
		d.compare("List() after "+c.String(), d.atlantis.do(d.t, call{Method: list}), call{Method: list}.do(d.ours.locker, d.ours.apply))
	}
}

func (d *differ) compare(what string, want, got outcome) {
	d.t.Helper()
	diff := cmp.Diff(want.normalised(true), got.normalised(false), cmpopts.IgnoreUnexported(outcome{}))
	if diff == "" {
		return
	}
	d.t.Fatalf("%s: the adapter answered differently from Atlantis (-Atlantis +adapter):\n%s\nAtlantis's error: %v\nadapter's error: %v\n%s\ncalls so far:\n%s",
		what, diff, want.err, got.err, d.context, strings.Join(d.history, "\n"))
}

// kind names what a call exercised, by the answer both sides gave.
func kind(c call, o outcome) string {
	switch {
	case o.Err:
		return string(c.Method) + ": error"
	case c.Method == tryLock && o.TryLock.LockAcquired:
		return "TryLock: acquired"
	case c.Method == tryLock && o.TryLock.CurrLock.Pull.Num == c.Pull.Num:
		return "TryLock: held by the same pull"
	case c.Method == tryLock:
		return "TryLock: held by another pull"
	case c.Method == unlockByPull && len(o.Locks) > 0:
		return "UnlockByPull: released"
	case (c.Method == unlock || c.Method == unlockIfOwnedByPull || c.Method == getLock) && o.Lock != nil:
		return string(c.Method) + ": a lock"
	case c.Method == checkApplyLock && o.Apply.Locked:
		return "CheckApplyLock: locked"
	case c.Method == list || c.Method == lockApply || c.Method == unlockApply || c.Method == checkApplyLock:
		return string(c.Method) + ": ok"
	}
	return string(c.Method) + ": nothing"
}

// leaseNames reports whether the Lease of lr's key names lr as its holder: the
// operator writes the Acquired status of the adapter's requests only once a hold
// has lasted status_update_interval (lockingv1alpha1.GrantNoticeAnnotation).
func (d *differ) leaseNames(lr *lockingv1alpha1.LockRequest) bool {
	var lease coordinationv1.Lease
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: lr.Namespace, Name: lr.Spec.Key().ObjectName()}, &lease); err != nil {
		return false
	}
	holder, _ := lockclient.LeaseHolder(&lease)
	return holder == lr.Name+"/"+string(lr.UID)
}

// finish checks that the adapter left nothing behind: every LockRequest in its
// namespace holds a lock that List (or CheckApplyLock) reports, and no object
// carries the clone URL's token.
func (d *differ) finish() {
	d.t.Helper()
	held, err := d.ours.locker.List()
	if err != nil {
		d.t.Fatal(err)
	}
	apply, err := d.ours.apply.CheckApplyLock()
	if err != nil {
		d.t.Fatal(err)
	}
	var lrs lockingv1alpha1.LockRequestList
	if err := env.Client.List(context.Background(), &lrs, client.InNamespace(d.ours.ns)); err != nil {
		d.t.Fatal(err)
	}
	want := len(held)
	if apply.Locked {
		want++
	}
	var names []string
	for i := range lrs.Items {
		lr := &lrs.Items[i]
		st := lockclient.StatusOf(lr)
		names = append(names, lr.Name+" ("+string(st.State)+")")
		if st.State != lockclient.StateAcquired && !d.leaseNames(lr) {
			d.t.Errorf("LockRequest %s is %s (%s), but a refused TryLock must leave nothing behind", lr.Name, st.State, st.Reason)
		}
		data, err := json.Marshal(lr)
		if err != nil {
			d.t.Fatal(err)
		}
		if strings.Contains(string(data), cloneToken) {
			d.t.Errorf("LockRequest %s carries the clone URL's token: %s", lr.Name, data)
		}
	}
	if len(lrs.Items) != want {
		d.t.Errorf("%d LockRequests in %s (%s), want one per held lock: %d (%s, apply lock %v)",
			len(lrs.Items), d.ours.ns, strings.Join(names, ", "), want, keysOf(held), apply.Locked)
	}
	d.t.Logf("%d calls (plus a List after each change), %d locks held at the end", d.calls, len(held))
}

// pullOf is a pull request as Atlantis's VCS clients fill it.
func pullOf(repo string, num int, commit string) models.PullRequest {
	i := strings.LastIndex(repo, "/")
	owner, name := repo[:i], repo[i+1:]
	return models.PullRequest{
		Num:        num,
		HeadCommit: commit,
		URL:        fmt.Sprintf("https://github.com/%s/pull/%d", repo, num),
		HeadBranch: fmt.Sprintf("feature/%d", num),
		BaseBranch: "main",
		Author:     []string{"alice", "bob", "carol", "dave"}[num%4],
		Body:       fmt.Sprintf("Pull %d changes the infrastructure.\n\nSee the plan below.", num),
		State:      models.OpenPullState,
		BaseRepo: models.Repo{
			FullName:          repo,
			Owner:             owner,
			Name:              name,
			CloneURL:          fmt.Sprintf("https://atlantis-bot:%s@github.com/%s.git", cloneToken, repo),
			SanitizedCloneURL: fmt.Sprintf("https://atlantis-bot:<redacted>@github.com/%s.git", repo),
			VCSHost:           models.VCSHost{Hostname: "github.com", Type: models.Github},
		},
	}
}

var (
	alice = models.User{Username: "alice", Teams: []string{"platform", "sre"}}
	bob   = models.User{Username: "bob"}
	carol = models.User{Username: "carol", Teams: []string{"developers"}}
	// api is who Atlantis's API-driven runs lock for: no pull request number.
	api = models.User{Username: "api-client"}

	commitA = "3f2c1e9a4b5d6e7f8091a2b3c4d5e6f708192a3b"
	commitB = "9b8a7c6d5e4f30291817a6b5c4d3e2f1a0b9c8d7"
)

func try(repo, path, workspace, name string, pull int, user models.User) call {
	return call{Method: tryLock, Project: models.NewProject(repo, path, name), Workspace: workspace, Pull: pullOf(repo, pull, commitA), User: user}
}

func unlockIfOwned(repo, path, workspace, name string, pull int) call {
	return call{Method: unlockIfOwnedByPull, Project: models.NewProject(repo, path, name), Workspace: workspace, PullNum: pull}
}

func byKey(m method, key string) call { return call{Method: m, Key: key} }

func byPull(repo string, pull int) call { return call{Method: unlockByPull, Repo: repo, PullNum: pull} }

func of(m method) call { return call{Method: m} }

// TestDifferentialScenarios runs fixed sequences, each aimed at one rule.
func TestDifferentialScenarios(t *testing.T) {
	t.Parallel()
	scenarios := map[string][]call{
		"take, refuse another pull and the same pull, release, take again": {
			try("acme/infra", ".", "default", "", 1, alice),
			try("acme/infra", ".", "default", "", 2, bob),
			try("acme/infra", ".", "default", "", 1, carol), // same pull, another user: still false
			byKey(getLock, "acme/infra/./default/"),
			of(list),
			byKey(unlock, "acme/infra/./default/"),
			byKey(getLock, "acme/infra/./default/"),
			byKey(unlock, "acme/infra/./default/"), // free: (nil, nil)
			try("acme/infra", ".", "default", "", 2, bob),
			try("acme/infra", ".", "staging", "", 1, alice), // another workspace is another key
			try("acme/infra", ".", "default", "vpc", 1, alice),
			of(list),
		},
		"nested paths and group repositories": {
			try("gitlab-org/platform/terraform", "modules/vpc/prod", "default", "", 1, alice),
			try("gitlab-org/platform/terraform", "modules/vpc/prod/", "default", "", 2, bob), // NewProject cleans the path
			try("gitlab-org/platform/terraform", "./modules/vpc/prod", "default", "", 2, bob),
			byKey(getLock, "gitlab-org/platform/terraform/modules/vpc/prod/default/"),
			unlockIfOwned("gitlab-org/platform/terraform", "modules/vpc/prod", "default", "", 2), // not the owner
			unlockIfOwned("gitlab-org/platform/terraform", "modules/vpc/prod", "default", "", 1),
			try("gitlab-org/platform/terraform", "modules/vpc/prod", "default", "", 2, bob),
			try("gitlab-org/platform/terraform", ".", "staging", "", 3, carol),
			unlockIfOwned("gitlab-org/platform/terraform", ".", "staging", "vpc", 3), // another project name: another key
			byKey(unlock, "gitlab-org/platform/terraform/modules/vpc/prod/default/"),
			byKey(unlock, "gitlab-org/platform/terraform/./staging/"),
			of(list),
		},
		"UnlockByPull matches the repository exactly": {
			try("acme/infra", ".", "default", "", 1, alice),
			try("acme/infra", "modules/vpc", "default", "", 1, alice),
			try("acme/infra", "modules/vpc", "staging", "", 1, alice),
			try("acme/infra2", ".", "default", "", 1, alice),
			try("acme/infra-live", "envs/staging", "default", "", 1, alice),
			try("acme/infra", "envs/staging", "default", "", 2, bob),
			try("gitlab-org/platform", ".", "default", "", 1, alice),
			try("gitlab-org/platform/terraform", ".", "default", "", 1, alice),
			byPull("acme/infra", 1), // three locks, in key order; not acme/infra2's or acme/infra-live's
			byPull("acme/infra", 1), // nothing left: nil
			byPull("gitlab-org/platform", 1),
			byPull("acme/infr", 1), // a prefix of a repository is not a repository
			byPull("acme/infra2", 1),
			of(list),
		},
		"malformed and unknown keys": {
			try("acme/infra", ".", "default", "", 1, alice),
			byKey(unlock, ""),
			byKey(unlock, "acme/infra/default"),
			byKey(getLock, "acme/infra/./default"),
			byKey(getLock, "acme/infra/./default/nope"),
			byKey(unlock, "acme/infra/modules//default/"),
			byKey(unlock, "acme/infra/../default/"),
			byKey(getLock, "acme/infra/./default/"),
			of(list),
		},
		"global apply lock": {
			of(checkApplyLock),
			of(unlockApply), // nothing to release: an error, as in BoltDB
			of(lockApply),
			of(lockApply), // already locked: an error, as in BoltDB
			of(checkApplyLock),
			try("acme/infra", ".", "default", "", 1, alice),
			of(list), // the apply lock is not a project lock
			byPull("runatlantis.io/global-apply-lock", 0),
			of(checkApplyLock),
			of(unlockApply),
			of(checkApplyLock),
			of(lockApply),
		},
		"locks without a pull number (API-driven runs)": {
			try("acme/infra", ".", "default", "", 0, api),
			try("acme/infra", ".", "default", "", 0, alice), // pull 0 too: Atlantis sees the same pull
			try("acme/infra", ".", "default", "", 1, alice),
			unlockIfOwned("acme/infra", ".", "default", "", 1),
			unlockIfOwned("acme/infra", ".", "default", "", 0),
			try("acme/infra", "modules/vpc", "default", "", 0, api),
			byPull("acme/infra", 0),
			of(list),
		},
		"same key text for two projects (repository and path split differently)": {
			// "gitlab-org/platform" path "terraform/modules/vpc" and
			// "gitlab-org/platform/terraform" path "modules/vpc" have one Atlantis key.
			try("gitlab-org/platform", "terraform/modules/vpc", "default", "", 1, alice),
			try("gitlab-org/platform/terraform", "modules/vpc", "default", "", 2, bob),
			byKey(getLock, "gitlab-org/platform/terraform/modules/vpc/default/"),
			unlockIfOwned("gitlab-org/platform/terraform", "modules/vpc", "default", "", 1),
			try("gitlab-org/platform/terraform", "modules/vpc", "default", "", 2, bob),
			try("gitlab-org/platform", "terraform/modules/vpc", "default", "", 1, alice),
			byPull("gitlab-org/platform", 2),
			byPull("gitlab-org/platform/terraform", 2),
			of(list),
		},
	}
	for name, calls := range scenarios {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := newDiffer(t, "scenario "+strconv.Quote(name))
			for _, c := range calls {
				d.step(c)
			}
			d.finish()
		})
	}
}

// The randomized sequences' world: repositories whose names are prefixes of each
// other (the UnlockByPull difference), a group repository, nested paths, the root,
// two workspaces, named and unnamed projects, pulls 0 to 3 and several users.
// "gitlab-org/platform" with path "terraform/modules/vpc" has the same Atlantis key
// as "gitlab-org/platform/terraform" with path "modules/vpc".
var (
	repos      = []string{"acme/infra", "acme/infra2", "acme/infra-live", "gitlab-org/platform", "gitlab-org/platform/terraform"}
	paths      = []string{".", "modules/vpc", "modules/vpc/prod", "terraform/modules/vpc"}
	workspaces = []string{"default", "staging"}
	users      = []models.User{alice, bob, carol}
	malformed  = []string{"", "acme/infra", "acme/infra/./default", "acme/infra/x//default/", "acme/infra/./default/vpc/extra/"}
)

// generator draws calls, biased towards keys and pulls that hold locks so that
// releases usually find something.
type generator struct {
	rng  *rand.Rand
	held func() []models.ProjectLock
}

func (g *generator) pick(n int) int { return g.rng.IntN(n) }

func (g *generator) project() (models.Project, string) {
	name := ""
	if g.pick(5) == 0 {
		name = "vpc"
	}
	return models.NewProject(repos[g.pick(len(repos))], paths[g.pick(len(paths))], name), workspaces[g.pick(len(workspaces))]
}

// heldOr returns a held lock (when there is one and a coin says so) or nil.
func (g *generator) heldOr() *models.ProjectLock {
	held := g.held()
	if len(held) == 0 || g.pick(4) == 0 {
		return nil
	}
	l := held[g.pick(len(held))]
	return &l
}

func (g *generator) next() call {
	switch r := g.pick(100); {
	case r < 45:
		p, ws := g.project()
		if l := g.heldOr(); l != nil && g.pick(2) == 0 {
			p, ws = l.Project, l.Workspace // contention: a key that is held
		}
		pull, user := 1+g.pick(3), users[g.pick(len(users))]
		if g.pick(15) == 0 {
			pull, user = 0, api
		}
		pr := pullOf(p.RepoFullName, pull, commitA)
		if g.pick(3) == 0 {
			pr.HeadCommit = commitB // a newer commit of the pull: a held lock still shows the first
		}
		return call{Method: tryLock, Project: p, Workspace: ws, Pull: pr, User: user}
	case r < 57:
		p, ws := g.project()
		num := 1 + g.pick(3)
		if l := g.heldOr(); l != nil {
			p, ws = l.Project, l.Workspace
			if g.pick(3) > 0 {
				num = l.Pull.Num
			}
		}
		return call{Method: unlockIfOwnedByPull, Project: p, Workspace: ws, PullNum: num}
	case r < 77:
		m := unlock
		if r >= 67 {
			m = getLock
		}
		p, ws := g.project()
		key := models.GenerateLockKey(p, ws)
		if l := g.heldOr(); l != nil {
			key = models.GenerateLockKey(l.Project, l.Workspace)
		}
		if g.pick(6) == 0 {
			key = malformed[g.pick(len(malformed))]
		}
		return call{Method: m, Key: key}
	case r < 85:
		// Half of the time a repository whose name is a prefix of others'.
		repo, num := []string{"acme/infra", "gitlab-org/platform"}[g.pick(2)], 1+g.pick(3)
		if l := g.heldOr(); l != nil && g.pick(2) == 0 {
			repo, num = l.Project.RepoFullName, l.Pull.Num
		}
		return call{Method: unlockByPull, Repo: repo, PullNum: num}
	case r < 90:
		return call{Method: list}
	default:
		return call{Method: []method{lockApply, checkApplyLock, checkApplyLock, unlockApply}[g.pick(4)]}
	}
}

// mustSee are the cases the randomized sequences must exercise, all seeds together.
var mustSee = []string{
	"TryLock: acquired",
	"TryLock: held by another pull",
	"TryLock: held by the same pull",
	"Unlock: a lock",
	"Unlock: nothing",
	"Unlock: error",
	"GetLock: a lock",
	"GetLock: nothing",
	"UnlockIfOwnedByPull: a lock",
	"UnlockIfOwnedByPull: nothing",
	"UnlockByPull: released",
	"UnlockByPull: nothing",
	"UnlockByPull: Atlantis's prefix match also released other repositories' locks",
	"List: ok",
	"LockApply: ok",
	"LockApply: error",
	"UnlockApply: ok",
	"UnlockApply: error",
	"CheckApplyLock: locked",
	"CheckApplyLock: ok",
}

// fixedSeeds run every time; together they must exercise every case of mustSee.
var fixedSeeds = []uint64{1, 2, 3}

// differentialSeeds are the seeds of the randomized sequences: the fixed ones, so
// that every run covers them, and one new each run, logged so that a failure can be
// replayed with ATLANTIS_DIFF_SEEDS=<seed>[,<seed>...], which replaces them all.
func differentialSeeds(t *testing.T) []uint64 {
	if env := os.Getenv("ATLANTIS_DIFF_SEEDS"); env != "" {
		var seeds []uint64
		for _, s := range strings.Split(env, ",") {
			seed, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
			if err != nil {
				t.Fatalf("ATLANTIS_DIFF_SEEDS=%q: %v", env, err)
			}
			seeds = append(seeds, seed)
		}
		return seeds
	}
	return append(slices.Clone(fixedSeeds), rand.Uint64())
}

// callsPerSequence is the length of each randomized sequence.
const callsPerSequence = 100

// TestDifferentialRandomized runs seeded random sequences of calls.
func TestDifferentialRandomized(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen, fixedSeen, calls := map[string]int{}, map[string]int{}, 0
	t.Cleanup(func() {
		// Runs after every sequence: what all of them exercised together.
		t.Logf("%d calls in all:", calls)
		for _, k := range slices.Sorted(maps.Keys(seen)) {
			t.Logf("  %4d  %s", seen[k], k)
		}
		if t.Failed() || os.Getenv("ATLANTIS_DIFF_SEEDS") != "" {
			return
		}
		for _, k := range mustSee {
			if fixedSeen[k] == 0 {
				t.Errorf("no call of the fixed seeds' sequences exercised %q: the generator no longer reaches it", k)
			}
		}
	})
	for _, seed := range differentialSeeds(t) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			d := newDiffer(t, fmt.Sprintf("seed %d: rerun with ATLANTIS_DIFF_SEEDS=%d go test -run 'TestDifferentialRandomized' ./...", seed, seed))
			g := &generator{rng: rand.New(rand.NewPCG(seed, seed)), held: func() []models.ProjectLock {
				locks, err := d.atlantis.db.List()
				if err != nil {
					t.Fatal(err)
				}
				return locks
			}}
			for range callsPerSequence {
				d.step(g.next())
			}
			d.finish()
			mu.Lock()
			defer mu.Unlock()
			calls += d.calls
			for k, n := range d.seen {
				seen[k] += n
				if slices.Contains(fixedSeeds, seed) {
					fixedSeen[k] += n
				}
			}
			t.Logf("seed %d: %d calls in %s", seed, d.calls, time.Since(start).Round(time.Millisecond))
		})
	}
}
