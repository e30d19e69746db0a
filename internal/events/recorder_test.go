package events_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/events"
	"github.com/runatlantis/atlantis-lock-operator/internal/scheme"
)

// TestDirectRecorderCreatesOneEventEach: every Eventf is one events.k8s.io Event,
// named after the object it is about, with a unique name, the reporting controller
// and instance, and the object's reference; an object without a kind, a create that
// fails, or an Event that finds the queue full is counted as failed.
func TestDirectRecorderCreatesOneEventEach(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme.New()).Build()
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	r := events.NewDirectRecorder(c, "atlantis-lock-operator", "pod-1", clocktesting.NewFakeClock(at), 10, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lr := &lockingv1alpha1.LockRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: lockingv1alpha1.GroupVersion.String(), Kind: "LockRequest"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "atlantis", Name: "pr-42", UID: "u-42"},
	}
	r.Eventf(lr, nil, "Normal", "Queued", "Enqueue", "waiting for %s at position %d", "acme/infra#41", 1)
	r.Eventf(lr, nil, "Normal", "Queued", "Enqueue", "again")
	r.Flush(ctx)

	var list eventsv1.EventList
	if err := c.List(context.Background(), &list, client.InNamespace("atlantis")); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 || list.Items[0].Name == list.Items[1].Name {
		t.Fatalf("%d Events, names %v; want 2 with different names", len(list.Items), names(list.Items))
	}
	ev := list.Items[0]
	if ev.Note != "waiting for acme/infra#41 at position 1" {
		ev = list.Items[1]
	}
	if !strings.HasPrefix(ev.Name, "pr-42.") || ev.Note != "waiting for acme/infra#41 at position 1" ||
		ev.Reason != "Queued" || ev.Action != "Enqueue" || ev.Type != "Normal" ||
		ev.ReportingController != "atlantis-lock-operator" || ev.ReportingInstance != "pod-1" ||
		!ev.EventTime.Time.Equal(at) || ev.Regarding.Kind != "LockRequest" || ev.Regarding.UID != "u-42" ||
		ev.Regarding.APIVersion != lockingv1alpha1.GroupVersion.String() {
		t.Errorf("the Event: %+v", ev)
	}
	if r.Failed() != 0 {
		t.Errorf("failed %d, want 0", r.Failed())
	}

	r.Eventf(&lockingv1alpha1.LockRequest{ObjectMeta: metav1.ObjectMeta{Name: "no-kind"}}, nil, "Normal", "Queued", "Enqueue", "x")
	r.Flush(ctx)
	failing := fake.NewClientBuilder().WithScheme(scheme.New()).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
			return errors.New("the API server is down")
		},
	}).Build()
	down := events.NewDirectRecorder(failing, "atlantis-lock-operator", "pod-1", clocktesting.NewFakeClock(at), 1, time.Second)
	down.Eventf(lr, nil, "Normal", "Queued", "Enqueue", "x")
	down.Eventf(lr, nil, "Normal", "Queued", "Enqueue", "the queue is full")
	down.Flush(ctx)
	if r.Failed() != 1 || down.Failed() != 2 {
		t.Errorf("failed: %d without a kind, %d on a failing create and a full queue; want 1 and 2", r.Failed(), down.Failed())
	}
}

func names(items []eventsv1.Event) []string {
	var n []string
	for _, e := range items {
		n = append(n, e.Name)
	}
	return n
}
