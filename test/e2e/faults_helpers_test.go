//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/operator"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/faultproxy"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/lockcheck"
)

// The fault tests' traffic: fewer clients than the failover step, so that a fault
// and the operator's recovery, not the load, decide what happens on two cores.
// Every key has several clients waiting for it, so hand-offs happen all the time.
const (
	faultClients = 20
	faultKeys    = 5
	// grantsBefore is how many grants the traffic makes before a fault is
	// injected, and grantsAfter how many after it has ended: locks are granted
	// both before and after every fault.
	grantsBefore = 20
	grantsAfter  = 20
	// scrapeInterval is how often the sampler reads every manager's /metrics and
	// /status during a fault: several times per health check interval.
	scrapeInterval = 200 * time.Millisecond
	// healthy is the score from which a component counts as healthy, as the
	// ComponentUnhealthy alert reads atlantis_component_health.
	healthy = 80
)

// faultIntervals are the configuration keys every fault test sets: health checks
// and metrics snapshots several times a second, so that a fault of a few seconds
// shows in component health and the error rate, and a check that hangs gives up
// after 2 s.
var faultIntervals = map[string]any{
	"health_check_interval": "500ms",
	"collection_interval":   "700ms",
	"component_timeout":     "2s",
}

// faultSuite is the installed release of TestFaults with the managers of the
// configuration under test. The managers of one configuration are replaced by the
// next configuration's; a manager that a fault kills or makes exit is replaced by a
// new one of the same configuration, as the kubelet would restart its pod.
type faultSuite struct {
	*suite
	// run is how the current managers run: the chart's arguments, a configuration
	// file with the fault's settings, and a kubeconfig (through the fault proxy for
	// the Lease write faults).
	run managerRun
	seq int

	mu sync.Mutex
	// current are the managers of the current configuration that the test has not
	// killed or stopped.
	current []*manager
	// started is when each manager was started.
	started map[*manager]time.Time
}

// writeConfig writes the chart's configuration file with the enhanced_locking keys
// of overrides (and faultIntervals) set, as name.yaml in the test's directory, and
// returns its path.
func (f *faultSuite) writeConfig(t *testing.T, name string, overrides map[string]any) string {
	t.Helper()
	data, err := os.ReadFile(f.suite.run.configFile)
	must(t, "the chart's configuration file", err)
	var file map[string]map[string]any
	must(t, "the chart's configuration file", yaml.Unmarshal(data, &file))
	el := file["enhanced_locking"]
	if el == nil {
		el = map[string]any{}
		file["enhanced_locking"] = el
	}
	maps.Copy(el, faultIntervals)
	maps.Copy(el, overrides)
	out, err := yaml.Marshal(file)
	must(t, "the fault configuration", err)
	path := filepath.Join(f.dir, name+".yaml")
	must(t, "writing "+path, os.WriteFile(path, out, 0o600))
	t.Logf("configuration %s:\n%s", name, out)
	return path
}

// startFaultProxy starts the fault proxy in front of the API server and writes a
// kubeconfig for the managers that reaches the API server through it. The proxy is
// served over TLS by an httptest server: client-go sends a kubeconfig's
// credentials only to an https server, and the managers must still authenticate
// as the chart's ServiceAccount. The managers still running when the test ends are
// stopped before the proxy closes, since their watches go through it.
func (f *faultSuite) startFaultProxy(t *testing.T) (*faultproxy.Proxy, string) {
	t.Helper()
	proxy, err := faultproxy.Start(f.cluster.APIServerURL(), f.cluster.Config().CAData)
	must(t, "starting the fault proxy", err)
	srv := httptest.NewUnstartedServer(proxy)
	srv.StartTLS()
	t.Cleanup(func() {
		for _, m := range f.live() {
			if err := m.stop(); err != nil {
				t.Error(err)
			}
		}
		srv.CloseClientConnections()
		srv.Close()
		_ = proxy.Close()
	})
	cfg, err := clientcmd.LoadFromFile(f.suite.run.kubeconfig)
	must(t, "the managers' kubeconfig", err)
	for _, c := range cfg.Clusters {
		c.Server = srv.URL
		c.CertificateAuthorityData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	}
	path := filepath.Join(f.dir, "proxied.kubeconfig")
	must(t, "writing "+path, clientcmd.WriteToFile(*cfg, path))
	return proxy, path
}

