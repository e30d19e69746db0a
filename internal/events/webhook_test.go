package events

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

const testSecret = "s3cret-signing-key-0123456789"

var sampleTime = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

// recordingClock is a fake clock that reports the duration of every timer it
// creates, after creating it, so a test knows a wait has begun before it steps.
type recordingClock struct {
	*clocktesting.FakeClock
	timers chan time.Duration
}

func newRecordingClock() *recordingClock {
	return &recordingClock{FakeClock: clocktesting.NewFakeClock(sampleTime), timers: make(chan time.Duration, 100)}
}

func (c *recordingClock) NewTimer(d time.Duration) clock.Timer {
	t := c.FakeClock.NewTimer(d)
	c.timers <- d
	return t
}

func (c *recordingClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := c.FakeClock.AfterFunc(d, f)
	c.timers <- d
	return t
}

// nextTimer returns the duration of the next timer created.
func (c *recordingClock) nextTimer(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.timers:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no timer was created")
		return 0
	}
}

// expectTimer waits for the next timer and checks its duration.
func (c *recordingClock) expectTimer(t *testing.T, want time.Duration) {
	t.Helper()
	if got := c.nextTimer(t); got != want {
		t.Fatalf("next timer: got %s, want %s", got, want)
	}
}

// results records what a webhook reports to Delivered.
type results struct {
	mu  sync.Mutex
	got []string
}

func (r *results) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, s)
}

func (r *results) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// expect checks the results reported so far.
func (r *results) expect(t *testing.T, want ...string) {
	t.Helper()
	if diff := cmp.Diff(want, r.list()); diff != "" {
		t.Errorf("delivery results (-want +got):\n%s", diff)
	}
}

func (r *results) count(s string) int {
	n := 0
	for _, g := range r.list() {
		if g == s {
			n++
		}
	}
	return n
}

// received is one request a test server got.
type received struct {
	header http.Header
	method string
	body   []byte
}

// testServer answers each request with the next of statuses (the last repeats),
// or, when a status is 0, hangs until release is closed or the client gives up.
// Every request is recorded and announced on arrived.
type testServer struct {
	*httptest.Server
	statuses []int
	// retryAfter, when set, is the Retry-After header of every answer.
	retryAfter string
	release    chan struct{}
	once       sync.Once
	arrived    chan received

	mu  sync.Mutex
	got []received
}

func newTestServer(t *testing.T, statuses ...int) *testServer {
	s := &testServer{statuses: statuses, release: make(chan struct{}), arrived: make(chan received, 1000)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	// Runs before Close: a hanging handler must return for Close to.
	t.Cleanup(s.releaseAll)
	return s
}

func (s *testServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := received{header: r.Header.Clone(), method: r.Method, body: body}
	s.mu.Lock()
	n := len(s.got)
	s.got = append(s.got, rec)
	s.mu.Unlock()
	s.arrived <- rec
	status := s.statuses[min(n, len(s.statuses)-1)]
	if status == 0 {
		select {
		case <-s.release:
			status = http.StatusOK
		case <-r.Context().Done():
			return
		}
	}
	if s.retryAfter != "" {
		w.Header().Set("Retry-After", s.retryAfter)
	}
	w.WriteHeader(status)
}

// releaseAll lets hanging requests, and all later ones, answer 200.
func (s *testServer) releaseAll() { s.once.Do(func() { close(s.release) }) }

func (s *testServer) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

func (s *testServer) waitArrival(t *testing.T) received {
	t.Helper()
	select {
	case r := <-s.arrived:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached the server")
		return received{}
	}
}

// testWebhook returns a webhook to url on a recording clock, with jitter 0.5,
// backoff 1s doubling up to 10s, a 5s attempt timeout and 3 retries, changed by
// mod.
func testWebhook(t *testing.T, url string, mod func(*WebhookOptions)) (*Webhook, *recordingClock, *results) {
	t.Helper()
	clk := newRecordingClock()
	res := &results{}
	opts := WebhookOptions{
		URL:         url,
		Secret:      []byte(testSecret),
		Timeout:     5 * time.Second,
		MaxRetries:  3,
		BackoffBase: time.Second,
		BackoffMax:  10 * time.Second,
		Clock:       clk,
		Jitter:      func() float64 { return 0.5 },
		Delivered:   res.add,
	}
	if mod != nil {
		mod(&opts)
	}
	w, err := NewWebhook(opts)
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	return w, clk, res
}

// handleAsync runs HandleEvent on a goroutine and returns its result channel.
func handleAsync(ctx context.Context, w *Webhook, e Event) <-chan error {
	done := make(chan error, 1)
	go func() { done <- w.HandleEvent(ctx, e) }()
	return done
}

func waitDone(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("HandleEvent did not return")
		return nil
	}
}

