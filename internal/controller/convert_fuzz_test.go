package controller

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/indexes"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// fuzzLockRequest builds a LockRequest from fuzz values: any strings in the spec, a
// pull or none, any durations (negative ones too), and a status with an Acquired
// condition of any status and reason. The API server refuses much of this; the
// conversion must still cope, since the cache hands the operator whatever is stored
// (written by an older version, or with validation loosened).
func fuzzLockRequest(repo, path, ws, project, user, priority string, pull int32, queueTimeout, ttl int64,
	cond uint8, reason, message, token string, position int32, deleting bool) *lockingv1alpha1.LockRequest {
	lr := &lockingv1alpha1.LockRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "lr", UID: "uid", Generation: int64(position)},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project:   lockingv1alpha1.ProjectRef{Repository: repo, Path: path, Name: project},
			Workspace: ws,
			User:      lockingv1alpha1.UserRef{Username: user},
			Priority:  lockingv1alpha1.Priority(priority),
		},
		Status: lockingv1alpha1.LockRequestStatus{Position: position, FencingToken: token, ObservedGeneration: int64(cond)},
	}
	if pull != 0 {
		lr.Spec.Pull = &lockingv1alpha1.PullRequestRef{Number: pull, URL: message}
	}
	if queueTimeout != 0 {
		lr.Spec.QueueTimeout = &metav1.Duration{Duration: time.Duration(queueTimeout)}
	}
	if ttl != 0 {
		lr.Spec.TTL = &metav1.Duration{Duration: time.Duration(ttl)}
		renew := metav1.NewMicroTime(time.Unix(0, ttl))
		lr.Spec.RenewTime = &renew
	}
	if deleting {
		now := metav1.NewTime(time.Unix(1700000000, 0))
		lr.DeletionTimestamp = &now
	}
	if cond%4 != 0 {
		status := []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown}[cond%4-1]
		lr.Status.Conditions = []metav1.Condition{{Type: lockingv1alpha1.ConditionAcquired, Status: status, Reason: reason, Message: message}}
		enq := metav1.NewMicroTime(time.Unix(1700000000, int64(position)))
		lr.Status.EnqueuedTime = &enq
		if cond&4 != 0 {
			lr.Status.BlockedBy = &lockingv1alpha1.BlockedBy{Request: reason, Owner: user, Pull: pull, User: user}
		}
		if cond&8 != 0 {
			acq := metav1.NewTime(time.Unix(1700000001, 0))
			lr.Status.AcquiredTime = &acq
		}
	}
	return lr
}

// FuzzToRequest checks the operator's own reading of LockRequests, the step between
// the API objects and the orchestrator's decisions: for any spec and status, the
// lock name the watch maps it to, toRequest and stateOf never panic and read what the
// object says (owner, priority rank, durations with the operator's defaults, the
// phase from the Acquired condition); and writing a decided state back with
// applyState and reading it again gives the same decision, with conditions and
// messages the API accepts.
func FuzzToRequest(f *testing.F) {
	f.Add("acme/infra", "modules/vpc", "default", "vpc", "alice", "Normal", int32(42), int64(time.Minute), int64(0),
		uint8(1), lockingv1alpha1.ReasonAcquired, "the lock is held", "48213", int32(0), false)
	f.Add("acme/infra", ".", "default", "", "bob", "Critical", int32(0), int64(-1), int64(time.Hour),
		uint8(2|4), lockingv1alpha1.ReasonQueued, "waiting for acme/infra#42; position 1", "", int32(1), false)
	f.Add("a/b", "..", "", "", "", "", int32(-5), int64(-time.Hour), int64(-time.Second),
		uint8(2|8), lockingv1alpha1.ReasonExpired, strings.Repeat("é", 700), "x", int32(-3), true)
	f.Add("", "", "", "", "\xff\xfe", "Urgent", int32(1<<31-1), int64(1<<63-1), int64(-1<<63),
		uint8(3), "", "\x80", "", int32(1<<31-1), false)
	f.Add("acme/infr\u0430", "modules/../../etc", "de\u200bfault", "VPC", "аlice", "low", int32(7), int64(0), int64(1),
		uint8(2), "SomethingNew", "", "", int32(0), false)

	cfg := orchestrator.DefaultConfig()
	cfg.DefaultQueueTimeout, cfg.DefaultTTL = 10*time.Minute, 6*time.Hour
	now := time.Unix(1700000100, 123456789)
	f.Fuzz(func(t *testing.T, repo, path, ws, project, user, priority string, pull int32, queueTimeout, ttl int64,
		cond uint8, reason, message, token string, position int32, deleting bool) {
		lr := fuzzLockRequest(repo, path, ws, project, user, priority, pull, queueTimeout, ttl, cond, reason, message, token, position, deleting)

		name := indexes.LockName(lr)
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Fatalf("lock name %q of key %q is no DNS-1123 label: %v", name, lr.Spec.Key(), errs)
		}
		r := toRequest(lr, cfg)
		checkRequest(t, lr, r, cfg)

		// Write the state back as a decision, read it again: the same decision.
		ref := orchestrator.LockRef{Namespace: lr.Namespace, Name: name, Key: lr.Spec.Key()}
		want := r.State
		if want.Phase == orchestrator.PhaseAcquired {
			want.ExpiresAt = want.AcquiredAt.Add(time.Hour)
		}
		written := lr.DeepCopy()
		applyState(written, ref, want, now)
		checkStatus(t, written, utf8.ValidString(message))
		got := stateOf(&written.Status)
		if got.Phase != want.Phase || got.Position != want.Position || got.FencingToken != want.FencingToken ||
			!got.EnqueuedAt.Equal(want.EnqueuedAt) || !got.AcquiredAt.Equal(want.AcquiredAt) {
			t.Fatalf("state %+v written and read back as %+v", want, got)
		}
		if (got.BlockedBy == nil) != (want.BlockedBy == nil) || (got.BlockedBy != nil && *got.BlockedBy != *want.BlockedBy) {
			t.Fatalf("blockedBy %+v written and read back as %+v", want.BlockedBy, got.BlockedBy)
		}
		if got.ExpiresAt.Before(want.ExpiresAt) {
			t.Fatalf("expiry %s written as the earlier %s: a hold would end before its time", want.ExpiresAt, got.ExpiresAt)
		}
	})
}

