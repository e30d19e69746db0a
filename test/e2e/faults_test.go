//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/test/harness/faultproxy"
)

// The faults, as long as they last. They are what is injected, not waits for a
// state: everything the tests wait for is polled.
const (
	// apiServerGrace is how long kube-apiserver may take to stop after SIGTERM
	// before it is killed, as terminationGracePeriodSeconds bounds it in a cluster.
	apiServerGrace = 3 * time.Second
	// etcdGrace is how long etcd may take to stop after SIGTERM before it is
	// killed: it closes its listeners at once, then waits for the API server's
	// watch streams, which would make the outage longer than etcdDowntime.
	etcdGrace = time.Second
	// etcdDowntime is how long etcd stays stopped.
	etcdDowntime = 3 * time.Second
	// leaderKills is how many times the leader is killed in a row.
	leaderKills = 3
)

// TestFaults installs the chart on a local control plane and runs lock traffic
// through pkg/lockclient while one fault after another is injected: kube-apiserver
// restarted, etcd stopped and started, the leader killed with SIGKILL again and
// again, Lease writes answered with 500 and 409, a webhook endpoint that hangs,
// an event buffer of one, the Leases of held keys deleted, a namespace deleted
// under traffic. After each fault it checks that no key was held twice and
// fencing tokens grew (test/harness/lockcheck), that nothing was lost (every cycle
// begun was granted and released, every client finished, nothing is left in the
// namespace), that component health (/status and atlantis_component_health) went
// down during the fault and came back after it (for a leader kill, what goes down
// is the leadership: no replica leads until the standby takes over), and that the
// operator counted and emitted the right events. The faults share the cluster; a
// failed one ends the test, since the next needs a cluster that recovered.
func TestFaults(t *testing.T) {
	f := &faultSuite{suite: installRelease(t), started: map[*manager]time.Time{}}
	direct := f.suite.run
	direct.configFile = f.writeConfig(t, "faults", nil)
	f.useManagers(t, direct)
	runSteps(t, []step{
		{"kube-apiserver restarted", f.testAPIServerRestart},
		{"etcd stopped and started", f.testEtcdOutage},
		{"leader killed repeatedly", f.testLeaderKills},
		{"Lease writes answered with 500 and 409", f.testLeaseWriteErrors},
		{"webhook endpoint hangs", f.testHangingWebhook},
		{"event buffer of one", f.testEventBufferOfOne},
		{"Leases of held keys deleted", f.testLostLeases},
		{"namespace deleted under traffic", f.testNamespaceDeleted},
		{"the leader's decisions fail: it gives up", f.testLeaderGivesUp},
	})
}

// testAPIServerRestart restarts kube-apiserver during traffic. Its listener closes
// at once: every manager's health check finds it gone, and the leader's decisions
// in flight fail. If the restart takes longer than the leader election's renew
// deadline (10 s), the leader exits, as controller-runtime makes it, and is
// replaced; the standby takes over once the API server is back.
func (f *faultSuite) testAPIServerRestart(t *testing.T) {
	f.testControlPlaneFault(t, "fault-apiserver", "kube-apiserver restarted", func(ctx context.Context) error {
		return f.cluster.RestartAPIServer(ctx, apiServerGrace)
	})
}

// testEtcdOutage stops etcd for etcdDowntime during traffic and starts it again:
// kube-apiserver stays up but cannot serve, its /readyz fails, and so does every
// manager's health check.
func (f *faultSuite) testEtcdOutage(t *testing.T) {
	f.testControlPlaneFault(t, "fault-etcd", "etcd stopped and started", func(ctx context.Context) error {
		if err := f.cluster.StopEtcd(ctx, etcdGrace); err != nil {
			return err
		}
		// The fault's duration, not a wait for a state.
		timer := time.NewTimer(etcdDowntime)
		defer timer.Stop()
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
		return f.cluster.StartEtcd(ctx)
	})
}

