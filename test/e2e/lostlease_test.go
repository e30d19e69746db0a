//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/lockcheck"
)

const (
	// leaseDeletions is how many Leases of held keys the lost-Lease step deletes.
	leaseDeletions = 12
	// deletionPause is the pause between two of them: the fault's cadence.
	deletionPause = 300 * time.Millisecond
	// holdFor is how long the holders of the lost-Lease steps keep a lock, so that
	// a deletion finds keys held.
	holdFor = 150 * time.Millisecond
)

// holdingTraffic is lock traffic whose clients hold each lock for holdFor while
// they follow it with lockclient.NotifyLost, then release exactly the object they
// held (lockclient.Release). Exclusion is checked by a lockcheck.VersionLog of the
// namespace: by resourceVersion, so that a hold the operator ended counts as ended
// when the operator wrote it, not when its client heard of it.
type holdingTraffic struct {
	ns       string
	versions *lockcheck.VersionLog
	// grants counts holds; lost those the clients were told they lost, and
	// lostReasons their reasons and messages.
	grants, lost atomic.Int64
	mu           sync.Mutex
	lostReasons  map[string]int
	errs         []error
	// tolerate, when set, makes a client end quietly on an error it returns true
	// for (the namespace being deleted).
	tolerate func(error) bool

	cancel context.CancelFunc
	stopCh chan struct{}
	done   chan struct{}
}

// startHoldingTraffic creates namespace ns, starts its VersionLog and faultClients
// clients over faultKeys keys.
func (f *faultSuite) startHoldingTraffic(t *testing.T, ns string, tolerate func(error) bool) *holdingTraffic {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), trafficTimeout)
	f.createNamespace(ctx, t, ns)
	versions, err := lockcheck.FollowVersions(ctx, f.admin, ns)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	tr := &holdingTraffic{ns: ns, versions: versions, lostReasons: map[string]int{}, tolerate: tolerate,
		cancel: cancel, stopCh: make(chan struct{}), done: make(chan struct{})}
	lc := lockclient.New(f.admin, ns, lockclient.WithFieldManager("e2e-atlantis"))
	var wg sync.WaitGroup
	for n := range faultClients {
		wg.Go(func() {
			if err := tr.client(ctx, lc, n); err != nil {
				tr.mu.Lock()
				tr.errs = append(tr.errs, err)
				tr.mu.Unlock()
			}
		})
	}
	go func() { wg.Wait(); close(tr.done) }()
	t.Cleanup(func() { tr.stop(); cancel(); <-tr.done; versions.Stop() })
	return tr
}

