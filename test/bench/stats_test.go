package main

import (
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	// The classic nearest-rank example: 15 20 35 40 50.
	five := ms(50, 15, 40, 20, 35)
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond
	}
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", ms(7), 99, 7 * time.Millisecond},
		{"P5 of five is the first", five, 5, 15 * time.Millisecond},
		{"P30 of five", five, 30, 20 * time.Millisecond},
		{"P40 of five", five, 40, 20 * time.Millisecond},
		{"P50 of five", five, 50, 35 * time.Millisecond},
		{"P100 of five is the last", five, 100, 50 * time.Millisecond},
		{"P50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"P95 of 1..100", hundred, 95, 95 * time.Millisecond},
		{"P99 of 1..100", hundred, 99, 99 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.samples, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.samples, tc.p, got, tc.want)
			}
		})
	}
	if five[0] != 50*time.Millisecond {
		t.Error("Percentile sorted its input in place")
	}
}
