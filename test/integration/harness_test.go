package integration

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/operator"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// runningOperator is one operator instance: a manager with the operator set up, as
// cmd/main.go builds it, but with leader election off so that several can run at
// once against one API server.
type runningOperator struct {
	op       *operator.Operator
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

func startOperator(t *testing.T, cfg config.Config) *runningOperator {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, operator.EmbeddedOptions())
	if err != nil {
		t.Fatalf("creating manager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	op, err := operator.Setup(ctx, mgr, cfg, clock.RealClock{})
	if err != nil {
		cancel()
		t.Fatalf("setting up the operator: %v", err)
	}
	r := &runningOperator{op: op, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- mgr.Start(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// stop stops the operator and waits until it has stopped; stopping twice is fine.
func (r *runningOperator) stop() {
	r.stopOnce.Do(func() {
		r.cancel()
		if err := <-r.done; err != nil {
			fmt.Fprintln(os.Stderr, "operator stopped with:", err)
		}
	})
}

func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func lockRequest(ns, name, path string, pull int32, user string) *lockingv1alpha1.LockRequest {
	lr := &lockingv1alpha1.LockRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: path},
			User:    lockingv1alpha1.UserRef{Username: user},
		},
	}
	if pull > 0 {
		lr.Spec.Pull = &lockingv1alpha1.PullRequestRef{Number: pull}
	}
	return lr
}

// watcher follows the LockRequests of a namespace through an informer, so that
// tests wait on watch events instead of polling the API server.
type watcher struct {
	mu      sync.Mutex
	objs    map[string]*lockingv1alpha1.LockRequest
	changed chan struct{}
}

func watchRequests(t *testing.T, ns string) *watcher {
	t.Helper()
	c, err := crcache.New(env.Config, crcache.Options{Scheme: env.Scheme, DefaultNamespaces: map[string]crcache.Config{ns: {}}})
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{objs: map[string]*lockingv1alpha1.LockRequest{}, changed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	inf, err := c.GetInformer(ctx, &lockingv1alpha1.LockRequest{})
	if err != nil {
		t.Fatal(err)
	}
	set := func(obj any) {
		if lr, ok := obj.(*lockingv1alpha1.LockRequest); ok {
			w.update(lr.Name, lr.DeepCopy())
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    set,
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if lr, ok := obj.(*lockingv1alpha1.LockRequest); ok {
				w.update(lr.Name, nil)
			}
		},
	}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the LockRequest informer did not sync")
	}
	return w
}

func (w *watcher) update(name string, lr *lockingv1alpha1.LockRequest) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if lr == nil {
		delete(w.objs, name)
	} else {
		w.objs[name] = lr
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// get returns the latest copy of the named request, or nil.
func (w *watcher) get(name string) *lockingv1alpha1.LockRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.objs[name]
}

// waitFor waits until cond holds for the named request (nil when it is gone).
func (w *watcher) waitFor(ctx context.Context, name string, cond func(*lockingv1alpha1.LockRequest) bool) (*lockingv1alpha1.LockRequest, error) {
	for {
		w.mu.Lock()
		lr, ch := w.objs[name], w.changed
		w.mu.Unlock()
		if cond(lr) {
			return lr, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return lr, fmt.Errorf("waiting for LockRequest %s: %w (last seen: %s)", name, ctx.Err(), describe(lr))
		}
	}
}

func describe(lr *lockingv1alpha1.LockRequest) string {
	if lr == nil {
		return "gone"
	}
	c := meta.FindStatusCondition(lr.Status.Conditions, lockingv1alpha1.ConditionAcquired)
	if c == nil {
		return "no Acquired condition"
	}
	return fmt.Sprintf("Acquired=%s reason %s position %d", c.Status, c.Reason, lr.Status.Position)
}

func reason(lr *lockingv1alpha1.LockRequest) string {
	if lr == nil {
		return ""
	}
	if c := meta.FindStatusCondition(lr.Status.Conditions, lockingv1alpha1.ConditionAcquired); c != nil {
		return c.Reason
	}
	return ""
}

func isAcquired(lr *lockingv1alpha1.LockRequest) bool {
	return lr != nil && meta.IsStatusConditionTrue(lr.Status.Conditions, lockingv1alpha1.ConditionAcquired)
}

func isGone(lr *lockingv1alpha1.LockRequest) bool { return lr == nil }

// deleteRequest deletes a request, tolerating one already gone.
func deleteRequest(ctx context.Context, ns, name string) error {
	lr := &lockingv1alpha1.LockRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := env.Client.Delete(ctx, lr); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

func deadline(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
