package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/events"
	"github.com/runatlantis/atlantis-lock-operator/internal/operator"
)

// TestEventsTellTheStory runs a queue, a hand-off and a deadlock, and finds the
// Kubernetes Events a person reads in `kubectl describe`.
func TestEventsTellTheStory(t *testing.T) {
	ns := newNamespace(t, "events")
	w := watchRequests(t, ns)
	ctx := deadline(t, time.Minute)
	cfg := config.Default()
	cfg.DeadlockCheckInterval = 100 * time.Millisecond
	op := startOperator(t, cfg).op

	mustCreate := func(name, path string, pull int32) {
		t.Helper()
		if err := env.Client.Create(ctx, lockRequest(ns, name, path, pull, "someone")); err != nil {
			t.Fatal(err)
		}
	}
	mustReach := func(name, reasonWanted string) *lockingv1alpha1.LockRequest {
		t.Helper()
		lr, err := w.waitFor(ctx, name, func(lr *lockingv1alpha1.LockRequest) bool { return reason(lr) == reasonWanted })
		if err != nil {
			t.Fatal(err)
		}
		return lr
	}

	// Pull 1 holds k1 and pull 2 holds k2; each then asks for the other's key.
	mustCreate("p1-k1", "k1", 1)
	mustReach("p1-k1", lockingv1alpha1.ReasonAcquired)
	mustCreate("p2-k2", "k2", 2)
	mustReach("p2-k2", lockingv1alpha1.ReasonAcquired)
	mustCreate("p1-k2", "k2", 1)
	mustReach("p1-k2", lockingv1alpha1.ReasonQueued)
	mustCreate("p2-k1", "k1", 2)
	victim := mustReach("p2-k1", lockingv1alpha1.ReasonDeadlockVictim) // the younger waiter
	if r := reason(w.get("p1-k2")); r != lockingv1alpha1.ReasonQueued {
		t.Errorf("p1-k2 is %s, want still Queued: one victim breaks the cycle", r)
	}
	// A wait that lasts events.QueuedEventDelay gets its Queued Event (a shorter one
	// records none, see internal/events).
	wantEvent(ctx, t, ns, "LockRequest", "p1-k2", "Normal", lockingv1alpha1.ReasonQueued, "position 1")
	// Pull 2 gives up its lock, as a victim's owner does; pull 1 gets k2.
	if err := deleteRequest(ctx, ns, "p2-k2"); err != nil {
		t.Fatal(err)
	}
	mustReach("p1-k2", lockingv1alpha1.ReasonAcquired)

	wantEvent(ctx, t, ns, "LockRequest", "p1-k2", "Normal", lockingv1alpha1.ReasonAcquired, "after waiting")
	wantEvent(ctx, t, ns, "LockRequest", victim.Name, "Warning", lockingv1alpha1.ReasonDeadlockVictim, "deadlock")
	wantEvent(ctx, t, ns, "ProjectLock", victim.Status.LockName, "Warning", events.KubeReasonDeadlockDetected,
		"acme/infra#1 waits for acme/infra#2")
	wantEvent(ctx, t, ns, "ProjectLock", victim.Status.LockName, "Warning", events.KubeReasonDeadlockDetected,
		"acme/infra#2 waits for acme/infra#1")
	// A grant on a free key and a release or hand-off record no Event (each would be
	// an API write on every lock cycle); the waiter's Acquired above tells the
	// hand-off. They were published before everything seen above.
	wantOnlyEvents(ctx, t, ns, "LockRequest", "p1-k1")
	wantOnlyEvents(ctx, t, ns, "LockRequest", "p2-k2")
	wantOnlyEvents(ctx, t, ns, "ProjectLock", w.get("p1-k2").Status.LockName)

	// The same story in the metrics: three grants (one a hand-off after a wait),
	// two requests queued, one deadlock and its victim, one hold ended.
	wantMetrics(ctx, t, op.Registry, map[string]float64{
		`atlantis_lock_requests_total{result="acquired"}`:        3,
		`atlantis_lock_requests_total{result="deadlock_victim"}`: 1,
		`atlantis_lock_requests_total{result="conflict"}`:        0,
		`atlantis_lock_deadlocks_detected_total`:                 1,
		`atlantis_lock_handoffs_total`:                           1,
		`atlantis_lock_events_total{type="lock_requested"}`:      4,
		`atlantis_lock_events_total{type="queued_request"}`:      2,
		`atlantis_lock_events_total{type="lock_acquired"}`:       3,
		`atlantis_lock_events_total{type="queue_processed"}`:     1,
		`atlantis_lock_events_total{type="lock_released"}`:       1,
		`atlantis_lock_events_total{type="deadlock_detected"}`:   2, // found, then the victim failed
		`atlantis_lock_wait_duration_seconds_count`:              3,
		`atlantis_lock_hold_duration_seconds_count`:              1,
		`atlantis_lock_events_dropped_total`:                     0,
		`atlantis_locks_held`:                                    2, // k1 by pull 1, k2 by pull 1
		`atlantis_lock_queue_depth`:                              0,
	})

	// The JSON endpoints tell the same: /status and /metrics/atlantis.
	var endpoints operator.Endpoints
	endpoints.Bind(op)
	handlers := endpoints.Handlers()
	var status struct {
		Leader     bool                      `json:"leader"`
		LocksHeld  int                       `json:"locksHeld"`
		Components map[string]map[string]any `json:"components"`
	}
	getJSON(t, handlers[operator.StatusPath], operator.StatusPath, &status)
	if !status.Leader || status.LocksHeld != 2 || len(status.Components) != 5 {
		t.Errorf("/status = %+v, want leader, 2 locks held, 5 components", status)
	}
	var snapshot struct {
		Grants      int64            `json:"grants"`
		Deadlocks   int64            `json:"deadlocks"`
		Results     map[string]int64 `json:"results"`
		HealthScore int              `json:"healthScore"`
		Wait        struct {
			Count int `json:"count"`
		} `json:"wait"`
	}
	getJSON(t, handlers[operator.MetricsJSONPath], operator.MetricsJSONPath, &snapshot)
	if snapshot.Grants != 3 || snapshot.Deadlocks != 1 || snapshot.Results["DeadlockVictim"] != 1 || snapshot.Wait.Count != 3 {
		t.Errorf("/metrics/atlantis = %+v, want 3 grants, 1 deadlock, 1 DeadlockVictim, 3 wait samples", snapshot)
	}
}

