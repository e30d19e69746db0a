package main

import (
	"fmt"
	"io"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
)

// Results is everything one run measured.
type Results struct {
	benchutil.Run
	Workers  int            `json:"operatorWorkers"`
	Baseline BaselineResult `json:"baseline"`
	Acquire  Summary        `json:"uncontendedAcquire"`
	// AcquireCreate is the LockRequest create alone, as the client saw it, during
	// the uncontended acquires.
	AcquireCreate Summary `json:"uncontendedCreate"`
	// AcquireOperator is what the operator sent to the API server during the
	// uncontended acquires (their releases included).
	AcquireOperator requestDelta `json:"uncontendedOperatorRequests"`
	Handoff         Summary      `json:"handoff"`
	// HandoffEventsOff is Handoff measured again with enable_events: false.
	HandoffEventsOff Summary `json:"handoffEventsOff"`
	// HandoffAuditOn is Handoff measured again with the audit trail written to a
	// file, synchronously on the decision path.
	HandoffAuditOn Summary `json:"handoffAuditOn"`
	// EventBus is the event bus's throughput, in memory.
	EventBus EventBusResult   `json:"eventBus"`
	Through  ThroughputResult `json:"throughput"`
	Deadlock DeadlockResult   `json:"deadlockScan"`
	Targets  []benchutil.Row  `json:"targets"`
}

// atMost is a row whose target is an upper bound on a latency.
func atMost(metric string, got, limit time.Duration) benchutil.Row {
	met := got <= limit
	return benchutil.Row{Metric: metric, Measured: fmtDuration(got), Target: "≤ " + fmtDuration(limit), Met: &met}
}

// rows lays the results out against DESIGN's Performance targets.
func (r *Results) rows() []benchutil.Row {
	b, t := r.Baseline, r.Through
	minRate := 0.5 * b.CreateUpdatePerSec
	throughputMet := t.CyclesPerSec >= minRate
	exclusive := len(t.Exclusion.Violations) == 0
	return []benchutil.Row{
		benchutil.Info(fmt.Sprintf("baseline: Lease create+update cycles/s (%d clients)", b.Clients), fmt.Sprintf("%.0f /s", b.CreateUpdatePerSec)),
		benchutil.Info("baseline: Lease create+update+delete cycles/s", fmt.Sprintf("%.0f /s", b.FullCyclePerSec)),
		benchutil.Info(fmt.Sprintf("baseline, %d clients: Lease create / update / delete P50", b.Clients), fmt.Sprintf("%s / %s / %s", fmtDuration(b.Create.P50), fmtDuration(b.Update.P50), fmtDuration(b.Delete.P50))),
		benchutil.Info(fmt.Sprintf("baseline, %d clients: Lease create / update / delete P99", b.Clients), fmt.Sprintf("%s / %s / %s", fmtDuration(b.Create.P99), fmtDuration(b.Update.P99), fmtDuration(b.Delete.P99))),
		benchutil.Info("baseline, 1 client alone: Lease create / update P50", fmt.Sprintf("%s / %s", fmtDuration(b.SerialCreate.P50), fmtDuration(b.SerialUpdate.P50))),
		benchutil.Info("LockRequest create alone (client, 1 at a time) P50", fmtDuration(r.AcquireCreate.P50)),
		benchutil.Info("operator during those: ProjectLock create / Lease create / status update P50", fmt.Sprintf("%s / %s / %s",
			fmtDuration(r.AcquireOperator.Latency["create projectlocks"].P50), fmtDuration(r.AcquireOperator.Latency["create leases"].P50),
			fmtDuration(r.AcquireOperator.Latency["update lockrequests/status"].P50))),
		atMost(fmt.Sprintf("uncontended acquire P50 (n=%d)", r.Acquire.N), r.Acquire.P50, 10*time.Millisecond),
		atMost("uncontended acquire P95", r.Acquire.P95, 100*time.Millisecond),
		atMost("uncontended acquire P99", r.Acquire.P99, 500*time.Millisecond),
		atMost(fmt.Sprintf("hand-off P50 (n=%d)", r.Handoff.N), r.Handoff.P50, 10*time.Millisecond),
		atMost("hand-off P99", r.Handoff.P99, 50*time.Millisecond),
		{
			Metric:   fmt.Sprintf("lock cycles/s (%d clients, %d keys, %d cycles)", t.Clients, t.Keys, t.Cycles),
			Measured: fmt.Sprintf("%.1f /s = %.0f%% of baseline", t.CyclesPerSec, 100*t.Ratio),
			Target:   fmt.Sprintf("≥ 50%% of baseline = %.0f /s", minRate),
			Met:      &throughputMet,
		},
		benchutil.Info("lock cycles/s vs create+update+delete baseline", fmt.Sprintf("%.0f%%", 100*t.RatioFull)),
		benchutil.Info("lock cycle wait P50 / P99 (create → Acquired, queueing included)", fmt.Sprintf("%s / %s", fmtDuration(t.Wait.P50), fmtDuration(t.Wait.P99))),
		benchutil.Info("operator API writes / reads per lock cycle (+2 client writes)", fmt.Sprintf("%.1f / %.1f", t.OperatorWritesPerCycle, t.OperatorReadsPerCycle)),
		benchutil.Info("lock reconciles per lock cycle", fmt.Sprintf("%.1f", t.ReconcilesPerCycle)),
		{
			Metric:   fmt.Sprintf("mutual exclusion (%d grants, %d successions checked)", t.Exclusion.Grants, t.Exclusion.Successions),
			Measured: fmt.Sprintf("%d violations", len(t.Exclusion.Violations)),
			Target:   "0 violations",
			Met:      &exclusive,
		},
		benchutil.Info(fmt.Sprintf("hand-off P50 / P99 with enable_events: false (n=%d)", r.HandoffEventsOff.N),
			fmt.Sprintf("%s / %s (events on: %s / %s)", fmtDuration(r.HandoffEventsOff.P50), fmtDuration(r.HandoffEventsOff.P99),
				fmtDuration(r.Handoff.P50), fmtDuration(r.Handoff.P99))),
		benchutil.Info(fmt.Sprintf("hand-off P50 / P99 with the audit trail on (n=%d)", r.HandoffAuditOn.N),
			fmt.Sprintf("%s / %s (without: %s / %s)", fmtDuration(r.HandoffAuditOn.P50), fmtDuration(r.HandoffAuditOn.P99),
				fmtDuration(r.Handoff.P50), fmtDuration(r.Handoff.P99))),
		busRow(r.EventBus.Events, r.EventBus.One),
		busRow(r.EventBus.Events, r.EventBus.Many),
		busRow(r.EventBus.Events, r.EventBus.Burst),
		atMost(fmt.Sprintf("deadlock scan, %d waiting, no cycle (median of %d)", r.Deadlock.Edges, r.Deadlock.Runs), r.Deadlock.Acyclic.P50, 10*time.Millisecond),
		atMost(fmt.Sprintf("deadlock scan, %d waiting, %d 2-cycles (median)", r.Deadlock.Edges, deadlockCycles), r.Deadlock.WithCycles.P50, 10*time.Millisecond),
	}
}

// printTable writes the machine, the report as an aligned table, then the exclusion
// violations.
func (r *Results) printTable(w io.Writer) error {
	r.PrintHeader(w)
	fmt.Fprintf(w, "operator worker_count %d\n\n", r.Workers)
	if err := benchutil.PrintRows(w, "target (DESIGN)", r.Targets); err != nil {
		return err
	}
	for _, v := range r.Through.Exclusion.Violations {
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