// useManagers stops the current managers (gracefully: the leader releases the
// election Lease) and starts two that run as run says, as the chart's two
// replicas, the first of which leads.
func (f *faultSuite) useManagers(t *testing.T, run managerRun) {
	f.useManagerPair(t, run, run)
}

// useManagerPair is useManagers with a leader that runs as run says and a standby
// that runs as standby says. Replacements of exited managers run as run says.
func (f *faultSuite) useManagerPair(t *testing.T, run, standby managerRun) {
	t.Helper()
	ctx := t.Context()
	f.mu.Lock()
	old := f.current
	f.current = nil
	f.mu.Unlock()
	for _, m := range old {
		if err := m.stop(); err != nil {
			t.Fatalf("stopping %s before the next configuration: %v", m.name, err)
		}
	}
	f.run = run
	start := time.Now()
	first := f.addManager(t)
	eventually(ctx, t, first.name+" leads", func(ctx context.Context) (bool, error) {
		if err := first.exited(); err != nil {
			return false, err
		}
		st, err := first.status(ctx)
		return err == nil && st.Leader, nil
	})
	f.run = standby
	second := f.addManager(t)
	f.run = run
	eventually(ctx, t, second.name+" is ready", second.ready)
	t.Logf("%s and %s up, %s leading, in %s", first.name, second.name, first.name, since(start))
}

// addManager starts one more manager of the current configuration.
func (f *faultSuite) addManager(t *testing.T) *manager {
	f.seq++
	m := f.startManagerWith(t, fmt.Sprintf("fault-manager-%d", f.seq), f.run)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.current = append(f.current, m)
	f.started[m] = time.Now()
	return m
}

// live returns the current managers that are still running.
func (f *faultSuite) live() []*manager {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*manager
	for _, m := range f.current {
		if m.exited() == nil {
			out = append(out, m)
		}
	}
	return out
}

// killLeader kills the leading manager with SIGKILL and drops it from the current
// managers.
func (f *faultSuite) killLeader(ctx context.Context, t *testing.T) *manager {
	t.Helper()
	leader := f.waitLeader(ctx, t)
	f.mu.Lock()
	f.current = slices.DeleteFunc(f.current, func(m *manager) bool { return m == leader })
	f.mu.Unlock()
	leader.kill(t)
	return leader
}

// waitLeader waits until exactly one running manager of the current configuration
// says on /status that it leads, and returns it.
func (f *faultSuite) waitLeader(ctx context.Context, t *testing.T) *manager {
	t.Helper()
	var leader *manager
	var last string
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		var leaders []string
		leader = nil
		for _, m := range f.live() {
			st, err := m.status(ctx)
			if err != nil {
				last = err.Error()
				return false, nil //nolint:nilerr // a manager that is starting or busy
			}
			if st.Leader {
				leader = m
				leaders = append(leaders, m.name)
			}
		}
		last = fmt.Sprintf("managers leading: %v", leaders)
		return len(leaders) == 1, nil
	})
	if err != nil {
		t.Fatalf("waiting until one manager leads: %v (last: %s)", err, last)
	}
	return leader
}

// leaderLost is what controller-runtime reports when a leader could not renew its
// election Lease within the renew deadline; the manager then exits, so that it stops
// deciding, and its pod restarts.
const leaderLost = "leader election lost"

// leaderGaveUp is what a leader logs when its circuit breaker stayed open for
// leader_release_after: it releases the election Lease and exits, so that its pod
// restarts as a standby.
const leaderGaveUp = "giving up leadership"

