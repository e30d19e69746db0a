package controller

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// TestPrimeReadsANamespaceOnce: after a start, the first decisions of many keys at
// once read their namespace's ProjectLocks once, not one each; what the read found
// is known at the versions it found, a write of this operator made meanwhile is not
// overwritten by the older copy, and a failed read is tried again.
func TestPrimeReadsANamespaceOnce(t *testing.T) {
	pl := func(name, uid, version, token string) *lockingv1alpha1.ProjectLock {
		p := &lockingv1alpha1.ProjectLock{ObjectMeta: metav1.ObjectMeta{Namespace: "atlantis", Name: name, UID: types.UID(uid), ResourceVersion: version}}
		if token != "" {
			p.Status.Holder = &lockingv1alpha1.LockHolder{FencingToken: token}
		}
		return p
	}
	a, b := types.NamespacedName{Namespace: "atlantis", Name: "a"}, types.NamespacedName{Namespace: "atlantis", Name: "b"}
	var s shownStatus
	// This operator wrote b's status at version 10 while the read was under way.
	s.set(b, shown{uid: "ub", version: "10", token: "written"})

	var calls atomic.Int32
	release := make(chan struct{})
	list := func(ctx context.Context, _ string, each func(*lockingv1alpha1.ProjectLock)) error {
		calls.Add(1)
		<-release
		each(pl("a", "ua", "7", "5"))
		each(pl("b", "ub", "9", "read"))
		return ctx.Err()
	}
	const callers = 4
	var wg sync.WaitGroup
	results := make(chan bool, callers)
	for range callers {
		wg.Go(func() { results <- s.prime(context.Background(), "atlantis", list) })
	}
	close(release)
	wg.Wait()
	close(results)
	for ok := range results {
		if !ok {
			t.Errorf("a caller was told the namespace is not primed")
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d reads of the namespace for %d callers, want 1", n, callers)
	}
	if known, ok := s.knownAt(a, "ua", "7"); !ok || known.token != "5" {
		t.Errorf("a at version 7: known %v, token %q; want the read's token 5", ok, known.token)
	}
	if _, ok := s.knownAt(a, "ua", "8"); ok {
		t.Errorf("a at version 8, newer than the read, is known")
	}
	if known, ok := s.knownAt(b, "ub", "10"); !ok || known.token != "written" {
		t.Errorf("b: known %v, token %q; want this operator's write at version 10 kept over the older read", ok, known.token)
	}

	failing := func(context.Context, string, func(*lockingv1alpha1.ProjectLock)) error {
		calls.Add(1)
		return errors.New("the API server is away")
	}
	if s.prime(context.Background(), "other", failing) {
		t.Errorf("a failed read primed the namespace")
	}
	before := calls.Load()
	if !s.prime(context.Background(), "other", list) || calls.Load() != before+1 {
		t.Errorf("after a failed read, the next caller did not read again")
	}
}