// testControlPlaneFault runs traffic in namespace ns, injects fault once grants
// flow, and checks what the fault did and that everything recovered.
func (f *faultSuite) testControlPlaneFault(t *testing.T, ns, what string, fault func(context.Context) error) {
	ctx := t.Context()
	holders := f.watchHolders(t)
	sp := f.startSampler(t)
	tr := f.startTraffic(t, ns)
	tr.waitGrants(ctx, t, grantsBefore, tr.start, "before the fault")
	leaderBefore := holders.last().holder
	logsBefore := eventLinesOf(f.managers)

	faultStart := time.Now()
	must(t, what, fault(ctx))
	faultEnd := time.Now()
	readyAt := f.waitAPIServerReady(ctx, t)
	f.notReady = append(f.notReady, window{from: faultStart, to: readyAt})
	t.Logf("%s: the fault lasted %s; kube-apiserver's /readyz answered OK %s after it",
		what, faultEnd.Sub(faultStart).Round(time.Millisecond), readyAt.Sub(faultEnd).Round(time.Millisecond))

	tr.waitGrants(ctx, t, grantsAfter, faultEnd, "after the fault")
	replaced := f.replaceExited(t)
	leader := f.checkHealthy(ctx, t, "kubernetes_backend")
	healthyAt := time.Now()
	res := f.finish(t, tr)
	sp.stop()

	low := f.checkWentDown(t, sp, "kubernetes_backend", func(sc scrape) bool { return sc.at.After(faultStart) }, "every manager")
	errs := sp.increase("atlantis_lock_events_total", "type", "backend_error")
	timeouts := sp.increase("atlantis_lock_events_total", "type", "timeout_error")
	if errs+timeouts == 0 {
		t.Errorf("no backend_error or timeout_error event counted in atlantis_lock_events_total during the fault")
	}
	logsAfter := eventLinesOf(f.managers)
	grants := res.Grants
	if holders.count() > 1 {
		grants = grantsSince(tr, holders.last().resourceVersion)
	}
	f.checkSurvivorMetrics(ctx, t, leader, grants)

	first := tr.firstGrantAfter(faultEnd)
	back := sp.backAfter("kubernetes_backend", faultEnd)
	t.Logf("FAULT %s: fault %s; first grant %s after it ended, kubernetes_backend back to 100 %s after (all components healthy checked %s after); "+
		"lowest kubernetes_backend %v (/status %d, %s); events counted: backend_error %v, timeout_error %v (log lines: backend_error %d, timeout_error %d); "+
		"leader before %s, after %s; managers replaced after losing the election: %v; longest time without a grant %s; %d grants",
		what, faultEnd.Sub(faultStart).Round(time.Millisecond), after(faultEnd, first),
		after(faultEnd, back), healthyAt.Sub(faultEnd).Round(time.Millisecond),
		low.metric, low.status, low.who, errs, timeouts,
		logsAfter["backend_error"]-logsBefore["backend_error"], logsAfter["timeout_error"]-logsBefore["timeout_error"],
		leaderBefore, holders.last().holder, replaced, tr.longestGap().Round(time.Millisecond), res.Grants)
}

