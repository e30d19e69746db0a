// Package lockcheck checks, from the clients' side, that locks were exclusive: no
// two holders of one key at once, and fencing tokens that grow with every grant of
// a key. Tests and benchmarks record every hold as its client saw it (from the
// moment the client observed the grant to the moment it asked for the release) in
// a History, and check the history once the traffic is over.
//
// The check needs no clock agreement with the operator: a client records the
// release before it deletes its request, and the next holder can only observe its
// grant after the operator has seen that deletion, so in a correct run every grant
// of a key is observed after the previous holder's release was recorded. The times
// must come from one process's monotonic clock (time.Now in the test).
package lockcheck

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// Hold is one grant of a key as its client saw it.
type Hold struct {
	// Key is the lock key (any string that names the key consistently).
	Key string
	// Holder names who held it (a request name or an owner), for the messages.
	Holder string
	// Token is the fencing token of the grant.
	Token string
	// Acquired is when the client observed the grant.
	Acquired time.Time
	// Released is when the client asked to release (before it sent the release).
	Released time.Time
}

// History collects holds from concurrent clients. The zero value is ready to use.
type History struct {
	mu    sync.Mutex
	holds []Hold
}

// Add records a finished hold and returns how many holds have been recorded.
func (h *History) Add(hold Hold) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.holds = append(h.holds, hold)
	return len(h.holds)
}

// Holds returns a copy of the holds recorded so far, in the order they were added.
func (h *History) Holds() []Hold {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.holds)
}

// Check checks the holds recorded so far; see Check.
func (h *History) Check() Result {
	return Check(h.Holds())
}

// Result is the outcome of a check.
type Result struct {
	// Grants is the number of holds checked.
	Grants int `json:"grants"`
	// Successions counts the grants that followed an earlier grant of the same key,
	// each checked against the holds before it.
	Successions int `json:"successions"`
	// Violations describes every problem found; empty means the holds were
	// exclusive and their fencing tokens grew.
	Violations []string `json:"violations"`
}

// Check checks, key by key and in the order the grants were observed, that every
// grant was observed only after every earlier holder of the key had released it
// (no two holders at once) and that its fencing token exceeds the previous grant's.
// Violations name the key, both holders and the tokens.
func Check(holds []Hold) Result {
	byKey := map[string][]Hold{}
	for _, h := range holds {
		byKey[h.Key] = append(byKey[h.Key], h)
	}
	res := Result{Grants: len(holds), Violations: []string{}}
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		hs := byKey[key]
		slices.SortStableFunc(hs, func(a, b Hold) int { return a.Acquired.Compare(b.Acquired) })
		// last is the hold released last among those granted so far: a grant observed
		// before its release overlaps it (or another one still held).
		last := hs[0]
		for i := 1; i < len(hs); i++ {
			res.Successions++
			res.Violations = append(res.Violations, succession(key, last, hs[i-1], hs[i])...)
			if hs[i].Released.After(last.Released) {
				last = hs[i]
			}
		}
	}
	return res
}

// succession checks next against the hold released last before it and the grant
// just before it.
func succession(key string, last, prev, next Hold) []string {
	var v []string
	if !next.Acquired.After(last.Released) {
		v = append(v, fmt.Sprintf("key %s: %s was observed holding it %s before %s released it",
			key, next.Holder, last.Released.Sub(next.Acquired), last.Holder))
	}
	a, errA := strconv.ParseUint(prev.Token, 10, 64)
	b, errB := strconv.ParseUint(next.Token, 10, 64)
	switch {
	case errA != nil || errB != nil:
		v = append(v, fmt.Sprintf("key %s: fencing tokens %q (%s) and %q (%s) are not integers",
			key, prev.Token, prev.Holder, next.Token, next.Holder))
	case b <= a:
		v = append(v, fmt.Sprintf("key %s: fencing token %d of %s does not exceed %d of the previous holder %s",
			key, b, next.Holder, a, prev.Holder))
	}
	return v
}

// LeaseHeldBy reads the Lease of the lock lr holds (status.lockName, in lr's
// namespace) and checks that it names lr's owner and that lr's fencing token is not
// newer than the Lease: what a fenced system downstream would compare. Call it
// while lr holds the lock.
func LeaseHeldBy(ctx context.Context, c client.Reader, lr *lockingv1alpha1.LockRequest) error {
	lease := &coordinationv1.Lease{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: lr.Namespace, Name: lr.Status.LockName}, lease); err != nil {
		return fmt.Errorf("reading the Lease of %s/%s: %w", lr.Namespace, lr.Name, err)
	}
	if got := lease.Annotations[lockingv1alpha1.OwnerAnnotation]; got != lr.Spec.Owner() {
		return fmt.Errorf("%s holds per the status of %s, but Lease %s names owner %q", lr.Spec.Owner(), lr.Name, lease.Name, got)
	}
	token, errT := strconv.ParseInt(lr.Status.FencingToken, 10, 64)
	rv, errR := strconv.ParseInt(lease.ResourceVersion, 10, 64)
	if err := cmp.Or(errT, errR); err != nil {
		return fmt.Errorf("%s: fencing token %q or Lease %s's resourceVersion %q is not an integer: %w",
			lr.Name, lr.Status.FencingToken, lease.Name, lease.ResourceVersion, err)
	}
	if token > rv {
		return fmt.Errorf("%s's fencing token %d is newer than Lease %s's resourceVersion %d", lr.Name, token, lease.Name, rv)
	}
	return nil
}
