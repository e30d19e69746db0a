package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

var (
	vpc   = Project{RepoFullName: "acme/infra", Path: "modules/vpc"}
	dns   = Project{RepoFullName: "acme/infra", Path: "modules/dns"}
	alice = User{Username: "alice"}
	bob   = User{Username: "bob"}
	carol = User{Username: "carol"}
)

func newTestOrchestrator(t *testing.T, cfg Config) (*LockOrchestrator, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	o := New(NewMemoryBackend(), clk, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := o.Start(ctx)
	t.Cleanup(func() { cancel(); <-done })
	return o, clk
}

type lockResult struct {
	lock *ProjectLock
	err  error
}

// lockAsync starts a Lock call and returns where its result will arrive.
func lockAsync(ctx context.Context, o *LockOrchestrator, p Project, u User, opts LockOptions) <-chan lockResult {
	ch := make(chan lockResult, 1)
	go func() {
		l, err := o.LockWithOptions(ctx, p, "default", u, opts)
		ch <- lockResult{l, err}
	}()
	return ch
}

// waitQueued blocks until n requests wait in the orchestrator's queues, so that a
// test acts only once its Lock calls have really joined the queue.
func waitQueued(t *testing.T, o *LockOrchestrator, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	changed := make(chan struct{}, 1)
	o.AddObserver(ObserverFunc(func(Notice) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}))
	for {
		if _, q, _ := o.gauges(); q == n {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			_, q, _ := o.gauges()
			t.Fatalf("%d requests queued, want %d", q, n)
		}
	}
}

func TestLockUnlockHandsOffInOrderWithGrowingFencingTokens(t *testing.T) {
	o, _ := newTestOrchestrator(t, DefaultConfig())
	ctx := context.Background()

	first, err := o.Lock(ctx, vpc, "default", alice)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	bobCh := lockAsync(ctx, o, vpc, bob, LockOptions{})
	waitQueued(t, o, 1)
	carolCh := lockAsync(ctx, o, vpc, carol, LockOptions{Priority: lockingv1alpha1.PriorityHigh})
	waitQueued(t, o, 2)

	released, err := o.Unlock(ctx, vpc, "default", alice)
	if err != nil || released == nil || released.User != "alice" {
		t.Fatalf("Unlock = %+v, %v; want alice's lock", released, err)
	}
	// Carol's High priority puts her before Bob, who asked first.
	got := <-carolCh
	if got.err != nil {
		t.Fatalf("carol: %v", got.err)
	}
	if tokenOf(t, got.lock) <= tokenOf(t, first) {
		t.Errorf("carol's token %s is not greater than alice's %s", got.lock.FencingToken, first.FencingToken)
	}
	if _, err := o.Unlock(ctx, vpc, "default", carol); err != nil {
		t.Fatal(err)
	}
	gotBob := <-bobCh
	if gotBob.err != nil {
		t.Fatalf("bob: %v", gotBob.err)
	}
	if tokenOf(t, gotBob.lock) <= tokenOf(t, got.lock) {
		t.Errorf("bob's token %s is not greater than carol's %s", gotBob.lock.FencingToken, got.lock.FencingToken)
	}
	locks, _ := o.List(ctx)
	if len(locks) != 1 || locks[0].User != "bob" {
		t.Errorf("List = %+v, want bob's lock only", locks)
	}
}

func tokenOf(t *testing.T, l *ProjectLock) int {
	t.Helper()
	n, err := strconv.Atoi(l.FencingToken)
	if err != nil {
		t.Fatalf("fencing token %q is not an integer", l.FencingToken)
	}
	return n
}

