package controller_test

// Integration tests of the lock controller: a real kube-apiserver and etcd
// (test/harness/testenv), a controller-runtime manager set up by internal/operator as
// cmd/main.go sets it up, and
// LockRequests, ProjectLocks and Leases read back through a live (uncached) client.
//
// One shared manager (real clock, MaxQueueLength 3, deadlock check every 200ms)
// serves every namespace except a fixed pool of "isolated" namespaces. A test that
// needs another clock (a fake one for queue timeouts and ttl) or another policy
// starts its own manager that watches one isolated namespace only.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/indexes"
	"github.com/runatlantis/atlantis-lock-operator/internal/operator"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

const (
	pollInterval = 10 * time.Millisecond
	pollTimeout  = 20 * time.Second

	// mainDeadlockInterval is the shared manager's deadlock check interval.
	mainDeadlockInterval = 200 * time.Millisecond
	// mainMaxQueueLength is the shared manager's queue bound.
	mainMaxQueueLength = 3
)

var (
	env *testenv.Env
	// k8s is the live, uncached client every assertion reads through.
	k8s client.Client

	// The shared manager's orchestrator, its scan-counting clock, and the
	// deadlocks it reported.
	mainOrch  *orchestrator.LockOrchestrator
	mainClock *scanClock
	deadlocks = &deadlockLog{}
)

// isolatedPool are the namespaces the shared manager ignores; tests that run a
// manager of their own take one each (isolatedNamespace).
var (
	isolatedPool = func() []string {
		var names []string
		for i := range 32 {
			names = append(names, fmt.Sprintf("isolated-%02d", i))
		}
		return names
	}()
	isolatedNext atomic.Int32
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		// A worker process of `go test -fuzz` runs only the fuzz target
		// (FuzzToRequest), which needs no API server; starting one per worker
		// would only slow the fuzzing down and leave servers behind when the
		// coordinator kills its workers.
		return m.Run()
	}
	if os.Getenv("TEST_OPERATOR_LOG") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	}

	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start the test API server:", err)
		os.Exit(1)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the test API server:", err)
		}
	}()
	k8s = env.Client

	// Every namespace but the isolated pool.
	var notIsolated []fields.Selector
	for _, ns := range isolatedPool {
		notIsolated = append(notIsolated, fields.OneTermNotEqualSelector("metadata.namespace", ns))
	}
	cacheOpts := operator.CacheOptions()
	cacheOpts.DefaultFieldSelector = fields.AndSelectors(notIsolated...)

	mainClock = &scanClock{}
	op, err := newOperator(mainClock, orchestrator.Config{
		DefaultQueueTimeout:   orchestrator.NoQueueTimeout,
		MaxQueueLength:        mainMaxQueueLength,
		DeadlockCheckInterval: mainDeadlockInterval,
	}, cacheOpts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot set up the operator:", err)
		return 1
	}
	mainOrch = op.orch
	mainOrch.AddObserver(deadlocks)
	stop, err := op.start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start the operator:", err)
		return 1
	}
	defer stop()

	return m.Run()
}

// runningOperator is one manager running the operator as internal/operator sets
// it up for cmd/main.go.
type runningOperator struct {
	mgr  ctrl.Manager
	orch *orchestrator.LockOrchestrator
	wake chan event.GenericEvent
}

// newOperator sets up a manager with internal/operator.Setup, as cmd/main.go does,
// with the orchestrator policy ocfg and clock clk.
func newOperator(clk clock.WithTicker, ocfg orchestrator.Config, cacheOpts cache.Options, tune ...func(*config.Config)) (*runningOperator, error) {
	return newOperatorOn(env.Config, clk, ocfg, cacheOpts, tune...)
}

