package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
)

// Results is everything one run measured.
type Results struct {
	benchutil.Run
	Workers int `json:"operatorWorkers"`
	// GCPercent is the GOGC of the bench's own process (-gc-percent).
	GCPercent int            `json:"benchGCPercent"`
	Baseline  BaselineResult `json:"baseline"`
	Acquire   Summary        `json:"uncontendedAcquire"`
	// AcquireCreate is the LockRequest create alone, as the client saw it, during
	// the uncontended acquires.
	AcquireCreate Summary `json:"uncontendedCreate"`
	// AcquireOperator is what the operator sent to the API server during the
	// uncontended acquires (their releases included).
	AcquireOperator requestDelta `json:"uncontendedOperatorRequests"`
	// AcquireSerial and HandoffSerial are serial Lease writes timed between the
	// uncontended acquires and between the hand-offs (serialBeside): the unit of
	// their targets, measured at the same moments.
	AcquireSerial Summary `json:"uncontendedSerialLeaseWrite"`
	HandoffSerial Summary `json:"handoffSerialLeaseWrite"`
	// Handoff is the hand-off to a waiter made as TryLock makes it, told Queued
	// at once (a status write of the operator's before the holder lets go).
	Handoff Summary `json:"handoff"`
	// HandoffParts is where Handoff's time goes.
	HandoffParts HandoffParts `json:"handoffParts"`
	// HandoffBlocking is the hand-off to a waiter made as the blocking Lock makes
	// it, told nothing while it waits, each of its samples beside one of
	// Handoff's; HandoffBlockingParts is where its time goes.
	HandoffBlocking      Summary      `json:"handoffBlocking"`
	HandoffBlockingParts HandoffParts `json:"handoffBlockingParts"`
	// HandoffOperator is what the operator sent to the API server during the
	// hand-offs of Handoff and HandoffBlocking.
	HandoffOperator requestDelta `json:"handoffOperatorRequests"`
	// HandoffFloor is Handoff decided by a bare arbiter instead of the operator,
	// each of its samples beside one of Handoff's (measureHandoffBesideFloor): the
	// floor of a hand-off, and HandoffFloorParts where its time goes.
	HandoffFloor      Summary      `json:"handoffFloor"`
	HandoffFloorParts HandoffParts `json:"handoffFloorParts"`
	// HandoffEventsOff is Handoff measured again with enable_events: false, and
	// HandoffEventsOffFloor the hand-off floor beside it.
	HandoffEventsOff      Summary `json:"handoffEventsOff"`
	HandoffEventsOffFloor Summary `json:"handoffEventsOffFloor"`
	// HandoffAuditOn is Handoff measured again with the audit trail written to a
	// file, synchronously on the decision path, and HandoffAuditOnFloor the
	// hand-off floor beside it.
	HandoffAuditOn      Summary `json:"handoffAuditOn"`
	HandoffAuditOnFloor Summary `json:"handoffAuditOnFloor"`
	// EventBus is the event bus's throughput, in memory.
	EventBus EventBusResult   `json:"eventBus"`
	Through  ThroughputResult `json:"throughput"`
	// Floor is the CR floor at -clients clients, measured before the operator
	// started; Through is compared with the floor measured beside it (Through.Before,
	// Through.After).
	Floor FloorResult `json:"crFloor"`
	// High is the second, heavier load (-high-clients), when run.
	High     *HighLoad       `json:"highLoad,omitempty"`
	Deadlock DeadlockResult  `json:"deadlockScan"`
	Targets  []benchutil.Row `json:"targets"`
}

// HighLoad is the baseline, the CR floor and the throughput run again with more
// clients.
type HighLoad struct {
	Clients  int              `json:"clients"`
	Baseline BaselineResult   `json:"baseline"`
	Floor    FloorResult      `json:"crFloor"`
	Through  ThroughputResult `json:"throughput"`
}

// Pace is the Lease baseline and the CR floor measured one after the other, at
// the client count of a throughput run, right before or right after it
// (measurePace). The machine's pace drifts over a run by up to a quarter (the API
// server's heap and collections, etcd's database), so a throughput run is compared
// with the mean of the two measurements adjacent to it rather than with one made
// minutes away.
type Pace struct {
	Baseline BaselineResult `json:"baseline"`
	Floor    FloorResult    `json:"crFloor"`
}

// paces are the rates a throughput run is compared with: the baseline's create +
// update and create + update + delete cycles per second, and the CR floor's.
type paces struct{ createUpdate, full, floor float64 }

