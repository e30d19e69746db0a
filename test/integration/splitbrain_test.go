package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/lockcheck"
)

// TestSplitBrainNeverGrantsOneKeyTwice runs two operators with leader election off
// against one API server, as two replicas that both believe they lead would, under
// contention: many owners cycling over few keys. Every grant is a Lease
// compare-and-swap, so the checker must see no overlapping holds and only growing
// fencing tokens.
func TestSplitBrainNeverGrantsOneKeyTwice(t *testing.T) {
	ns := newNamespace(t, "splitbrain")
	w := watchRequests(t, ns)
	cfg := config.Default()
	operators := []*runningOperator{startOperator(t, cfg), startOperator(t, cfg)}

	const (
		clients = 12
		keys    = 3
		cycles  = 8
	)
	var history lockcheck.History
	ctx := deadline(t, 3*time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- runClient(ctx, ns, w, &history, c, keys, cycles)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	res := history.Check()
	for _, v := range res.Violations {
		t.Error(v)
	}
	if want := clients * cycles; res.Grants != want {
		t.Errorf("%d grants observed, want %d (every cycle acquires once)", res.Grants, want)
	}
	// Both operators must have decided, or this proved nothing about two of them;
	// and together they granted each cycle exactly once.
	var total int64
	for i, op := range operators {
		m := op.op.Orchestrator.GetMetrics()
		t.Logf("operator %d: %d grants, %d compare-and-swap conflicts", i, m.Grants, m.Conflicts)
		if m.Grants == 0 {
			t.Errorf("operator %d granted nothing; the two operators did not compete", i)
		}
		total += m.Grants
	}
	if want := int64(clients * cycles); total != want {
		t.Errorf("the operators recorded %d grants together, want %d", total, want)
	}
}

// runClient is one Atlantis-like client: for each cycle it asks for a key, waits for
// the grant, works in the critical section, and releases.
func runClient(ctx context.Context, ns string, w *watcher, history *lockcheck.History, c, keys, cycles int) error {
	for i := range cycles {
		key := fmt.Sprintf("modules/k%d", (c+i)%keys)
		name := fmt.Sprintf("c%d-%d", c, i)
		lr := lockRequest(ns, name, key, int32(c+1), fmt.Sprintf("user%d", c))
		if err := env.Client.Create(ctx, lr); err != nil {
			return fmt.Errorf("client %d: creating %s: %w", c, name, err)
		}
		got, err := w.waitFor(ctx, name, func(lr *lockingv1alpha1.LockRequest) bool {
			return isAcquired(lr) || lockingv1alpha1.IsTerminalReason(reason(lr))
		})
		if err != nil {
			return fmt.Errorf("client %d: %w", c, err)
		}
		if !isAcquired(got) {
			return fmt.Errorf("client %d: %s ended with %s without a timeout, ttl or queue limit set", c, name, reason(got))
		}
		acquired := time.Now()
		if err := lockcheck.LeaseHeldBy(ctx, env.Client, got); err != nil {
			return fmt.Errorf("client %d: %w", c, err)
		}
		// Hold the lock for a moment, as a plan would, so that holds of different
		// owners would overlap if the operators ever granted one key twice.
		time.Sleep(time.Duration(1+i%3) * time.Millisecond)
		history.Add(lockcheck.Hold{Key: key, Holder: got.Spec.Owner(), Token: got.Status.FencingToken, Acquired: acquired, Released: time.Now()})
		if err := deleteRequest(ctx, ns, name); err != nil {
			return fmt.Errorf("client %d: releasing %s: %w", c, name, err)
		}
		if _, err := w.waitFor(ctx, name, isGone); err != nil {
			return fmt.Errorf("client %d: %w", c, err)
		}
	}
	return nil
}