func sampleEvent() Event {
	return Event{
		Type:         LockAcquired,
		Time:         sampleTime,
		Namespace:    "atlantis",
		LockKey:      "acme/infra/modules/vpc/default/vpc",
		Lock:         "acme-infra-vpc-default-1a2b3c",
		Repository:   "acme/infra",
		Request:      "pr-42-vpc",
		RequestUID:   "6f1c1f7e-0d5b-4c1e-9d2a-2b6f0e5d8c11",
		Owner:        "acme/infra#42",
		Pull:         42,
		PullURL:      "https://github.com/acme/infra/pull/42",
		User:         "alice",
		FencingToken: "7",
		Reason:       "Acquired",
		Message:      "lock granted after waiting 3s",
		Wait:         3 * time.Second,
	}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestWebhookDeliversSignedEventJSON(t *testing.T) {
	srv := newTestServer(t, http.StatusOK)
	w, _, res := testWebhook(t, srv.URL+"/hook", nil)
	e := sampleEvent()
	e.Cycle = []string{"a", "b"}
	e.Health = &Health{Score: 90, Components: map[string]orchestrator.ComponentStatus{
		"event_bus": {Status: "healthy", Score: 100, LastCheck: sampleTime},
	}}

	if err := w.HandleEvent(context.Background(), e); err != nil {
		t.Fatalf("HandleEvent: %v", err)
	}
	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost {
		t.Errorf("method %s, want POST", r.method)
	}
	want, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.body) != string(want) {
		t.Errorf("body:\n got %s\nwant %s", r.body, want)
	}
	var back Event
	if err := json.Unmarshal(r.body, &back); err != nil {
		t.Fatalf("body does not parse as an Event: %v", err)
	}
	if diff := cmp.Diff(e, back); diff != "" {
		t.Errorf("body parsed back differs (-sent +received):\n%s", diff)
	}
	for h, want := range map[string]string{
		"Content-Type": "application/json",
		"User-Agent":   "atlantis-lock-operator",
		HeaderEvent:    "lock_acquired",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("header %s: got %q, want %q", h, got, want)
		}
	}
	if id := r.header.Get(HeaderDelivery); !uuidPattern.MatchString(id) {
		t.Errorf("header %s: %q is not a random UUID", HeaderDelivery, id)
	}
	// The signature, computed here independently of Sign.
	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write(r.body)
	wantSig := "sha256=" + hex.EncodeToString(m.Sum(nil))
	sig := r.header.Get(HeaderSignature)
	if sig != wantSig {
		t.Errorf("header %s: got %q, want %q", HeaderSignature, sig, wantSig)
	}
	if !VerifySignature([]byte(testSecret), r.body, sig) {
		t.Error("VerifySignature refuses the signature the webhook sent")
	}
	res.expect(t, DeliverySuccess)
}