// pacesOf returns the mean rates of the measurements before and after a run.
func pacesOf(before, after Pace) paces {
	return paces{
		createUpdate: (before.Baseline.CreateUpdatePerSec + after.Baseline.CreateUpdatePerSec) / 2,
		full:         (before.Baseline.FullCyclePerSec + after.Baseline.FullCyclePerSec) / 2,
		floor:        (before.Floor.CyclesPerSec + after.Floor.CyclesPerSec) / 2,
	}
}

// paceText gives a rate measured with no operator running, then right before and
// right after a throughput run, and the mean of those two.
func paceText(alone, before, after float64) string {
	return fmt.Sprintf("%.0f /s with no operator; beside the run %.0f /s before, %.0f /s after: %.0f /s", alone, before, after, (before+after)/2)
}

// atMost is a row whose target is an upper bound on a latency.
func atMost(metric string, got, limit time.Duration) benchutil.Row {
	met := got <= limit
	return benchutil.Row{Metric: metric, Measured: fmtDuration(got), Target: "≤ " + fmtDuration(limit), Met: &met}
}

// Issue 13's targets, as ratios to baselines of the same run.
const (
	// maxWritesPerCycle bounds the operator's API writes per lock cycle.
	maxWritesPerCycle = 3.0
	// minThroughputRatio is the least lock cycles/s over Lease create+update cycles/s.
	minThroughputRatio = 0.30
	// Latency bounds, as multiples of the serial Lease write P50.
	maxAcquireP50Factor = 5.0
	maxHandoffP50Factor = 4.0
	maxHandoffP99Factor = 10.0
)

// atMostTimes is a row whose target is an upper bound on a latency as a multiple
// of a base latency measured in the same run.
func atMostTimes(metric string, got, base time.Duration, baseName string, factor float64) benchutil.Row {
	ratio := 0.0
	if base > 0 {
		ratio = float64(got) / float64(base)
	}
	met := base > 0 && ratio <= factor
	return benchutil.Row{
		Metric:   metric,
		Measured: fmt.Sprintf("%s = %.2f× %s (%s)", fmtDuration(got), ratio, baseName, fmtDuration(base)),
		Target:   fmt.Sprintf("≤ %.0f×", factor),
		Met:      &met,
	}
}

// writesRow is a row of operator writes per lock cycle against maxWritesPerCycle.
func writesRow(metric string, writes, reads float64) benchutil.Row {
	met := writes <= maxWritesPerCycle
	return benchutil.Row{Metric: metric, Measured: fmt.Sprintf("%.1f / %.1f", writes, reads),
		Target: fmt.Sprintf("≤ %.0f writes", maxWritesPerCycle), Met: &met}
}

// throughputRows report one throughput run against the baseline and CR floor
// measured beside it, and those measured with no operator (b, f).
func throughputRows(b BaselineResult, f FloorResult, t ThroughputResult) []benchutil.Row {
	minRate := minThroughputRatio * pacesOf(t.Before, t.After).createUpdate
	met := t.CyclesPerSec >= minRate
	exclusive := len(t.Exclusion.Violations) == 0
	rows := []benchutil.Row{
		benchutil.Info(fmt.Sprintf("baseline: Lease create+update cycles/s (%d clients)", b.Clients),
			paceText(b.CreateUpdatePerSec, t.Before.Baseline.CreateUpdatePerSec, t.After.Baseline.CreateUpdatePerSec)),
		benchutil.Info(fmt.Sprintf("CR floor: LockRequest create + Lease CAS + delete cycles/s (%d clients)", f.Clients),
			paceText(f.CyclesPerSec, t.Before.Floor.CyclesPerSec, t.After.Floor.CyclesPerSec)),
		{
			Metric:   fmt.Sprintf("lock cycles/s (%d clients, %d keys, %d cycles)", t.Clients, t.Keys, t.Cycles),
			Measured: fmt.Sprintf("%.1f /s = %.1f%% of baseline", t.CyclesPerSec, 100*t.Ratio),
			Target:   fmt.Sprintf("≥ %.0f%% of baseline = %.0f /s", 100*minThroughputRatio, minRate),
			Met:      &met,
		},
		benchutil.Info(fmt.Sprintf("lock cycles/s vs CR floor / vs Lease create+update+delete (%d clients)", t.Clients),
			fmt.Sprintf("%.0f%% / %.0f%%", 100*t.RatioFloor, 100*t.RatioFull)),
	}
	rows = append(rows, cpuRow(t.Clients, meanCost(t.Before.Floor.CPU, t.After.Floor.CPU), t.CPU)...)
	return append(rows,
		benchutil.Info(fmt.Sprintf("lock cycle wait P50 / P99 (create → Acquired, queueing included; %d clients)", t.Clients),
			fmt.Sprintf("%s / %s", fmtDuration(t.Wait.P50), fmtDuration(t.Wait.P99))),
		writesRow(fmt.Sprintf("operator API writes / reads per lock cycle, throughput (%d clients; +2 client writes)", t.Clients),
			t.OperatorWritesPerCycle, t.OperatorReadsPerCycle),
		benchutil.Info(fmt.Sprintf("lock reconciles per lock cycle (%d clients)", t.Clients), fmt.Sprintf("%.1f", t.ReconcilesPerCycle)),
		benchutil.Row{
			Metric:   fmt.Sprintf("mutual exclusion (%d clients: %d grants, %d successions checked)", t.Clients, t.Exclusion.Grants, t.Exclusion.Successions),
			Measured: fmt.Sprintf("%d violations", len(t.Exclusion.Violations)),
			Target:   "0 violations",
			Met:      &exclusive,
		},
	)
}