// newOperatorOn is newOperator talking to the API server through restCfg.
func newOperatorOn(restCfg *rest.Config, clk clock.WithTicker, ocfg orchestrator.Config, cacheOpts cache.Options, tune ...func(*config.Config)) (*runningOperator, error) {
	opts := operator.EmbeddedOptions()
	opts.Cache = cacheOpts
	mgr, err := ctrl.NewManager(restCfg, opts)
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	cfg := config.Default()
	cfg.DefaultQueueTimeout = ocfg.DefaultQueueTimeout
	cfg.DefaultTTL = ocfg.DefaultTTL
	cfg.MaxQueueLength = ocfg.MaxQueueLength
	cfg.DeadlockCheckInterval = ocfg.DeadlockCheckInterval
	cfg.WorkerCount = 4
	for _, f := range tune {
		f(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("operator configuration: %w", err)
	}
	op, err := operator.Setup(context.Background(), mgr, cfg, clk)
	if err != nil {
		return nil, err
	}
	return &runningOperator{mgr: mgr, orch: op.Orchestrator, wake: op.Reconciler.Wake}, nil
}

// start runs the manager in a goroutine until the returned stop is called, and
// waits for its caches to sync.
func (op *runningOperator) start() (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- op.mgr.Start(ctx) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "operator stopped with:", err)
		}
	}
	syncCtx, syncCancel := context.WithTimeout(ctx, pollTimeout)
	defer syncCancel()
	if !op.mgr.GetCache().WaitForCacheSync(syncCtx) {
		stop()
		return nil, errors.New("caches did not sync")
	}
	return stop, nil
}

// wakeLock makes the operator reconcile a lock key now, as the deadlock detector
// does; tests with a fake clock call it after stepping the clock.
func (op *runningOperator) wakeLock(ns, name string) {
	pl := &lockingv1alpha1.ProjectLock{}
	pl.Namespace, pl.Name = ns, name
	op.wake <- event.GenericEvent{Object: pl}
}

// startIsolatedOperator starts a manager of its own for one isolated namespace. When
// the test ends, the namespace's requests are released while the manager still
// runs, then it stops.
func startIsolatedOperator(t *testing.T, ns string, clk clock.WithTicker, cfg orchestrator.Config, tune ...func(*config.Config)) *runningOperator {
	t.Helper()
	return startIsolatedOperatorOn(t, env.Config, ns, clk, cfg, tune...)
}

// startIsolatedOperatorOn is startIsolatedOperator talking to the API server
// through restCfg.
func startIsolatedOperatorOn(t *testing.T, restCfg *rest.Config, ns string, clk clock.WithTicker, cfg orchestrator.Config, tune ...func(*config.Config)) *runningOperator {
	t.Helper()
	cacheOpts := operator.CacheOptions()
	cacheOpts.DefaultNamespaces = map[string]cache.Config{ns: {}}
	op, err := newOperatorOn(restCfg, clk, cfg, cacheOpts, tune...)
	if err != nil {
		t.Fatal(err)
	}
	stop, err := op.start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	t.Cleanup(func() {
		releaseAll(t, ns)
		if deadlocks.decidedIn(ns) {
			t.Errorf("the shared operator decided about locks in isolated namespace %s", ns)
		}
	}) // cleanups run last-in first-out: this one before stop
	return op
}

// newNamespace creates a fresh namespace served by the shared manager, and deletes
// its LockRequests when the test ends.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "lock-test-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	t.Cleanup(func() { releaseAll(t, ns.Name) })
	return ns.Name
}

// isolatedNamespace takes a fresh namespace the shared manager ignores; pass it to
// startIsolatedOperator, which also cleans it up.
func isolatedNamespace(t *testing.T) string {
	t.Helper()
	i := int(isolatedNext.Add(1)) - 1
	if i >= len(isolatedPool) {
		t.Fatalf("the pool of %d isolated namespaces is used up", len(isolatedPool))
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: isolatedPool[i]}}
	if err := k8s.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", ns.Name, err)
	}
	return ns.Name
}

// releaseAll deletes every LockRequest of ns and waits until the operator has let
// them go and removed the namespace's ProjectLocks, so that no test leaves waiters
// in the shared wait-for graph.
func releaseAll(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	if err := k8s.DeleteAllOf(ctx, &lockingv1alpha1.LockRequest{}, client.InNamespace(ns)); err != nil {
		t.Errorf("cleanup: deleting the LockRequests of %s: %v", ns, err)
		return
	}
	err := poll(func() error {
		var lrs lockingv1alpha1.LockRequestList
		if err := k8s.List(ctx, &lrs, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(lrs.Items) > 0 {
			return fmt.Errorf("%d LockRequests left, e.g. %s with finalizers %v", len(lrs.Items), lrs.Items[0].Name, lrs.Items[0].Finalizers)
		}
		var pls lockingv1alpha1.ProjectLockList
		if err := k8s.List(ctx, &pls, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(pls.Items) > 0 {
			return fmt.Errorf("%d ProjectLocks left, e.g. %s", len(pls.Items), pls.Items[0].Name)
		}
		return nil
	})
	if err != nil {
		t.Errorf("cleanup of namespace %s: %v", ns, err)
	}
}

// poll calls cond every 10ms until it returns nil or 20s have passed; it returns
// cond's last error on timeout.
func poll(cond func() error) error {
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), pollInterval, pollTimeout, true, func(context.Context) (bool, error) {
		last = cond()
		return last == nil, nil
	})
	if err != nil {
		if last == nil {
			last = err
		}
		return last
	}
	return nil
}

