package controller_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/leasebackend"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// TestLostLeaseEndsTheHoldBeforeTheNextGrant deletes the Lease of a held key with a
// waiter behind it, as `kubectl delete lease` (or a namespace teardown, or an etcd
// restore) can. The holder must end Revoked, with a message and a Warning Event
// that name the Lease, and that end must be written before the Lease write that
// grants the waiter: by resourceVersion, which orders every write of the API server.
// The holder never waits in the queue again.
func TestLostLeaseEndsTheHoldBeforeTheNextGrant(t *testing.T) {
	ns := newNamespace(t)
	holder := makeLR(ns, "holder").pull(1).user("alice").create(t)
	holder = waitHeld(t, ns, holder.Name)
	waiter := makeLR(ns, "waiter").pull(2).user("bob").create(t)
	waitQueued(t, ns, waiter.Name, 1)
	history := watchRequest(t, ns, holder.Name)
	name := lockNameOf(holder)

	lease, err := getLease(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	deleteObj(t, lease) // kubectl delete lease NAME

	revoked := waitEnded(t, ns, holder.Name, lockingv1alpha1.ReasonRevoked)
	next := waitHeld(t, ns, waiter.Name)
	cond := meta.FindStatusCondition(revoked.Status.Conditions, lockingv1alpha1.ConditionAcquired)
	if want := "Lease " + ns + "/" + name; !strings.Contains(cond.Message, want) {
		t.Errorf("the revoked holder's message %q does not name %s", cond.Message, want)
	}
	endedAt := history.firstVersionWith(func(lr *lockingv1alpha1.LockRequest) bool {
		c := meta.FindStatusCondition(lr.Status.Conditions, lockingv1alpha1.ConditionAcquired)
		return c != nil && c.Reason == lockingv1alpha1.ReasonRevoked
	})
	if endedAt == 0 || endedAt >= fencingToken(t, next) {
		t.Errorf("the holder's end was written at resourceVersion %d, the waiter's grant at %d: the end must come first",
			endedAt, fencingToken(t, next))
	}
	if fencingToken(t, next) <= fencingToken(t, holder) {
		t.Errorf("the new holder's fencing token %d does not exceed the lost one's %d", fencingToken(t, next), fencingToken(t, holder))
	}
	if seen := history.reasonsSeen(); slices.Contains(seen, "False/"+lockingv1alpha1.ReasonQueued) {
		t.Errorf("the holder was queued again after it lost its Lease: %v", seen)
	}
	waitEvent(t, ns, "LockRequest", holder.Name, "Warning", lockingv1alpha1.ReasonRevoked, "Lease "+ns+"/"+name)
	waitLeaseHolder(t, ns, name, next)
}

// TestUnmanagedLeaseIsReportedNotRetriedAsAConflict puts a Lease that the operator
// did not make (no lock label, so the informer cache never sees it) under the name
// of a lock before its first request. Creating the lock's Lease then fails with
// AlreadyExists, which is not a race to retry at once: the operator must read the
// Lease through the API server, report a backend error that says what is wrong,
// count no conflicts for it, and grant once the Lease is gone.
func TestUnmanagedLeaseIsReportedNotRetriedAsAConflict(t *testing.T) {
	ns := isolatedNamespace(t)
	errs := &noticeLog{}
	op := startIsolatedOperator(t, ns, clock.RealClock{}, orchestrator.DefaultConfig())
	op.orch.AddObserver(errs)
	lr := makeLR(ns, "blocked").pull(7).user("carol").obj()
	name := lockNameOf(lr)
	foreign := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := k8s.Create(context.Background(), foreign); err != nil {
		t.Fatal(err)
	}
	conflictsBefore := op.orch.GetMetrics().Conflicts
	if err := k8s.Create(context.Background(), lr); err != nil {
		t.Fatal(err)
	}

	const failures = 4
	eventually(t, fmt.Sprintf("%d backend errors about the unmanaged Lease", failures), func() error {
		if n := errs.count(ns, leasebackend.ErrNotManaged); n < failures {
			return fmt.Errorf("%d so far; notices: %v", n, errs.all())
		}
		return nil
	})
	if got := op.orch.GetMetrics().Conflicts - conflictsBefore; got != 0 {
		t.Errorf("%d conflicts counted while the Lease was not the operator's; want 0: it is not a race", got)
	}
	if cur := mustGetLR(t, ns, lr.Name); meta.IsStatusConditionTrue(cur.Status.Conditions, lockingv1alpha1.ConditionAcquired) {
		t.Errorf("granted while its Lease's name is taken by a Lease the operator did not make")
	}

	deleteObj(t, foreign)
	waitHeld(t, ns, lr.Name)
}

// noticeLog records the backend errors an orchestrator reports.
type noticeLog struct {
	mu      sync.Mutex
	notices []orchestrator.Notice
}

func (l *noticeLog) Observe(n orchestrator.Notice) {
	if n.Kind != orchestrator.NoticeBackendError {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notices = append(l.notices, n)
}

// count counts the errors about locks in ns that wrap target.
func (l *noticeLog) count(ns string, target error) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.notices {
		if e.Lock.Namespace == ns && errors.Is(e.Err, target) {
			n++
		}
	}
	return n
}

func (l *noticeLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.notices {
		out = append(out, e.Err.Error())
	}
	return out
}

// firstVersionWith returns the resourceVersion of the first version seen for which
// match is true, or 0.
func (h *requestHistory) firstVersionWith(match func(*lockingv1alpha1.LockRequest) bool) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.versions {
		if match(&h.versions[i]) {
			rv, err := strconv.ParseUint(h.versions[i].ResourceVersion, 10, 64)
			if err != nil {
				return 0
			}
			return rv
		}
	}
	return 0
}

// waitEvent waits for an event of the operator about the named object with the
// type and reason, whose note contains noteFragment.
func waitEvent(t *testing.T, ns, kind, name, eventType, reason, noteFragment string) {
	t.Helper()
	eventually(t, fmt.Sprintf("a %s event %s about %s %s with %q", eventType, reason, kind, name, noteFragment), func() error {
		var list eventsv1.EventList
		if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind != kind || e.Regarding.Name != name {
				continue
			}
			if e.Type == eventType && e.Reason == reason && strings.Contains(e.Note, noteFragment) {
				return nil
			}
			seen = append(seen, e.Type+"/"+e.Reason+": "+e.Note)
		}
		return fmt.Errorf("saw %q", seen)
	})
}