func TestWebhookWithoutSecretSendsNoSignature(t *testing.T) {
	srv := newTestServer(t, http.StatusNoContent)
	w, _, res := testWebhook(t, srv.URL, func(o *WebhookOptions) { o.Secret = nil })
	if err := w.HandleEvent(context.Background(), sampleEvent()); err != nil {
		t.Fatalf("HandleEvent: %v", err)
	}
	if h, ok := srv.requests()[0].header[HeaderSignature]; ok {
		t.Errorf("unsigned webhook sent %s: %q", HeaderSignature, h)
	}
	res.expect(t, DeliverySuccess)
}

func TestDeliveryIDsDifferPerEvent(t *testing.T) {
	srv := newTestServer(t, http.StatusOK)
	w, _, _ := testWebhook(t, srv.URL, nil)
	for range 3 {
		if err := w.HandleEvent(context.Background(), sampleEvent()); err != nil {
			t.Fatalf("HandleEvent: %v", err)
		}
	}
	seen := map[string]bool{}
	for _, r := range srv.requests() {
		seen[r.header.Get(HeaderDelivery)] = true
	}
	if len(seen) != 3 {
		t.Errorf("3 events got %d distinct delivery IDs: %v", len(seen), seen)
	}
}

func TestVerifySignature(t *testing.T) {
	secret, body := []byte(testSecret), []byte(`{"type":"lock_acquired"}`)
	good := Sign(secret, body)
	tests := []struct {
		name   string
		secret []byte
		body   []byte
		header string
		want   bool
	}{
		{"the signature", secret, body, good, true},
		{"upper-case hex", secret, body, "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), true},
		{"another body", secret, []byte(`{"type":"lock_released"}`), good, false},
		{"body with a trailing newline", secret, append(append([]byte(nil), body...), '\n'), good, false},
		{"another secret", []byte("other"), body, good, false},
		{"no prefix", secret, body, strings.TrimPrefix(good, "sha256="), false},
		{"another algorithm", secret, body, "sha1=" + strings.TrimPrefix(good, "sha256="), false},
		{"not hex", secret, body, "sha256=zz", false},
		{"truncated", secret, body, good[:len(good)-2], false},
		{"empty header", secret, body, "", false},
		{"empty secret", nil, body, Sign(nil, body), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifySignature(tt.secret, tt.body, tt.header); got != tt.want {
				t.Errorf("VerifySignature = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWebhookRetriesWithBackoffOnTheClock(t *testing.T) {
	srv := newTestServer(t, http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusOK)
	w, clk, res := testWebhook(t, srv.URL, nil)
	done := handleAsync(context.Background(), w, sampleEvent())

	// Attempt 1 fails; the first backoff is 1s spread by jitter 0.5: 750ms.
	clk.expectTimer(t, 5*time.Second)
	clk.expectTimer(t, 750*time.Millisecond)
	if n := len(srv.requests()); n != 1 {
		t.Fatalf("%d attempts before the backoff is over, want 1", n)
	}
	clk.Step(749 * time.Millisecond)
	if n := clk.Waiters(); n != 1 {
		t.Fatalf("the backoff timer fired early: %d waiters after 749ms of 750ms", n)
	}
	clk.Step(time.Millisecond)

	// Attempt 2 fails; the backoff doubles: 2s, so 1.5s.
	clk.expectTimer(t, 5*time.Second)
	clk.expectTimer(t, 1500*time.Millisecond)
	if n := len(srv.requests()); n != 2 {
		t.Fatalf("%d attempts before the second backoff is over, want 2", n)
	}
	clk.Step(1500 * time.Millisecond)

	clk.expectTimer(t, 5*time.Second)
	if err := waitDone(t, done); err != nil {
		t.Fatalf("HandleEvent: %v", err)
	}
	reqs := srv.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d attempts, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.header.Get(HeaderDelivery) != reqs[0].header.Get(HeaderDelivery) {
			t.Errorf("attempt %d has delivery ID %q, attempt 1 %q", i+1, r.header.Get(HeaderDelivery), reqs[0].header.Get(HeaderDelivery))
		}
		if string(r.body) != string(reqs[0].body) || r.header.Get(HeaderSignature) != reqs[0].header.Get(HeaderSignature) {
			t.Errorf("attempt %d sent another body or signature than attempt 1", i+1)
		}
	}
	res.expect(t, DeliverySuccess)
}

func TestWebhookRetryableStatuses(t *testing.T) {
	for _, status := range []int{
		http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
	} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := newTestServer(t, status, http.StatusOK)
			w, clk, res := testWebhook(t, srv.URL, func(o *WebhookOptions) { o.MaxRetries = 1 })
			done := handleAsync(context.Background(), w, sampleEvent())
			clk.expectTimer(t, 5*time.Second)
			clk.expectTimer(t, 750*time.Millisecond)
			clk.Step(750 * time.Millisecond)
			if err := waitDone(t, done); err != nil {
				t.Fatalf("HandleEvent: %v", err)
			}
			if n := len(srv.requests()); n != 2 {
				t.Errorf("%d attempts, want 2", n)
			}
			res.expect(t, DeliverySuccess)
		})
	}
}

// TestWebhookHonoursRetryAfter: a 429 or 503 with Retry-After (seconds or an HTTP
// date) waits at least that long before the next attempt; other answers' headers
// are not read; a shorter Retry-After does not shorten the backoff; one beyond the
// longest backoff ends the delivery rather than retry early.
func TestWebhookHonoursRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		wantWait   time.Duration // 0: no retry
	}{
		{"429 with seconds", http.StatusTooManyRequests, "3", 3 * time.Second},
		{"503 with a date", http.StatusServiceUnavailable, sampleTime.Add(4 * time.Second).Format(http.TimeFormat), 4 * time.Second},
		{"503 with a date in the past", http.StatusServiceUnavailable, sampleTime.Add(-time.Hour).Format(http.TimeFormat), 750 * time.Millisecond},
		{"429 asking for less than the backoff", http.StatusTooManyRequests, "0", 750 * time.Millisecond},
		{"429 with a header that is not a time", http.StatusTooManyRequests, "soon", 750 * time.Millisecond},
		{"500 is not told when", http.StatusInternalServerError, "3", 750 * time.Millisecond},
		{"at the longest backoff", http.StatusTooManyRequests, "10", 10 * time.Second},
		{"beyond the longest backoff", http.StatusTooManyRequests, "11", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestServer(t, tc.status, http.StatusOK)
			srv.retryAfter = tc.retryAfter
			w, clk, res := testWebhook(t, srv.URL, func(o *WebhookOptions) { o.MaxRetries = 1 })
			done := handleAsync(context.Background(), w, sampleEvent())
			clk.expectTimer(t, 5*time.Second)
			if tc.wantWait == 0 {
				err := waitDone(t, done)
				if err == nil || !strings.Contains(err.Error(), "asked to wait 11s (Retry-After), longer than the longest backoff, 10s") {
					t.Fatalf("HandleEvent: %v, want the Retry-After beyond the backoff named", err)
				}
				if n := len(srv.requests()); n != 1 {
					t.Errorf("%d attempts, want 1", n)
				}
				res.expect(t, DeliveryFailure)
				return
			}
			clk.expectTimer(t, tc.wantWait)
			clk.Step(tc.wantWait - time.Millisecond)
			if n := len(srv.requests()); n != 1 {
				t.Fatalf("%d attempts %s into a wait of %s, want 1", n, tc.wantWait-time.Millisecond, tc.wantWait)
			}
			clk.Step(time.Millisecond)
			if err := waitDone(t, done); err != nil {
				t.Fatalf("HandleEvent: %v", err)
			}
			if n := len(srv.requests()); n != 2 {
				t.Errorf("%d attempts, want 2", n)
			}
			res.expect(t, DeliverySuccess)
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := sampleTime
	for _, tc := range []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"  ", 0, false},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"99999999999999999", 7 * 24 * time.Hour, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-90 * time.Second).Format(http.TimeFormat), 0, true},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0, true},
		{"tomorrow", 0, false},
	} {
		got, ok := parseRetryAfter(tc.header, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

func TestWebhookDoesNotRetryRefusals(t *testing.T) {
	for _, status := range []int{
		http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusGone, http.StatusUnprocessableEntity, http.StatusFound, http.StatusPermanentRedirect,
	} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := newTestServer(t, status)
			w, clk, res := testWebhook(t, srv.URL, nil)
			err := w.HandleEvent(context.Background(), sampleEvent())
			if err == nil {
				t.Fatal("HandleEvent succeeded")
			}
			if want := fmt.Sprintf("HTTP %d", status); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "not retried") {
				t.Errorf("error %q does not say %q and not retried", err, want)
			}
			if n := len(srv.requests()); n != 1 {
				t.Errorf("%d attempts, want 1", n)
			}
			// Only the attempt's timer: no backoff wait began.
			clk.expectTimer(t, 5*time.Second)
			if n := len(clk.timers); n != 0 {
				t.Errorf("%d more timers after a refusal, want none", n)
			}
			res.expect(t, DeliveryFailure)
		})
	}
}