func TestLockFailFastConflicts(t *testing.T) {
	o, _ := newTestOrchestrator(t, DefaultConfig())
	ctx := context.Background()
	if _, err := o.Lock(ctx, vpc, "default", alice); err != nil {
		t.Fatal(err)
	}
	zero := time.Duration(0)
	_, err := o.LockWithOptions(ctx, vpc, "default", bob, LockOptions{QueueTimeout: &zero})
	if !IsReason(err, lockingv1alpha1.ReasonConflict) {
		t.Fatalf("err = %v, want Conflict", err)
	}
	var le *LockError
	if errors.As(err, &le); le.Holder == nil || le.Holder.Owner != "alice" {
		t.Errorf("conflict names holder %+v, want alice", le.Holder)
	}
	// Re-entrant: alice asks again and gets it at once.
	if _, err := o.LockWithOptions(ctx, vpc, "default", alice, LockOptions{QueueTimeout: &zero}); err != nil {
		t.Errorf("alice again: %v", err)
	}
}

func TestQueueTimeoutFiresOnTheClock(t *testing.T) {
	o, clk := newTestOrchestrator(t, DefaultConfig())
	ctx := context.Background()
	if _, err := o.Lock(ctx, vpc, "default", alice); err != nil {
		t.Fatal(err)
	}
	qt := 10 * time.Minute
	bobCh := lockAsync(ctx, o, vpc, bob, LockOptions{QueueTimeout: &qt})
	waitQueued(t, o, 1)
	clk.Step(9 * time.Minute)
	select {
	case r := <-bobCh:
		t.Fatalf("bob ended before his queue timeout: %+v", r)
	default:
	}
	clk.Step(time.Minute)
	if r := <-bobCh; !IsReason(r.err, lockingv1alpha1.ReasonQueueTimeout) {
		t.Fatalf("bob: %v, want QueueTimeout", r.err)
	}
}

