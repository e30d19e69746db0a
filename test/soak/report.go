package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/lockcheck"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/managerproc"
)

// flatSlope is the largest trend of the operator's live heap after the warm-up, in
// MB per minute, that counts as flat: a leak of that rate would be 1.4 GB a day,
// and the heap's ups and downs as the event cache is pruned stay well inside it.
const flatSlope = 1.0

// Results is everything one soak found.
type Results struct {
	benchutil.Run
	// Duration, Clients, Keys and Seed are the traffic's settings.
	Duration time.Duration `json:"durationNanoseconds"`
	Clients  int           `json:"clients"`
	Keys     int           `json:"keys"`
	Seed     uint64        `json:"seed"`
	// ManagerArgs are the operator's flags.
	ManagerArgs []string `json:"managerArgs"`
	// TrafficTime is how long the traffic ran, the scenarios under way at the
	// deadline included.
	TrafficTime time.Duration `json:"trafficNanoseconds"`
	// Outcomes count scenarios and what their requests did.
	Outcomes map[string]int `json:"outcomes"`
	// Problems are scenarios whose outcome broke the lock's promise, and watch
	// failures.
	Problems []string `json:"problems"`
	// Exclusion is the mutual-exclusion and fencing check of every hold.
	Exclusion lockcheck.Result `json:"exclusion"`
	// Untimed are holds whose grant the Lease watch did not see.
	Untimed []string `json:"untimed"`
	// Lives is the check of every request's life.
	Lives LifeResult `json:"lives"`
	// QueueOrder is the check of the queues at the end.
	QueueOrder QueueResult `json:"queueOrder"`
	// LeftBehind counts what the cleanup left.
	LeftBehind map[string]int `json:"leftBehind"`
	// Memory is the operator's memory over the run, and Samples its readings.
	Memory  Memory               `json:"memory"`
	Samples []managerproc.Sample `json:"samples"`
	// Operator are figures from the operator's /metrics at the end of the traffic.
	Operator map[string]float64 `json:"operator"`
}

// QueueResult is the check of the queues at the end of the traffic.
type QueueResult struct {
	// Final is the deliberate final queue as "name@position", in order.
	Final []string `json:"final"`
	// Keys and Queued count the keys with requests and the requests queued.
	Keys   int `json:"keys"`
	Queued int `json:"queued"`
	// Problems describe positions out of order or disagreeing with the ProjectLock.
	Problems []string `json:"problems"`
}

// violations counts everything that breaks a promise.
func (r *Results) violations() int {
	n := len(r.Problems) + len(r.Exclusion.Violations) + len(r.Untimed) + len(r.Lives.Violations) + len(r.QueueOrder.Problems)
	for _, v := range r.LeftBehind {
		n += v
	}
	if r.leaking() {
		n++
	}
	return n
}

// leaking reports whether the live heap grew after the warm-up.
func (r *Results) leaking() bool {
	return r.Memory.SlopeAfterWarmup != nil && *r.Memory.SlopeAfterWarmup > flatSlope
}

func met(ok bool) *bool { return &ok }

