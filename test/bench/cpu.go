package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/localcluster"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/managerproc"
)

// thisProcess names this process among the ones a cpuMeter reads: the bench's
// clients and observer.
const thisProcess = "bench"

// cpuProcesses are the processes a cpuMeter reads, in the order CPUCost reports
// them.
var cpuProcesses = []string{localcluster.APIServerBinary, localcluster.EtcdBinary, localcluster.ControllerManagerBinary, operatorProcess, thisProcess}

// CPUCost is the CPU time the control plane's processes and this one used during a
// run, per cycle of it: where a cycle's cost goes, and whether the run kept the
// machine's CPUs busy. The CR floor's and the throughput run's side by side say
// whether the operator's lock cycle costs the API server more than the floor's
// writes do, or only waits longer between them.
type CPUCost struct {
	// MsPerCycle is CPU milliseconds per cycle by process: kube-apiserver, etcd,
	// kube-controller-manager, operator (while it runs) and bench (this process).
	MsPerCycle map[string]float64 `json:"msPerCycle"`
	// Busy is their CPU time over the run's wall time: how many CPUs they kept
	// busy, of CPUs.
	Busy float64 `json:"cpusBusy"`
	CPUs int     `json:"cpus"`
}

// cpuMeter reads the CPU time used so far by the control plane's processes and
// this one, from /proc.
type cpuMeter struct {
	pids map[string]int
}

// cpuReading is what a cpuMeter read, and when.
type cpuReading struct {
	at  time.Time
	cpu map[string]time.Duration
}

// newCPUMeter returns a meter of c's processes and this one, or nil (and says so)
// when they cannot be read, as off Linux: the runs go on without CPU figures.
func newCPUMeter(c *localcluster.Cluster) *cpuMeter {
	pids, err := c.ProcessIDs()
	if err == nil {
		pids[thisProcess] = os.Getpid()
		m := &cpuMeter{pids: pids}
		if _, err = m.read(); err == nil {
			return m
		}
	}
	benchutil.Step("no CPU figures: %v", err)
	return nil
}

// add has the meter read the process pid, named name, from now on: the operator,
// once it runs. A nil meter reads nothing.
func (m *cpuMeter) add(name string, pid int) {
	if m != nil {
		m.pids[name] = pid
	}
}

// drop stops reading the process named name (an operator that stopped).
func (m *cpuMeter) drop(name string) {
	if m != nil {
		delete(m.pids, name)
	}
}

// read reads every process's CPU time so far. A nil meter reads nothing.
func (m *cpuMeter) read() (cpuReading, error) {
	r := cpuReading{at: time.Now(), cpu: map[string]time.Duration{}}
	if m == nil {
		return r, nil
	}
	for name, pid := range m.pids {
		u, err := managerproc.ReadUsage(pid)
		if err != nil {
			return r, fmt.Errorf("reading the CPU time of %s (pid %d): %w", name, pid, err)
		}
		r.cpu[name] = u.CPU
	}
	return r, nil
}

// costSince returns the CPU cost per cycle of the given number of cycles run since
// before; nil for a nil meter.
func (m *cpuMeter) costSince(before cpuReading, cycles int) (*CPUCost, error) {
	if m == nil {
		return nil, nil
	}
	now, err := m.read()
	if err != nil {
		return nil, err
	}
	cost := &CPUCost{MsPerCycle: map[string]float64{}, CPUs: runtime.NumCPU()}
	var total time.Duration
	for name, used := range now.cpu {
		d := used - before.cpu[name]
		total += d
		cost.MsPerCycle[name] = float64(d) / float64(time.Millisecond) / float64(max(cycles, 1))
	}
	if wall := now.at.Sub(before.at); wall > 0 {
		cost.Busy = float64(total) / float64(wall)
	}
	return cost, nil
}

// cpuRow compares the CPU cost of the CR floor's cycles with the lock cycles' at
// the same client count; no row when either was not measured.
func cpuRow(clients int, floor, lock *CPUCost) []benchutil.Row {
	if floor == nil || lock == nil {
		return nil
	}
	parts := make([]string, 0, len(cpuProcesses))
	for _, name := range cpuProcesses {
		parts = append(parts, fmt.Sprintf("%.1f → %.1f", floor.MsPerCycle[name], lock.MsPerCycle[name]))
	}
	return []benchutil.Row{benchutil.Info(
		fmt.Sprintf("CPU ms per cycle, CR floor → lock cycle (%d clients): %s (bench: this process, the clients and their observer)", clients, strings.Join(cpuProcesses, " / ")),
		fmt.Sprintf("%s; CPUs busy %.1f → %.1f of %d", strings.Join(parts, " / "), floor.Busy, lock.Busy, lock.CPUs))}
}

// meanCost is the mean of the CR floor's CPU cost measured before and after a
// throughput run (either may be nil: then the other), as the run is compared with
// the mean of its paces (Pace).
func meanCost(before, after *CPUCost) *CPUCost {
	if before == nil {
		return after
	}
	if after == nil {
		return before
	}
	mean := &CPUCost{MsPerCycle: map[string]float64{}, Busy: (before.Busy + after.Busy) / 2, CPUs: before.CPUs}
	for name, ms := range before.MsPerCycle {
		mean.MsPerCycle[name] = (ms + after.MsPerCycle[name]) / 2
	}
	return mean
}

// startCPUProfile starts profiling this process's CPU into path when path is set
// and when is true; the returned function stops it and closes the file.
func startCPUProfile(path string, when bool) (stop func() error, err error) {
	if path == "" || !when {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(fmt.Errorf("CPU profile: %w", err), f.Close())
	}
	benchutil.Step("profiling this process's CPU into %s", path)
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