// client is client n: lock a key, hold it for holdFor or until it is lost, release
// it; next key; until stop.
func (tr *holdingTraffic) client(ctx context.Context, lc *lockclient.Client, n int) error {
	retry := func(ctx context.Context, call func() error) error { return retryTransient(ctx, call, nil) }
	for i := 0; ; i++ {
		select {
		case <-tr.stopCh:
			return nil
		default:
		}
		r := lockclient.Request{
			Project: lockingv1alpha1.ProjectRef{Repository: "acme/faults", Path: fmt.Sprintf("modules/k%d", (n+i)%faultKeys)},
			User:    lockingv1alpha1.UserRef{Username: fmt.Sprintf("atlantis-%02d", n)},
		}
		var st *lockclient.Status
		if err := retry(ctx, func() (err error) { st, err = lc.Lock(ctx, r); return err }); err != nil {
			if tr.tolerate != nil && tr.tolerate(err) {
				return nil
			}
			return fmt.Errorf("client %d, cycle %d: locking %s: %w", n, i, r.Key(), err)
		}
		tr.grants.Add(1)
		hctx, stopWatch := context.WithCancel(ctx)
		lost := lc.NotifyLost(hctx, st)
		timer := time.NewTimer(holdFor) // how long the work under the lock takes
		select {
		case ended := <-lost:
			if ended != nil {
				tr.lost.Add(1)
				tr.mu.Lock()
				tr.lostReasons[ended.Reason+": "+leaseNamed(ended.Message)]++
				tr.mu.Unlock()
			}
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		stopWatch()
		if err := retry(ctx, func() error { return lc.Release(ctx, st) }); err != nil {
			if tr.tolerate != nil && tr.tolerate(err) {
				return nil
			}
			return fmt.Errorf("client %d, cycle %d: releasing %s: %w", n, i, r.Key(), err)
		}
	}
}

// leaseNamed shortens a lost hold's message for counting: whether it names the Lease.
func leaseNamed(msg string) string {
	if strings.Contains(msg, "its Lease ") {
		return "names its Lease"
	}
	return msg
}

func (tr *holdingTraffic) stop() {
	select {
	case <-tr.stopCh:
	default:
		close(tr.stopCh)
	}
}

// finish stops the clients and the log and checks the log: no two owners held a
// key at once, and no client failed.
func (tr *holdingTraffic) finish(t *testing.T) lockcheck.Result {
	t.Helper()
	tr.stop()
	<-tr.done
	tr.versions.Stop()
	tr.cancel()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if err := errors.Join(tr.errs...); err != nil {
		t.Errorf("clients failed: %v", err)
	}
	res := tr.versions.Check()
	for _, v := range res.Violations {
		t.Error(v)
	}
	return res
}

// testLostLeases deletes, under traffic, the Lease of a held key again and again,
// as `kubectl delete lease` would: each holder that loses its Lease must end
// Revoked before anyone else is granted the key, and learn it through
// lockclient.NotifyLost. No two owners may hold a key at once by the API server's
// own order of writes, and nothing may be left behind.
func (f *faultSuite) testLostLeases(t *testing.T) {
	ctx := t.Context()
	tr := f.startHoldingTraffic(t, "fault-lost-leases", nil)
	eventually(ctx, t, "the first grants", func(context.Context) (bool, error) { return tr.grants.Load() >= grantsBefore, nil })

	deleted := 0
	for deleted < leaseDeletions {
		ok, err := f.deleteAHeldLease(ctx, tr.ns)
		must(t, "deleting a held key's Lease", err)
		if ok {
			deleted++
		}
		pause := time.NewTimer(deletionPause) // the fault's cadence, not a wait for state
		select {
		case <-ctx.Done():
		case <-pause.C:
		}
		pause.Stop()
	}
	grantsAtEnd := tr.grants.Load()
	eventually(ctx, t, "grants after the last deletion", func(context.Context) (bool, error) {
		return tr.grants.Load() >= grantsAtEnd+grantsAfter, nil
	})
	res := tr.finish(t)
	tr.mu.Lock()
	reasons := fmt.Sprint(tr.lostReasons)
	tr.mu.Unlock()
	if tr.lost.Load() == 0 {
		t.Errorf("%d Leases of held keys deleted, but no holder was told it lost its lock", deleted)
	}
	for reason := range tr.lostReasons {
		if reason != lockingv1alpha1.ReasonRevoked+": names its Lease" {
			t.Errorf("a holder lost its lock with %q; want Revoked, naming its Lease", reason)
		}
	}
	t.Logf("FAULT lost Leases: %d Leases of held keys deleted; %d grants (%d holds checked by resourceVersion, %d successions), "+
		"%d holders told they lost their lock %s; violations %d",
		deleted, tr.grants.Load(), res.Grants, res.Successions, tr.lost.Load(), reasons, len(res.Violations))
	f.checkNothingLeft(ctx, t, tr.ns)
}

// deleteAHeldLease deletes the Lease of one held key of ns, chosen at random, with a
// resourceVersion precondition (exactly the version that names a holder), and
// reports whether it deleted one.
func (f *faultSuite) deleteAHeldLease(ctx context.Context, ns string) (bool, error) {
	var leases coordinationv1.LeaseList
	if err := f.admin.List(ctx, &leases, client.InNamespace(ns), client.HasLabels{lockingv1alpha1.LockNameLabel}); err != nil {
		return false, err
	}
	var held []coordinationv1.Lease
	for _, l := range leases.Items {
		if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
			held = append(held, l)
		}
	}
	if len(held) == 0 {
		return false, nil
	}
	l := held[rand.IntN(len(held))]
	err := f.admin.Delete(ctx, &l, client.Preconditions{UID: &l.UID, ResourceVersion: &l.ResourceVersion})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return false, nil // it changed hands since the list: pick again
	}
	return err == nil, err
}

// testNamespaceDeleted deletes a namespace with lock traffic in it: its Leases,
// ProjectLocks and LockRequests go in whatever order the namespace controller takes
// them. No two owners may hold a key at once on the way, and the namespace must go
// completely (the operator lets every finalizer go).
func (f *faultSuite) testNamespaceDeleted(t *testing.T) {
	ctx := t.Context()
	var deleting atomic.Bool
	// Once the namespace is going, a client's calls fail: its request deleted
	// under it, creates forbidden in a terminating namespace.
	tolerate := func(error) bool { return deleting.Load() }
	tr := f.startHoldingTraffic(t, "fault-namespace-deleted", tolerate)
	eventually(ctx, t, "the first grants", func(context.Context) (bool, error) { return tr.grants.Load() >= grantsBefore, nil })

	deleting.Store(true)
	start := time.Now()
	must(t, "deleting the namespace", f.cs.CoreV1().Namespaces().Delete(ctx, tr.ns, metav1.DeleteOptions{}))
	eventually(ctx, t, "namespace "+tr.ns+" is gone", func(ctx context.Context) (bool, error) {
		_, err := f.cs.CoreV1().Namespaces().Get(ctx, tr.ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	gone := since(start)
	res := tr.finish(t)
	t.Logf("FAULT namespace deleted under traffic: gone %s after the delete; %d grants (%d holds checked by resourceVersion, %d successions), %d holders told they lost their lock; violations %d",
		gone, tr.grants.Load(), res.Grants, res.Successions, tr.lost.Load(), len(res.Violations))
}
