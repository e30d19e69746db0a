package integration

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
)

// grantChecker is the history checker of mutual exclusion: clients report when they
// enter and leave the critical section of a key, and it fails on any overlap of two
// owners or any fencing token that does not grow.
type grantChecker struct {
	mu        sync.Mutex
	occupant  map[string]string // key -> owner inside
	lastToken map[string]int64  // key -> highest token that entered
	grants    int
	errs      []string
}

func newGrantChecker() *grantChecker {
	return &grantChecker{occupant: map[string]string{}, lastToken: map[string]int64{}}
}

func (g *grantChecker) enter(key, owner, token string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.grants++
	if other, ok := g.occupant[key]; ok && other != owner {
		g.errs = append(g.errs, fmt.Sprintf("key %s granted to %s while %s held it", key, owner, other))
	}
	g.occupant[key] = owner
	n, err := strconv.ParseInt(token, 10, 64)
	if err != nil {
		g.errs = append(g.errs, fmt.Sprintf("key %s: fencing token %q of %s is not an integer", key, token, owner))
		return
	}
	if n <= g.lastToken[key] {
		g.errs = append(g.errs, fmt.Sprintf("key %s: fencing token %d of %s does not exceed the earlier %d", key, n, owner, g.lastToken[key]))
	}
	g.lastToken[key] = n
}

func (g *grantChecker) leave(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.occupant, key)
}

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
	checker := newGrantChecker()
	ctx := deadline(t, 3*time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- runClient(ctx, ns, w, checker, c, keys, cycles)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, e := range checker.errs {
		t.Error(e)
	}
	if want := clients * cycles; checker.grants != want {
		t.Errorf("%d grants observed, want %d (every cycle acquires once)", checker.grants, want)
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

func TestGrantCheckerCatchesOverlapsAndStaleTokens(t *testing.T) {
	g := newGrantChecker()
	g.enter("k", "a", "10")
	g.enter("k", "b", "11") // a has not left
	g.leave("k")
	g.enter("k", "c", "9") // lower than 11
	if len(g.errs) != 2 {
		t.Fatalf("checker found %d problems, want 2: %v", len(g.errs), g.errs)
	}
}

// runClient is one Atlantis-like client: for each cycle it asks for a key, waits for
// the grant, works in the critical section, and releases.
func runClient(ctx context.Context, ns string, w *watcher, checker *grantChecker, c, keys, cycles int) error {
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
		checker.enter(key, got.Spec.Owner(), got.Status.FencingToken)
		if err := checkLeaseHeldBy(ctx, got); err != nil {
			return fmt.Errorf("client %d: %w", c, err)
		}
		// Hold the lock for a moment, as a plan would, so that holds of different
		// owners would overlap if the operators ever granted one key twice.
		time.Sleep(time.Duration(1+i%3) * time.Millisecond)
		checker.leave(key)
		if err := deleteRequest(ctx, ns, name); err != nil {
			return fmt.Errorf("client %d: releasing %s: %w", c, name, err)
		}
		if _, err := w.waitFor(ctx, name, isGone); err != nil {
			return fmt.Errorf("client %d: %w", c, err)
		}
	}
	return nil
}

// checkLeaseHeldBy reads the key's Lease from the API server and checks that it names
// the request's owner and that the request's fencing token is not newer than it.
func checkLeaseHeldBy(ctx context.Context, lr *lockingv1alpha1.LockRequest) error {
	lease := &coordinationv1.Lease{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: lr.Namespace, Name: lr.Status.LockName}, lease); err != nil {
		return fmt.Errorf("reading the Lease of %s: %w", lr.Name, err)
	}
	if got := lease.Annotations[lockingv1alpha1.OwnerAnnotation]; got != lr.Spec.Owner() {
		return fmt.Errorf("%s holds per its status, but Lease %s names owner %q", lr.Spec.Owner(), lease.Name, got)
	}
	token, _ := strconv.ParseInt(lr.Status.FencingToken, 10, 64)
	rv, _ := strconv.ParseInt(lease.ResourceVersion, 10, 64)
	if token > rv {
		return fmt.Errorf("%s's fencing token %d is newer than Lease %s's resourceVersion %d", lr.Name, token, lease.Name, rv)
	}
	return nil
}