// replaceExited replaces every current manager that exited by itself with a new
// one of the same configuration, as the kubelet restarts a pod's container, and
// returns the names of those replaced. Only a leader's exit after losing its
// election (an API server unreachable for longer than the renew deadline) or after
// giving it up (its circuit breaker open for leader_release_after) is an expected
// outcome of a fault; any other exit fails the test.
func (f *faultSuite) replaceExited(t *testing.T) []string {
	t.Helper()
	f.mu.Lock()
	var exited []*manager
	f.current = slices.DeleteFunc(f.current, func(m *manager) bool {
		if m.exited() != nil {
			exited = append(exited, m)
			return true
		}
		return false
	})
	f.mu.Unlock()
	var names []string
	for _, m := range exited {
		why := leaderLost
		switch tail := m.logTail(20); {
		case strings.Contains(tail, leaderLost):
		case strings.Contains(tail, leaderGaveUp):
			why = leaderGaveUp
		default:
			t.Fatalf("%v", m.exited())
		}
		// Gone for good, as a killed one: stop has nothing left to do.
		m.stopped = true
		n := f.addManager(t)
		names = append(names, fmt.Sprintf("%s (exit code %d: %s) by %s", m.name, m.proc.ExitCode(), why, n.name))
	}
	return names
}

// waitAPIServerReady waits until kube-apiserver's /readyz answers OK (its
// informers synced, its authorizer among them), and returns when it did.
func (f *faultSuite) waitAPIServerReady(ctx context.Context, t *testing.T) time.Time {
	t.Helper()
	eventually(ctx, t, "kube-apiserver is ready", func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return f.cs.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error() == nil, nil
	})
	return time.Now()
}

// traffic is Atlantis-like clients of pkg/lockclient locking, checking and unlocking
// keys in a loop until told to stop. A call that fails with a transient error (the
// API server unreachable, restarting, or answering 5xx) is retried, as Atlantis would
// retry a plan: the client's request names are stable (lockclient.RequestName), so a
// retried Lock adopts the request the failed call made, and nothing is requested
// twice.
type traffic struct {
	ns      string
	history lockcheck.History
	start   time.Time
	// cycles counts the cycles that ended (locked, checked, unlocked); started
	// those begun.
	cycles, started atomic.Int64
	retries         atomic.Int64

	mu sync.Mutex
	// retried counts the retried errors by kind, for the log.
	retried map[string]int
	errs    []error

	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
	cancel   context.CancelFunc
}

// startTraffic creates namespace ns and starts faultClients clients over faultKeys
// keys in it. They stop when the test ends if finish was not called.
func (f *faultSuite) startTraffic(t *testing.T, ns string) *traffic {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), trafficTimeout)
	f.createNamespace(ctx, t, ns)
	tr := &traffic{ns: ns, start: time.Now(), retried: map[string]int{}, stopCh: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	lc := lockclient.New(f.admin, ns, lockclient.WithFieldManager("e2e-atlantis"))
	var wg sync.WaitGroup
	for c := range faultClients {
		wg.Go(func() {
			if err := tr.client(ctx, lc, f.admin, c); err != nil {
				tr.mu.Lock()
				tr.errs = append(tr.errs, err)
				tr.mu.Unlock()
			}
		})
	}
	go func() { wg.Wait(); close(tr.done) }()
	// A failing test ends the clients (they withdraw their requests) before the
	// managers and the cluster stop.
	t.Cleanup(func() { cancel(); <-tr.done })
	return tr
}

// client is client n: lock a key (waiting in its queue), check the Lease while
// holding it, unlock, next key; until stop.
func (tr *traffic) client(ctx context.Context, lc *lockclient.Client, c client.Reader, n int) error {
	for i := 0; ; i++ {
		select {
		case <-tr.stopCh:
			return nil
		default:
		}
		tr.started.Add(1)
		key := fmt.Sprintf("modules/k%d", (n+i)%faultKeys)
		r := lockclient.Request{
			Project: lockingv1alpha1.ProjectRef{Repository: "acme/faults", Path: key},
			User:    lockingv1alpha1.UserRef{Username: fmt.Sprintf("atlantis-%02d", n)},
		}
		var st *lockclient.Status
		if err := tr.retry(ctx, func() (err error) { st, err = lc.Lock(ctx, r); return err }); err != nil {
			return fmt.Errorf("client %d, cycle %d: locking %s: %w", n, i, key, err)
		}
		acquired := time.Now()
		if err := tr.retry(ctx, func() error { return lockcheck.LeaseHeldBy(ctx, c, st.Request) }); err != nil {
			return fmt.Errorf("client %d, cycle %d: %w", n, i, err)
		}
		tr.history.Add(lockcheck.Hold{Key: key, Holder: st.Name(), Token: st.FencingToken, Acquired: acquired, Released: time.Now()})
		if err := tr.retry(ctx, func() error { return lc.Unlock(ctx, r) }); err != nil {
			return fmt.Errorf("client %d, cycle %d: unlocking %s: %w", n, i, key, err)
		}
		tr.cycles.Add(1)
	}
}