// rows lays the results out against issue 13's targets (ratios to the baselines of
// the same run) and DESIGN's absolute ones where issue 13 sets none.
func (r *Results) rows() []benchutil.Row {
	b, t := r.Baseline, r.Through
	// The latency targets' unit is the serial Lease write P50 timed between the
	// samples they divide; the baseline's, measured minutes earlier, stands in
	// when none was.
	acquireUnit, handoffUnit := besideOr(r.AcquireSerial, b.SerialUpdate), besideOr(r.HandoffSerial, b.SerialUpdate)
	const serialName = "serial Lease write P50 beside it"
	uncontendedWrites, uncontendedReads := 0.0, 0.0
	if r.Acquire.N > 0 {
		uncontendedWrites = float64(r.AcquireOperator.Writes) / float64(r.Acquire.N)
		uncontendedReads = float64(r.AcquireOperator.Reads) / float64(r.Acquire.N)
	}
	rows := []benchutil.Row{
		benchutil.Info(fmt.Sprintf("baseline, %d clients: Lease create / update / delete P50", b.Clients), fmt.Sprintf("%s / %s / %s", fmtDuration(b.Create.P50), fmtDuration(b.Update.P50), fmtDuration(b.Delete.P50))),
		benchutil.Info(fmt.Sprintf("baseline, %d clients: Lease create / update / delete P99", b.Clients), fmt.Sprintf("%s / %s / %s", fmtDuration(b.Create.P99), fmtDuration(b.Update.P99), fmtDuration(b.Delete.P99))),
		benchutil.Info("baseline, 1 client alone: Lease create / update (the serial Lease write) P50", fmt.Sprintf("%s / %s", fmtDuration(b.SerialCreate.P50), fmtDuration(b.SerialUpdate.P50))),
		benchutil.Info("LockRequest create alone (client, 1 at a time) P50", fmtDuration(r.AcquireCreate.P50)),
		benchutil.Info("serial Lease write P50 beside the uncontended acquires / beside the hand-offs", fmt.Sprintf("%s / %s", fmtDuration(r.AcquireSerial.P50), fmtDuration(r.HandoffSerial.P50))),
		atMostTimes(fmt.Sprintf("uncontended acquire P50 (n=%d)", r.Acquire.N), r.Acquire.P50, acquireUnit, serialName, maxAcquireP50Factor),
		atMost("uncontended acquire P95", r.Acquire.P95, 100*time.Millisecond),
		atMost("uncontended acquire P99", r.Acquire.P99, 500*time.Millisecond),
		writesRow("operator API writes / reads per lock cycle, uncontended (+2 client writes)", uncontendedWrites, uncontendedReads),
		atMostTimes(fmt.Sprintf("hand-off to a TryLock's waiter P50 (n=%d)", r.Handoff.N), r.Handoff.P50, handoffUnit, serialName, maxHandoffP50Factor),
		atMostTimes("hand-off to a TryLock's waiter P99", r.Handoff.P99, handoffUnit, serialName, maxHandoffP99Factor),
		handoffPartsRow("hand-off to a TryLock's waiter", "P50", r.HandoffParts, func(s Summary) time.Duration { return s.P50 }),
		handoffPartsRow("hand-off to a TryLock's waiter", "P99", r.HandoffParts, func(s Summary) time.Duration { return s.P99 }),
		atMostTimes(fmt.Sprintf("hand-off to a blocking Lock's waiter P50 (n=%d)", r.HandoffBlocking.N), r.HandoffBlocking.P50, handoffUnit, serialName, maxHandoffP50Factor),
		atMostTimes("hand-off to a blocking Lock's waiter P99", r.HandoffBlocking.P99, handoffUnit, serialName, maxHandoffP99Factor),
		handoffPartsRow("hand-off to a blocking Lock's waiter", "P50", r.HandoffBlockingParts, func(s Summary) time.Duration { return s.P50 }),
		handoffPartsRow("hand-off to a blocking Lock's waiter", "P99", r.HandoffBlockingParts, func(s Summary) time.Duration { return s.P99 }),
		handoffFloorRow(r.Handoff, r.HandoffBlocking, r.HandoffFloor, handoffUnit),
		perRoundRow(r.HandoffOperator, r.Handoff.N),
		handoffPartsRow("hand-off floor", "P50", r.HandoffFloorParts, func(s Summary) time.Duration { return s.P50 }),
		handoffPartsRow("hand-off floor", "P99", r.HandoffFloorParts, func(s Summary) time.Duration { return s.P99 }),
	}
	rows = append(rows, throughputRows(b, r.Floor, t)...)
	if h := r.High; h != nil {
		rows = append(rows, throughputRows(h.Baseline, h.Floor, h.Through)...)
	}
	rows = append(rows, r.phaseRows()...)
	rows = append(rows,
		busRow(r.EventBus.Events, r.EventBus.One),
		busRow(r.EventBus.Events, r.EventBus.Many),
		busRow(r.EventBus.Events, r.EventBus.Burst),
		atMost(fmt.Sprintf("deadlock scan, %d waiting, no cycle (median of %d)", r.Deadlock.Edges, r.Deadlock.Runs), r.Deadlock.Acyclic.P50, 10*time.Millisecond),
		atMost(fmt.Sprintf("deadlock scan, %d waiting, %d 2-cycles (median)", r.Deadlock.Edges, deadlockCycles), r.Deadlock.WithCycles.P50, 10*time.Millisecond),
	)
	return rows
}