// eventually fails the test unless cond returns nil within 20s.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	if err := poll(cond); err != nil {
		t.Fatalf("%s: not reached within %s: %v", what, pollTimeout, err)
	}
}

// ---- builders ------------------------------------------------------------

type lrBuilder struct{ lr *lockingv1alpha1.LockRequest }

// makeLR starts a LockRequest for acme/infra at modules/vpc, workspace default,
// user alice, without pull, priority Normal.
func makeLR(ns, name string) *lrBuilder {
	return &lrBuilder{lr: &lockingv1alpha1.LockRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project:   lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "modules/vpc"},
			Workspace: "default",
			User:      lockingv1alpha1.UserRef{Username: "alice"},
			Priority:  lockingv1alpha1.PriorityNormal,
		},
	}}
}

func (b *lrBuilder) repo(r string) *lrBuilder { b.lr.Spec.Project.Repository = r; return b }
func (b *lrBuilder) path(p string) *lrBuilder { b.lr.Spec.Project.Path = p; return b }
func (b *lrBuilder) user(u string) *lrBuilder { b.lr.Spec.User.Username = u; return b }
func (b *lrBuilder) prio(p string) *lrBuilder {
	b.lr.Spec.Priority = lockingv1alpha1.Priority(p)
	return b
}

func (b *lrBuilder) pull(n int32) *lrBuilder {
	b.lr.Spec.Pull = &lockingv1alpha1.PullRequestRef{Number: n,
		URL: fmt.Sprintf("https://github.com/%s/pull/%d", b.lr.Spec.Project.Repository, n)}
	return b
}

func (b *lrBuilder) queueTimeout(d string) *lrBuilder {
	b.lr.Spec.QueueTimeout = mustDuration(d)
	return b
}

func (b *lrBuilder) ttl(d string) *lrBuilder {
	b.lr.Spec.TTL = mustDuration(d)
	return b
}

// notice sets the request's GrantNoticeAnnotation, as pkg/lockclient does.
func (b *lrBuilder) notice(v string) *lrBuilder {
	b.lr.Annotations = map[string]string{lockingv1alpha1.GrantNoticeAnnotation: v}
	return b
}

func (b *lrBuilder) obj() *lockingv1alpha1.LockRequest { return b.lr.DeepCopy() }

// create creates the request and returns it as stored (with its UID).
func (b *lrBuilder) create(t *testing.T) *lockingv1alpha1.LockRequest {
	t.Helper()
	lr := b.obj()
	if err := k8s.Create(context.Background(), lr); err != nil {
		t.Fatalf("creating LockRequest %s: %v", lr.Name, err)
	}
	return lr
}

func mustDuration(s string) *metav1.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return &metav1.Duration{Duration: d}
}

// ---- reads and checks ----------------------------------------------------

func getLR(ns, name string) (*lockingv1alpha1.LockRequest, error) {
	lr := &lockingv1alpha1.LockRequest{}
	err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, lr)
	return lr, err
}

func mustGetLR(t *testing.T, ns, name string) *lockingv1alpha1.LockRequest {
	t.Helper()
	lr, err := getLR(ns, name)
	if err != nil {
		t.Fatalf("reading LockRequest %s/%s: %v", ns, name, err)
	}
	return lr
}

func getPL(ns, name string) (*lockingv1alpha1.ProjectLock, error) {
	pl := &lockingv1alpha1.ProjectLock{}
	err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, pl)
	return pl, err
}

func getLease(ns, name string) (*coordinationv1.Lease, error) {
	l := &coordinationv1.Lease{}
	err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, l)
	return l, err
}

// lockNameOf is the ProjectLock (and Lease) name of a request's key.
func lockNameOf(lr *lockingv1alpha1.LockRequest) string { return indexes.LockName(lr) }

