package operator

import (
	"maps"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/leasebackend"
)

// TestStripLockRequest: the cached LockRequest keeps everything the operator
// reads (the key, owner, policy, renewal, pull URL, status, finalizers, deletion)
// and loses only labels, annotations, managed fields, type meta, teams, author,
// head commit, the status fields every status write derives from the spec again
// (lockKey, lockName, owner), and a Queued condition that follows from the
// Acquired one (controller.DropDerivedRequestStatus).
func TestStripLockRequest(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	renew := metav1.NewMicroTime(now.Time)
	full := &lockingv1alpha1.LockRequest{
		TypeMeta: metav1.TypeMeta{APIVersion: lockingv1alpha1.GroupVersion.String(), Kind: "LockRequest"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "atlantis", Name: "pr42", UID: "u1", ResourceVersion: "7", Generation: 2,
			CreationTimestamp: now, DeletionTimestamp: &now, Finalizers: []string{lockingv1alpha1.ReleaseFinalizer},
			Labels:        map[string]string{lockingv1alpha1.LockNameLabel: "x"},
			Annotations:   map[string]string{"locking.runatlantis.io/atlantis-lock": "{}"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "atlantis"}},
		},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project:      lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "modules/vpc", Name: "vpc"},
			Workspace:    "default",
			Pull:         &lockingv1alpha1.PullRequestRef{Number: 42, URL: "https://x/pull/42", Author: "alice", HeadCommit: "3f2c1e9"},
			User:         lockingv1alpha1.UserRef{Username: "alice", Teams: []string{"platform"}},
			Priority:     lockingv1alpha1.PriorityHigh,
			QueueTimeout: &metav1.Duration{Duration: time.Minute},
			TTL:          &metav1.Duration{Duration: time.Hour},
			RenewTime:    &renew,
		},
		Status: lockingv1alpha1.LockRequestStatus{
			Conditions: []metav1.Condition{
				{Type: lockingv1alpha1.ConditionAcquired, Status: metav1.ConditionTrue, Reason: "Acquired", Message: lockingv1alpha1.MessageHolds, ObservedGeneration: 2, LastTransitionTime: now},
				{Type: lockingv1alpha1.ConditionQueued, Status: metav1.ConditionFalse, Reason: lockingv1alpha1.ReasonNotQueued, Message: lockingv1alpha1.MessageHolds, ObservedGeneration: 2, LastTransitionTime: now},
			},
			LockName: "x", LockKey: "acme/infra/modules/vpc/default/vpc", Owner: "acme/infra#42",
			FencingToken: "48213", AcquiredTime: &now, ObservedGeneration: 2,
		},
	}
	want := full.DeepCopy()
	want.TypeMeta = metav1.TypeMeta{}
	want.Labels, want.Annotations, want.ManagedFields = nil, nil, nil
	want.Status.LockName, want.Status.LockKey, want.Status.Owner = "", "", ""
	want.Status.Conditions = want.Status.Conditions[:1] // Queued follows from Acquired
	want.Spec.User.Teams = nil
	want.Spec.Pull.Author, want.Spec.Pull.HeadCommit = "", ""

	got, err := stripLockRequest(full.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stripLockRequest (-want +got):\n%s", diff)
	}
	manual := full.DeepCopy()
	manual.Spec.Pull = nil
	if _, err := stripLockRequest(manual); err != nil || manual.Spec.Pull != nil {
		t.Errorf("a manual lock: err %v, pull %+v", err, manual.Spec.Pull)
	}
	// The one annotation the operator reads stays, with its value, and nothing
	// else with it.
	for _, notice := range []string{lockingv1alpha1.GrantNoticeLease, lockingv1alpha1.GrantNoticeLeaseOnly} {
		noticed := full.DeepCopy()
		noticed.Annotations[lockingv1alpha1.GrantNoticeAnnotation] = notice
		got, err := stripLockRequest(noticed)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{lockingv1alpha1.GrantNoticeAnnotation: notice}
		if diff := cmp.Diff(want, got.(*lockingv1alpha1.LockRequest).Annotations); diff != "" {
			t.Errorf("the annotations of a request with grant notice %q (-want +got):\n%s", notice, diff)
		}
	}
	tombstone := toolscache.DeletedFinalStateUnknown{Key: "atlantis/pr42"}
	if got, err := stripLockRequest(tombstone); err != nil || got != tombstone {
		t.Errorf("a tombstone: %v, %v; want it unchanged", got, err)
	}
}

