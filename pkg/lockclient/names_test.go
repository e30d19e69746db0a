package lockclient_test

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

func TestRequestName(t *testing.T) {
	base := pullRequest("modules/vpc", 42, "alice")
	same := []lockclient.Request{
		base,
		func() lockclient.Request { r := base; r.User.Username = "bob"; return r }(),
		func() lockclient.Request { r := base; r.Project.Path = "./modules/vpc/"; return r }(),
		func() lockclient.Request { r := base; r.Workspace = "default"; return r }(),
		func() lockclient.Request {
			r := base
			r.Priority = lockingv1alpha1.PriorityHigh
			r.TTL = ptr.To(time.Hour)
			return r
		}(),
	}
	for i, r := range same {
		if got, want := lockclient.RequestName(r), lockclient.RequestName(base); got != want {
			t.Errorf("same owner and key #%d: name %q, want %q", i, got, want)
		}
	}
	long := strings.Repeat("x", 200)
	distinct := []lockclient.Request{
		base,
		pullRequest("modules/vpc", 43, "alice"),
		pullRequest("modules-vpc", 42, "alice"),
		pullRequest("modules/vpc/x", 42, "alice"),
		func() lockclient.Request { r := base; r.Workspace = "prod"; return r }(),
		func() lockclient.Request { r := base; r.Project.Name = "vpc"; return r }(),
		func() lockclient.Request { r := base; r.Pull = nil; return r }(),
		func() lockclient.Request { r := base; r.Pull = nil; r.User.Username = "Alice"; return r }(),
		func() lockclient.Request { r := base; r.Pull = nil; r.User.Username = "a.lice"; return r }(),
		func() lockclient.Request { r := base; r.Pull = nil; r.User.Username = "a-lice"; return r }(),
		func() lockclient.Request { r := base; r.Pull = nil; r.User.Username = "ÄÖÜ"; return r }(),
		func() lockclient.Request { r := base; r.Pull = nil; r.User.Username = long; return r }(),
		func() lockclient.Request { r := base; r.Project.Path = long + "/" + long; return r }(),
		func() lockclient.Request { r := base; r.Project.Repository = "g/sub/" + long; return r }(),
	}
	seen := map[string]int{}
	for i, r := range distinct {
		name := lockclient.RequestName(r)
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Errorf("#%d: name %q is not a valid object name: %v", i, name, errs)
		}
		if len(name) > 77 {
			t.Errorf("#%d: name %q has %d characters, want at most 77", i, name, len(name))
		}
		if j, ok := seen[name]; ok {
			t.Errorf("requests #%d and #%d (different owner or key) share the name %q", j, i, name)
		}
		seen[name] = i
	}
	if got := lockclient.RequestName(base); !strings.HasPrefix(got, "pr42-acme-infra-modules-vpc-default-") {
		t.Errorf("name %q is not readable: want the pull and the key in it", got)
	}
}

func TestRequestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*lockclient.Request)
		want string // "" = valid
	}{
		{"valid", func(*lockclient.Request) {}, ""},
		{"root path", func(r *lockclient.Request) { r.Project.Path = "" }, ""},
		{"no repository", func(r *lockclient.Request) { r.Project.Repository = "" }, "repository"},
		{"one-segment repository", func(r *lockclient.Request) { r.Project.Repository = "infra" }, `repository "infra"`},
		{"path leaves the repository", func(r *lockclient.Request) { r.Project.Path = "../x" }, `path "../x"`},
		{"absolute path", func(r *lockclient.Request) { r.Project.Path = "/etc" }, `path "/etc"`},
		{"slash in workspace", func(r *lockclient.Request) { r.Workspace = "a/b" }, `workspace "a/b"`},
		{"no username", func(r *lockclient.Request) { r.User.Username = "" }, "user.username"},
		{"pull zero", func(r *lockclient.Request) { r.Pull.Number = 0 }, "pull.number"},
		{"negative queue timeout", func(r *lockclient.Request) { r.QueueTimeout = ptr.To(-time.Second) }, "queueTimeout"},
		{"zero ttl", func(r *lockclient.Request) { r.TTL = ptr.To(time.Duration(0)) }, "ttl"},
		{"unknown priority", func(r *lockclient.Request) { r.Priority = "Urgent" }, `priority "Urgent"`},
		{"zero queue timeout is fail fast", func(r *lockclient.Request) { r.QueueTimeout = ptr.To(time.Duration(0)) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := pullRequest("modules/vpc", 1, "alice")
			tc.edit(&r)
			err := r.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	cond := func(status metav1.ConditionStatus, reason string) []metav1.Condition {
		var cs []metav1.Condition
		meta.SetStatusCondition(&cs, metav1.Condition{Type: lockingv1alpha1.ConditionAcquired, Status: status, Reason: reason, Message: "m"})
		return cs
	}
	for _, tc := range []struct {
		name       string
		conditions []metav1.Condition
		want       lockclient.State
		reason     string
	}{
		{"undecided", nil, lockclient.StatePending, lockingv1alpha1.ReasonPending},
		{"pending", cond(metav1.ConditionFalse, lockingv1alpha1.ReasonPending), lockclient.StatePending, lockingv1alpha1.ReasonPending},
		{"acquired", cond(metav1.ConditionTrue, lockingv1alpha1.ReasonAcquired), lockclient.StateAcquired, lockingv1alpha1.ReasonAcquired},
		{"queued", cond(metav1.ConditionFalse, lockingv1alpha1.ReasonQueued), lockclient.StateQueued, lockingv1alpha1.ReasonQueued},
		{"conflict", cond(metav1.ConditionFalse, lockingv1alpha1.ReasonConflict), lockclient.StateEnded, lockingv1alpha1.ReasonConflict},
		{"revoked", cond(metav1.ConditionFalse, lockingv1alpha1.ReasonRevoked), lockclient.StateEnded, lockingv1alpha1.ReasonRevoked},
		{"expired", cond(metav1.ConditionFalse, lockingv1alpha1.ReasonExpired), lockclient.StateEnded, lockingv1alpha1.ReasonExpired},
		{"queue timeout", cond(metav1.ConditionFalse, lockingv1alpha1.ReasonQueueTimeout), lockclient.StateEnded, lockingv1alpha1.ReasonQueueTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lr := &lockingv1alpha1.LockRequest{Status: lockingv1alpha1.LockRequestStatus{Conditions: tc.conditions, Position: 3}}
			st := lockclient.StatusOf(lr)
			if st.State != tc.want || st.Reason != tc.reason {
				t.Errorf("StatusOf = %s %s, want %s %s", st.State, st.Reason, tc.want, tc.reason)
			}
			if st.Position != 3 || st.Request != lr {
				t.Errorf("StatusOf did not carry the object and its position: %+v", st)
			}
		})
	}
}

func TestEndedErrorNamesRequestAndReason(t *testing.T) {
	lr := &lockingv1alpha1.LockRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "atlantis", Name: "pr1-x"}}
	err := &lockclient.EndedError{Status: &lockclient.Status{Request: lr, State: lockclient.StateEnded,
		Reason: lockingv1alpha1.ReasonQueueTimeout, Message: "waited longer than queueTimeout 10m0s"}}
	want := "LockRequest atlantis/pr1-x ended with reason QueueTimeout: waited longer than queueTimeout 10m0s"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}