// retry calls call until it succeeds, fails with an error that is not transient,
// or ctx ends, backing off from 100 ms to 1 s between attempts.
func (tr *traffic) retry(ctx context.Context, call func() error) error {
	return retryTransient(ctx, call, func(err error) {
		tr.retries.Add(1)
		tr.mu.Lock()
		tr.retried[errorKind(err)]++
		tr.mu.Unlock()
	})
}

// retryTransient calls call until it succeeds, fails with an error that is not
// transient, or ctx ends, backing off from 100 ms to 1 s between attempts; retried
// (when not nil) sees every error retried.
func retryTransient(ctx context.Context, call func() error, retried func(error)) error {
	backoff := wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Cap: time.Second, Steps: math.MaxInt32}
	for {
		err := call()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		if retried != nil {
			retried(err)
		}
		// The client's backoff before it asks again, not a wait for state.
		timer := time.NewTimer(backoff.Step())
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
	}
}

// transient reports whether err is one a client retries: the API server could not
// be reached or answered that it could not serve the request now. An ended request
// (lockclient.EndedError) or any other refusal is not.
func transient(err error) bool {
	var ended *lockclient.EndedError
	if errors.As(err, &ended) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsUnexpectedServerError(err) {
		return true
	}
	// Transport errors: connection refused or reset, EOF, a lost HTTP/2 connection
	// (*url.Error is a net.Error).
	var netErr net.Error
	return errors.As(err, &netErr)
}

// errorKind shortens an error to its kind, for counting retried errors.
func errorKind(err error) string {
	if st := apierrors.APIStatus(nil); errors.As(err, &st) {
		return fmt.Sprintf("HTTP %d %s", st.Status().Code, st.Status().Reason)
	}
	msg := err.Error()
	for _, kind := range []string{"connection refused", "connection reset by peer", "EOF", "GOAWAY", "http2: client connection lost"} {
		if strings.Contains(msg, kind) {
			return kind
		}
	}
	return msg[strings.LastIndex(msg, ": ")+2:]
}

// stop tells the clients to finish their current cycle and stop.
func (tr *traffic) stop() { tr.stopOnce.Do(func() { close(tr.stopCh) }) }

// failed returns the errors that ended clients so far.
func (tr *traffic) failed() error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return errors.Join(tr.errs...)
}

// waitGrants waits until n grants were observed after after, and fails the test
// when a client fails first.
func (tr *traffic) waitGrants(ctx context.Context, t *testing.T, n int, after time.Time, what string) {
	t.Helper()
	err := poll(ctx, func(context.Context) (bool, error) {
		if err := tr.failed(); err != nil {
			return false, err
		}
		return tr.grantsAfter(after) >= n, nil
	})
	if err != nil {
		t.Fatalf("waiting for %d grants %s: %v (%d so far)", n, what, err, tr.grantsAfter(after))
	}
}

// grantsAfter counts the grants observed after t.
func (tr *traffic) grantsAfter(t time.Time) int {
	n := 0
	for _, h := range tr.history.Holds() {
		if h.Acquired.After(t) {
			n++
		}
	}
	return n
}

// firstGrantAfter is when the first grant after t was observed (zero if none).
func (tr *traffic) firstGrantAfter(t time.Time) time.Time {
	var first time.Time
	for _, h := range tr.history.Holds() {
		if h.Acquired.After(t) && (first.IsZero() || h.Acquired.Before(first)) {
			first = h.Acquired
		}
	}
	return first
}

