package latency

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentilesNearestRank(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var ds []time.Duration
		for _, n := range ns {
			ds = append(ds, time.Duration(n)*time.Millisecond)
		}
		return ds
	}
	tests := []struct {
		name string
		in   []time.Duration
		want Percentiles
	}{
		{"none", nil, Percentiles{}},
		{"one", ms(7), Percentiles{Count: 1, P50: 7 * time.Millisecond, P90: 7 * time.Millisecond, P95: 7 * time.Millisecond, P99: 7 * time.Millisecond}},
		{"ten, unsorted", ms(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), Percentiles{Count: 10, P50: 5 * time.Millisecond,
			P90: 9 * time.Millisecond, P95: 10 * time.Millisecond, P99: 10 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Of(tc.in)); diff != "" {
				t.Errorf("percentiles (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWindowSinceLeavesOutOlderSamples(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var w Window
	w.Add(t0, time.Second)
	w.Add(t0.Add(time.Hour), 2*time.Second)
	if got := w.Since(t0.Add(time.Minute)); got.Count != 1 || got.P50 != 2*time.Second {
		t.Errorf("since an hour's retention: %+v, want only the later sample", got)
	}
}

func TestWindowKeepsTheNewestSamples(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var w Window
	for i := range MaxSamples + 10 {
		w.Add(t0.Add(time.Duration(i)*time.Second), time.Duration(i)*time.Millisecond)
	}
	got := w.Since(time.Time{})
	// The newest MaxSamples are 10 ms ... (MaxSamples+9) ms: their median (nearest
	// rank MaxSamples/2) is 10+MaxSamples/2-1 ms; with the oldest kept it would be 10 ms less.
	if want := time.Duration(10+MaxSamples/2-1) * time.Millisecond; got.Count != MaxSamples || got.P50 != want {
		t.Errorf("after %d samples: %+v; want the newest %d, P50 %s", MaxSamples+10, got, MaxSamples, want)
	}
}
