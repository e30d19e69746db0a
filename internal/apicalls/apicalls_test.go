package apicalls

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestDescribe(t *testing.T) {
	for _, tc := range []struct{ method, url, verb, resource string }{
		{"GET", "/api/v1/namespaces/atlantis/pods/p1", "get", "pods"},
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/atlantis/leases?labelSelector=x", "list", "leases"},
		{"GET", "/apis/coordination.k8s.io/v1/leases?watch=true&resourceVersion=5", "watch", "leases"},
		{"POST", "/apis/locking.runatlantis.io/v1alpha1/namespaces/atlantis/projectlocks", "create", "projectlocks"},
		{"PUT", "/apis/locking.runatlantis.io/v1alpha1/namespaces/atlantis/lockrequests/lr1/status", "update", "lockrequests/status"},
		{"PATCH", "/apis/locking.runatlantis.io/v1alpha1/namespaces/atlantis/lockrequests/lr1", "patch", "lockrequests"},
		{"DELETE", "/apis/coordination.k8s.io/v1/namespaces/atlantis/leases/l1", "delete", "leases"},
		{"DELETE", "/apis/coordination.k8s.io/v1/namespaces/atlantis/leases", "deletecollection", "leases"},
		{"GET", "/api/v1/namespaces/atlantis", "get", "namespaces"},
		{"PUT", "/api/v1/namespaces/atlantis/finalize", "update", "namespaces/finalize"},
		{"POST", "/apis/events.k8s.io/v1/namespaces/atlantis/events", "create", "events"},
		{"GET", "/readyz", "GET", "nonresource"},
		{"GET", "/apis/locking.runatlantis.io/v1alpha1", "GET", "nonresource"},
	} {
		req := httptest.NewRequest(tc.method, tc.url, nil)
		if verb, resource := Describe(req); verb != tc.verb || resource != tc.resource {
			t.Errorf("%s %s: %s %s, want %s %s", tc.method, tc.url, verb, resource, tc.verb, tc.resource)
		}
	}
}

// TestRecorderClassifiesAndMarksCalls sends requests through a wrapped transport to
// a server answering each status, and checks what the observer sees.
func TestRecorderClassifiesAndMarksCalls(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.WriteHeader(code)
	}))
	defer srv.Close()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	rec := NewRecorder(clk)
	var calls []Call
	rec.AddObserver(ObserverFunc(func(c Call) { calls = append(calls, c) }))
	client := &http.Client{Transport: rec.Wrap(http.DefaultTransport)}

	send := func(ctx context.Context, code int) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut,
			srv.URL+"/apis/coordination.k8s.io/v1/namespaces/ns/leases/l1?code="+strconv.Itoa(code), nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	want := map[int]Kind{200: KindNone, 404: KindNone, 409: KindNone, 410: KindNone, 422: KindClientError,
		403: KindDenied, 429: KindThrottled, 500: KindServerError, 503: KindUnavailable, 504: KindTimeout}
	for _, code := range []int{200, 404, 409, 410, 422, 403, 429, 500, 503, 504} {
		send(context.Background(), code)
	}
	send(FailuresReported(OnDecisionPath(context.Background())), 500)

	if len(calls) != len(want)+1 {
		t.Fatalf("%d calls observed, want %d", len(calls), len(want)+1)
	}
	for _, c := range calls[:len(want)] {
		if c.Kind != want[c.Code] || c.String() != "update leases" || c.DecisionPath || c.Reported {
			t.Errorf("%d: %+v; want kind %q, update leases, unmarked", c.Code, c, want[c.Code])
		}
		if c.Transient() != (c.Code == 429 || c.Code >= 500) {
			t.Errorf("%d: transient %t", c.Code, c.Transient())
		}
	}
	if last := calls[len(calls)-1]; !last.DecisionPath || !last.Reported || last.Kind != KindServerError {
		t.Errorf("the marked call: %+v; want on the decision path, reported, a server error", last)
	}
	got := rec.Percentiles(time.Time{})
	if diff := cmp.Diff([]string{"update leases"}, keys(got)); diff != "" || got["update leases"].Count != len(calls) {
		t.Errorf("percentiles %v; want one window of %d calls", got, len(calls))
	}
}

// TestRecorderTellsUnreachableFromCancelled: a server that is not there is
// unavailable; a call its caller cancelled is no failure.
func TestRecorderTellsUnreachableFromCancelled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	url := srv.URL
	srv.Close()
	rec := NewRecorder(clocktesting.NewFakeClock(time.Now()))
	var calls []Call
	rec.AddObserver(ObserverFunc(func(c Call) { calls = append(calls, c) }))
	client := &http.Client{Transport: rec.Wrap(http.DefaultTransport)}
	req, _ := http.NewRequest(http.MethodGet, url+"/readyz", nil)
	if resp, err := client.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatal("a closed server answered")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
	if resp, err := client.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatal("a cancelled call succeeded")
	}
	if len(calls) != 2 || calls[0].Kind != KindUnavailable || calls[1].Kind != KindNone {
		t.Errorf("calls %+v; want unavailable, then no failure", calls)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
