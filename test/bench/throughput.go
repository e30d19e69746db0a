package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/lockcheck"
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
	// (issue 13's target: ≥ 0.3); RatioFull over its create+update+delete cycles.
	// Both baselines, and the CR floor below, are the mean of Before's and After's.
	Ratio     float64 `json:"ratioToCreateUpdate"`
	RatioFull float64 `json:"ratioToCreateUpdateDelete"`
	// RatioFloor is CyclesPerSec over the CR floor's cycles per second at the same
	// client count: how close the operator comes to no operator at all.
	RatioFloor float64 `json:"ratioToCRFloor"`
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
	// CPU is what the run cost the control plane and this process (the clients and
	// the operator), when measured.
	CPU *CPUCost `json:"cpu,omitempty"`
	// Exclusion is the mutual-exclusion check over the run's grants.
	Exclusion lockcheck.Result `json:"exclusion"`
	// Before and After are the Lease baseline and the CR floor measured right
	// before and right after the run, at its client count (measurePace).
	Before Pace `json:"paceBefore"`
	After  Pace `json:"paceAfter"`
}

// cycleSamples are one client's results.
type cycleSamples struct {
	holds       []lockcheck.Hold
	wait, cycle []time.Duration
}

// runThroughput runs clients goroutines that each do cycles lock cycles on keys
// picked at random (seeded, so every run asks for the same keys) among keys keys:
// create a LockRequest, wait for Acquired, delete it, wait until it is gone.
// meter, when not nil, measures the run's CPU.
func runThroughput(ctx context.Context, l *lockClient, clients, keys, cycles int, meter *cpuMeter) (ThroughputResult, error) {
	samples := make([]cycleSamples, clients)
	cpuBefore, err := meter.read()
	if err != nil {
		return ThroughputResult{}, fmt.Errorf("throughput: %w", err)
	}
	start := time.Now()
	err = benchutil.Parallel(ctx, clients, func(ctx context.Context, i int) error {
		rng := rand.New(rand.NewPCG(uint64(i), 0x5eed))
		for j := range cycles {
			if err := lockCycle(ctx, l, &samples[i], fmt.Sprintf("cycle%d-%d-%d", clients, i, j), rng.IntN(keys)); err != nil {
				return err
			}
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return ThroughputResult{}, fmt.Errorf("throughput: %w", err)
	}
	cpu, err := meter.costSince(cpuBefore, clients*cycles)
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
		CPU:          cpu,
		Exclusion:    lockcheck.Check(all.holds),
	}, nil
}

// lockCycle takes and releases the lock of key once, recording it into s.
func lockCycle(ctx context.Context, l *lockClient, s *cycleSamples, name string, key int) error {
	// As pkg/lockclient's Lock makes it: no word but the grant while it waits.
	r, err := l.create(ctx, name, "bench/throughput", fmt.Sprintf("k%d", key), lockingv1alpha1.GrantNoticeLeaseOnly)
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
	gone := r.obs.Gone.At()
	s.holds = append(s.holds, lockcheck.Hold{Key: fmt.Sprintf("k%d", key), Holder: name, Token: token, Acquired: acquired, Released: released})
	s.wait = append(s.wait, acquired.Sub(r.created))
	s.cycle = append(s.cycle, gone.Sub(r.created))
	return nil
}

// compare sets the run's ratios to the rates p.
func (t *ThroughputResult) compare(p paces) {
	t.Ratio, t.RatioFull, t.RatioFloor = ratio2(t.CyclesPerSec, p.createUpdate), ratio2(t.CyclesPerSec, p.full), ratio2(t.CyclesPerSec, p.floor)
}