// waitLeaseHolder waits until the Lease of lock name in ns names holder.
func waitLeaseHolder(t *testing.T, ns, name string, holder *lockingv1alpha1.LockRequest) {
	t.Helper()
	eventually(t, "the Lease names "+holder.Name, func() error {
		lease, err := getLease(ns, name)
		if err != nil {
			return err
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != holderID(holder) {
			return fmt.Errorf("holderIdentity %v, want %s", lease.Spec.HolderIdentity, holderID(holder))
		}
		return nil
	})
}

func holderID(lr *lockingv1alpha1.LockRequest) string { return lr.Name + "/" + string(lr.UID) }

func checkCondition(lr *lockingv1alpha1.LockRequest, typ string, status metav1.ConditionStatus, reason string) error {
	c := meta.FindStatusCondition(lr.Status.Conditions, typ)
	if c == nil {
		return fmt.Errorf("%s: no %s condition (conditions %s)", lr.Name, typ, describeConditions(lr.Status.Conditions))
	}
	if c.Status != status || c.Reason != reason {
		return fmt.Errorf("%s: %s=%s/%s, want %s/%s (%s)", lr.Name, typ, c.Status, c.Reason, status, reason, c.Message)
	}
	return nil
}

func describeConditions(cs []metav1.Condition) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// checkAcquired: Acquired=True/Acquired, Queued=False, and a fencing token.
func checkAcquired(lr *lockingv1alpha1.LockRequest) error {
	if err := checkCondition(lr, lockingv1alpha1.ConditionAcquired, metav1.ConditionTrue, lockingv1alpha1.ReasonAcquired); err != nil {
		return err
	}
	if err := checkCondition(lr, lockingv1alpha1.ConditionQueued, metav1.ConditionFalse, lockingv1alpha1.ReasonNotQueued); err != nil {
		return err
	}
	if lr.Status.FencingToken == "" {
		return fmt.Errorf("%s: acquired without a fencing token", lr.Name)
	}
	if lr.Status.Position != 0 || lr.Status.BlockedBy != nil {
		return fmt.Errorf("%s: acquired but position %d, blockedBy %+v", lr.Name, lr.Status.Position, lr.Status.BlockedBy)
	}
	return nil
}

// checkQueued: Acquired=False/Queued, Queued=True/Queued, at position pos (0: any).
func checkQueued(lr *lockingv1alpha1.LockRequest, pos int32) error {
	if err := checkCondition(lr, lockingv1alpha1.ConditionAcquired, metav1.ConditionFalse, lockingv1alpha1.ReasonQueued); err != nil {
		return err
	}
	if err := checkCondition(lr, lockingv1alpha1.ConditionQueued, metav1.ConditionTrue, lockingv1alpha1.ReasonQueued); err != nil {
		return err
	}
	if pos != 0 && lr.Status.Position != pos {
		return fmt.Errorf("%s: position %d, want %d", lr.Name, lr.Status.Position, pos)
	}
	if lr.Status.Position < 1 {
		return fmt.Errorf("%s: queued without a position", lr.Name)
	}
	return nil
}

// checkEnded: Acquired=False and Queued=False, both with the terminal reason.
func checkEnded(lr *lockingv1alpha1.LockRequest, reason string) error {
	if err := checkCondition(lr, lockingv1alpha1.ConditionAcquired, metav1.ConditionFalse, reason); err != nil {
		return err
	}
	return checkCondition(lr, lockingv1alpha1.ConditionQueued, metav1.ConditionFalse, reason)
}

func checkBlockedBy(lr *lockingv1alpha1.LockRequest, holder *lockingv1alpha1.LockRequest) error {
	want := lockingv1alpha1.BlockedBy{Request: holder.Name, Owner: holder.Spec.Owner(), User: holder.Spec.User.Username}
	if holder.Spec.Pull != nil {
		want.Pull = holder.Spec.Pull.Number
	}
	if lr.Status.BlockedBy == nil || *lr.Status.BlockedBy != want {
		return fmt.Errorf("%s: blockedBy %+v, want %+v", lr.Name, lr.Status.BlockedBy, want)
	}
	return nil
}

// waitLR polls a request until check passes, and returns it.
func waitLR(t *testing.T, ns, name string, check func(*lockingv1alpha1.LockRequest) error) *lockingv1alpha1.LockRequest {
	t.Helper()
	var got *lockingv1alpha1.LockRequest
	eventually(t, "LockRequest "+name, func() error {
		lr, err := getLR(ns, name)
		if err != nil {
			return err
		}
		got = lr
		return check(lr)
	})
	return got
}

func waitAcquired(t *testing.T, ns, name string) *lockingv1alpha1.LockRequest {
	t.Helper()
	return waitLR(t, ns, name, checkAcquired)
}

func waitQueued(t *testing.T, ns, name string, pos int32) *lockingv1alpha1.LockRequest {
	t.Helper()
	return waitLR(t, ns, name, func(lr *lockingv1alpha1.LockRequest) error { return checkQueued(lr, pos) })
}

func waitEnded(t *testing.T, ns, name, reason string) *lockingv1alpha1.LockRequest {
	t.Helper()
	return waitLR(t, ns, name, func(lr *lockingv1alpha1.LockRequest) error { return checkEnded(lr, reason) })
}

// waitHeld waits for a held request. Requests carry no finalizer of the operator's,
// so the status is the last thing a grant writes to the request.
func waitHeld(t *testing.T, ns, name string) *lockingv1alpha1.LockRequest {
	t.Helper()
	return waitLR(t, ns, name, checkAcquired)
}

func waitGone(t *testing.T, what string, get func() error) {
	t.Helper()
	eventually(t, what+" is deleted", func() error {
		err := get()
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		return errors.New("still exists")
	})
}

func waitLRGone(t *testing.T, ns, name string) {
	t.Helper()
	waitGone(t, "LockRequest "+name, func() error { _, err := getLR(ns, name); return err })
}

// waitPL polls a ProjectLock until check passes, and returns it.
func waitPL(t *testing.T, ns, name string, check func(*lockingv1alpha1.ProjectLock) error) *lockingv1alpha1.ProjectLock {
	t.Helper()
	var got *lockingv1alpha1.ProjectLock
	eventually(t, "ProjectLock "+name, func() error {
		pl, err := getPL(ns, name)
		if err != nil {
			return err
		}
		got = pl
		return check(pl)
	})
	return got
}

// plHeldBy checks that a ProjectLock shows holder and the waiters, in order.
func plHeldBy(holder string, queue ...string) func(*lockingv1alpha1.ProjectLock) error {
	return func(pl *lockingv1alpha1.ProjectLock) error {
		c := meta.FindStatusCondition(pl.Status.Conditions, lockingv1alpha1.ConditionLocked)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != lockingv1alpha1.ReasonHeld {
			return fmt.Errorf("ProjectLock %s: Locked condition %+v, want True/Held", pl.Name, c)
		}
		if pl.Status.Holder == nil || pl.Status.Holder.Request != holder {
			return fmt.Errorf("ProjectLock %s: holder %+v, want request %s", pl.Name, pl.Status.Holder, holder)
		}
		var got []string
		for _, e := range pl.Status.Queue {
			got = append(got, e.Request)
		}
		if strings.Join(got, ",") != strings.Join(queue, ",") || pl.Status.QueueLength != int32(len(queue)) {
			return fmt.Errorf("ProjectLock %s: queue %v (length %d), want %v", pl.Name, got, pl.Status.QueueLength, queue)
		}
		return nil
	}
}

func deleteObj(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Delete(context.Background(), obj); err != nil {
		t.Fatalf("deleting %T %s: %v", obj, obj.GetName(), err)
	}
}

func fencingToken(t *testing.T, lr *lockingv1alpha1.LockRequest) uint64 {
	t.Helper()
	return parseToken(t, lr.Name, lr.Status.FencingToken)
}

func parseToken(t *testing.T, what, s string) uint64 {
	t.Helper()
	var n uint64
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || fmt.Sprint(n) != s || n == 0 {
		t.Fatalf("%s: fencing token %q is not a positive integer", what, s)
	}
	return n
}

// ---- watching one request for the whole test ------------------------------

// requestHistory records every version of one LockRequest the API server sends
// through a watch, so that a test can check a request never passed through a
// state, not only that it is not in it when looked at.
type requestHistory struct {
	mu       sync.Mutex
	versions []lockingv1alpha1.LockRequest
}

func watchRequest(t *testing.T, ns, name string) *requestHistory {
	t.Helper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := wc.Watch(ctx, &lockingv1alpha1.LockRequestList{}, client.InNamespace(ns),
		client.MatchingFields{"metadata.name": name})
	if err != nil {
		cancel()
		t.Fatalf("watching LockRequest %s: %v", name, err)
	}
	h := &requestHistory{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if lr, ok := ev.Object.(*lockingv1alpha1.LockRequest); ok {
				h.mu.Lock()
				h.versions = append(h.versions, *lr.DeepCopy())
				h.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		w.Stop()
		cancel()
		<-done
	})
	return h
}

// acquiredEver reports a version of the request that had Acquired=True, or nil.
func (h *requestHistory) acquiredEver() *lockingv1alpha1.LockRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.versions {
		if meta.IsStatusConditionTrue(h.versions[i].Status.Conditions, lockingv1alpha1.ConditionAcquired) {
			return &h.versions[i]
		}
	}
	return nil
}