// checkRequest checks what toRequest read from lr.
func checkRequest(t *testing.T, lr *lockingv1alpha1.LockRequest, r *orchestrator.Request, cfg orchestrator.Config) {
	t.Helper()
	if r.ID != lr.Name || r.UID != string(lr.UID) || r.Owner != lr.Spec.Owner() || r.User != lr.Spec.User.Username {
		t.Fatalf("toRequest read id %q uid %q owner %q user %q from %s/%s of owner %q", r.ID, r.UID, r.Owner, r.User, lr.Name, lr.UID, lr.Spec.Owner())
	}
	if r.Priority != lr.Spec.Priority.Rank() || r.Priority < 0 || r.Priority > 3 {
		t.Fatalf("priority %q read as rank %d", lr.Spec.Priority, r.Priority)
	}
	wantQT, wantTTL := cfg.DefaultQueueTimeout, cfg.DefaultTTL
	if lr.Spec.QueueTimeout != nil {
		wantQT = lr.Spec.QueueTimeout.Duration
	}
	if lr.Spec.TTL != nil {
		wantTTL = lr.Spec.TTL.Duration
	}
	if r.QueueTimeout != wantQT || r.TTL != wantTTL {
		t.Fatalf("queueTimeout %v / ttl %v read as %s / %s, want %s / %s", lr.Spec.QueueTimeout, lr.Spec.TTL, r.QueueTimeout, r.TTL, wantQT, wantTTL)
	}
	if r.Deleting != (lr.DeletionTimestamp != nil) {
		t.Fatalf("deleting %t for deletionTimestamp %v", r.Deleting, lr.DeletionTimestamp)
	}
	c := meta.FindStatusCondition(lr.Status.Conditions, lockingv1alpha1.ConditionAcquired)
	want := orchestrator.PhaseNew
	switch {
	case c == nil:
	case c.Status == metav1.ConditionTrue:
		want = orchestrator.PhaseAcquired
	case lockingv1alpha1.IsTerminalReason(c.Reason):
		want = orchestrator.PhaseTerminal
	case c.Reason == lockingv1alpha1.ReasonQueued:
		want = orchestrator.PhaseQueued
	}
	if r.State.Phase != want {
		t.Fatalf("condition %+v read as phase %s, want %s", c, r.State.Phase, want)
	}
}

// checkStatus checks that a status applyState wrote keeps the API's limits: both
// owned conditions present, stamped with the generation, with messages within the
// length the operator promises, and valid UTF-8 when what they came from was.
func checkStatus(t *testing.T, lr *lockingv1alpha1.LockRequest, validUTF8 bool) {
	t.Helper()
	for _, typ := range []string{lockingv1alpha1.ConditionAcquired, lockingv1alpha1.ConditionQueued} {
		c := meta.FindStatusCondition(lr.Status.Conditions, typ)
		if c == nil {
			t.Fatalf("condition %s missing from %+v", typ, lr.Status.Conditions)
		}
		if c.ObservedGeneration != lr.Generation {
			t.Fatalf("condition %s observedGeneration %d, generation %d", typ, c.ObservedGeneration, lr.Generation)
		}
		if len(c.Message) > maxMessage+len("ended: ") {
			t.Fatalf("condition %s message of %d bytes", typ, len(c.Message))
		}
		if validUTF8 && !utf8.ValidString(c.Message) {
			t.Fatalf("condition %s message %q is not valid UTF-8", typ, c.Message)
		}
	}
	if lr.Status.ObservedGeneration != lr.Generation {
		t.Fatalf("status observedGeneration %d, generation %d", lr.Status.ObservedGeneration, lr.Generation)
	}
}
