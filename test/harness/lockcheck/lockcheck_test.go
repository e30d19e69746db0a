package lockcheck

import (
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

var t0 = time.Unix(1000, 0)

// at returns t0 plus s seconds.
func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name            string
		holds           []Hold
		wantSuccessions int
		wantViolations  []string // a substring of each violation, in order
	}{{
		name: "exclusive, growing tokens, added out of order",
		holds: []Hold{
			{Key: "k1", Holder: "b", Token: "20", Acquired: at(3), Released: at(4)},
			{Key: "k1", Holder: "a", Token: "10", Acquired: at(1), Released: at(2)},
			{Key: "k2", Holder: "c", Token: "15", Acquired: at(1), Released: at(9)},
		},
		wantSuccessions: 1,
	}, {
		name: "overlap",
		holds: []Hold{
			{Key: "k1", Holder: "a", Token: "10", Acquired: at(1), Released: at(5)},
			{Key: "k1", Holder: "b", Token: "20", Acquired: at(3), Released: at(6)},
		},
		wantSuccessions: 1,
		wantViolations:  []string{"key k1: b was observed holding it 2s before a released it"},
	}, {
		// c overlaps a, which is still held although b came and went in between.
		name: "overlap with an earlier holder than the previous one",
		holds: []Hold{
			{Key: "k1", Holder: "a", Token: "10", Acquired: at(1), Released: at(9)},
			{Key: "k1", Holder: "b", Token: "20", Acquired: at(2), Released: at(3)},
			{Key: "k1", Holder: "c", Token: "30", Acquired: at(4), Released: at(5)},
		},
		wantSuccessions: 2,
		wantViolations:  []string{"b was observed holding it 7s before a released it", "c was observed holding it 5s before a released it"},
	}, {
		name: "granted at the very moment of the release",
		holds: []Hold{
			{Key: "k1", Holder: "a", Token: "10", Acquired: at(1), Released: at(2)},
			{Key: "k1", Holder: "b", Token: "20", Acquired: at(2), Released: at(3)},
		},
		wantSuccessions: 1,
		wantViolations:  []string{"b was observed holding it 0s before a released it"},
	}, {
		name: "stale token",
		holds: []Hold{
			{Key: "k1", Holder: "a", Token: "30", Acquired: at(1), Released: at(2)},
			{Key: "k1", Holder: "b", Token: "20", Acquired: at(3), Released: at(4)},
		},
		wantSuccessions: 1,
		wantViolations:  []string{"fencing token 20 of b does not exceed 30 of the previous holder a"},
	}, {
		name: "repeated token",
		holds: []Hold{
			{Key: "k1", Holder: "a", Token: "30", Acquired: at(1), Released: at(2)},
			{Key: "k1", Holder: "b", Token: "30", Acquired: at(3), Released: at(4)},
		},
		wantSuccessions: 1,
		wantViolations:  []string{"fencing token 30 of b does not exceed 30"},
	}, {
		name: "token not an integer",
		holds: []Hold{
			{Key: "k1", Holder: "a", Token: "", Acquired: at(1), Released: at(2)},
			{Key: "k1", Holder: "b", Token: "30", Acquired: at(3), Released: at(4)},
		},
		wantSuccessions: 1,
		wantViolations:  []string{`fencing tokens "" (a) and "30" (b) are not integers`},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			res := Check(tc.holds)
			if res.Grants != len(tc.holds) || res.Successions != tc.wantSuccessions {
				t.Errorf("Check = %+v, want %d grants and %d successions", res, len(tc.holds), tc.wantSuccessions)
			}
			if len(res.Violations) != len(tc.wantViolations) {
				t.Fatalf("violations %q, want %d like %q", res.Violations, len(tc.wantViolations), tc.wantViolations)
			}
			for i, want := range tc.wantViolations {
				if !strings.Contains(res.Violations[i], want) {
					t.Errorf("violation %d = %q, want it to contain %q", i, res.Violations[i], want)
				}
			}
		})
	}
}

func TestCheckOfNothing(t *testing.T) {
	res := Check(nil)
	if res.Grants != 0 || res.Successions != 0 || res.Violations == nil || len(res.Violations) != 0 {
		t.Errorf("Check(nil) = %#v, want no grants and an empty (not nil, for JSON) list of violations", res)
	}
}

func TestHistoryFromConcurrentClients(t *testing.T) {
	var h History
	var wg sync.WaitGroup
	for c := range 10 {
		wg.Go(func() {
			for i := range 10 {
				h.Add(Hold{Key: "k", Holder: "x", Token: "1", Acquired: at(100*c + 2*i), Released: at(100*c + 2*i + 1)})
			}
		})
	}
	wg.Wait()
	if n := h.Add(Hold{Key: "other", Token: "1"}); n != 101 {
		t.Errorf("Add returned %d after 101 holds", n)
	}
	holds := h.Holds()
	if len(holds) != 101 {
		t.Fatalf("Holds() has %d holds, want 101", len(holds))
	}
	holds[0].Key = "changed"
	if h.Holds()[0].Key == "changed" {
		t.Error("Holds() returned the history's own slice")
	}
	// Exclusive in time, but every grant of k carries token 1: 99 violations.
	if res := h.Check(); res.Grants != 101 || len(res.Violations) != 99 {
		t.Errorf("Check() = %d grants, %d violations; want 101 and 99", res.Grants, len(res.Violations))
	}
}

func TestLeaseHeldBy(t *testing.T) {
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Namespace: "ns", Name: "lock-1",
		Annotations: map[string]string{lockingv1alpha1.OwnerAnnotation: "alice"},
	}}
	// The fake client gives objects it is built with resourceVersion 999.
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(lease).Build()
	request := func(user, token string) *lockingv1alpha1.LockRequest {
		return &lockingv1alpha1.LockRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "r"},
			Spec:       lockingv1alpha1.LockRequestSpec{User: lockingv1alpha1.UserRef{Username: user}},
			Status:     lockingv1alpha1.LockRequestStatus{LockName: "lock-1", FencingToken: token},
		}
	}
	for _, tc := range []struct {
		name    string
		lr      *lockingv1alpha1.LockRequest
		wantErr string
	}{
		{"holder", request("alice", "998"), ""},
		{"token of the Lease's current version", request("alice", "999"), ""},
		{"another owner", request("bob", "998"), `Lease lock-1 names owner "alice"`},
		{"token newer than the Lease", request("alice", "1000"), "fencing token 1000 is newer than Lease lock-1's resourceVersion 999"},
		{"token not an integer", request("alice", "x"), `fencing token "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := LeaseHeldBy(t.Context(), c, tc.lr)
			if tc.wantErr == "" && err != nil {
				t.Errorf("LeaseHeldBy: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("LeaseHeldBy: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	lr := request("alice", "1")
	lr.Status.LockName = "missing"
	if err := LeaseHeldBy(t.Context(), c, lr); !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "ns/r") {
		t.Errorf("LeaseHeldBy without a Lease: %v, want NotFound naming the request", err)
	}
}
