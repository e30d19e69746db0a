package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// ThroughputResult is what N clients cycling locks over K keys achieved.
type ThroughputResult struct {
	Clients int `json:"clients"`
	Keys    int `json:"keys"`
	// Cycles completed: create, Acquired observed, delete, deletion observed.
	Cycles       int     `json:"cycles"`
	Seconds      float64 `json:"seconds"`
	CyclesPerSec float64 `json:"cyclesPerSec"`
	// Ratio is CyclesPerSec over the baseline's create+update cycles per second
	// (DESIGN's target: ≥ 0.5); RatioFull over its create+update+delete cycles.
	Ratio     float64 `json:"ratioToCreateUpdate"`
	RatioFull float64 `json:"ratioToCreateUpdateDelete"`
	// Wait is create → Acquired observed, queueing behind other clients included.
	Wait Summary `json:"wait"`
	// Cycle is create → deletion observed.
	Cycle Summary `json:"cycle"`
	// Operator is what the operator sent to the API server during the run, and
	// OperatorWritesPerCycle / OperatorReadsPerCycle / ReconcilesPerCycle divide it
	// by Cycles. The clients' own writes (create and delete) come on top: 2 per cycle.
	Operator               requestDelta `json:"operatorRequests"`
	OperatorWritesPerCycle float64      `json:"operatorWritesPerCycle"`
	OperatorReadsPerCycle  float64      `json:"operatorReadsPerCycle"`
	ReconcilesPerCycle     float64      `json:"reconcilesPerCycle"`
	// Exclusion is the mutual-exclusion check over the run's grants.
	Exclusion ExclusionResult `json:"exclusion"`
}

// hold is one grant observed during the throughput run.
type hold struct {
	key      int
	name     string
	token    string
	acquired time.Time // Acquired=True first observed
	released time.Time // the client sent the delete
}

// cycleSamples are one client's results.
type cycleSamples struct {
	holds       []hold
	wait, cycle []time.Duration
}

// runThroughput runs clients goroutines that each do cycles lock cycles on keys
// picked at random (seeded, so every run asks for the same keys) among keys keys:
// create a LockRequest, wait for Acquired, delete it, wait until it is gone.
func runThroughput(ctx context.Context, l *lockClient, clients, keys, cycles int) (ThroughputResult, error) {
	samples := make([]cycleSamples, clients)
	start := time.Now()
	err := parallel(ctx, clients, func(ctx context.Context, i int) error {
		rng := rand.New(rand.NewPCG(uint64(i), 0x5eed))
		for j := range cycles {
			if err := lockCycle(ctx, l, &samples[i], fmt.Sprintf("cycle-%d-%d", i, j), rng.IntN(keys)); err != nil {
				return err
			}
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return ThroughputResult{}, fmt.Errorf("throughput: %w", err)
	}
	var all cycleSamples
	for _, s := range samples {
		all.holds = append(all.holds, s.holds...)
		all.wait = append(all.wait, s.wait...)
		all.cycle = append(all.cycle, s.cycle...)
	}
	return ThroughputResult{
		Clients:      clients,
		Keys:         keys,
		Cycles:       len(all.cycle),
		Seconds:      elapsed.Seconds(),
		CyclesPerSec: rate(len(all.cycle), elapsed),
		Wait:         Summarize(all.wait),
		Cycle:        Summarize(all.cycle),
		Exclusion:    checkExclusion(all.holds),
	}, nil
}

// lockCycle takes and releases the lock of key once, recording it into s.
func lockCycle(ctx context.Context, l *lockClient, s *cycleSamples, name string, key int) error {
	r, err := l.create(ctx, name, "bench/throughput", fmt.Sprintf("k%d", key))
	if err != nil {
		return err
	}
	acquired, token, err := l.acquired(ctx, r)
	if err != nil {
		return err
	}
	released := time.Now()
	if err := l.release(ctx, r); err != nil {
		return err
	}
	gone := r.obs.gone.at
	s.holds = append(s.holds, hold{key: key, name: name, token: token, acquired: acquired, released: released})
	s.wait = append(s.wait, acquired.Sub(r.created))
	s.cycle = append(s.cycle, gone.Sub(r.created))
	return nil
}

// ExclusionResult is the mutual-exclusion check of a throughput run.
type ExclusionResult struct {
	Grants int `json:"grants"`
	// Successions counts consecutive grants of one key that were checked.
	Successions int `json:"successions"`
	// Violations describes every check that failed; empty means the run was
	// exclusive.
	Violations []string `json:"violations"`
}

// checkExclusion checks, key by key and in the order the grants were observed, that
// every grant was observed only after the previous holder's release was sent (no two
// holders at once), and that fencing tokens strictly increase.
func checkExclusion(holds []hold) ExclusionResult {
	byKey := map[int][]hold{}
	for _, h := range holds {
		byKey[h.key] = append(byKey[h.key], h)
	}
	res := ExclusionResult{Grants: len(holds), Violations: []string{}}
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		hs := byKey[key]
		slices.SortFunc(hs, func(a, b hold) int { return a.acquired.Compare(b.acquired) })
		for i := 1; i < len(hs); i++ {
			res.Successions++
			res.Violations = append(res.Violations, succession(key, hs[i-1], hs[i])...)
		}
	}
	return res
}

// succession checks that next followed prev correctly on key.
func succession(key int, prev, next hold) []string {
	var v []string
	if !next.acquired.After(prev.released) {
		v = append(v, fmt.Sprintf("key k%d: %s was observed holding %s before %s released it",
			key, next.name, next.acquired.Sub(prev.released).Abs(), prev.name))
	}
	a, errA := strconv.ParseUint(prev.token, 10, 64)
	b, errB := strconv.ParseUint(next.token, 10, 64)
	switch {
	case errA != nil || errB != nil:
		v = append(v, fmt.Sprintf("key k%d: fencing tokens %q (%s) and %q (%s) are not integers",
			key, prev.token, prev.name, next.token, next.name))
	case b <= a:
		v = append(v, fmt.Sprintf("key k%d: fencing token %d of %s does not exceed %d of the previous holder %s",
			key, b, next.name, a, prev.name))
	}
	return v
}
