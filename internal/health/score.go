// Package health scores the lock service's health and checks its components
// periodically: the overall score of the original design, and a status per
// component (Kubernetes backend, event bus, metrics collector, timeout manager,
// deadlock detector) that feeds /readyz, /status, atlantis_component_health and
// the system_health_check event.
package health

import "math"

// Component statuses.
const (
	// StatusHealthy: the component works.
	StatusHealthy = "healthy"
	// StatusDegraded: the component works, with problems (errors, drops).
	StatusDegraded = "degraded"
	// StatusUnhealthy: the component does not work; /readyz fails.
	StatusUnhealthy = "unhealthy"
)

// Score is the original design's health score, 0 to 100:
//
//   - up to 50 points off for errors: errorRate (0 to 1) × 50;
//   - 10 points off per deadlock found by the latest scan;
//   - up to 20 points off when the fullest queue is more than 80 % full:
//     (queueUtilization − 0.8) × 100.
//
// Points are whole and cut toward zero, as the original's int conversions do.
// errorRate and queueUtilization are clamped to 0..1 (so the caps hold) and a
// NaN counts as 0.
func Score(errorRate float64, currentDeadlocks int, queueUtilization float64) int {
	score := 100
	if r := clamp01(errorRate); r > 0 {
		score -= int(r * 50)
	}
	score -= max(currentDeadlocks, 0) * 10
	if u := clamp01(queueUtilization); u > 0.8 {
		// Rounded to a millionth first: 0.9-0.8 is 0.0999… in floating point, and
		// a queue 90 % full must cost 10 points, not 9.
		score -= int(math.Round((u-0.8)*100*1e6) / 1e6)
	}
	return max(score, 0)
}

// QueueUtilization is the fullest queue's share of maxQueueLength, 0 when
// queues are unbounded (maxQueueLength 0).
func QueueUtilization(longestQueue, maxQueueLength int) float64 {
	if maxQueueLength <= 0 {
		return 0
	}
	return float64(longestQueue) / float64(maxQueueLength)
}

// StatusOf names the status of a component score: healthy from 80, degraded from
// 50, else unhealthy. 80 is the original design's ComponentUnhealthy alert
// threshold.
func StatusOf(score int) string {
	switch {
	case score >= 80:
		return StatusHealthy
	case score >= 50:
		return StatusDegraded
	}
	return StatusUnhealthy
}

func clamp01(v float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return min(v, 1)
}
