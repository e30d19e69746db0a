package integration

import (
	"context"
	"strconv"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/runatlantis/atlantis-lock-operator/internal/leasebackend"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// TestGoAPIOverLeases runs the orchestrator's Go API (Lock, Unlock, List, GetStatus)
// on the Lease backend against a real API server: the grant is a Lease, the queue
// hands over on Unlock, and fencing tokens grow with the Lease's resourceVersion.
func TestGoAPIOverLeases(t *testing.T) {
	ns := newNamespace(t, "goapi")
	ctx := deadline(t, time.Minute)
	// Live reads: without an informer, the backend reads the API server itself.
	o := orchestrator.New(leasebackend.New(env.Client, env.Client, env.Client), clock.RealClock{}, orchestrator.DefaultConfig())
	runCtx, stop := context.WithCancel(ctx)
	done := o.Start(runCtx)
	t.Cleanup(func() { stop(); <-done })

	vpc := orchestrator.Project{RepoFullName: "acme/infra", Path: "modules/vpc"}
	opts := orchestrator.LockOptions{Namespace: ns}
	first, err := o.LockWithOptions(ctx, vpc, "default", orchestrator.User{Username: "alice"}, opts)
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	name := lockkey.New("acme/infra", "modules/vpc", "default", "").ObjectName()
	lease := &coordinationv1.Lease{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, lease); err != nil {
		t.Fatalf("the grant wrote no Lease: %v", err)
	}
	if lease.Spec.HolderIdentity == nil || lease.ResourceVersion != first.FencingToken {
		t.Fatalf("Lease holder %v at resourceVersion %s, want a holder at the fencing token %s",
			lease.Spec.HolderIdentity, lease.ResourceVersion, first.FencingToken)
	}

	bobDone := make(chan error, 1)
	var second *orchestrator.ProjectLock
	go func() {
		var err error
		second, err = o.LockWithOptions(ctx, vpc, "default", orchestrator.User{Username: "bob"}, opts)
		bobDone <- err
	}()
	waitQueuedGoAPI(ctx, t, o)
	if _, err := o.Unlock(ctx, vpc, "default", orchestrator.User{Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := <-bobDone; err != nil {
		t.Fatalf("bob: %v", err)
	}
	a, _ := strconv.Atoi(first.FencingToken)
	b, _ := strconv.Atoi(second.FencingToken)
	if b <= a {
		t.Errorf("bob's fencing token %d does not exceed alice's %d", b, a)
	}
	locks, err := o.List(ctx)
	if err != nil || len(locks) != 1 || locks[0].User != "bob" {
		t.Errorf("List = %v, %v; want bob's lock", locks, err)
	}
	if st := o.GetStatus(); st.LocksHeld != 1 || st.Queued != 0 {
		t.Errorf("status: %d held, %d queued; want 1 and 0", st.LocksHeld, st.Queued)
	}
	if _, err := o.Unlock(ctx, vpc, "default", orchestrator.User{Username: "bob"}); err != nil {
		t.Fatal(err)
	}
	err = env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, lease)
	if err == nil {
		t.Errorf("the Lease of an idle key is still there: %+v", lease.Spec)
	}
}

// waitQueuedGoAPI waits until one request waits, through the orchestrator's notices.
func waitQueuedGoAPI(ctx context.Context, t *testing.T, o *orchestrator.LockOrchestrator) {
	t.Helper()
	queued := make(chan struct{}, 1)
	o.AddObserver(orchestrator.ObserverFunc(func(n orchestrator.Notice) {
		if n.Kind == orchestrator.NoticeQueued {
			select {
			case queued <- struct{}{}:
			default:
			}
		}
	}))
	for o.GetStatus().Queued == 0 {
		select {
		case <-queued:
		case <-ctx.Done():
			t.Fatal("bob never queued")
		}
	}
}