// firstGrantSince is when the first grant with a fencing token newer than the
// Lease write rv was observed (zero if none): the first grant of the leader that
// took over with that write.
func (tr *traffic) firstGrantSince(rv int64) time.Time {
	var first time.Time
	for _, h := range tr.history.Holds() {
		token, err := strconv.ParseInt(h.Token, 10, 64)
		if err == nil && token > rv && (first.IsZero() || h.Acquired.Before(first)) {
			first = h.Acquired
		}
	}
	return first
}

// longestGap is the longest time between two grants in a row (of any key): how long
// the clients, together, saw no lock granted.
func (tr *traffic) longestGap() time.Duration {
	var times []time.Time
	for _, h := range tr.history.Holds() {
		times = append(times, h.Acquired)
	}
	slices.SortFunc(times, time.Time.Compare)
	var gap time.Duration
	for i := 1; i < len(times); i++ {
		gap = max(gap, times[i].Sub(times[i-1]))
	}
	return gap
}

// finish stops the clients, waits until they are done and checks the traffic: no
// client failed, every cycle begun ended with a grant and a release, no key was held
// twice at once and fencing tokens grew (lockcheck), and nothing is left in the
// namespace. It returns the check's result.
func (f *faultSuite) finish(t *testing.T, tr *traffic) lockcheck.Result {
	t.Helper()
	tr.stop()
	select {
	case <-tr.done:
	case <-t.Context().Done():
	}
	tr.cancel()
	<-tr.done
	if err := tr.failed(); err != nil {
		t.Errorf("clients failed: %v", err)
	}
	res := tr.history.Check()
	for _, v := range res.Violations {
		t.Error(v)
	}
	if started, ended := tr.started.Load(), tr.cycles.Load(); started != ended || int64(res.Grants) != ended {
		t.Errorf("%d cycles begun, %d ended, %d grants recorded: every cycle must end with one grant and one release", started, ended, res.Grants)
	}
	tr.mu.Lock()
	retried := fmt.Sprint(tr.retried)
	tr.mu.Unlock()
	t.Logf("traffic: %d clients, %d keys, %d grants in %s, %d successions checked, longest time without a grant %s, %d calls retried %s",
		faultClients, faultKeys, res.Grants, since(tr.start), res.Successions, tr.longestGap().Round(time.Millisecond), tr.retries.Load(), retried)
	f.checkNothingLeft(t.Context(), t, tr.ns)
	return res
}

// scrape is one reading of a manager's /status and /metrics.
type scrape struct {
	at      time.Time
	manager *manager
	leader  bool
	// components are /status's component scores; health atlantis_component_health.
	components map[string]int
	health     map[string]float64
	metrics    promMetrics
}

// sampler reads /status and /metrics of every running manager every
// scrapeInterval, so that what a fault did to them can be told afterwards: the
// lowest component health, when it came back, and what the counters counted.
type sampler struct {
	f     *faultSuite
	start time.Time

	mu      sync.Mutex
	scrapes []scrape

	cancel context.CancelFunc
	done   chan struct{}
}