// testLeaderKills kills the leader with SIGKILL leaderKills times during traffic;
// each time the standby takes over once the election Lease has run out, and the
// killed manager's replacement (its pod restarted) becomes the new standby.
func (f *faultSuite) testLeaderKills(t *testing.T) {
	ctx := t.Context()
	holders := f.watchHolders(t)
	sp := f.startSampler(t)
	tr := f.startTraffic(t, "fault-leader")
	tr.waitGrants(ctx, t, grantsBefore, tr.start, "before the first kill")

	var takeover holderChange
	for i := range leaderKills {
		old := holders.last().holder
		killed := f.killLeader(ctx, t)
		at := time.Now()
		takeover = holders.waitHolder(ctx, t, old)
		replacement := f.addManager(t)
		eventually(ctx, t, replacement.name+" is ready", replacement.ready)
		tr.waitGrants(ctx, t, grantsAfter, takeover.seen, fmt.Sprintf("after takeover %d", i+1))
		first := tr.firstGrantSince(takeover.resourceVersion)
		t.Logf("kill %d: %s (SIGKILL); election Lease taken over by %s %s later; its first grant observed %s after the kill (%s after the takeover); %s standing by",
			i+1, killed.name, takeover.holder, takeover.seen.Sub(at).Round(time.Millisecond),
			first.Sub(at).Round(time.Millisecond), first.Sub(takeover.seen).Round(time.Millisecond), replacement.name)
	}
	leader := f.checkHealthy(ctx, t, "kubernetes_backend")
	res := f.finish(t, tr)
	sp.stop()

	after := grantsSince(tr, takeover.resourceVersion)
	if after == 0 {
		t.Errorf("no grant by the last leader: the traffic ended before the last takeover, which proved nothing")
	}
	f.checkSurvivorMetrics(ctx, t, leader, after)
	// What a kill takes away is the leader: no replica decides until the
	// standby's takeover. The survivors themselves stay healthy.
	leaderless := sp.leaderless()
	if leaderless == 0 {
		t.Errorf("the scrapes saw a leader at every moment of %d leader kills; want the time until each takeover to show", leaderKills)
	}
	var lows []string
	for _, c := range []string{"kubernetes_backend", "event_bus", "metrics_collector", "timeout_manager", "deadlock_detector"} {
		low, _ := sp.lowest(c, func(scrape) bool { return true })
		lows = append(lows, fmt.Sprintf("%s %v", c, low.metric))
	}
	t.Logf("FAULT leader killed %d times: %s without a leader in all (as the scrapes saw it); lowest component health on the running managers: %v; longest time without a grant %s; %d grants, %d by the last leader",
		leaderKills, leaderless.Round(time.Millisecond), lows, tr.longestGap().Round(time.Millisecond), res.Grants, after)
}

