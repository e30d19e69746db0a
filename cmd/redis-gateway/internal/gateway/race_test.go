package gateway_test

// Two Atlantis replicas racing for one lock. Atlantis's RedisDB.TryLock is a GET
// and then a SET: against Redis, two clients that both GET before either SETs both
// "acquire". Against the gateway the SET is a grant through a LockRequest, so the
// later SET is refused (LOCKED, naming the holder) and exactly one wins. Each
// RedisDB here talks to a gateway of its own, as two Atlantis pods with a sidecar
// each would.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	atlantisredis "github.com/runatlantis/atlantis/server/core/redis"
	"github.com/runatlantis/atlantis/server/events/models"
)

// raceRounds is how many times the two clients race (GATEWAY_RACE_ROUNDS changes it).
func raceRounds() int {
	if v, err := strconv.Atoi(os.Getenv("GATEWAY_RACE_ROUNDS")); err == nil && v > 0 {
		return v
	}
	return 1000
}

// raceResult counts the outcomes of the rounds.
type raceResult struct {
	rounds, bothWon, noneWon, refusedBySet int
}

// race makes a and b TryLock one key at the same moment, rounds times; after each
// round the winner (or winners) unlock. check, when not nil, is called with each
// round's answers.
func race(t *testing.T, a, b *atlantisredis.RedisDB, rounds int, check func(round int, won [2]bool, errs [2]error, locks [2]models.ProjectLock)) raceResult {
	t.Helper()
	project := models.NewProject("acme/infra", "modules/vpc", "")
	dbs := [2]*atlantisredis.RedisDB{a, b}
	res := raceResult{rounds: rounds}
	for round := range rounds {
		var (
			won   [2]bool
			errs  [2]error
			locks [2]models.ProjectLock
			start = make(chan struct{})
			wg    sync.WaitGroup
		)
		for i := range dbs {
			wg.Go(func() {
				lock := models.ProjectLock{
					Project: project, Workspace: "default", Time: time.Unix(int64(round), 0),
					Pull: pullRequest("acme/infra", 10+i, "cafe0"+strconv.Itoa(i)),
					User: models.User{Username: fmt.Sprintf("replica%d", i)},
				}
				<-start
				won[i], locks[i], errs[i] = dbs[i].TryLock(lock)
			})
		}
		close(start)
		wg.Wait()
		switch {
		case won[0] && won[1]:
			res.bothWon++
		case !won[0] && !won[1]:
			res.noneWon++
		}
		for i := range errs {
			if errs[i] != nil {
				res.refusedBySet++
			}
		}
		if check != nil {
			check(round, won, errs, locks)
		}
		for i := range dbs {
			if won[i] {
				if _, err := dbs[i].Unlock(project, "default"); err != nil {
					t.Fatalf("round %d: unlocking: %v", round, err)
				}
			}
		}
	}
	return res
}

// TestRaceTwoReplicas races two RedisDB clients, each through its own gateway, and
// then the same two clients on one miniredis.
func TestRaceTwoReplicas(t *testing.T) {
	rounds := raceRounds()
	ns := newNamespace(t)
	a := startGateway(t, ns, nil).redisDB(t, "")
	b := startGateway(t, ns, nil).redisDB(t, "")
	ours := race(t, a, b, rounds, func(round int, won [2]bool, errs [2]error, locks [2]models.ProjectLock) {
		if won[0] == won[1] {
			t.Fatalf("round %d: won %v (errors %v, %v): exactly one replica must win", round, won, errs[0], errs[1])
		}
		winner, loser := 0, 1
		if won[1] {
			winner, loser = 1, 0
		}
		switch err := errs[loser]; {
		case err != nil:
			// Both GETs saw a free key; the loser's SET was refused and says who holds it.
			want := fmt.Sprintf("LOCKED lock key 'pr/acme/infra/modules/vpc/default/' is held by pull #%d", 10+winner)
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("round %d: the losing SET's error %q does not contain %q", round, err, want)
			}
		case locks[loser].Pull.Num != 10+winner:
			t.Fatalf("round %d: the loser was told pull %d holds the key, not the winner %d", round, locks[loser].Pull.Num, 10+winner)
		}
		if errs[winner] != nil {
			t.Fatalf("round %d: the winner got an error: %v", round, errs[winner])
		}
	})
	mr, refA := newMiniredis(t)
	theirs := race(t, refA, connectMiniredis(t, mr), rounds, nil)
	t.Logf("gateway: %d rounds, both won %d, none won %d, losing SETs refused %d", ours.rounds, ours.bothWon, ours.noneWon, ours.refusedBySet)
	t.Logf("miniredis: %d rounds, both won %d, none won %d", theirs.rounds, theirs.bothWon, theirs.noneWon)
	if ours.bothWon != 0 || ours.noneWon != 0 {
		t.Errorf("gateway: both won %d times, none %d times; want 0 and 0", ours.bothWon, ours.noneWon)
	}
	if path := os.Getenv("GATEWAY_RACE_REPORT"); path != "" {
		report := fmt.Sprintf("rounds=%d gateway_both_won=%d gateway_set_refused=%d miniredis_both_won=%d\n", rounds, ours.bothWon, ours.refusedBySet, theirs.bothWon)
		if err := os.WriteFile(path, []byte(report), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