// TestStripProjectLock: the cached ProjectLock is its metadata alone (the
// reconciler watches it so), without labels, annotations, managed fields and type
// meta; its namespace and finalizer are shared copies.
func TestStripProjectLock(t *testing.T) {
	full := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: lockingv1alpha1.GroupVersion.String(), Kind: "ProjectLock"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "atlantis", Name: "x", UID: "u", ResourceVersion: "4", Generation: 1,
			Finalizers: []string{string([]byte(lockingv1alpha1.ReleaseFinalizer))},
			Labels:     map[string]string{"a": "b"}, Annotations: map[string]string{"c": "d"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
	}
	want := full.DeepCopy()
	want.TypeMeta = metav1.TypeMeta{}
	want.Labels, want.Annotations, want.ManagedFields = nil, nil, nil
	got, err := stripProjectLock(full.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stripProjectLock (-want +got):\n%s", diff)
	}
	other := full.DeepCopy()
	other.Finalizers = []string{string([]byte(lockingv1alpha1.ReleaseFinalizer))} // decoded apart
	again, _ := stripProjectLock(other)
	if a, b := got.(*metav1.PartialObjectMetadata).Finalizers[0], again.(*metav1.PartialObjectMetadata).Finalizers[0]; unsafe.StringData(a) != unsafe.StringData(b) {
		t.Errorf("two ProjectLocks' finalizers are not one copy")
	}
	tomb := toolscache.DeletedFinalStateUnknown{Key: "atlantis/x"}
	if got, err := stripProjectLock(tomb); err != nil || got != tomb {
		t.Errorf("a tombstone: got %v, %v", got, err)
	}
}

// TestStripLease: a cached lock Lease loses its labels only when they are exactly
// the operator's own (every write sets them again); a label someone else added
// keeps them all. Annotations (their names shared) and spec stay.
func TestStripLease(t *testing.T) {
	holder := "pr42/u1"
	own := func() *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: "atlantis", Name: "acme-infra-vpc-default-x", ResourceVersion: "9",
				Labels: map[string]string{lockingv1alpha1.LockNameLabel: "acme-infra-vpc-default-x",
					leasebackend.ManagedByLabel: leasebackend.ManagedByValue},
				Annotations:   map[string]string{lockingv1alpha1.OwnerAnnotation: "acme/infra#42"},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "atlantis-lock-operator"}},
			},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder},
		}
	}
	want := own()
	want.Labels, want.ManagedFields = nil, nil
	got, err := stripLease(own())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stripLease of the operator's own labels (-want +got):\n%s", diff)
	}

	for name, change := range map[string]func(*coordinationv1.Lease){
		"a label added":            func(l *coordinationv1.Lease) { l.Labels["team"] = "sre" },
		"the lock label elsewhere": func(l *coordinationv1.Lease) { l.Labels[lockingv1alpha1.LockNameLabel] = "other" },
		"another manager":          func(l *coordinationv1.Lease) { l.Labels[leasebackend.ManagedByLabel] = "helm" },
	} {
		in := own()
		change(in)
		wantLabels := maps.Clone(in.Labels)
		got, err := stripLease(in)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantLabels, got.(*coordinationv1.Lease).Labels); diff != "" {
			t.Errorf("%s: labels (-want +got):\n%s", name, diff)
		}
	}

	// Two Leases decoded apart share their annotations' names.
	names := func() string {
		in := own()
		in.Annotations = map[string]string{string([]byte(lockingv1alpha1.OwnerAnnotation)): "acme/infra#42"}
		got, err := stripLease(in)
		if err != nil {
			t.Fatal(err)
		}
		for k := range got.(*coordinationv1.Lease).Annotations {
			return k
		}
		return ""
	}
	if x, y := names(), names(); x != lockingv1alpha1.OwnerAnnotation || unsafe.StringData(x) != unsafe.StringData(y) {
		t.Errorf("annotation names %q and %q are not one copy", x, y)
	}

	tomb := toolscache.DeletedFinalStateUnknown{Key: "atlantis/x"}
	if got, err := stripLease(tomb); err != nil || got != tomb {
		t.Errorf("a tombstone: got %v, %v", got, err)
	}
}