// getJSON serves GET path with h and decodes the JSON answer into v.
func getJSON(t *testing.T, h http.Handler, path string, v any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, rec.Body)
	}
}

// wantMetrics waits until the series in reg have the wanted values. A series is
// named as Prometheus prints it: name{label="value"}, labels sorted.
func wantMetrics(ctx context.Context, t *testing.T, reg prometheus.Gatherer, want map[string]float64) {
	t.Helper()
	var got map[string]float64
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		got = gather(t, reg)
		for series, value := range want {
			if got[series] != value {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		for series, value := range want {
			if got[series] != value {
				t.Errorf("%s = %v, want %v", series, got[series], value)
			}
		}
	}
}

// wantEvent waits for an event about the named object with the type and reason, whose
// note contains noteFragment.
func wantEvent(ctx context.Context, t *testing.T, ns, kind, name, eventType, reason, noteFragment string) {
	t.Helper()
	var seen []string
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		var list eventsv1.EventList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		seen = seen[:0]
		for _, e := range list.Items {
			if e.Regarding.Kind != kind || e.Regarding.Name != name {
				continue
			}
			seen = append(seen, e.Type+"/"+e.Reason+": "+e.Note)
			if e.Type == eventType && e.Reason == reason && strings.Contains(e.Note, noteFragment) &&
				e.ReportingController == lockingv1alpha1.FieldManager {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("no %s event %s about %s %s with %q; saw %q", eventType, reason, kind, name, noteFragment, seen)
	}
}

// wantOnlyEvents fails the test unless every Event about the named object has one of
// the reasons given (none: no Event at all).
func wantOnlyEvents(ctx context.Context, t *testing.T, ns, kind, name string, reasons ...string) {
	t.Helper()
	var list eventsv1.EventList
	if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Name == name && !slices.Contains(reasons, e.Reason) {
			t.Errorf("%s %s has a %s Event %s (%q); want only %q", kind, name, e.Type, e.Reason, e.Note, reasons)
		}
	}
}

// gather reads every series of reg, named as Prometheus prints them:
// name{label="value"}; a histogram as its name_count.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				got[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return got
}