// testLeaseWriteErrors puts the fault proxy between the managers and the API server
// and, during traffic, answers every third Lease write of the traffic's namespace
// with 500 Internal Server Error, then every third with 409 Conflict, then none.
// Every 500 must be counted as a backend error and emitted as a backend_error
// event, and degrade kubernetes_backend; a 409 is the compare-and-swap conflict the
// operator expects and retries, counted as a conflict and as no error.
func (f *faultSuite) testLeaseWriteErrors(t *testing.T) {
	ctx := t.Context()
	const ns = "fault-lease-writes"
	proxy, kubeconfig := f.startFaultProxy(t)
	run := f.run
	run.kubeconfig = kubeconfig
	f.useManagers(t, run)
	leader := f.waitLeader(ctx, t)
	sp := f.startSampler(t)
	tr := f.startTraffic(t, ns)
	tr.waitGrants(ctx, t, grantsBefore, tr.start, "before the fault")

	leases := regexp.MustCompile(`^/apis/coordination\.k8s\.io/v1/namespaces/` + ns + `/leases(/|$)`)
	writes := []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	errorsNow := func() float64 {
		pm, err := leader.metrics(ctx)
		must(t, "the leader's metrics", err)
		v, _ := pm.value("atlantis_lock_backend_errors_total", "kind", "error")
		return v
	}
	conflictsNow := func() int64 {
		snap, err := leader.metricsJSON(ctx)
		must(t, "the leader's metrics snapshot", err)
		return snap.Conflicts
	}
	logsBefore := eventLines(leader)

	// Every third Lease write answered 500, then none for a moment, so that every
	// injected 500 is known before the 409s begin.
	errors0, injected0 := errorsNow(), proxy.Injected()
	faultStart := time.Now()
	proxy.SetRules(faultproxy.Rule{Methods: writes, Path: leases, Status: http.StatusInternalServerError, Every: 3})
	tr.waitGrants(ctx, t, grantsAfter, faultStart, "while every third Lease write fails with 500")
	// The health checks run every health_check_interval, and the grants can come
	// faster than that (a lock cycle writes the Lease once): the 500s go on until a
	// scrape of the leader has seen kubernetes_backend go down, which is what this
	// fault is to show. Never seeing it fails the step (checkWentDown, below).
	isLeader := func(sc scrape) bool { return sc.manager == leader && sc.at.After(faultStart) }
	_ = poll(ctx, func(context.Context) (bool, error) {
		low, ok := sp.lowest("kubernetes_backend", isLeader)
		return ok && (low.metric < healthy || low.status < healthy), nil
	})
	proxy.SetRules()
	injected500 := proxy.Injected() - injected0
	if injected500 == 0 {
		t.Fatalf("the proxy answered no Lease write with 500: the fault was not injected")
	}

	// Every third Lease write answered 409.
	conflicts0 := conflictsNow()
	conflictsStart := time.Now()
	proxy.SetRules(faultproxy.Rule{Methods: writes, Path: leases, Status: http.StatusConflict, Every: 3})
	tr.waitGrants(ctx, t, grantsAfter, conflictsStart, "while every third Lease write fails with 409")
	proxy.SetRules()
	faultEnd := time.Now()
	injected409 := proxy.Injected() - injected0 - injected500
	if injected409 == 0 {
		t.Fatalf("the proxy answered no Lease write with 409: the fault was not injected")
	}

	var errors500 float64
	var conflicts int64
	err := poll(ctx, func(context.Context) (bool, error) {
		errors500, conflicts = errorsNow()-errors0, conflictsNow()-conflicts0
		return errors500 >= float64(injected500) && conflicts >= injected409, nil
	})
	if err != nil {
		t.Fatalf("%s counted %v backend errors for %d Lease writes answered 500, and %d conflicts for %d answered 409: %v",
			leader.name, errors500, injected500, conflicts, injected409, err)
	}
	// Each 500 is one failed call, and a 409 is no error at all.
	if errors500 != float64(injected500) {
		t.Errorf("%s counted %v backend errors (atlantis_lock_backend_errors_total{kind=\"error\"}) for %d Lease writes answered 500 and %d answered 409; want one per 500 and none per 409",
			leader.name, errors500, injected500, injected409)
	}

	tr.waitGrants(ctx, t, grantsAfter, faultEnd, "after the fault")
	if l := f.checkHealthy(ctx, t, "kubernetes_backend"); l != leader {
		t.Errorf("%s leads after the fault, want %s as before: Lease write errors must not cost the leadership", l.name, leader.name)
	}
	healthyAt := time.Now()
	res := f.finish(t, tr)
	sp.stop()

	low := f.checkWentDown(t, sp, "kubernetes_backend", func(sc scrape) bool { return isLeader(sc) && sc.at.Before(faultEnd) }, leader.name)
	// Reported, not checked: a round of health checks just after the 500s ended
	// may still count them.
	low409, _ := sp.lowest("kubernetes_backend", func(sc scrape) bool {
		return isLeader(sc) && sc.at.After(conflictsStart.Add(time.Second)) && sc.at.Before(faultEnd)
	})
	events := sp.increase("atlantis_lock_events_total", "type", "backend_error")
	if events < float64(injected500) {
		t.Errorf("atlantis_lock_events_total{type=\"backend_error\"} grew by %v, want at least the %d injected 500s", events, injected500)
	}
	logsAfter := eventLines(leader)
	if lines := logsAfter["backend_error"] - logsBefore["backend_error"]; lines == 0 {
		t.Errorf("%s logged no backend_error event line (logger \"events\") for %d injected 500s", leader.name, injected500)
	}
	f.checkSurvivorMetrics(ctx, t, leader, res.Grants)

	back := sp.backAfter("kubernetes_backend", conflictsStart)
	t.Logf("FAULT Lease writes 500/409: %d answered 500 (counted as backend errors: %v; backend_error events %v, log lines %d), %d answered 409 (counted as conflicts: %d, as errors: 0), %d forwarded; "+
		"lowest kubernetes_backend %v (/status %d), %v during the 409s; back to 100 %s after the last 500 (all components healthy checked %s after the last 409); longest time without a grant %s; %d grants, leader %s throughout",
		injected500, errors500, events, logsAfter["backend_error"]-logsBefore["backend_error"], injected409, conflicts, proxy.Passed(),
		low.metric, low.status, low409.metric, after(conflictsStart, back), healthyAt.Sub(faultEnd).Round(time.Millisecond),
		tr.longestGap().Round(time.Millisecond), res.Grants, leader.name)
}