// startSampler starts sampling until stop or the end of the test.
func (f *faultSuite) startSampler(t *testing.T) *sampler {
	ctx, cancel := context.WithCancel(t.Context())
	sp := &sampler{f: f, start: time.Now(), cancel: cancel, done: make(chan struct{})}
	// The first round is the baseline of increase: it must be read before the
	// caller starts the fault or the traffic, or their first effects would be
	// counted as already there (a run saw 54 lock_acquired events for 56 grants).
	firstRound := make(chan struct{})
	go func() {
		defer close(sp.done)
		ticker := time.NewTicker(scrapeInterval)
		defer ticker.Stop()
		for round := 0; ; round++ {
			var wg sync.WaitGroup
			for _, m := range f.live() {
				wg.Go(func() { sp.read(ctx, m) })
			}
			wg.Wait()
			if round == 0 {
				close(firstRound)
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	t.Cleanup(sp.stop)
	select {
	case <-firstRound:
	case <-ctx.Done():
	}
	return sp
}

// read scrapes m once; a manager that does not answer (killed, exiting) is left
// out of this round.
func (sp *sampler) read(ctx context.Context, m *manager) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	at := time.Now()
	st, err := m.status(ctx)
	if err != nil {
		return
	}
	pm, err := m.metrics(ctx)
	if err != nil {
		return
	}
	sc := scrape{at: at, manager: m, leader: st.Leader, components: map[string]int{}, health: map[string]float64{}, metrics: pm}
	for name, c := range st.Components {
		sc.components[name] = c.Score
	}
	for _, series := range pm["atlantis_component_health"] {
		sc.health[series.Labels["component"]] = series.Value
	}
	sp.mu.Lock()
	sp.scrapes = append(sp.scrapes, sc)
	sp.mu.Unlock()
}

// stop ends the sampling and waits for it.
func (sp *sampler) stop() {
	sp.cancel()
	<-sp.done
}

func (sp *sampler) all() []scrape {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return slices.Clone(sp.scrapes)
}

// lowest is the lowest score of component among the scrapes accepted by which, in
// atlantis_component_health and in /status (which must agree), and who had it when.
// ok is false when no scrape was accepted.
func (sp *sampler) lowest(component string, which func(scrape) bool) (low componentLow, ok bool) {
	low = componentLow{metric: math.Inf(1), status: math.MaxInt}
	for _, sc := range sp.all() {
		if !which(sc) {
			continue
		}
		ok = true
		if v, found := sc.health[component]; found && v < low.metric {
			low.metric, low.who, low.at = v, sc.manager.name, sc.at
		}
		if v, found := sc.components[component]; found && v < low.status {
			low.status = v
		}
	}
	return low, ok
}

// componentLow is the lowest health of a component during a fault.
type componentLow struct {
	// metric is the lowest atlantis_component_health, status the lowest /status score.
	metric float64
	status int
	who    string
	at     time.Time
}

// backAfter is the first scrape after t in which a leading manager had component
// at full health again (100 in atlantis_component_health); zero if none.
func (sp *sampler) backAfter(component string, t time.Time) time.Time {
	for _, sc := range sp.all() {
		if sc.at.After(t) && sc.leader && sc.health[component] == 100 {
			return sc.at
		}
	}
	return time.Time{}
}

// below counts the scrapes accepted by which in which component was below
// healthy, out of all scrapes accepted.
func (sp *sampler) below(component string, which func(scrape) bool) (below, total int) {
	for _, sc := range sp.all() {
		if which(sc) {
			total++
			if sc.health[component] < healthy {
				below++
			}
		}
	}
	return below, total
}

// after formats how long after from to came, or says that it never came in the
// scrapes.
func after(from, to time.Time) string {
	if to.IsZero() {
		return "(not seen in the scrapes)"
	}
	return to.Sub(from).Round(time.Millisecond).String()
}

// leaderless sums the time between scrape rounds in which no running manager
// said it led: how long the operator had no leader, as far as the scrapes tell.
func (sp *sampler) leaderless() time.Duration {
	rounds := map[time.Time]bool{}
	var times []time.Time
	for _, sc := range sp.all() {
		// The scrapes of one round start within a few milliseconds.
		at := sc.at.Truncate(scrapeInterval / 2)
		if _, seen := rounds[at]; !seen {
			times = append(times, at)
		}
		rounds[at] = rounds[at] || sc.leader
	}
	slices.SortFunc(times, time.Time.Compare)
	var total time.Duration
	for i := 1; i < len(times); i++ {
		if !rounds[times[i-1]] {
			total += times[i].Sub(times[i-1])
		}
	}
	return total
}

// increase sums, over the managers, how much the counter series name (with the
// given label pairs) grew while sampled: from the first scrape of a manager that
// ran when sampling started, or from zero for one started since, to its last scrape.
func (sp *sampler) increase(name string, labels ...string) float64 {
	first := map[*manager]float64{}
	last := map[*manager]float64{}
	for _, sc := range sp.all() {
		v, _ := sc.metrics.value(name, labels...)
		if _, seen := first[sc.manager]; !seen {
			first[sc.manager] = v
			sp.f.mu.Lock()
			if sp.f.started[sc.manager].After(sp.start) {
				first[sc.manager] = 0
			}
			sp.f.mu.Unlock()
		}
		last[sc.manager] = v
	}
	var sum float64
	for m, v := range last {
		sum += v - first[m]
	}
	return sum
}

// checkHealthy waits until the leader reports every component healthy, both in
// atlantis_component_health and on /status, and component at 100, and returns the
// leader.
func (f *faultSuite) checkHealthy(ctx context.Context, t *testing.T, component string) *manager {
	t.Helper()
	leader := f.waitLeader(ctx, t)
	var last string
	// seen keeps the first problem of each component met on the way, for the log.
	seen := map[string]string{}
	start := time.Now()
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		st, err := leader.status(ctx)
		if err != nil {
			return false, err
		}
		pm, err := leader.metrics(ctx)
		if err != nil {
			return false, err
		}
		var bad []string
		for name, c := range st.Components {
			v, _ := pm.value("atlantis_component_health", "component", name)
			if c.Score < healthy || v < healthy {
				bad = append(bad, fmt.Sprintf("%s %d/%v (%s)", name, c.Score, v, c.LastError))
				if _, ok := seen[name]; !ok {
					seen[name] = fmt.Sprintf("%s at %d: %s", name, c.Score, c.LastError)
				}
			}
		}
		v, _ := pm.value("atlantis_component_health", "component", component)
		if v != 100 {
			bad = append(bad, fmt.Sprintf("%s at %v, not 100", component, v))
		}
		sort.Strings(bad)
		last = strings.Join(bad, "; ")
		return len(st.Components) > 0 && len(bad) == 0, nil
	})
	if err != nil {
		t.Fatalf("%s: components did not all come back healthy after the fault: %v; last: %s", leader.name, err, last)
	}
	if len(seen) > 0 {
		t.Logf("%s: every component healthy after %s of waiting; unhealthy on the way: %s",
			leader.name, since(start), strings.Join(slices.Sorted(maps.Values(seen)), "; "))
	}
	return leader
}

