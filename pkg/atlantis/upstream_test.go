package atlantis_test

import (
	"bytes"
	"testing"

	"github.com/runatlantis/atlantis/server/core/boltdb"
	"github.com/runatlantis/atlantis/server/core/locking"
	"github.com/runatlantis/atlantis/server/events/models"
)

// upstream is Atlantis itself: its locking.Client and locking.ApplyClient over its
// BoltDB backend in a temporary directory, exactly as Atlantis's server.go builds
// them for --locking-db-type=boltdb.
type upstream struct {
	db     *boltdb.BoltDB
	locker *locking.Client
	apply  locking.ApplyLocker
	// collateral counts the locks of other repositories that the last UnlockByPull
	// released by prefix (and do put back).
	collateral int
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	db, err := boltdb.New(t.TempDir())
	if err != nil {
		t.Fatalf("opening Atlantis's BoltDB: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &upstream{db: db, locker: locking.NewClient(db), apply: locking.NewApplyClient(db, false, false)}
}

// do makes c on Atlantis and returns what the adapter must answer to the same call.
//
// That is what Atlantis answered, except for one known and intended difference:
// Atlantis's UnlockByPull(repo, n) matches lock keys by prefix, so it also releases
// pull n's locks of other repositories whose key starts with repo ("owner/repo2/..."
// for "owner/repo", "group/sub/repo/..." for "group/sub"); the adapter matches the
// repository exactly. For UnlockByPull, do therefore finds those locks before the
// call, checks that Atlantis released exactly them on top of the repository's own,
// puts them back into BoltDB as they were (the state of both sides stays the same),
// and leaves them out of the expected answer. Nothing else is adjusted.
func (u *upstream) do(t *testing.T, c call) outcome {
	t.Helper()
	if c.Method != unlockByPull {
		return c.do(u.locker, u.apply)
	}
	before, err := u.db.List()
	if err != nil {
		t.Fatalf("listing Atlantis's locks: %v", err)
	}
	collateral := map[string]models.ProjectLock{}
	for _, l := range before {
		key := models.GenerateLockKey(l.Project, l.Workspace)
		if bytes.HasPrefix([]byte(key), []byte(c.Repo)) && l.Pull.Num == c.PullNum && l.Project.RepoFullName != c.Repo {
			collateral[key] = l
		}
	}
	u.collateral = len(collateral)
	o := c.do(u.locker, u.apply)
	var own []models.ProjectLock
	released := map[string]bool{}
	for _, l := range o.Locks {
		key := models.GenerateLockKey(l.Project, l.Workspace)
		released[key] = true
		if _, ok := collateral[key]; !ok {
			own = append(own, l)
		}
	}
	for key, l := range collateral {
		if !released[key] {
			t.Fatalf("%s: Atlantis did not release %s of %s, which its prefix match should have caught; the accounting for the known difference is wrong", c, key, l.Project.RepoFullName)
		}
		if acquired, _, err := u.db.TryLock(l); err != nil || !acquired {
			t.Fatalf("putting %s back into Atlantis's BoltDB: acquired=%v, err=%v", key, acquired, err)
		}
	}
	o.Locks = own // nil when nothing of the repository itself matched, as BoltDB answers
	return o
}
