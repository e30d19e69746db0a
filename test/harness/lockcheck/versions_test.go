package lockcheck

import (
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

// version is one version of a request, as a watch brings it.
type version struct {
	name, state string // state: "Acquired", "Queued", a terminal reason, or "deleting"
	rv, token   uint64
	deleted     bool
}

func (v version) obj() *lockingv1alpha1.LockRequest {
	lr := &lockingv1alpha1.LockRequest{ObjectMeta: metav1.ObjectMeta{Name: v.name, UID: types.UID("uid-" + v.name),
		ResourceVersion: strconv.FormatUint(v.rv, 10)}}
	lr.Spec.Project.Repository = "acme/infra"
	lr.Spec.Pull = &lockingv1alpha1.PullRequestRef{Number: int32(v.name[len(v.name)-1] - '0')}
	lr.Status.LockName = "lock"
	if v.token > 0 {
		lr.Status.FencingToken = strconv.FormatUint(v.token, 10)
	}
	state := v.state
	if state == "deleting" {
		now := metav1.Now()
		lr.DeletionTimestamp = &now
		state = lockingv1alpha1.ReasonAcquired
	}
	status := metav1.ConditionFalse
	if state == lockingv1alpha1.ReasonAcquired {
		status = metav1.ConditionTrue
	}
	lr.Status.Conditions = []metav1.Condition{{Type: lockingv1alpha1.ConditionAcquired, Status: status, Reason: state}}
	return lr
}

func logOf(versions ...version) *VersionLog {
	l := &VersionLog{open: map[types.UID]*VersionHold{}}
	for _, v := range versions {
		l.observe(v.obj(), v.deleted)
	}
	return l
}

func TestVersionLogCheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		versions []version
		want     string // a fragment of the one violation, "" for none
	}{{
		name: "a release, then the next grant",
		versions: []version{
			{name: "a1", state: "Acquired", rv: 11, token: 10},
			{name: "a1", state: "deleting", rv: 12, token: 10},
			{name: "b2", state: "Acquired", rv: 14, token: 13},
			{name: "a1", rv: 15, deleted: true},
		},
	}, {
		name: "a revoked hold, then the next grant",
		versions: []version{
			{name: "a1", state: "Acquired", rv: 11, token: 10},
			{name: "a1", state: lockingv1alpha1.ReasonRevoked, rv: 12, token: 10},
			{name: "b2", state: "Acquired", rv: 14, token: 13},
		},
	}, {
		name: "the lost Lease of issue 15: the waiter granted, the holder queued after it",
		versions: []version{
			{name: "a1", state: "Acquired", rv: 11, token: 10},
			{name: "b2", state: "Acquired", rv: 14, token: 13},
			{name: "a1", state: lockingv1alpha1.ReasonQueued, rv: 15},
		},
		want: "before the hold of a1 (acme/infra#1, token 10) ended at 15 (Queued)",
	}, {
		name: "a grant while another owner still holds",
		versions: []version{
			{name: "a1", state: "Acquired", rv: 11, token: 10},
			{name: "b2", state: "Acquired", rv: 14, token: 13},
		},
		want: "still held",
	}, {
		name: "one owner's holds may overlap",
		versions: []version{
			{name: "a1", state: "Acquired", rv: 11, token: 10},
			{name: "b1", state: "Acquired", rv: 14, token: 13},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			res := logOf(tc.versions...).Check()
			switch {
			case tc.want == "" && len(res.Violations) > 0:
				t.Errorf("violations %q, want none", res.Violations)
			case tc.want != "" && (len(res.Violations) != 1 || !strings.Contains(res.Violations[0], tc.want)):
				t.Errorf("violations %q, want one with %q", res.Violations, tc.want)
			}
		})
	}
}
