package controller_test

// 8. The deadlock detector of the shared manager (a scan every 200ms). Owners are
// pulls of a repository named after the test's namespace, so that no other test's
// owners can join their wait-for graph.

import (
	"sort"
	"strings"
	"testing"
	"time"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// dlRequest is a request of pull number pull for key path, by the user named after
// the request's first letter (its owner).
func dlRequest(ns, name, path string, pull int32) *lrBuilder {
	return makeLR(ns, name).repo("acme/" + ns).path(path).pull(pull).user("user-" + name[:1])
}

func checkVictim(t *testing.T, ns, victim string, edges int, start time.Time) {
	t.Helper()
	waitEnded(t, ns, victim, lockingv1alpha1.ReasonDeadlockVictim)
	t.Logf("victim %s failed %v after the cycle closed", victim, time.Since(start).Round(time.Millisecond))
	found := deadlocks.in(ns)
	if len(found) != 1 {
		t.Fatalf("deadlocks reported for %s: %d, want 1: %+v", ns, len(found), found)
	}
	dl := found[0]
	if dl.Victim.Request != victim || dl.Victim.Lock.Namespace != ns {
		t.Errorf("reported victim %s/%s, want %s/%s", dl.Victim.Lock.Namespace, dl.Victim.Request, ns, victim)
	}
	if len(dl.Cycle) != edges {
		t.Errorf("cycle %q has %d edges, want %d", dl.Describe(), len(dl.Cycle), edges)
	}
	for _, e := range dl.Cycle {
		// The graph qualifies owners by namespace; the description names them as
		// their users know them.
		owner := strings.TrimPrefix(e.Waiter, ns+"/")
		if owner == e.Waiter {
			t.Errorf("wait-for graph owner %q is not qualified by namespace %s", e.Waiter, ns)
		}
		if !strings.Contains(dl.Describe(), owner+" waits for ") {
			t.Errorf("description %q does not name %s", dl.Describe(), owner)
		}
	}
}

// stillQueued checks that none of the requests ended or moved.
func stillQueued(t *testing.T, ns string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := checkQueued(mustGetLR(t, ns, n), 1); err != nil {
			t.Errorf("should still wait: %v", err)
		}
	}
}

// Two owners each hold what the other wants: the younger waiting request is failed,
// the other keeps waiting and is served when the victim's owner lets go.
func TestDeadlockTwoOwners(t *testing.T) {
	ns := newNamespace(t)
	a1 := dlRequest(ns, "a-k1", "k1", 1).create(t)
	b2 := dlRequest(ns, "b-k2", "k2", 2).create(t)
	waitHeld(t, ns, a1.Name)
	waitHeld(t, ns, b2.Name)

	dlRequest(ns, "a-k2", "k2", 1).create(t)
	waitQueued(t, ns, "a-k2", 1)
	start := time.Now()
	dlRequest(ns, "b-k1", "k1", 2).create(t) // younger: the victim
	checkVictim(t, ns, "b-k1", 2, start)

	waitScans(t, 3)
	stillQueued(t, ns, "a-k2")
	if err := checkAcquired(mustGetLR(t, ns, a1.Name)); err != nil {
		t.Error(err)
	}
	if n := len(deadlocks.in(ns)); n != 1 {
		t.Errorf("%d deadlocks reported after the cycle was broken, want 1", n)
	}

	deleteObj(t, b2)
	waitHeld(t, ns, "a-k2")
	if err := checkEnded(mustGetLR(t, ns, "b-k1"), lockingv1alpha1.ReasonDeadlockVictim); err != nil {
		t.Error(err)
	}
}

// The victim is the lowest priority on the cycle before the youngest.
func TestDeadlockVictimLowestPriority(t *testing.T) {
	ns := newNamespace(t)
	waitHeld(t, ns, dlRequest(ns, "a-k1", "k1", 1).create(t).Name)
	waitHeld(t, ns, dlRequest(ns, "b-k2", "k2", 2).create(t).Name)

	dlRequest(ns, "a-k2", "k2", 1).prio("Low").create(t) // older, but Low: the victim
	waitQueued(t, ns, "a-k2", 1)
	start := time.Now()
	dlRequest(ns, "b-k1", "k1", 2).prio("Normal").create(t)
	checkVictim(t, ns, "a-k2", 2, start)
	waitScans(t, 3)
	stillQueued(t, ns, "b-k1")
}

// A cycle of three owners loses exactly one waiting request, the youngest.
func TestDeadlockThreeOwners(t *testing.T) {
	ns := newNamespace(t)
	for _, r := range []*lrBuilder{
		dlRequest(ns, "a-k1", "k1", 1), dlRequest(ns, "b-k2", "k2", 2), dlRequest(ns, "c-k3", "k3", 3),
	} {
		waitHeld(t, ns, r.create(t).Name)
	}
	dlRequest(ns, "a-k2", "k2", 1).create(t)
	waitQueued(t, ns, "a-k2", 1)
	dlRequest(ns, "b-k3", "k3", 2).create(t)
	waitQueued(t, ns, "b-k3", 1)
	start := time.Now()
	dlRequest(ns, "c-k1", "k1", 3).create(t)
	checkVictim(t, ns, "c-k1", 3, start)

	waitScans(t, 3)
	stillQueued(t, ns, "a-k2", "b-k3")
	if n := len(deadlocks.in(ns)); n != 1 {
		t.Errorf("%d deadlocks reported, want 1", n)
	}
}

// A chain of owners waiting for each other without a cycle is never broken; closing
// it into a cycle is (which also proves the scans saw the chain).
func TestDeadlockChainIsNoDeadlock(t *testing.T) {
	ns := newNamespace(t)
	for _, r := range []*lrBuilder{
		dlRequest(ns, "a-k1", "k1", 1), dlRequest(ns, "b-k2", "k2", 2), dlRequest(ns, "c-k3", "k3", 3),
	} {
		waitHeld(t, ns, r.create(t).Name)
	}
	// a waits for b, b waits for c.
	dlRequest(ns, "a-k2", "k2", 1).create(t)
	dlRequest(ns, "b-k3", "k3", 2).create(t)
	before := map[string]string{}
	for _, n := range []string{"a-k2", "b-k3"} {
		before[n] = waitQueued(t, ns, n, 1).ResourceVersion
	}

	waitScans(t, 5)
	if found := deadlocks.in(ns); len(found) > 0 {
		var d []string
		for _, dl := range found {
			d = append(d, dl.Describe())
		}
		sort.Strings(d)
		t.Fatalf("a chain was reported as a deadlock: %v", d)
	}
	for n, rv := range before {
		if lr := mustGetLR(t, ns, n); lr.ResourceVersion != rv {
			t.Errorf("%s was written while waiting in a chain: %+v", n, lr.Status)
		}
	}
	stillQueued(t, ns, "a-k2", "b-k3")

	// c waits for a: now it is a cycle, and c's request is the youngest.
	start := time.Now()
	dlRequest(ns, "c-k1", "k1", 3).create(t)
	checkVictim(t, ns, "c-k1", 3, start)
	stillQueued(t, ns, "a-k2", "b-k3")
}