// printTable writes the machine, the report as an aligned table, then the exclusion
// violations.
func (r *Results) printTable(w io.Writer) error {
	r.PrintHeader(w)
	fmt.Fprintf(w, "operator worker_count %d, its own process with the chart's memory settings; the bench's process (clients, observer, baselines) GOGC %d\n\n", r.Workers, r.GCPercent)
	if err := benchutil.PrintRows(w, "target (issue 13; DESIGN)", r.Targets); err != nil {
		return err
	}
	for _, v := range r.violations() {
		fmt.Fprintln(w, "VIOLATION:", v)
	}
	return nil
}

// fmtDuration prints a latency in milliseconds: whole milliseconds (the targets) as
// such, others with one decimal, or three below a millisecond.
func fmtDuration(d time.Duration) string {
	switch {
	case d%time.Millisecond == 0:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.3f ms", ms(d))
	default:
		return fmt.Sprintf("%.1f ms", ms(d))
	}
}

// busRow reports one event bus measurement.
func busRow(events int, b BusThroughput) benchutil.Row {
	return benchutil.Info(fmt.Sprintf("event bus, %d events, %d subscriber(s), buffer %d: published / delivered", events, b.Subscribers, b.BufferSize),
		fmt.Sprintf("%s / %s per s, %d dropped", fmtRate(b.PublishedPerSec), fmtRate(b.DeliveredPerSec), b.Dropped))
}

// violations are the mutual-exclusion violations of every throughput run.
func (r *Results) violations() []string {
	v := slices.Clone(r.Through.Exclusion.Violations)
	if r.High != nil {
		v = append(v, r.High.Through.Exclusion.Violations...)
	}
	return v
}

// HandoffParts is where a hand-off's time goes: the holder's delete sent → the
// operator's decision to grant the waiter (ToDecided: the delete's way through the
// API server, its watch event, the reconcile), then → the grant observed
// (ToObserved: the Lease's compare-and-swap and its watch event). DeleteCall, the
// delete's own answer, is part of ToDecided or overlaps it (the watch event may
// come before the answer). The decision's time is the Lease's acquireTime, by the
// operator's clock, which is this process's.
type HandoffParts struct {
	DeleteCall Summary `json:"deleteCall"`
	ToDecided  Summary `json:"deleteToDecided"`
	ToObserved Summary `json:"decidedToObserved"`
}

