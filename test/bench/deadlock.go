package main

import (
	"fmt"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// Sizes of the deadlock scan.
const (
	deadlockEdges  = 10_000
	deadlockCycles = 100 // disjoint 2-cycles in the second graph
	deadlockRuns   = 21  // timed scans per graph; the median is reported
)

// DeadlockResult is the in-memory deadlock scan time over 10,000 waiting requests.
type DeadlockResult struct {
	Edges int `json:"edges"`
	Runs  int `json:"runs"`
	// Acyclic: one chain of 5,000 owners plus 5,000 waiters fanning in on them, no
	// cycle (the graph of internal/orchestrator's BenchmarkFindDeadlocks10k).
	Acyclic Summary `json:"acyclic"`
	// WithCycles: the same with 200 of its edges replaced by 100 disjoint 2-cycles,
	// each of which must be found and broken.
	WithCycles Summary `json:"withCycles"`
}

// runDeadlockScan times orchestrator.FindDeadlocks on both graphs, deadlockRuns times
// each after one untimed scan, and checks what it finds.
func runDeadlockScan() (DeadlockResult, error) {
	acyclic, err := timeScans(acyclicGraph(deadlockEdges), 0)
	if err != nil {
		return DeadlockResult{}, err
	}
	withCycles, err := timeScans(graphWithCycles(deadlockEdges, deadlockCycles), deadlockCycles)
	if err != nil {
		return DeadlockResult{}, err
	}
	return DeadlockResult{Edges: deadlockEdges, Runs: deadlockRuns, Acyclic: acyclic, WithCycles: withCycles}, nil
}

// timeScans times FindDeadlocks over edges and checks that it finds want cycles.
func timeScans(edges []orchestrator.WaitEdge, want int) (Summary, error) {
	if got := len(orchestrator.FindDeadlocks(edges)); got != want {
		return Summary{}, fmt.Errorf("deadlock scan found %d cycles in a graph of %d, want %d", got, len(edges), want)
	}
	times := make([]time.Duration, 0, deadlockRuns)
	for range deadlockRuns {
		start := time.Now()
		orchestrator.FindDeadlocks(edges)
		times = append(times, time.Since(start))
	}
	return Summarize(times), nil
}

// acyclicGraph returns n waiting requests without a cycle: n/2 owners each waiting
// for the next owner's key (one long chain), and n/2 more owners waiting for keys of
// chain owners spread by a large prime.
func acyclicGraph(n int) []orchestrator.WaitEdge {
	chain := n / 2
	edges := make([]orchestrator.WaitEdge, 0, n)
	for i := range chain {
		edges = append(edges, waitEdge(fmt.Sprint("o", i), fmt.Sprint("o", i+1), fmt.Sprint("r", i)))
	}
	for i := range n - chain {
		edges = append(edges, waitEdge(fmt.Sprint("w", i), fmt.Sprint("o", (i*7919)%chain), fmt.Sprint("w", i)))
	}
	return edges
}

// graphWithCycles returns n waiting requests of which 2*cycles form that many
// disjoint cycles of two owners; the rest is acyclicGraph.
func graphWithCycles(n, cycles int) []orchestrator.WaitEdge {
	edges := acyclicGraph(n - 2*cycles)
	for i := range cycles {
		a, b := fmt.Sprint("x", i), fmt.Sprint("y", i)
		edges = append(edges, waitEdge(a, b, "ra"+fmt.Sprint(i)), waitEdge(b, a, "rb"+fmt.Sprint(i)))
	}
	return edges
}

// waitEdge is request of owner waiter waiting for a key that holder holds (the key is
// named after the holder).
func waitEdge(waiter, holder, request string) orchestrator.WaitEdge {
	key := lockkey.New("bench/deadlock", "mod-"+holder, "default", "")
	return orchestrator.WaitEdge{
		Waiter: waiter, Holder: holder, Request: request, Priority: 1, EnqueuedAt: time.Unix(0, 0),
		Lock: orchestrator.LockRef{Namespace: "bench", Name: key.ObjectName(), Key: key},
	}
}