// TestStripSharesRecurringStrings: objects decoded apart share one copy of the
// strings that recur (namespace, repository, workspace, priority, condition
// types, statuses, reasons and fixed messages), and a waiter's two conditions
// share their message; a message that names someone is not kept in the table.
func TestStripSharesRecurringStrings(t *testing.T) {
	decoded := func(s string) string { return string([]byte(s)) } // a fresh copy, as the decoder makes
	request := func(message string) *lockingv1alpha1.LockRequest {
		return &lockingv1alpha1.LockRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: decoded("atlantis"), Name: "r"},
			Spec: lockingv1alpha1.LockRequestSpec{Project: lockingv1alpha1.ProjectRef{Repository: decoded("acme/infra")},
				Workspace: decoded("default"), Priority: lockingv1alpha1.Priority(decoded("Normal"))},
			Status: lockingv1alpha1.LockRequestStatus{Conditions: []metav1.Condition{
				{Type: decoded("Acquired"), Status: metav1.ConditionStatus(decoded("False")), Reason: decoded("Queued"), Message: decoded(message)},
				// Its transition apart from the Acquired condition's: the cache keeps
				// it (see TestStripLockRequest for one it drops).
				{Type: decoded("Queued"), Status: metav1.ConditionStatus(decoded("True")), Reason: decoded("Queued"), Message: decoded(message),
					LastTransitionTime: metav1.NewTime(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))},
			}},
		}
	}
	strip := func(lr *lockingv1alpha1.LockRequest) *lockingv1alpha1.LockRequest {
		got, err := stripLockRequest(lr)
		if err != nil {
			t.Fatal(err)
		}
		return got.(*lockingv1alpha1.LockRequest)
	}
	a, b := strip(request("waiting for acme/infra#1; position 1")), strip(request(lockingv1alpha1.MessageNotWaiting))
	same := func(what, x, y string) {
		t.Helper()
		if x != y || unsafe.StringData(x) != unsafe.StringData(y) {
			t.Errorf("%s: %q and %q are not one copy", what, x, y)
		}
	}
	same("namespace", a.Namespace, b.Namespace)
	same("repository", a.Spec.Project.Repository, b.Spec.Project.Repository)
	same("workspace", a.Spec.Workspace, b.Spec.Workspace)
	same("priority", string(a.Spec.Priority), string(b.Spec.Priority))
	for i := range 2 {
		same("condition type", a.Status.Conditions[i].Type, b.Status.Conditions[i].Type)
		same("condition status", string(a.Status.Conditions[i].Status), string(b.Status.Conditions[i].Status))
		same("condition reason", a.Status.Conditions[i].Reason, b.Status.Conditions[i].Reason)
	}
	same("a waiter's two messages", a.Status.Conditions[0].Message, a.Status.Conditions[1].Message)
	same("a fixed message", b.Status.Conditions[0].Message, strip(request(lockingv1alpha1.MessageNotWaiting)).Status.Conditions[0].Message)
	c := strip(request("waiting for acme/infra#1; position 1"))
	if unsafe.StringData(a.Status.Conditions[0].Message) == unsafe.StringData(c.Status.Conditions[0].Message) {
		t.Errorf("a message naming an owner was kept in the intern table")
	}
}
