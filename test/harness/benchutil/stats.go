package benchutil

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p ≤ 100) of samples by the nearest-rank
// method: the smallest sample such that at least p percent of all samples are less
// than or equal to it. It never interpolates, so the result is always a measured
// value. samples need not be sorted and are not modified; with no samples it returns 0.
func Percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	return percentileSorted(sorted, p)
}

// percentileSorted is Percentile over samples sorted in ascending order.
func percentileSorted(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summary is the distribution of one latency.
type Summary struct {
	N   int           `json:"n"`
	Min time.Duration `json:"-"`
	P50 time.Duration `json:"-"`
	P95 time.Duration `json:"-"`
	P99 time.Duration `json:"-"`
	Max time.Duration `json:"-"`

	// The same in milliseconds, for the JSON output.
	MinMS float64 `json:"minMs"`
	P50MS float64 `json:"p50Ms"`
	P95MS float64 `json:"p95Ms"`
	P99MS float64 `json:"p99Ms"`
	MaxMS float64 `json:"maxMs"`
}

// Summarize computes the Summary of samples.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	s := Summary{
		N:   len(sorted),
		Min: sorted[0],
		P50: percentileSorted(sorted, 50),
		P95: percentileSorted(sorted, 95),
		P99: percentileSorted(sorted, 99),
		Max: sorted[len(sorted)-1],
	}
	s.MinMS, s.P50MS, s.P95MS, s.P99MS, s.MaxMS = Milliseconds(s.Min), Milliseconds(s.P50), Milliseconds(s.P95), Milliseconds(s.P99), Milliseconds(s.Max)
	return s
}

// Milliseconds converts d to fractional milliseconds.
func Milliseconds(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}