// changedAfterEnd reports a version seen after the first version with a terminal
// reason whose Acquired condition differs from it, or nil: an ended request keeps
// its ending for good.
func (h *requestHistory) changedAfterEnd() *lockingv1alpha1.LockRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	var end *metav1.Condition
	for i := range h.versions {
		c := meta.FindStatusCondition(h.versions[i].Status.Conditions, lockingv1alpha1.ConditionAcquired)
		switch {
		case end == nil && c != nil && lockingv1alpha1.IsTerminalReason(c.Reason):
			end = c
		case end != nil && (c == nil || c.Status != end.Status || c.Reason != end.Reason):
			return &h.versions[i]
		}
	}
	return nil
}

// reasonsSeen lists the Acquired reasons of every version seen, in order.
func (h *requestHistory) reasonsSeen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, v := range h.versions {
		if c := meta.FindStatusCondition(v.Status.Conditions, lockingv1alpha1.ConditionAcquired); c != nil {
			out = append(out, string(c.Status)+"/"+c.Reason)
		}
	}
	return out
}

// ---- the deadlock detector, observed ---------------------------------------

// scanClock is the real clock, except that it counts the ticks the deadlock
// detector has taken from its ticker. The ticker channel is unbuffered, so when
// tick n+1 is taken, scan n is complete.
type scanClock struct {
	clock.RealClock
	taken atomic.Int64
}

