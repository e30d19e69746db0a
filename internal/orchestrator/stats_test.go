package orchestrator

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
			if diff := cmp.Diff(tc.want, percentilesOf(tc.in)); diff != "" {
				t.Errorf("percentiles (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWaitSamplesRespectRetention(t *testing.T) {
	var s samples
	s.add(t0, time.Second)
	s.add(t0.Add(time.Hour), 2*time.Second)
	if got := s.since(t0.Add(time.Minute)); got.Count != 1 || got.P50 != 2*time.Second {
		t.Errorf("since an hour's retention: %+v, want only the later sample", got)
	}
}