func TestTTLExpiresUnlessRenewed(t *testing.T) {
	o, clk := newTestOrchestrator(t, DefaultConfig())
	ctx := context.Background()
	if _, err := o.LockWithOptions(ctx, vpc, "default", alice, LockOptions{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	bobCh := lockAsync(ctx, o, vpc, bob, LockOptions{})
	waitQueued(t, o, 1)
	clk.Step(50 * time.Minute)
	if err := o.Renew(ctx, vpc, "default", alice); err != nil {
		t.Fatal(err)
	}
	clk.Step(50 * time.Minute) // 100 minutes after the grant, 50 after the renewal
	select {
	case r := <-bobCh:
		t.Fatalf("bob got the lock while alice's renewed hold was valid: %+v", r)
	default:
	}
	clk.Step(10 * time.Minute)
	if r := <-bobCh; r.err != nil {
		t.Fatalf("bob after alice's hold expired: %v", r.err)
	}
}

func TestCancelledLockLeavesTheQueue(t *testing.T) {
	o, _ := newTestOrchestrator(t, DefaultConfig())
	ctx := context.Background()
	if _, err := o.Lock(ctx, vpc, "default", alice); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	bobCh := lockAsync(cctx, o, vpc, bob, LockOptions{})
	waitQueued(t, o, 1)
	cancel()
	if r := <-bobCh; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("bob: %v, want context.Canceled", r.err)
	}
	waitQueued(t, o, 0)
	if _, err := o.Unlock(ctx, vpc, "default", alice); err != nil {
		t.Fatal(err)
	}
	if locks, _ := o.List(ctx); len(locks) != 0 {
		t.Errorf("List = %+v after every request left, want none", locks)
	}
}

func TestQueueFull(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxQueueLength = 1
	o, _ := newTestOrchestrator(t, cfg)
	ctx := context.Background()
	if _, err := o.Lock(ctx, vpc, "default", alice); err != nil {
		t.Fatal(err)
	}
	lockAsync(ctx, o, vpc, bob, LockOptions{})
	waitQueued(t, o, 1)
	if _, err := o.Lock(ctx, vpc, "default", carol); !IsReason(err, lockingv1alpha1.ReasonQueueFull) {
		t.Fatalf("carol: %v, want QueueFull", err)
	}
}

func TestDeadlockDetectorFailsOneVictim(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DeadlockCheckInterval = 5 * time.Second
	o, clk := newTestOrchestrator(t, cfg)
	ctx := context.Background()
	var notices []Notice
	deadlocks := make(chan Notice, 4)
	o.AddObserver(ObserverFunc(func(n Notice) {
		if n.Kind == NoticeDeadlock {
			deadlocks <- n
		}
	}))
	if _, err := o.Lock(ctx, vpc, "default", alice); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Lock(ctx, dns, "default", bob); err != nil {
		t.Fatal(err)
	}
	aliceCh := lockAsync(ctx, o, dns, alice, LockOptions{})
	waitQueued(t, o, 1)
	clk.Step(time.Second) // bob is the younger waiter
	bobCh := lockAsync(ctx, o, vpc, bob, LockOptions{})
	waitQueued(t, o, 2)

	clk.Step(5 * time.Second)
	notices = append(notices, <-deadlocks)
	if r := <-bobCh; !IsReason(r.err, lockingv1alpha1.ReasonDeadlockVictim) {
		t.Fatalf("bob: %v, want DeadlockVictim", r.err)
	}
	if got := notices[0].Deadlock.Describe(); !containsAll(got, "alice waits for bob", "bob waits for alice") {
		t.Errorf("deadlock notice %q does not name the whole cycle", got)
	}
	// Bob gives up his lock as a victim's owner would; alice proceeds.
	if _, err := o.Unlock(ctx, dns, "default", bob); err != nil {
		t.Fatal(err)
	}
	if r := <-aliceCh; r.err != nil {
		t.Fatalf("alice: %v", r.err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		found := false
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func TestInvalidLockIsRefused(t *testing.T) {
	o, _ := newTestOrchestrator(t, DefaultConfig())
	var notices []Notice
	o.AddObserver(ObserverFunc(func(n Notice) { notices = append(notices, n) }))
	_, err := o.Lock(context.Background(), Project{RepoFullName: "norepo", Path: "."}, "default", alice)
	if err == nil || !containsAll(err.Error(), "repository") {
		t.Fatalf("err = %v, want an error naming the repository", err)
	}
	if len(notices) != 1 || notices[0].Kind != NoticeValidationError || notices[0].Err == nil {
		t.Errorf("notices = %+v, want one ValidationError", notices)
	}
}

func TestBackendErrorsAreReturnedAndShowInHealth(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	b := NewMemoryBackend()
	b.FailWrites = errors.New("etcd unavailable")
	o := New(b, clk, DefaultConfig())
	if _, err := o.Lock(context.Background(), vpc, "default", alice); err == nil || !containsAll(err.Error(), "etcd unavailable") {
		t.Fatalf("err = %v, want the backend's error", err)
	}
	if h := o.GetComponentHealth()["backend"]; h.Status == "healthy" {
		t.Errorf("backend health = %+v after errors", h)
	}
	if m := o.GetMetrics(); m.BackendErrors == 0 || !containsAll(m.LastError, "etcd unavailable") {
		t.Errorf("metrics count no backend error: %+v", m)
	}
}

func TestErrorsAreReportedByKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want NoticeKind
	}{
		{"backend error", errors.New("etcd unavailable"), NoticeBackendError},
		{"API server timeout", fmt.Errorf("%w: the server was unable to return a response in the time allotted", ErrTimeout), NoticeTimeoutError},
		{"deadline", fmt.Errorf("writing: %w", context.DeadlineExceeded), NoticeTimeoutError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewMemoryBackend()
			b.FailWrites = tc.err
			o := New(b, clocktesting.NewFakeClock(t0), DefaultConfig())
			var kinds []NoticeKind
			o.AddObserver(ObserverFunc(func(n Notice) {
				if n.Kind == NoticeBackendError || n.Kind == NoticeTimeoutError {
					kinds = append(kinds, n.Kind)
				}
			}))
			if _, err := o.Lock(context.Background(), vpc, "default", alice); err == nil {
				t.Fatal("Lock succeeded over a failing backend")
			}
			if len(kinds) == 0 || kinds[0] != tc.want {
				t.Errorf("notices %v, want %s first", kinds, tc.want)
			}
			m := o.GetMetrics()
			if got := m.BackendErrors + m.TimeoutErrors; got != int64(len(kinds)) {
				t.Errorf("%d errors counted, %d reported", got, len(kinds))
			}
		})
	}
}