// The bus logs a handler error again only when its text changes: the same
// failure for events of different types must read the same.
func TestWebhookErrorIsTheSameForEveryEvent(t *testing.T) {
	srv := newTestServer(t, http.StatusBadRequest)
	w, _, _ := testWebhook(t, srv.URL, nil)
	var texts []string
	for _, typ := range []Type{LockAcquired, LockReleased, QueueTimeout} {
		e := sampleEvent()
		e.Type = typ
		if err := w.HandleEvent(context.Background(), e); err != nil {
			texts = append(texts, err.Error())
		}
	}
	if len(texts) != 3 || texts[1] != texts[0] || texts[2] != texts[0] {
		t.Errorf("errors differ between events, or are missing: %q", texts)
	}
}

func TestWebhookGivesUpAfterMaxRetriesWithCappedBackoff(t *testing.T) {
	srv := newTestServer(t, http.StatusInternalServerError)
	w, clk, res := testWebhook(t, srv.URL, func(o *WebhookOptions) {
		o.MaxRetries = 4
		o.BackoffMax = 3 * time.Second
	})
	done := handleAsync(context.Background(), w, sampleEvent())
	// 1s, 2s, then 4s and 8s capped at 3s; each spread over its upper half.
	for _, backoff := range []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 2250 * time.Millisecond, 2250 * time.Millisecond} {
		clk.expectTimer(t, 5*time.Second)
		clk.expectTimer(t, backoff)
		clk.Step(backoff)
	}
	clk.expectTimer(t, 5*time.Second)
	err := waitDone(t, done)
	if err == nil {
		t.Fatal("HandleEvent succeeded against a server that always fails")
	}
	if !strings.Contains(err.Error(), "after 5 attempt(s)") || !strings.Contains(err.Error(), "HTTP 500 Internal Server Error") {
		t.Errorf("error %q does not give the attempts and the last status", err)
	}
	if n := len(srv.requests()); n != 5 {
		t.Errorf("%d attempts, want 1 + 4 retries", n)
	}
	res.expect(t, DeliveryFailure)
}