// checkWentDown fails the test unless component fell below healthy, in
// atlantis_component_health and on /status, in a scrape accepted by which, and
// returns the lowest reading.
func (f *faultSuite) checkWentDown(t *testing.T, sp *sampler, component string, which func(scrape) bool, what string) componentLow {
	t.Helper()
	low, ok := sp.lowest(component, which)
	switch {
	case !ok:
		t.Errorf("no scrape of %s during the fault", what)
	case low.metric >= healthy || low.status >= healthy:
		t.Errorf("%s: atlantis_component_health{component=%q} stayed at %v or more and /status at %d or more during the fault, want below %d",
			what, component, low.metric, low.status, healthy)
	}
	return low
}

// eventLines counts the event log lines (logger "events") of m by type: what a
// person reading the operator's log sees.
func eventLines(m *manager) map[string]int {
	counts := map[string]int{}
	f, err := os.Open(m.logPath)
	if err != nil {
		return counts
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Logger, Msg, Type string
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Logger == "events" && line.Msg == "event" {
			counts[line.Type]++
		}
	}
	return counts
}

// eventLinesOf sums eventLines over the managers.
func eventLinesOf(ms []*manager) map[string]int {
	total := map[string]int{}
	for _, m := range ms {
		for k, v := range eventLines(m) {
			total[k] += v
		}
	}
	return total
}

// metricsJSON reads the leader's /metrics/atlantis snapshot.
func (m *manager) metricsJSON(ctx context.Context) (orchestrator.MetricsSnapshot, error) {
	var snap orchestrator.MetricsSnapshot
	resp, err := m.get(ctx, m.metricsURL+operator.MetricsJSONPath)
	if err != nil {
		return snap, err
	}
	defer func() { _ = resp.Body.Close() }()
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return snap, fmt.Errorf("%s %s: %w", m.name, operator.MetricsJSONPath, err)
	}
	return snap, nil
}