// hangingEndpoint is a webhook receiver that never answers until it recovers; then
// it answers 204 No Content.
type hangingEndpoint struct {
	srv       *httptest.Server
	requests  atomic.Int64
	recovered chan struct{}
	once      sync.Once
}

func newHangingEndpoint(t *testing.T) *hangingEndpoint {
	h := &hangingEndpoint{recovered: make(chan struct{})}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		select {
		case <-h.recovered:
			w.WriteHeader(http.StatusNoContent)
		case <-r.Context().Done(): // the operator gave up on this attempt
		}
	}))
	t.Cleanup(func() { h.recover(); h.srv.Close() })
	return h
}

// recover makes the endpoint answer again.
func (h *hangingEndpoint) recover() { h.once.Do(func() { close(h.recovered) }) }

// testHangingWebhook configures a webhook whose endpoint never answers, with a
// one-second timeout, no retries and a queue of two, and runs traffic: the
// deliveries time out, the events that find the queue full are dropped and counted,
// event_bus turns degraded, and locks are handed off as usual. Then the endpoint
// answers again: deliveries succeed and event_bus recovers.
func (f *faultSuite) testHangingWebhook(t *testing.T) {
	ctx := t.Context()
	hook := newHangingEndpoint(t)
	run := f.suite.run
	run.configFile = f.writeConfig(t, "faults-webhook", map[string]any{
		"webhooks": []any{map[string]any{
			"url":         hook.srv.URL + "/atlantis-locks",
			"events":      []any{"lock_acquired", "lock_released"},
			"timeout":     "1s",
			"max_retries": 0,
			"queue_size":  2,
		}},
	})
	f.useManagers(t, run)
	leader := f.waitLeader(ctx, t)
	errors0 := f.decisionErrors(ctx, t, leader)
	sp := f.startSampler(t)
	tr := f.startTraffic(t, "fault-webhook")
	deliveries := func(result string) float64 {
		pm, err := leader.metrics(ctx)
		must(t, "the leader's metrics", err)
		v, _ := pm.value("atlantis_lock_webhook_deliveries_total", "result", result)
		return v
	}
	faultStart := tr.start
	tr.waitGrants(ctx, t, grantsBefore+grantsAfter, faultStart, "while the webhook endpoint hangs")
	eventually(ctx, t, "deliveries to the hanging endpoint time out and events are dropped", func(context.Context) (bool, error) {
		return deliveries("failure") > 0 && deliveries("dropped") > 0, nil
	})
	faultEnd := time.Now()
	hook.recover()
	successBefore := deliveries("success")
	eventually(ctx, t, "deliveries succeed once the endpoint answers", func(context.Context) (bool, error) {
		return deliveries("success") > successBefore, nil
	})
	tr.waitGrants(ctx, t, grantsAfter, faultEnd, "after the endpoint recovered")
	res := f.finish(t, tr)
	f.checkHealthy(ctx, t, "event_bus")
	healthyAt := time.Now()
	sp.stop()

	low := f.checkWentDown(t, sp, "event_bus", func(sc scrape) bool { return sc.manager == leader && sc.at.Before(faultEnd) }, leader.name)
	dropped := sp.increase("atlantis_lock_webhook_deliveries_total", "result", "dropped")
	failed := sp.increase("atlantis_lock_webhook_deliveries_total", "result", "failure")
	succeeded := sp.increase("atlantis_lock_webhook_deliveries_total", "result", "success")
	droppedEvents := sp.increase("atlantis_lock_events_dropped_total")
	if droppedEvents < dropped {
		t.Errorf("atlantis_lock_events_dropped_total grew by %v, want at least the %v webhook deliveries dropped", droppedEvents, dropped)
	}
	handOffs := sp.increase("atlantis_lock_handoffs_total")
	if handOffs == 0 {
		t.Errorf("no hand-off counted while the webhook hung; locking must not wait for a webhook")
	}
	if errs := f.decisionErrors(ctx, t, leader) - errors0; errs != 0 {
		t.Errorf("%s: %d lock decisions failed (backend errors or timeouts) while only a webhook failed", leader.name, errs)
	}
	f.checkSurvivorMetrics(ctx, t, leader, res.Grants)
	back := sp.backAfter("event_bus", faultEnd)
	t.Logf("FAULT webhook endpoint hangs: %d requests reached it; deliveries: %v failed (1 s timeout), %v dropped (queue of 2), %v succeeded after it recovered; atlantis_lock_events_dropped_total +%v; "+
		"%d grants and %v hand-offs, %d of them while it hung; lowest event_bus %v (/status %d); back to 100 %s after the endpoint recovered (all components healthy checked %s after, traffic over)",
		hook.requests.Load(), failed, dropped, succeeded, droppedEvents, res.Grants, handOffs, len(tr.history.Holds())-tr.grantsAfter(faultEnd),
		low.metric, low.status, after(faultEnd, back), healthyAt.Sub(faultEnd).Round(time.Millisecond))
}