func TestBackoffJitterRange(t *testing.T) {
	for _, tt := range []struct {
		jitter float64
		want   time.Duration
	}{
		{0, 2 * time.Second},
		{0.5, 3 * time.Second},
		{0.999999, 4*time.Second - 2*time.Microsecond},
		{-1, 2 * time.Second}, // a bad source is clamped
		{7, 4 * time.Second},
	} {
		w, _, _ := testWebhook(t, "http://example.invalid", func(o *WebhookOptions) { o.Jitter = func() float64 { return tt.jitter } })
		if got := w.backoff(3); got != tt.want {
			t.Errorf("jitter %v: backoff after attempt 3 = %s, want %s", tt.jitter, got, tt.want)
		}
	}
}

func TestWebhookAttemptTimeoutAgainstHangingServer(t *testing.T) {
	srv := newTestServer(t, 0) // hangs
	w, clk, res := testWebhook(t, srv.URL, func(o *WebhookOptions) { o.MaxRetries = 1 })
	done := handleAsync(context.Background(), w, sampleEvent())

	clk.expectTimer(t, 5*time.Second)
	srv.waitArrival(t)
	clk.Step(5 * time.Second) // attempt 1 runs out of time
	clk.expectTimer(t, 750*time.Millisecond)
	clk.Step(750 * time.Millisecond)
	clk.expectTimer(t, 5*time.Second)
	srv.waitArrival(t)
	clk.Step(5 * time.Second) // attempt 2 too

	err := waitDone(t, done)
	if err == nil {
		t.Fatal("HandleEvent succeeded against a hanging server")
	}
	if !strings.Contains(err.Error(), "no response within 5s") || !strings.Contains(err.Error(), "after 2 attempt(s)") {
		t.Errorf("error %q does not say the attempts timed out", err)
	}
	res.expect(t, DeliveryFailure)
}