// decisionErrors is how many of m's lock decisions failed with a backend error or
// timeout so far (the orchestrator's own counts: unlike
// atlantis_lock_backend_errors_total{kind="timeout"}, they leave out health checks
// that ran out of time).
func (f *faultSuite) decisionErrors(ctx context.Context, t *testing.T, m *manager) int64 {
	t.Helper()
	snap, err := m.metricsJSON(ctx)
	must(t, m.name+"'s metrics snapshot", err)
	return snap.BackendErrors + snap.TimeoutErrors
}

// grantsSince counts the grants of the traffic whose fencing token is newer than
// the Lease write rv: those the leader that took over with that write made.
func grantsSince(tr *traffic, rv int64) int {
	n := 0
	for _, h := range tr.history.Holds() {
		if token, err := strconv.ParseInt(h.Token, 10, 64); err == nil && token > rv {
			n++
		}
	}
	return n
}

// holderLog collects the election Lease's holders during a fault.
type holderLog struct {
	mu      sync.Mutex
	changes []holderChange
}

// watchHolders records every holder of the election Lease until the test ends.
func (f *faultSuite) watchHolders(t *testing.T) *holderLog {
	ctx, cancel := context.WithCancel(t.Context())
	leases := f.cs.CoordinationV1().Leases(releaseNamespace)
	lease, err := leases.Get(ctx, electionLease, metav1.GetOptions{})
	must(t, "the election Lease", err)
	hl := &holderLog{}
	hl.add(lease)
	done := make(chan struct{})
	go func() {
		defer close(done)
		hl.follow(ctx, leases, lease.ResourceVersion)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return hl
}

// follow records the holders of the election Lease from resourceVersion rv on until
// ctx ends. When the watch ends for good (an API server that restarted answers 410
// Gone to a resourceVersion its new watch cache does not hold), the Lease is read
// afresh, as soon as the API server answers, and watched from there: a takeover
// that happened meanwhile is then recorded with the resourceVersion of that read,
// later than the takeover's own write, which only makes grantsSince count fewer
// grants for the new leader.
func (hl *holderLog) follow(ctx context.Context, leases coordinationv1client.LeaseInterface, rv string) {
	selector := fields.OneTermEqualSelector("metadata.name", electionLease).String()
	for {
		w, err := watchtools.NewRetryWatcherWithContext(ctx, rv, &cache.ListWatch{
			WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
				opts.FieldSelector = selector
				return leases.Watch(ctx, opts)
			},
		})
		if err == nil {
			for ev := range w.ResultChan() {
				if l, ok := ev.Object.(*coordinationv1.Lease); ok {
					hl.add(l)
				}
			}
			w.Stop()
		}
		err = wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
			l, err := leases.Get(ctx, electionLease, metav1.GetOptions{})
			if err != nil {
				return false, nil //nolint:nilerr // the API server is not back yet
			}
			hl.add(l)
			rv = l.ResourceVersion
			return true, nil
		})
		if err != nil {
			return // ctx ended
		}
	}
}

// add records l's holder if it differs from the last one recorded.
func (hl *holderLog) add(l *coordinationv1.Lease) {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if n := len(hl.changes); n > 0 && hl.changes[n-1].holder == holderOf(l) {
		return
	}
	hl.changes = append(hl.changes, holderChange{holder: holderOf(l), resourceVersion: resourceVersion(l), seen: time.Now()})
}

// last is the latest holder seen.
func (hl *holderLog) last() holderChange {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if len(hl.changes) == 0 {
		return holderChange{}
	}
	return hl.changes[len(hl.changes)-1]
}

// count is how many holders were seen, the first included.
func (hl *holderLog) count() int {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	return len(hl.changes)
}

// waitHolder waits until a holder other than old shows, and returns it.
func (hl *holderLog) waitHolder(ctx context.Context, t *testing.T, old string) holderChange {
	t.Helper()
	var found holderChange
	eventually(ctx, t, "the election Lease has a holder other than "+old, func(context.Context) (bool, error) {
		c := hl.last()
		if c.holder != "" && c.holder != old {
			found = c
			return true, nil
		}
		return false, nil
	})
	return found
}
