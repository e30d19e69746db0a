package main

import (
	"slices"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
)

// Percentile, Summary and Summarize are benchutil's, which the Redis gateway's
// benchmark (cmd/redis-gateway/test/bench) shares.
func Percentile(samples []time.Duration, p float64) time.Duration {
	return benchutil.Percentile(samples, p)
}

// Summary is the distribution of one latency (benchutil.Summary).
type Summary = benchutil.Summary

// Summarize computes the Summary of samples (benchutil.Summarize).
func Summarize(samples []time.Duration) Summary { return benchutil.Summarize(samples) }

// ms converts d to fractional milliseconds.
func ms(d time.Duration) float64 { return benchutil.Milliseconds(d) }

// rate is count events per second of elapsed time.
func rate(count int, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(count) / elapsed.Seconds()
}

// perClient collects samples from n goroutines without locks: goroutine i appends to
// its own slice only.
type perClient [][]time.Duration

func newPerClient(n int) perClient { return make(perClient, n) }

// add records sample d of client i.
func (p perClient) add(i int, d time.Duration) { p[i] = append(p[i], d) }

// all returns every sample; call it once the goroutines are done.
func (p perClient) all() []time.Duration { return slices.Concat(p...) }
