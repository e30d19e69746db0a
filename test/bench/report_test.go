package main

import (
	"testing"
	"time"
)

func TestFmtDuration(t *testing.T) {
	tests := map[time.Duration]string{
		10 * time.Millisecond:                       "10 ms",
		100*time.Millisecond + 400*time.Microsecond: "100.4 ms",
		1234 * time.Microsecond:                     "1.2 ms",
		250 * time.Microsecond:                      "0.250 ms",
		1500*time.Millisecond + 10*time.Microsecond: "1500.0 ms",
	}
	for d, want := range tests {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestAtMostComparesUnrounded(t *testing.T) {
	row := atMost("p95", 100*time.Millisecond+time.Microsecond, 100*time.Millisecond)
	if row.Met == nil || *row.Met {
		t.Errorf("100.001 ms against ≤ 100 ms: met = %v, want false", row.Met)
	}
}

func TestAtMostTimesIsARatioToTheBase(t *testing.T) {
	row := atMostTimes("hand-off P50", 9*time.Millisecond, 2*time.Millisecond, "serial", 4)
	if row.Met == nil || *row.Met || row.Measured != "9 ms = 4.50× serial (2 ms)" || row.Target != "≤ 4×" {
		t.Errorf("9 ms against 4 × 2 ms: %+v, want not met, measured as 4.5×", row)
	}
	if row := atMostTimes("hand-off P50", 8*time.Millisecond, 2*time.Millisecond, "serial", 4); row.Met == nil || !*row.Met {
		t.Errorf("8 ms against 4 × 2 ms: %+v, want met", row)
	}
	if row := atMostTimes("hand-off P50", time.Millisecond, 0, "serial", 4); row.Met == nil || *row.Met {
		t.Errorf("against an unmeasured base: %+v, want not met", row)
	}
}

func TestHandoffPartsRowShowsEachPartAtTheQuantile(t *testing.T) {
	parts := HandoffParts{
		DeleteCall: Summary{P50: 4 * time.Millisecond, P99: 15 * time.Millisecond},
		ToDecided:  Summary{P50: 5 * time.Millisecond, P99: 16 * time.Millisecond},
		ToObserved: Summary{P50: 3 * time.Millisecond, P99: 12 * time.Millisecond},
	}
	row := handoffPartsRow("hand-off", "P99", parts, func(s Summary) time.Duration { return s.P99 })
	if row.Met != nil || row.Measured != "16 ms + 12 ms (15 ms)" {
		t.Errorf("P99 of the parts: %+v, want 16 ms + 12 ms (15 ms), no target", row)
	}
}

func TestHandoffFloorRowIsInSerialWritesAndTheHandoffInFloors(t *testing.T) {
	floor := Summary{N: 100, P50: 6 * time.Millisecond, P99: 18 * time.Millisecond}
	tryLock := Summary{P50: 9 * time.Millisecond, P99: 27 * time.Millisecond}
	blocking := Summary{P50: 7500 * time.Microsecond, P99: 18 * time.Millisecond}
	row := handoffFloorRow(tryLock, blocking, floor, 2*time.Millisecond)
	if want := "6 ms = 3.0× / 18 ms = 9.0×; 1.50× / 1.50×; 1.25× / 1.00×"; row.Met != nil || row.Measured != want {
		t.Errorf("floor 6/18 ms, hand-offs 9/27 and 7.5/18 ms, serial 2 ms: %+v, want %q, no target", row, want)
	}
	if row := handoffFloorRow(tryLock, blocking, Summary{}, 0); row.Measured != "0 ms = 0.0× / 0 ms = 0.0×; 0.00× / 0.00×; 0.00× / 0.00×" {
		t.Errorf("with nothing measured: %q, want zeros", row.Measured)
	}
}

func TestPhaseRowsCompareEachPhaseOverItsOwnFloor(t *testing.T) {
	ms := func(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }
	r := &Results{
		Handoff: Summary{P50: ms(10), P99: ms(30)}, HandoffFloor: Summary{P50: ms(8)},
		HandoffEventsOff: Summary{N: 100, P50: ms(5), P99: ms(20)}, HandoffEventsOffFloor: Summary{P50: ms(4)},
		HandoffAuditOn: Summary{N: 100, P50: ms(6), P99: ms(25)}, HandoffAuditOnFloor: Summary{P50: ms(4)},
	}
	rows := r.phaseRows()
	if want := "5 ms / 20 ms (events on: 10 ms / 30 ms; P50 on/off = 2.00×; P50 ÷ the floor beside it, on / off: 1.25× / 1.25× = 1.00×)"; rows[0].Measured != want {
		t.Errorf("events row: %q, want %q", rows[0].Measured, want)
	}
	if want := "6 ms / 25 ms (without: 10 ms / 30 ms; P50 ÷ the floor beside it, with / without: 1.50× / 1.25×)"; rows[1].Measured != want {
		t.Errorf("audit row: %q, want %q", rows[1].Measured, want)
	}
}

func TestThroughputIsComparedWithTheMeanOfThePacesBesideIt(t *testing.T) {
	b := BaselineResult{Clients: 8, CreateUpdatePerSec: 600, FullCyclePerSec: 350}
	f := FloorResult{Clients: 8, CyclesPerSec: 250}
	run := ThroughputResult{Clients: 8, CyclesPerSec: 140,
		Before: Pace{Baseline: BaselineResult{CreateUpdatePerSec: 500, FullCyclePerSec: 300}, Floor: FloorResult{CyclesPerSec: 200}},
		After:  Pace{Baseline: BaselineResult{CreateUpdatePerSec: 400, FullCyclePerSec: 260}, Floor: FloorResult{CyclesPerSec: 180}},
	}
	run.compare(pacesOf(run.Before, run.After))
	if run.Ratio != 140.0/450 || run.RatioFull != 140.0/280 || run.RatioFloor != 140.0/190 {
		t.Errorf("ratios %v / %v / %v; want over the means 450, 280 and 190", run.Ratio, run.RatioFull, run.RatioFloor)
	}
	rows := throughputRows(b, f, run)
	if want := "600 /s with no operator; beside the run 500 /s before, 400 /s after: 450 /s"; rows[0].Measured != want {
		t.Errorf("baseline row %q, want %q", rows[0].Measured, want)
	}
	if want := "250 /s with no operator; beside the run 200 /s before, 180 /s after: 190 /s"; rows[1].Measured != want {
		t.Errorf("CR floor row %q, want %q", rows[1].Measured, want)
	}
	// 140 /s is 31 % of the mean beside the run (450), 23 % of the baseline with no
	// operator (600), 28 % of the one right before (500).
	if row := rows[2]; row.Met == nil || !*row.Met || row.Target != "≥ 30% of baseline = 135 /s" || row.Measured != "140.0 /s = 31.1% of baseline" {
		t.Errorf("throughput row %+v; want 140.0 /s = 31%% against ≥ 30%% of the mean = 135 /s, met", row)
	}
}

func TestTheUnitIsTheSerialWriteBesideTheSamples(t *testing.T) {
	beside, alone := Summary{N: 100, P50: 4 * time.Millisecond}, Summary{N: 100, P50: 2 * time.Millisecond}
	if got := besideOr(beside, alone); got != 4*time.Millisecond {
		t.Errorf("with writes timed beside the samples: unit %s, want theirs (4 ms)", got)
	}
	if got := besideOr(Summary{}, alone); got != 2*time.Millisecond {
		t.Errorf("with none timed beside: unit %s, want the baseline's (2 ms)", got)
	}
}

func TestPerRoundRowDividesTheOperatorsRequestsByTheRounds(t *testing.T) {
	d := requestDelta{
		Counts: map[string]int{"update leases": 200, "update lockrequests/status": 100, "create leases": 2},
		Writes: 302, Reads: 1,
	}
	row := perRoundRow(d, 100)
	if want := "3.02 / 0.01; create leases 0.02, update leases 2.00, update lockrequests/status 1.00"; row.Met != nil || row.Measured != want {
		t.Errorf("302 writes and 1 read over 100 rounds: %+v, want %q, no target", row, want)
	}
	if row := perRoundRow(requestDelta{}, 0); row.Measured != "0.00 / 0.00; " {
		t.Errorf("with nothing measured: %q", row.Measured)
	}
}
