package main

import (
	"testing"

	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

func TestDeadlockGraphs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edges []orchestrator.WaitEdge
		want  int
	}{
		{"acyclic", acyclicGraph(deadlockEdges), 0},
		{"with cycles", graphWithCycles(deadlockEdges, deadlockCycles), deadlockCycles},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.edges) != deadlockEdges {
				t.Errorf("graph has %d waiting requests, want %d", len(tc.edges), deadlockEdges)
			}
			if got := len(orchestrator.FindDeadlocks(tc.edges)); got != tc.want {
				t.Errorf("FindDeadlocks found %d cycles, want %d", got, tc.want)
			}
		})
	}
}

// BenchmarkDeadlockScan times the scans the benchmark reports, for profiling with
// go test -bench DeadlockScan -cpuprofile.
func BenchmarkDeadlockScan(b *testing.B) {
	graphs := map[string][]orchestrator.WaitEdge{
		"acyclic":    acyclicGraph(deadlockEdges),
		"withCycles": graphWithCycles(deadlockEdges, deadlockCycles),
	}
	for name, edges := range graphs {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				orchestrator.FindDeadlocks(edges)
			}
		})
	}
}