func TestWebhookContextCancelAborts(t *testing.T) {
	t.Run("during a backoff wait", func(t *testing.T) {
		srv := newTestServer(t, http.StatusInternalServerError)
		w, clk, res := testWebhook(t, srv.URL, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := handleAsync(ctx, w, sampleEvent())
		clk.expectTimer(t, 5*time.Second)
		clk.expectTimer(t, 750*time.Millisecond)
		cancel()
		err := waitDone(t, done)
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "abandoned after 1 attempt(s)") {
			t.Errorf("error %v: want an abandoned delivery wrapping context.Canceled", err)
		}
		if n := len(srv.requests()); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
		res.expect(t, DeliveryFailure)
	})
	t.Run("during an attempt", func(t *testing.T) {
		srv := newTestServer(t, 0) // hangs
		w, clk, res := testWebhook(t, srv.URL, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := handleAsync(ctx, w, sampleEvent())
		clk.expectTimer(t, 5*time.Second)
		srv.waitArrival(t)
		cancel()
		err := waitDone(t, done)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v: want one wrapping context.Canceled", err)
		}
		if n := len(clk.timers); n != 0 {
			t.Errorf("%d timers after the cancel, want no backoff", n)
		}
		res.expect(t, DeliveryFailure)
	})
}

func TestWebhookNeverRevealsSecret(t *testing.T) {
	hexSecret := hex.EncodeToString([]byte(testSecret))
	// The URL's query is no secret of ours, but errors and logs leave it out
	// in case it holds a token.
	check := func(t *testing.T, what, s string) {
		t.Helper()
		for _, leak := range []string{testSecret, hexSecret, "token=abc"} {
			if strings.Contains(s, leak) {
				t.Errorf("%s reveals %q: %s", what, leak, s)
			}
		}
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	// retry drives a failing delivery with one retry: attempt, backoff, attempt.
	retry := func(t *testing.T, clk *recordingClock, _ *testServer) {
		clk.expectTimer(t, 5*time.Second)
		clk.expectTimer(t, 750*time.Millisecond)
		clk.Step(750 * time.Millisecond)
		clk.expectTimer(t, 5*time.Second)
	}
	tests := []struct {
		name  string
		srv   *testServer // nil: closed, connection refused
		drive func(t *testing.T, clk *recordingClock, srv *testServer)
	}{
		{"refused", newTestServer(t, http.StatusUnauthorized), func(t *testing.T, clk *recordingClock, _ *testServer) {
			clk.expectTimer(t, 5*time.Second)
		}},
		{"failing", newTestServer(t, http.StatusInternalServerError), retry},
		{"connection refused", nil, retry},
		{"hanging", newTestServer(t, 0), func(t *testing.T, clk *recordingClock, srv *testServer) {
			clk.expectTimer(t, 5*time.Second)
			srv.waitArrival(t)
			clk.Step(5 * time.Second)
			clk.expectTimer(t, 750*time.Millisecond)
			clk.Step(750 * time.Millisecond)
			clk.expectTimer(t, 5*time.Second)
			srv.waitArrival(t)
			clk.Step(5 * time.Second)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := closed.URL
			if tt.srv != nil {
				url = tt.srv.URL
			}
			var logs []string
			w, clk, _ := testWebhook(t, url+"/hook?token=abc", func(o *WebhookOptions) {
				o.MaxRetries = 1
				o.Log = funcr.New(func(prefix, args string) { logs = append(logs, prefix+args) }, funcr.Options{Verbosity: 1})
			})
			done := handleAsync(context.Background(), w, sampleEvent())
			tt.drive(t, clk, tt.srv)
			err := waitDone(t, done)
			if err == nil {
				t.Fatal("HandleEvent succeeded")
			}
			t.Logf("error: %v", err)
			check(t, "the error", err.Error())
			if tt.name != "refused" && len(logs) == 0 {
				t.Error("no log line for the retried attempt")
			}
			for _, l := range logs {
				check(t, "a log line", l)
			}
			check(t, "the webhook printed", fmt.Sprintf("%v %s %#v %+v", w, w, w, w))
			opts := w.opts
			opts.URL = "" // printed options show the URL as given
			check(t, "the options printed", fmt.Sprintf("%v %+v %#v %x", opts, opts, opts, opts.Secret))
			j, err := json.Marshal(struct{ Secret Secret }{w.opts.Secret})
			if err != nil {
				t.Fatal(err)
			}
			check(t, "the secret as JSON", string(j))
			var logged []string
			funcr.New(func(prefix, args string) { logged = append(logged, prefix+args) }, funcr.Options{}).
				Info("options", "secret", w.opts.Secret, "webhook", w)
			check(t, "the secret and webhook logged", strings.Join(logged, "\n"))
		})
	}
}

func TestNewWebhookChecksOptions(t *testing.T) {
	tests := []struct {
		name string
		opts WebhookOptions
		want string
	}{
		{"no URL", WebhookOptions{}, `webhook url "" is not an absolute http(s) URL`},
		{"relative URL", WebhookOptions{URL: "/hook"}, "not an absolute http(s) URL"},
		{"another scheme", WebhookOptions{URL: "ftp://example.com/x"}, "not an absolute http(s) URL"},
		{"bad URL keeps its query out", WebhookOptions{URL: "http://exa mple.com/x?token=abc"}, `webhook url "http://exa mple.com/x" is not`},
		{"unknown event", WebhookOptions{URL: "https://example.com/x?token=abc", Events: []Type{"lock_grabbed"}}, `webhook https://example.com/x: unknown event type "lock_grabbed" in events`},
		{"negative timeout", WebhookOptions{URL: "https://example.com", Timeout: -time.Second}, "timeout must be greater than 0, got -1s"},
		{"negative retries", WebhookOptions{URL: "https://example.com", MaxRetries: -1}, "max_retries must not be negative, got -1"},
		{"negative queue", WebhookOptions{URL: "https://example.com", QueueSize: -1}, "queue_size must be greater than 0, got -1"},
		{"named", WebhookOptions{Name: "webhooks[2]", URL: "https://example.com", MaxRetries: -1}, "webhooks[2]: max_retries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewWebhook(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewWebhook error %v, want one containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "token=abc") {
				t.Errorf("error %q shows the URL's query", err)
			}
		})
	}

	w, err := NewWebhook(WebhookOptions{URL: "https://user@hooks.example.com/atlantis?token=abc#x"})
	if err != nil {
		t.Fatal(err)
	}
	got := struct {
		Name              string
		Timeout           time.Duration
		QueueSize         int
		Base, Max         time.Duration
		HasClient, HasClk bool
	}{w.Name(), w.opts.Timeout, w.opts.QueueSize, w.opts.BackoffBase, w.opts.BackoffMax, w.opts.Client != nil, w.opts.Clock != nil}
	want := got
	want.Name, want.Timeout, want.QueueSize = "webhook https://hooks.example.com/atlantis", 5*time.Second, 100
	want.Base, want.Max, want.HasClient, want.HasClk = time.Second, 30*time.Second, true, true
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

