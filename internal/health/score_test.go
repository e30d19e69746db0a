package health

import (
	"math"
	"testing"
)

func TestScore(t *testing.T) {
	for _, tc := range []struct {
		name        string
		errorRate   float64
		deadlocks   int
		utilisation float64
		want        int
	}{
		{"all well", 0, 0, 0, 100},
		{"tiny error rate costs nothing below one point", 0.019, 0, 0, 100},
		{"2 % errors cost 1 point", 0.02, 0, 0, 99},
		{"5 % errors (the alert threshold)", 0.05, 0, 0, 98},
		{"half the decisions fail", 0.5, 0, 0, 75},
		{"every decision fails: the 50-point cap", 1, 0, 0, 50},
		{"an error rate above 1 is capped", 3, 0, 0, 50},
		{"negative error rate counts as none", -1, 0, 0, 100},
		{"NaN error rate counts as none", math.NaN(), 0, 0, 100},
		{"one deadlock", 0, 1, 0, 90},
		{"three deadlocks", 0, 3, 0, 70},
		{"negative deadlocks count as none", 0, -2, 0, 100},
		{"queues at exactly 80 % cost nothing", 0, 0, 0.8, 100},
		{"queues at 81 %", 0, 0, 0.81, 99},
		{"queues at 90 %", 0, 0, 0.9, 90},
		{"full queue: the 20-point cap", 0, 0, 1, 80},
		{"over-full queue is capped", 0, 0, 1.7, 80},
		{"everything at once", 1, 2, 1, 10},
		{"floor at zero", 1, 10, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Score(tc.errorRate, tc.deadlocks, tc.utilisation); got != tc.want {
				t.Errorf("Score(%v, %d, %v) = %d, want %d", tc.errorRate, tc.deadlocks, tc.utilisation, got, tc.want)
			}
		})
	}
}

func TestQueueUtilization(t *testing.T) {
	for _, tc := range []struct {
		longest, max int
		want         float64
	}{
		{0, 1000, 0},
		{800, 1000, 0.8},
		{1000, 1000, 1},
		{5, 0, 0}, // unbounded queues are never full
	} {
		if got := QueueUtilization(tc.longest, tc.max); got != tc.want {
			t.Errorf("QueueUtilization(%d, %d) = %v, want %v", tc.longest, tc.max, got, tc.want)
		}
	}
}

func TestStatusOf(t *testing.T) {
	for score, want := range map[int]string{100: StatusHealthy, 80: StatusHealthy, 79: StatusDegraded, 50: StatusDegraded, 49: StatusUnhealthy, 0: StatusUnhealthy} {
		if got := StatusOf(score); got != want {
			t.Errorf("StatusOf(%d) = %q, want %q", score, got, want)
		}
	}
}
