package main

import (
	"crypto/sha256"
	"os"
	"runtime"
	"strings"
	"testing"
)

// The meter reads /proc: the bench runs on Linux.
func TestCPUMeterOfThisProcess(t *testing.T) {
	m := &cpuMeter{pids: map[string]int{thisProcess: os.Getpid()}}
	before, err := m.read()
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the kernel has counted some (its unit is 10 ms).
	sum := sha256.Sum256(nil)
	for {
		for range 10000 {
			sum = sha256.Sum256(sum[:])
		}
		now, err := m.read()
		if err != nil {
			t.Fatal(err)
		}
		if now.cpu[thisProcess] > before.cpu[thisProcess] {
			break
		}
	}
	cost, err := m.costSince(before, 4)
	if err != nil {
		t.Fatal(err)
	}
	if cost.MsPerCycle[thisProcess] <= 0 || cost.Busy <= 0 || cost.CPUs != runtime.NumCPU() {
		t.Fatalf("cost of burning CPU = %+v; want some CPU per cycle, busy CPUs and %d CPUs", cost, runtime.NumCPU())
	}
}

func TestNilCPUMeterMeasuresNothing(t *testing.T) {
	var m *cpuMeter
	before, err := m.read()
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := m.costSince(before, 1); cost != nil || err != nil {
		t.Fatalf("a nil meter's cost = %v, %v; want nil, nil", cost, err)
	}
	if rows := cpuRow(8, nil, &CPUCost{}); rows != nil {
		t.Fatalf("a CPU row without the floor's cost: %v", rows)
	}
}

func TestCPURowAndMeanCost(t *testing.T) {
	before := &CPUCost{MsPerCycle: map[string]float64{"kube-apiserver": 6, "etcd": 1, "kube-controller-manager": 0.5, thisProcess: 1}, Busy: 1.8, CPUs: 2}
	after := &CPUCost{MsPerCycle: map[string]float64{"kube-apiserver": 8, "etcd": 2, "kube-controller-manager": 0.5, thisProcess: 2}, Busy: 2.0, CPUs: 2}
	mean := meanCost(before, after)
	if mean.MsPerCycle["kube-apiserver"] != 7 || mean.MsPerCycle["etcd"] != 1.5 || mean.MsPerCycle[thisProcess] != 1.5 || mean.Busy != 1.9 {
		t.Fatalf("meanCost = %+v", mean)
	}
	if meanCost(before, nil) != before || meanCost(nil, after) != after {
		t.Fatal("meanCost of one measurement is not that measurement")
	}
	lock := &CPUCost{MsPerCycle: map[string]float64{"kube-apiserver": 7.5, "etcd": 1.3, "kube-controller-manager": 0.5, operatorProcess: 1.2, thisProcess: 1.1}, Busy: 1.7, CPUs: 2}
	rows := cpuRow(8, mean, lock)
	if len(rows) != 1 {
		t.Fatalf("%d CPU rows, want 1", len(rows))
	}
	// The floor runs before the operator: its operator column is 0.
	want := "7.0 → 7.5 / 1.5 → 1.3 / 0.5 → 0.5 / 0.0 → 1.2 / 1.5 → 1.1; CPUs busy 1.9 → 1.7 of 2"
	if rows[0].Measured != want || !strings.Contains(rows[0].Metric, "(8 clients): kube-apiserver / etcd / kube-controller-manager / operator / bench") {
		t.Fatalf("CPU row = %q: %q; want measured %q", rows[0].Metric, rows[0].Measured, want)
	}
}
