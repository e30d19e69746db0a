package atlantis_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/runatlantis/atlantis/server/events/models"
	"k8s.io/apimachinery/pkg/util/wait"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/atlantis"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// renewTTL is the ttl of the renewal test's holds: short, so that the test sees
// several renewals and an expiry, and long enough for a loaded machine's API server
// to observe a renewal well inside it.
const renewTTL = 3 * time.Second

// TestRenewHoldsKeepsAHoldWithATTLAlive: a lock taken with WithTTL lives on while
// RenewHolds runs, renewed again and again past several ttls, and expires, as the
// operator promises, once nothing renews it: the test would fail without renewal.
func TestRenewHoldsKeepsAHoldWithATTLAlive(t *testing.T) {
	t.Parallel()
	var renewErrs []error
	a := newAdapter(t, atlantis.WithTTL(renewTTL), atlantis.WithRenewErrors(func(err error) { renewErrs = append(renewErrs, err) }))
	p := models.NewProject("acme/infra", "modules/vpc", "")
	if acquired, _ := mustTryLock(t, a.locker, p, 1, alice); !acquired {
		t.Fatal("pull 1 did not take the free key")
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.locker.RenewHolds(ctx) }()

	// Renewed until the hold has outlived its ttl twice over.
	held := waitHold(t, a, func(st *lockclient.Status) (bool, error) {
		switch st.State {
		case lockclient.StatePending:
			// TryLock returned on the grant the Lease shows; the request's
			// status says so one write later.
			return false, nil
		case lockclient.StateAcquired:
		default:
			return false, fmt.Errorf("the hold ended while RenewHolds ran: %s %s", st.Reason, st.Message)
		}
		renewed := st.Request.Status.ObservedRenewTime
		return renewed != nil && renewed.Sub(st.Request.Status.AcquiredTime.Time) > 2*renewTTL, nil
	})
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("RenewHolds returned %v, want context.Canceled", err)
	}
	if len(renewErrs) > 0 {
		t.Errorf("renewals failed: %v", renewErrs)
	}

	// Nothing renews it now: it expires.
	waitHold(t, a, func(st *lockclient.Status) (bool, error) {
		if st.Request.UID != held.Request.UID {
			return false, fmt.Errorf("the request was replaced")
		}
		return st.State == lockclient.StateEnded && st.Reason == lockingv1alpha1.ReasonExpired, nil
	})
}

// waitHold polls the one LockRequest of the adapter's namespace until done says so.
func waitHold(t *testing.T, a adapter, done func(*lockclient.Status) (bool, error)) *lockclient.Status {
	t.Helper()
	var last *lockclient.Status
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, testTimeout, true, func(context.Context) (bool, error) {
		reqs := requests(t, a.ns)
		if len(reqs) != 1 {
			return false, fmt.Errorf("%d requests, want 1: %s", len(reqs), describeRequests(reqs))
		}
		for _, st := range reqs {
			last = st
		}
		return done(last)
	})
	if err != nil {
		t.Fatalf("waiting for the hold: %v (last %s %s)", err, last.State, last.Reason)
	}
	return last
}

// waitRenewed polls until the lock of project p in ns has been renewed once.
func waitRenewed(t *testing.T, ns string, p models.Project) {
	t.Helper()
	name := models.GenerateLockKey(p, "default")
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, testTimeout, true, func(context.Context) (bool, error) {
		for _, st := range requests(t, ns) {
			if st.Request.Status.LockKey == name && st.Request.Status.ObservedRenewTime != nil {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting for a renewal of %s: %v (requests: %s)", name, err, describeRequests(requests(t, ns)))
	}
}