// testEventBufferOfOne runs traffic with event_buffer_size 1: every subscriber but
// the metrics (Kubernetes Events, the event log) keeps one event waiting, so bursts
// are dropped and counted, event_bus turns degraded, and locking goes on unaffected;
// the metrics, which see every event, still count every grant. When the burst is
// over, event_bus recovers.
func (f *faultSuite) testEventBufferOfOne(t *testing.T) {
	ctx := t.Context()
	run := f.suite.run
	run.configFile = f.writeConfig(t, "faults-buffer", map[string]any{"event_buffer_size": 1})
	f.useManagers(t, run)
	leader := f.waitLeader(ctx, t)
	errors0 := f.decisionErrors(ctx, t, leader)
	sp := f.startSampler(t)
	tr := f.startTraffic(t, "fault-event-buffer")
	tr.waitGrants(ctx, t, grantsBefore+grantsAfter, tr.start, "with an event buffer of one")
	eventually(ctx, t, "events are dropped", func(ctx context.Context) (bool, error) {
		pm, err := leader.metrics(ctx)
		v, _ := pm.value("atlantis_lock_events_dropped_total")
		return err == nil && v > 0, err
	})
	res := f.finish(t, tr)
	faultEnd := time.Now()
	f.checkHealthy(ctx, t, "event_bus")
	healthyAt := time.Now()
	sp.stop()

	low := f.checkWentDown(t, sp, "event_bus", func(sc scrape) bool { return sc.manager == leader && sc.at.Before(faultEnd) }, leader.name)
	dropped := sp.increase("atlantis_lock_events_dropped_total")
	acquired := sp.increase("atlantis_lock_events_total", "type", "lock_acquired")
	if acquired < float64(res.Grants) {
		t.Errorf("atlantis_lock_events_total{type=\"lock_acquired\"} grew by %v for %d grants: the metrics must see every event, drops or not", acquired, res.Grants)
	}
	if errs := f.decisionErrors(ctx, t, leader) - errors0; errs != 0 {
		t.Errorf("%s: %d lock decisions failed (backend errors or timeouts) while only the event buffer was small", leader.name, errs)
	}
	f.checkSurvivorMetrics(ctx, t, leader, res.Grants)
	below, total := sp.below("event_bus", func(sc scrape) bool { return sc.manager == leader && sc.at.Before(faultEnd) })
	t.Logf("FAULT event buffer of one: %d grants, %v lock_acquired events counted, %v events dropped; lowest event_bus %v (/status %d), below %d in %d of the leader's %d scrapes during the traffic; all components healthy checked %s after the traffic ended",
		res.Grants, acquired, dropped, low.metric, low.status, healthy, below, total, healthyAt.Sub(faultEnd).Round(time.Millisecond))
}

