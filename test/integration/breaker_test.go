package integration

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/apicalls"
	"github.com/runatlantis/atlantis-lock-operator/internal/breaker"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/events"
	"github.com/runatlantis/atlantis-lock-operator/internal/operator"
)

// failWrites answers every write of the operator with 500 while on, without
// sending it: the API server failing this operator's decisions.
type failWrites struct {
	on   atomic.Bool
	next http.RoundTripper
}

func (f *failWrites) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.on.Load() && req.Method != http.MethodGet {
		return &http.Response{StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error",
			Header: http.Header{"Content-Type": {"application/json"}}, Request: req,
			Body: io.NopCloser(strings.NewReader(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected","reason":"InternalError","code":500}`))}, nil
	}
	return f.next.RoundTrip(req)
}

// countingGate counts the decisions the breaker turned away.
type countingGate struct {
	gate    operatorGate
	refused atomic.Int64
}

type operatorGate interface {
	Allow() (func(), time.Duration)
}

func (g *countingGate) Allow() (func(), time.Duration) {
	release, wait := g.gate.Allow()
	if release == nil {
		g.refused.Add(1)
	}
	return release, wait
}

// TestBreakerPausesDecisionsWhileTheAPIServerFailsThem runs an operator on a fake
// clock whose writes all fail with 500. After breaker_failure_threshold failed calls
// the circuit opens: decisions are turned away without a single API call while the
// clock stands, component health and atlantis_backend_circuit_state say so, and the
// failed calls outside the orchestrator raise backend_error events. A probe after the
// open period fails and doubles it; once writes work again the next probe closes the
// circuit and the waiting request is decided.
func TestBreakerPausesDecisionsWhileTheAPIServerFailsThem(t *testing.T) {
	ctx := deadline(t, time.Minute)
	ns := newNamespace(t, "breaker")
	clk := clocktesting.NewFakeClock(time.Now())
	faults := &failWrites{}
	calls := apicalls.NewRecorder(clk)
	restConfig := rest.CopyConfig(env.Config)
	restConfig.Wrap(func(rt http.RoundTripper) http.RoundTripper { faults.next = rt; return faults })
	restConfig.Wrap(calls.Wrap)
	var decisionCalls atomic.Int64
	calls.AddObserver(apicalls.ObserverFunc(func(c apicalls.Call) {
		if c.DecisionPath {
			decisionCalls.Add(1)
		}
	}))

	opts := operator.EmbeddedOptions()
	opts.Cache.DefaultNamespaces = map[string]crcache.Config{ns: {}}
	mgr, err := ctrl.NewManager(restConfig, opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.BreakerFailureThreshold, cfg.BreakerOpenTimeout, cfg.BreakerMaxOpenTimeout = 3, time.Second, 8*time.Second
	cfg.HealthCheckInterval, cfg.ComponentTimeout = time.Hour, time.Second
	// The Lease and the ProjectLock go with the release, and statuses are written
	// at once: on a clock that stands, a retention or an interval would never end.
	cfg.IdleLeaseRetention, cfg.ProjectLockDelay, cfg.StatusUpdateInterval = 0, 0, 0
	op, err := operator.Setup(ctx, mgr, cfg, clk, operator.WithAPICalls(calls))
	if err != nil {
		t.Fatal(err)
	}
	gate := &countingGate{gate: op.Reconciler.Breaker}
	op.Reconciler.Breaker = gate
	failed := &eventLog{}
	if _, err := op.Bus.Subscribe("test", failed, events.Filter{Types: []events.Type{events.BackendError}}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("the operator stopped with: %v", err)
		}
	})
	w := watchRequests(t, ns)

	must(t, env.Client.Create(ctx, lockRequest(ns, "holder", "modules/vpc", 1, "alice")))
	if _, err := w.waitFor(ctx, "holder", isAcquired); err != nil {
		t.Fatal(err)
	}

	faults.on.Store(true)
	must(t, env.Client.Create(ctx, lockRequest(ns, "waiter", "modules/vpc", 2, "bob")))
	poll(ctx, t, "the circuit opens", func() bool { return op.Breaker.Status().State == breaker.Open })
	opened := op.Breaker.Status()
	if opened.Failures != 3 || !strings.Contains(opened.LastError.Error(), "500") {
		t.Errorf("opened with %d failures, the latest %v; want 3, a 500", opened.Failures, opened.LastError)
	}
	report := op.Health.CheckNow(ctx)
	if st := report.Components["kubernetes_backend"]; st.Score != 0 || !strings.Contains(st.LastError, "circuit open") {
		t.Errorf("kubernetes_backend while open: %d %q; want 0, circuit open", st.Score, st.LastError)
	}
	if got := gauge(t, op, "atlantis_backend_circuit_state"); got != 2 {
		t.Errorf("atlantis_backend_circuit_state = %v while open, want 2", got)
	}

	// The clock stands: every decision is turned away, none calls the API server.
	callsWhenOpened := decisionCalls.Load()
	refusedBefore := gate.refused.Load()
	poll(ctx, t, "decisions turned away", func() bool { return gate.refused.Load() >= refusedBefore+3 })
	if got := decisionCalls.Load() - callsWhenOpened; got != 0 {
		t.Errorf("%d API calls of decisions while the circuit was open; want none", got)
	}

	// The open period passes; the probe fails: open again, twice as long.
	clk.Step(opened.RetryAt.Sub(clk.Now()))
	poll(ctx, t, "a failed probe reopens the circuit", func() bool {
		st := op.Breaker.Status()
		return st.State == breaker.Open && st.RetryAt.After(opened.RetryAt)
	})
	reopened := op.Breaker.Status()
	if got, first := reopened.RetryAt.Sub(opened.RetryAt), opened.RetryAt.Sub(opened.Since); got < 2*first-first/2 {
		t.Errorf("the second open period %s is not about twice the first %s", got, first)
	}

	// Writes work again: the next probe closes the circuit and the waiter queues.
	faults.on.Store(false)
	clk.Step(reopened.RetryAt.Sub(clk.Now()))
	if _, err := w.waitFor(ctx, "waiter", func(lr *lockingv1alpha1.LockRequest) bool {
		return reason(lr) == lockingv1alpha1.ReasonQueued
	}); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "the circuit closes", func() bool { return op.Breaker.Status().State == breaker.Closed })
	if got := gauge(t, op, "atlantis_backend_circuit_state"); got != 0 {
		t.Errorf("atlantis_backend_circuit_state = %v after closing, want 0", got)
	}
	must(t, deleteRequest(ctx, ns, "holder"))
	if _, err := w.waitFor(ctx, "waiter", isAcquired); err != nil {
		t.Fatal(err)
	}
	if n := failed.count(operator.ReasonAPICallFailed); n == 0 {
		t.Errorf("no backend_error event with reason %s for the failed writes outside the orchestrator (events: %v)",
			operator.ReasonAPICallFailed, failed.all())
	}
	// Released while this operator runs, so that no other test's operator does it:
	// the request goes before its release (requests carry no finalizer), so wait
	// for the lock's objects too.
	must(t, deleteRequest(ctx, ns, "waiter"))
	if _, err := w.waitFor(ctx, "waiter", isGone); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "no ProjectLock and no Lease left", func() bool {
		var pls lockingv1alpha1.ProjectLockList
		var leases coordinationv1.LeaseList
		must(t, env.Client.List(ctx, &pls, client.InNamespace(ns)))
		must(t, env.Client.List(ctx, &leases, client.InNamespace(ns)))
		return len(pls.Items) == 0 && len(leases.Items) == 0
	})
}

// eventLog collects the events of a bus subscription.
type eventLog struct {
	mu     sync.Mutex
	events []events.Event
}

func (l *eventLog) HandleEvent(_ context.Context, e events.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return nil
}

func (l *eventLog) count(reason string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Reason == reason {
			n++
		}
	}
	return n
}

func (l *eventLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

// gauge reads one series of the operator's registry.
func gauge(t *testing.T, op *operator.Operator, name string) float64 {
	t.Helper()
	families, err := op.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s", name)
	return 0
}

func poll(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