func (c *scanClock) NewTicker(d time.Duration) clock.Ticker {
	inner := c.RealClock.NewTicker(d)
	t := &relayTicker{inner: inner, c: make(chan time.Time), done: make(chan struct{})}
	go func() {
		for {
			select {
			case <-t.done:
				return
			case now := <-inner.C():
				select {
				case t.c <- now:
					c.taken.Add(1)
				case <-t.done:
					return
				}
			}
		}
	}()
	return t
}

type relayTicker struct {
	inner clock.Ticker
	c     chan time.Time
	done  chan struct{}
	once  sync.Once
}

func (t *relayTicker) C() <-chan time.Time { return t.c }

func (t *relayTicker) Stop() {
	t.inner.Stop()
	t.once.Do(func() { close(t.done) })
}

// waitScans waits until the shared detector has completed n scans that started
// after the call.
func waitScans(t *testing.T, n int64) {
	t.Helper()
	start := mainClock.taken.Load()
	eventually(t, fmt.Sprintf("%d deadlock scans", n), func() error {
		if got := mainClock.taken.Load() - start; got < n+1 {
			return fmt.Errorf("%d ticks taken so far", got)
		}
		return nil
	})
}

// deadlockLog records the deadlocks the shared orchestrator reports, and the
// namespaces it decided about.
type deadlockLog struct {
	mu         sync.Mutex
	found      []orchestrator.Deadlock
	namespaces map[string]bool
}

func (l *deadlockLog) Observe(n orchestrator.Notice) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.namespaces == nil {
		l.namespaces = map[string]bool{}
	}
	l.namespaces[n.Lock.Namespace] = true
	if n.Kind == orchestrator.NoticeDeadlock && n.Deadlock != nil {
		l.found = append(l.found, *n.Deadlock)
	}
}

// decidedIn reports whether the shared orchestrator decided anything in ns.
func (l *deadlockLog) decidedIn(ns string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.namespaces[ns]
}

// in returns the deadlocks with an edge in namespace ns.
func (l *deadlockLog) in(ns string) []orchestrator.Deadlock {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []orchestrator.Deadlock
	for _, d := range l.found {
		for _, e := range d.Cycle {
			if e.Lock.Namespace == ns {
				out = append(out, d)
				break
			}
		}
	}
	return out
}