// countingObserver counts what the bus tells it.
type countingObserver struct {
	mu        sync.Mutex
	published int
	dropped   map[string]int
}

func (o *countingObserver) Published(Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.published++
}

func (o *countingObserver) Dropped(sub string, _ Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dropped == nil {
		o.dropped = map[string]int{}
	}
	o.dropped[sub]++
}

func (o *countingObserver) Failed(string, Event, error) {}

func TestHangingWebhookOnlyFillsItsOwnQueue(t *testing.T) {
	srv := newTestServer(t, 0) // hangs until released
	w, _, res := testWebhook(t, srv.URL, func(o *WebhookOptions) { o.QueueSize = 2 })
	next := &countingObserver{}
	bus := NewBus(Options{BufferSize: 1000, Observer: WebhookDrops(next, w)})
	sub, err := w.Subscribe(bus)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var others []Event
	other, err := bus.Subscribe("other", HandlerFunc(func(_ context.Context, e Event) error {
		mu.Lock()
		defer mu.Unlock()
		others = append(others, e)
		return nil
	}), Filter{})
	if err != nil {
		t.Fatal(err)
	}

	// The first event is taken off the queue and hangs in delivery; the
	// next two fill the queue; the other 97 are dropped for the webhook.
	e := sampleEvent()
	bus.Publish(e)
	srv.waitArrival(t)
	for i := 2; i <= 100; i++ {
		e.FencingToken = fmt.Sprint(i)
		bus.Publish(e)
	}
	st := sub.Stats()
	if st.Dropped != 97 || st.Buffered != 2 || st.Capacity != 2 {
		t.Errorf("webhook subscription: dropped %d, buffered %d of %d; want 97 dropped, 2 of 2 buffered", st.Dropped, st.Buffered, st.Capacity)
	}
	if n := res.count(DeliveryDropped); n != 97 {
		t.Errorf("%d deliveries counted dropped, want 97", n)
	}
	next.mu.Lock()
	if next.published != 100 || next.dropped[w.Name()] != 97 || len(next.dropped) != 1 {
		t.Errorf("the wrapped observer saw %d published, drops %v; want 100 and 97 for %q only", next.published, next.dropped, w.Name())
	}
	next.mu.Unlock()

	// Released, the webhook delivers what it holds; the other subscriber got
	// everything.
	srv.releaseAll()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := res.count(DeliverySuccess); n != 3 {
		t.Errorf("%d deliveries succeeded after the release, want 3", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(others) != 100 || other.Stats().Dropped != 0 {
		t.Errorf("the other subscriber handled %d events and dropped %d, want 100 and 0", len(others), other.Stats().Dropped)
	}
}

func TestWebhookSubscribeFiltersTypes(t *testing.T) {
	srv := newTestServer(t, http.StatusOK)
	w, _, res := testWebhook(t, srv.URL, func(o *WebhookOptions) { o.Events = []Type{LockAcquired, DeadlockDetected} })
	bus := NewBus(Options{BufferSize: 10})
	if _, err := w.Subscribe(bus); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []Type{LockRequested, LockAcquired, LockReleased, DeadlockDetected, MetricsUpdated} {
		e := sampleEvent()
		e.Type = typ
		bus.Publish(e)
	}
	if err := bus.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	var got []string
	for _, r := range srv.requests() {
		got = append(got, r.header.Get(HeaderEvent))
	}
	if diff := cmp.Diff([]string{"lock_acquired", "deadlock_detected"}, got); diff != "" {
		t.Errorf("delivered types (-want +got):\n%s", diff)
	}
	res.expect(t, DeliverySuccess, DeliverySuccess)
}