// rows lays the results out.
func (r *Results) rows() []benchutil.Row {
	mem := r.Memory
	left := 0
	for _, v := range r.LeftBehind {
		left += v
	}
	return []benchutil.Row{
		benchutil.Info("traffic", fmt.Sprintf("%s, %d workers, %d shared keys (seed %d)", r.TrafficTime.Round(time.Second), r.Clients, r.Keys, r.Seed)),
		benchutil.Info("scenarios run", countsText(r.Outcomes, "scenario ")),
		benchutil.Info("request outcomes (client side)", countsText(r.Outcomes, "")),
		{Metric: "scenario outcomes as promised", Measured: fmt.Sprintf("%d problems", len(r.Problems)), Target: "0", Met: met(len(r.Problems) == 0)},
		{Metric: fmt.Sprintf("mutual exclusion and fencing (%d grants, %d successions)", r.Exclusion.Grants, r.Exclusion.Successions),
			Measured: fmt.Sprintf("%d violations, %d grants untimed", len(r.Exclusion.Violations), len(r.Untimed)), Target: "0", Met: met(len(r.Exclusion.Violations)+len(r.Untimed) == 0)},
		{Metric: fmt.Sprintf("request lives (%d requests): one end each", r.Lives.Requests), Measured: fmt.Sprintf("%d violations", len(r.Lives.Violations)),
			Target: "0", Met: met(len(r.Lives.Violations) == 0)},
		benchutil.Info("  how they ended", countsText(r.Lives.ByEnd, "")),
		{Metric: fmt.Sprintf("queues at the end (%d keys, %d queued)", r.QueueOrder.Keys, r.QueueOrder.Queued), Measured: fmt.Sprintf("%d problems; final queue %s", len(r.QueueOrder.Problems), strings.Join(r.QueueOrder.Final, " ")),
			Target: "0", Met: met(len(r.QueueOrder.Problems) == 0)},
		{Metric: "left after deleting every LockRequest", Measured: countsText(r.LeftBehind, ""), Target: "nothing", Met: met(left == 0)},
		benchutil.Info(fmt.Sprintf("operator RSS (%d samples): first / last / max; trend", mem.Samples),
			fmt.Sprintf("%.1f / %.1f / %.1f MB; %+.2f MB/min", mb(mem.First), mb(mem.Last), mb(mem.Max), mem.SlopeRSS)),
		benchutil.Info("operator live heap after GC: first / last / max; trend",
			fmt.Sprintf("%.1f / %.1f / %.1f MB; %+.2f MB/min", mem.FirstLive/1e6, mem.LastLive/1e6, mem.MaxLive/1e6, mem.SlopeLive)),
		memoryRow(mem),
		benchutil.Info("operator /metrics", floatsText(r.Operator)),
	}
}

// printReport writes the machine, the table and every violation.
func (r *Results) printReport(w io.Writer) error {
	r.PrintHeader(w)
	fmt.Fprintf(w, "manager %s\n\n", strings.Join(r.ManagerArgs, " "))
	if err := benchutil.PrintRows(w, "target", r.rows()); err != nil {
		return err
	}
	for _, list := range [][]string{r.Problems, r.Exclusion.Violations, r.Untimed, r.Lives.Violations, r.QueueOrder.Problems} {
		for _, v := range list {
			fmt.Fprintln(w, "VIOLATION:", v)
		}
	}
	if r.leaking() {
		fmt.Fprintf(w, "VIOLATION: the live heap grew %+.2f MB/min after the first %s\n", *r.Memory.SlopeAfterWarmup, r.Memory.Warmup)
	}
	if r.Error != "" {
		fmt.Fprintln(w, "\nFAILED:", r.Error)
	}
	return nil
}

func mb(b uint64) float64 { return float64(b) / 1e6 }

// memoryRow judges the live heap's trend after the warm-up, or says why it cannot.
func memoryRow(mem Memory) benchutil.Row {
	metric := fmt.Sprintf("live heap trend after the first %s (event cache warm-up)", mem.Warmup)
	target := fmt.Sprintf("flat: ≤ %.0f MB/min", flatSlope)
	if mem.SlopeAfterWarmup == nil {
		return benchutil.Row{Metric: metric, Target: target,
			Measured: fmt.Sprintf("not judged: the traffic must run at least %s", mem.Warmup+minJudged)}
	}
	return benchutil.Row{Metric: metric, Target: target, Measured: fmt.Sprintf("%+.2f MB/min", *mem.SlopeAfterWarmup),
		Met: met(*mem.SlopeAfterWarmup <= flatSlope)}
}

// countsText prints the counts whose names start with prefix, without it.
func countsText(m map[string]int, prefix string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		name, ok := strings.CutPrefix(k, prefix)
		if !ok || (prefix == "" && strings.HasPrefix(k, "scenario ")) {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func floatsText(m map[string]float64) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
