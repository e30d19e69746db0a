package controller_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/apicalls"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// TestALockCycleRepeatsNoWrite counts the operator's API writes over lock cycles on
// fresh keys, made as pkg/lockclient makes them (with the release finalizer): the
// operator neither adds the finalizer again nor repeats a write because its cache
// still shows the object before its last write (before: 1.4 ProjectLock deletes and
// up to 1.7 ProjectLock status writes per cycle; `make bench` counts the same in
// its uncontended run).
func TestALockCycleRepeatsNoWrite(t *testing.T) {
	ns := isolatedNamespace(t)
	rec := apicalls.NewRecorder(clock.RealClock{})
	var mu sync.Mutex
	writes := map[string]int{}
	rec.AddObserver(apicalls.ObserverFunc(func(c apicalls.Call) {
		switch c.Verb {
		case "create", "update", "patch", "delete":
			mu.Lock()
			writes[c.String()]++
			mu.Unlock()
		}
	}))
	restCfg := rest.CopyConfig(env.Config)
	restCfg.Wrap(rec.Wrap)
	startIsolatedOperatorOn(t, restCfg, ns, clock.RealClock{}, orchestrator.DefaultConfig())

	const cycles = 10
	for i := range cycles {
		lr := makeLR(ns, fmt.Sprintf("cycle-%d", i)).path(fmt.Sprintf("k%d", i)).obj()
		lr.Finalizers = []string{lockingv1alpha1.ReleaseFinalizer}
		if err := k8s.Create(context.Background(), lr); err != nil {
			t.Fatal(err)
		}
		waitAcquired(t, ns, lr.Name)
		if err := k8s.Delete(context.Background(), lr); err != nil {
			t.Fatal(err)
		}
		waitLRGone(t, ns, lr.Name)
		name := lockNameOf(lr)
		waitGone(t, "ProjectLock "+name, func() error { _, err := getPL(ns, name); return err })
	}

	mu.Lock()
	defer mu.Unlock()
	t.Logf("operator writes over %d cycles: %v", cycles, writes)
	for what, most := range map[string]int{
		"create projectlocks":        cycles,
		"patch projectlocks":         cycles, // its finalizer removed when idle
		"delete projectlocks":        cycles,
		"patch lockrequests":         cycles, // the finalizer removed after the release
		"update lockrequests/status": cycles,
		// Written once per grant: not again from a cache that lags the write.
		"update projectlocks/status": cycles,
	} {
		if got := writes[what]; got > most {
			t.Errorf("%s: %d over %d lock cycles, want at most %d", what, got, cycles, most)
		}
	}
}