// handoffPartsRow shows one quantile (pick) of each part of the hand-offs what names.
func handoffPartsRow(what, quantile string, p HandoffParts, pick func(Summary) time.Duration) benchutil.Row {
	return benchutil.Info(what+" in parts "+quantile+": delete sent → grant decided → grant observed (the delete's answer alone)",
		fmt.Sprintf("%s + %s (%s)", fmtDuration(pick(p.ToDecided)), fmtDuration(pick(p.ToObserved)), fmtDuration(pick(p.DeleteCall))))
}

// handoffFloorRow shows the hand-off floor's P50 and P99 as multiples of the serial
// Lease write P50, and the operator's hand-off as multiples of the floor.
// phaseRows compares the hand-offs of the later phases (events off, audit trail on)
// with the first's. The phases run minutes apart, and the API server's collections
// come less often after the throughput runs have grown its heap, so besides the
// plain ratio each phase's hand-offs are given over the floor measured beside
// them, which takes that drift out of the comparison.
func (r *Results) phaseRows() []benchutil.Row {
	onFloor, offFloor, auditFloor := ratio(r.Handoff.P50, r.HandoffFloor.P50), ratio(r.HandoffEventsOff.P50, r.HandoffEventsOffFloor.P50), ratio(r.HandoffAuditOn.P50, r.HandoffAuditOnFloor.P50)
	return []benchutil.Row{
		benchutil.Info(fmt.Sprintf("hand-off P50 / P99 with enable_events: false (n=%d)", r.HandoffEventsOff.N),
			fmt.Sprintf("%s / %s (events on: %s / %s; P50 on/off = %.2f×; P50 ÷ the floor beside it, on / off: %.2f× / %.2f× = %.2f×)",
				fmtDuration(r.HandoffEventsOff.P50), fmtDuration(r.HandoffEventsOff.P99), fmtDuration(r.Handoff.P50), fmtDuration(r.Handoff.P99),
				ratio(r.Handoff.P50, r.HandoffEventsOff.P50), onFloor, offFloor, ratio2(onFloor, offFloor))),
		benchutil.Info(fmt.Sprintf("hand-off P50 / P99 with the audit trail on (n=%d)", r.HandoffAuditOn.N),
			fmt.Sprintf("%s / %s (without: %s / %s; P50 ÷ the floor beside it, with / without: %.2f× / %.2f×)", fmtDuration(r.HandoffAuditOn.P50), fmtDuration(r.HandoffAuditOn.P99),
				fmtDuration(r.Handoff.P50), fmtDuration(r.Handoff.P99), auditFloor, onFloor)),
	}
}

// besideOr is the P50 of beside, or of alone when beside was not measured.
func besideOr(beside, alone Summary) time.Duration {
	if beside.N > 0 {
		return beside.P50
	}
	return alone.P50
}

// ratio is a ÷ b, 0 when b is not positive (not measured).
func ratio(a, b time.Duration) float64 { return ratio2(float64(a), float64(b)) }

// ratio2 is a ÷ b, 0 when b is not positive.
func ratio2(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// perRoundRow shows the operator's API requests during the hand-offs, per round of
// one hand-off to a TryLock's waiter and one to a blocking Lock's, by kind.
func perRoundRow(d requestDelta, rounds int) benchutil.Row {
	kinds := slices.Sorted(maps.Keys(d.Counts))
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, ratio2(float64(d.Counts[k]), float64(rounds))))
	}
	return benchutil.Info("operator API requests per hand-off round (one to a TryLock's waiter, one to a blocking Lock's): writes / reads; by kind",
		fmt.Sprintf("%.2f / %.2f; %s", ratio2(float64(d.Writes), float64(rounds)), ratio2(float64(d.Reads), float64(rounds)), strings.Join(parts, ", ")))
}

// handoffFloorRow gives the hand-off floor in serial Lease writes, and the
// operator's hand-offs (to TryLock's waiters, to blocking Lock's) in multiples of
// the floor.
func handoffFloorRow(tryLock, blocking, floor Summary, serial time.Duration) benchutil.Row {
	return benchutil.Info(fmt.Sprintf("hand-off floor P50 / P99, a bare arbiter beside the operator (n=%d): × serial Lease write; hand-off ÷ floor, TryLock's; blocking Lock's", floor.N),
		fmt.Sprintf("%s = %.1f× / %s = %.1f×; %.2f× / %.2f×; %.2f× / %.2f×", fmtDuration(floor.P50), ratio(floor.P50, serial),
			fmtDuration(floor.P99), ratio(floor.P99, serial), ratio(tryLock.P50, floor.P50), ratio(tryLock.P99, floor.P99),
			ratio(blocking.P50, floor.P50), ratio(blocking.P99, floor.P99)))
}
