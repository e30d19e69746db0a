package main

import (
	"testing"
	"time"
)

func TestFmtDuration(t *testing.T) {
	tests := map[time.Duration]string{
		10 * time.Millisecond:                       "10 ms",
		100*time.Millisecond + 400*time.Microsecond: "100.4 ms",
		1234 * time.Microsecond:                     "1.2 ms",
		250 * time.Microsecond:                      "0.250 ms",
		1500*time.Millisecond + 10*time.Microsecond: "1500.0 ms",
	}
	for d, want := range tests {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestAtMostComparesUnrounded(t *testing.T) {
	row := atMost("p95", 100*time.Millisecond+time.Microsecond, 100*time.Millisecond)
	if row.Met == nil || *row.Met {
		t.Errorf("100.001 ms against ≤ 100 ms: met = %v, want false", row.Met)
	}
}
