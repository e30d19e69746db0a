package breaker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

var errDown = errors.New("the API server answered 500")

func newTestBreaker() (*Breaker, *clocktesting.FakeClock) {
	clk := clocktesting.NewFakeClock(t0)
	// No jitter: the open periods are exact.
	return newBreaker(Config{FailureThreshold: 3, OpenTimeout: time.Second, MaxOpenTimeout: 8 * time.Second}, clk, 0), clk
}

func allowed(t *testing.T, b *Breaker) func() {
	t.Helper()
	release, wait := b.Allow()
	if release == nil || wait != 0 {
		t.Fatalf("Allow in state %s: wait %s, want to run now", b.Status().State, wait)
	}
	return release
}

func TestBreakerOpensPausesProbesAndCloses(t *testing.T) {
	b, clk := newTestBreaker()
	allowed(t, b)()
	b.Record(true, errDown)
	b.Record(false, nil) // a success between failures: they are not in a row
	b.Record(true, errDown)
	b.Record(true, errDown)
	if st := b.Status(); st.State != Closed || st.Failures != 2 {
		t.Fatalf("after 2 failures in a row: %+v, want closed", st)
	}
	b.Record(true, errDown)
	st := b.Status()
	if st.State != Open || !st.Since.Equal(t0) || !st.RetryAt.Equal(t0.Add(time.Second)) || !strings.Contains(st.Describe(), "500") {
		t.Fatalf("after 3 failures in a row: %+v (%s), want open until t0+1s", st, st.Describe())
	}
	if release, wait := b.Allow(); release != nil || wait != time.Second {
		t.Errorf("open: Allow = %v, %s; want to wait 1s", release != nil, wait)
	}

	// The open period passes: one probe at a time.
	clk.Step(time.Second)
	probe := allowed(t, b)
	if release, wait := b.Allow(); release != nil || wait <= 0 {
		t.Errorf("a second decision while the probe runs may run: %v, %s", release != nil, wait)
	}
	// The probe fails: open again, for twice as long.
	b.Record(true, errDown)
	probe()
	if st := b.Status(); st.State != Open || !st.RetryAt.Equal(t0.Add(3*time.Second)) || !st.Since.Equal(t0) {
		t.Fatalf("after a failed probe: %+v, want open until t0+3s, since t0", st)
	}
	clk.Step(2 * time.Second)
	probe = allowed(t, b)
	b.Record(false, nil)
	probe()
	if st := b.Status(); st.State != Closed || st.Failures != 0 || !st.Since.IsZero() {
		t.Fatalf("after a probe that succeeded: %+v, want closed", st)
	}
	// Closed again, the first open period is the first again.
	for range 3 {
		b.Record(true, errDown)
	}
	if st := b.Status(); !st.RetryAt.Equal(clk.Now().Add(time.Second)) {
		t.Errorf("reopened: retry at %s, want %s", st.RetryAt, clk.Now().Add(time.Second))
	}
}

func TestBreakerOpenPeriodIsCapped(t *testing.T) {
	b, clk := newTestBreaker()
	for range 3 {
		b.Record(true, errDown)
	}
	var periods []time.Duration
	for range 6 {
		st := b.Status()
		periods = append(periods, st.RetryAt.Sub(clk.Now()))
		clk.SetTime(st.RetryAt)
		probe := allowed(t, b)
		b.Record(true, errDown)
		probe()
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}
	for i := range want {
		if periods[i] != want[i] {
			t.Fatalf("open periods %v, want %v", periods, want)
		}
	}
}

func TestReleaserGivesUpAfterTheCircuitStaysOpen(t *testing.T) {
	b, clk := newTestBreaker()
	r := &Releaser{Breaker: b, After: 10 * time.Second, Interval: time.Second, Clock: clk}
	if err := r.due(); err != nil {
		t.Fatalf("closed: %v", err)
	}
	for range 3 {
		b.Record(true, errDown)
	}
	// Open, then half-open and open again as probes fail: still one outage.
	for clk.Since(t0) < 10*time.Second {
		if err := r.due(); err != nil {
			t.Fatalf("gave up after %s: %v", clk.Since(t0), err)
		}
		clk.Step(500 * time.Millisecond)
		if release, _ := b.Allow(); release != nil {
			b.Record(true, errDown)
			release()
		}
	}
	err := r.due()
	if err == nil || !strings.Contains(err.Error(), "giving up leadership") || !strings.Contains(err.Error(), "500") {
		t.Fatalf("after 10s open: %v; want a reason that says so and names the failure", err)
	}
	// A success closes the circuit: the outage is over.
	b.Record(false, nil)
	if err := r.due(); err != nil {
		t.Errorf("closed again: %v", err)
	}
}

// TestReleaserStartGivesUpOnce runs Start on the real clock with a short interval.
func TestReleaserStartGivesUpOnce(t *testing.T) {
	b := New(Config{FailureThreshold: 1, OpenTimeout: time.Hour, MaxOpenTimeout: time.Hour}, clock.RealClock{})
	b.Record(true, errDown)
	gaveUp := make(chan error, 2)
	r := &Releaser{Breaker: b, After: time.Millisecond, Interval: time.Millisecond, Clock: clock.RealClock{},
		GiveUp: func(err error) { gaveUp <- err }}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(gaveUp) != 1 {
		t.Errorf("GiveUp called %d times, want once", len(gaveUp))
	}
}