// testLeaderGivesUp puts the fault proxy between the leader only and the API server
// and answers every write of the leader in the traffic's namespace (Leases,
// LockRequests, ProjectLocks) with 500, while its election Lease renewals and the
// standby's calls go through: a replica whose decisions the API server fails while it
// keeps its leadership. The leader's circuit breaker must open (kubernetes_backend 0,
// atlantis_backend_circuit_state 2), and after leader_release_after the leader must
// give up: release the election Lease and exit, so that the standby takes over and
// serves the hand-offs. No key may be held twice, and nothing may be lost.
func (f *faultSuite) testLeaderGivesUp(t *testing.T) {
	ctx := t.Context()
	const ns = "fault-one-replica"
	const releaseAfter = 3 * time.Second
	proxy, kubeconfig := f.startFaultProxy(t)
	leaderRun := f.suite.run
	leaderRun.configFile = f.writeConfig(t, "faults-breaker", map[string]any{
		"breaker_failure_threshold": 3, "breaker_open_timeout": "200ms", "breaker_max_open_timeout": "1s",
		"leader_release_after": releaseAfter.String(),
	})
	standbyRun := leaderRun
	leaderRun.kubeconfig = kubeconfig
	f.useManagerPair(t, leaderRun, standbyRun)
	leader := f.waitLeader(ctx, t)
	holders := f.watchHolders(t)
	sp := f.startSampler(t)
	tr := f.startTraffic(t, ns)
	tr.waitGrants(ctx, t, grantsBefore, tr.start, "before the fault")

	old := holders.last().holder
	writes := []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	inNamespace := regexp.MustCompile(`^/apis/[^/]+/[^/]+/namespaces/` + ns + `/`)
	faultStart := time.Now()
	proxy.SetRules(faultproxy.Rule{Methods: writes, Path: inNamespace, Status: http.StatusInternalServerError, Every: 1})
	takeover := holders.waitHolder(ctx, t, old)
	eventually(ctx, t, leader.name+" exits", func(context.Context) (bool, error) { return leader.exited() != nil, nil })
	if tail := leader.logTail(20); !strings.Contains(tail, leaderGaveUp) {
		t.Fatalf("%s exited (%v) without giving up leadership; its log ends:\n%s", leader.name, leader.exited(), tail)
	}
	exitCode := leader.proc.ExitCode()
	tr.waitGrants(ctx, t, grantsAfter, takeover.seen, "after the standby took over")
	proxy.SetRules()
	replaced := f.replaceExited(t)
	newLeader := f.checkHealthy(ctx, t, "kubernetes_backend")
	res := f.finish(t, tr)
	sp.stop()

	if newLeader == leader {
		t.Fatalf("%s leads again", leader.name)
	}
	byNewLeader := grantsSince(tr, takeover.resourceVersion)
	if byNewLeader == 0 {
		t.Errorf("no grant by %s after it took over", newLeader.name)
	}
	if exitCode != 1 {
		t.Errorf("%s exited with code %d after giving up, want 1 (so that its pod restarts)", leader.name, exitCode)
	}
	ofLeader := func(sc scrape) bool { return sc.manager == leader && sc.at.After(faultStart) }
	low := f.checkWentDown(t, sp, "kubernetes_backend", ofLeader, leader.name)
	var openAt time.Time
	for _, sc := range sp.all() {
		if v, _ := sc.metrics.value("atlantis_backend_circuit_state"); ofLeader(sc) && v == 2 && openAt.IsZero() {
			openAt = sc.at
		}
	}
	if openAt.IsZero() {
		t.Errorf("%s's atlantis_backend_circuit_state never read 2 (open) during the fault", leader.name)
	}
	f.checkSurvivorMetrics(ctx, t, newLeader, byNewLeader)
	first := tr.firstGrantSince(takeover.resourceVersion)
	t.Logf("FAULT the leader's decisions fail (500 on its writes only): circuit open %s after the fault began (first scrape reading 2), lowest kubernetes_backend %v (/status %d); "+
		"the election Lease passed to %s %s after the fault began (leader_release_after %s), %s exited with code %d, the new leader's first grant %s after the takeover; "+
		"%d writes answered 500, %d forwarded; replaced: %v; longest time without a grant %s; %d grants, %d by the new leader",
		after(faultStart, openAt), low.metric, low.status, newLeader.name, takeover.seen.Sub(faultStart).Round(time.Millisecond), releaseAfter,
		leader.name, exitCode, after(takeover.seen, first), proxy.Injected(), proxy.Passed(), replaced, tr.longestGap().Round(time.Millisecond), res.Grants, byNewLeader)
}
