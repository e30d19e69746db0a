package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
)

// TestHangingWebhookDelaysNoHandOff runs hand-offs while the only webhook never
// answers: every hand-off still happens, the webhook's small queue fills and its
// events are dropped and counted, and nothing waits for it.
func TestHangingWebhookDelaysNoHandOff(t *testing.T) {
	var received atomic.Int64
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		received.Add(1)
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	// Registered after srv.Close, so it runs first: the handler must return for
	// Close to.
	t.Cleanup(func() { close(hang) })

	ns := newNamespace(t, "webhook")
	w := watchRequests(t, ns)
	ctx := deadline(t, 2*time.Minute)
	cfg := config.Default()
	cfg.Webhooks = []config.Webhook{{URL: srv.URL + "/hook", Timeout: time.Hour, MaxRetries: 3, QueueSize: 2}}
	op := startOperator(t, cfg).op

	const handOffs = 10
	create := func(i int) string {
		t.Helper()
		name := fmt.Sprintf("pr%d", i)
		if err := env.Client.Create(ctx, lockRequest(ns, name, "hooked", int32(i), "someone")); err != nil {
			t.Fatal(err)
		}
		return name
	}
	holder := create(1)
	if _, err := w.waitFor(ctx, holder, isAcquired); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= handOffs+1; i++ {
		waiter := create(i)
		if _, err := w.waitFor(ctx, waiter, func(lr *lockingv1alpha1.LockRequest) bool {
			return reason(lr) == lockingv1alpha1.ReasonQueued
		}); err != nil {
			t.Fatal(err)
		}
		if err := deleteRequest(ctx, ns, holder); err != nil {
			t.Fatal(err)
		}
		if _, err := w.waitFor(ctx, waiter, isAcquired); err != nil {
			t.Fatalf("hand-off %d with the webhook hanging: %v", i-1, err)
		}
		holder = waiter
	}

	// The webhook got its first event and hangs on it; of the ~60 events since,
	// two wait in its queue and the rest were dropped.
	if got := received.Load(); got != 1 {
		t.Errorf("the webhook received %d requests, want 1: it still hangs on the first", got)
	}
	wantMetrics(ctx, t, op.Registry, map[string]float64{
		`atlantis_lock_handoffs_total`:                             handOffs,
		`atlantis_lock_webhook_deliveries_total{result="success"}`: 0,
	})
	// Every event published but the three the webhook holds (one in flight, two
	// queued) was dropped for it, and counted.
	var published, dropped float64
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		got := gather(t, op.Registry)
		published = 0
		for series, v := range got {
			if strings.HasPrefix(series, "atlantis_lock_events_total{") {
				published += v
			}
		}
		dropped = got[`atlantis_lock_webhook_deliveries_total{result="dropped"}`]
		allDropsAreTheWebhooks := got["atlantis_lock_events_dropped_total"] == dropped
		return dropped == published-3 && allDropsAreTheWebhooks, nil
	})
	if err != nil {
		t.Errorf("%v events published, %v webhook deliveries dropped; want all but the 3 the webhook holds dropped", published, dropped)
	}
}
