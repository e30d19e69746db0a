package main

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/types"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/lockcheck"
)

// exclusion checks every hold with test/harness/lockcheck: each grant, timed by the
// operator itself (the Lease's acquireTime in the version whose resourceVersion is
// the hold's fencing token), must come after the previous holder of its key let
// go, and fencing tokens must grow per key. A hold whose grant version the Lease
// watch never saw cannot be timed: it is reported.
func exclusion(holds []hold, rec *recorder) (lockcheck.Result, []string) {
	var timed []lockcheck.Hold
	var untimed []string
	for _, h := range holds {
		at, ok := rec.grantTime(h.lock, h.token)
		if !ok {
			untimed = append(untimed, fmt.Sprintf("%s (token %s on %s): the Lease watch never saw the granting version", h.holder, h.token, h.lock))
			continue
		}
		holder := h.holder
		if h.endedBy != "" {
			holder += " (" + h.endedBy + " by the operator)"
		}
		timed = append(timed, lockcheck.Hold{Key: h.lock, Holder: holder, Token: h.token, Acquired: at, Released: h.released})
	}
	return lockcheck.Check(timed), untimed
}

// allowedNext says which Acquired reason may follow which in one request's life:
// undecided, then queued (any number of times, as the position changes), then held
// or ended; held, then ended; ended never changes again.
func allowedNext(from, to string) bool {
	terminal := lockingv1alpha1.IsTerminalReason
	switch {
	case terminal(from):
		return false
	case from == lockingv1alpha1.ReasonAcquired:
		return terminal(to)
	case from == lockingv1alpha1.ReasonQueued:
		return to == lockingv1alpha1.ReasonAcquired || terminal(to)
	default: // Pending
		return to == lockingv1alpha1.ReasonQueued || to == lockingv1alpha1.ReasonAcquired || terminal(to)
	}
}

// LifeResult is the check of every request's life.
type LifeResult struct {
	// Requests counts the requests (UIDs) seen.
	Requests int `json:"requests"`
	// ByEnd counts them by how they ended: the terminal reason; "released" for a
	// request deleted by its client after holding or waiting, without a terminal
	// reason; or "still <reason>" for one that exists at the end.
	ByEnd map[string]int `json:"byEnd"`
	// Violations are lives that broke the rules: a change after a terminal reason,
	// a hold that went back to the queue, a request never decided.
	Violations []string `json:"violations"`
}

// lives checks that every request took a path the lock allows and ended in exactly
// one way, or is still there in a state that says why.
func lives(all map[types.UID]requestLife) LifeResult {
	res := LifeResult{Requests: len(all), ByEnd: map[string]int{}, Violations: []string{}}
	uids := slices.Sorted(maps.Keys(all))
	for _, uid := range uids {
		l := all[uid]
		if len(l.Reasons) == 0 {
			// Only its deletion was seen: created and deleted between two events
			// is impossible for a watch; report it.
			res.Violations = append(res.Violations, fmt.Sprintf("%s (%s): deleted without ever being seen", l.Name, uid))
			continue
		}
		for i := 1; i < len(l.Reasons); i++ {
			if !allowedNext(l.Reasons[i-1], l.Reasons[i]) {
				res.Violations = append(res.Violations, fmt.Sprintf("%s (%s): %s after %s (life %v)", l.Name, uid, l.Reasons[i], l.Reasons[i-1], l.Reasons))
			}
		}
		last := l.Reasons[len(l.Reasons)-1]
		switch {
		case lockingv1alpha1.IsTerminalReason(last):
			res.ByEnd[last]++
		case l.Deleted:
			res.ByEnd["released"]++
		default:
			res.ByEnd["still "+last]++
			if last == pendingReason {
				res.Violations = append(res.Violations, fmt.Sprintf("%s (%s): never decided", l.Name, uid))
			}
		}
	}
	return res
}

// queueOrder checks the waiters of one key as the API shows them: positions 1..n,
// in the order the operator promises (priority, then enqueue time, then creation,
// then name), blocked by the holder, and listed in that order by the ProjectLock.
func queueOrder(pl *lockingv1alpha1.ProjectLock, requests []lockingv1alpha1.LockRequest) []string {
	var problems []string
	var queued []lockingv1alpha1.LockRequest
	for _, lr := range requests {
		if lr.Status.Position > 0 {
			queued = append(queued, lr)
		}
	}
	sort.Slice(queued, func(i, j int) bool { return queued[i].Status.Position < queued[j].Status.Position })
	for i, lr := range queued {
		if int(lr.Status.Position) != i+1 {
			problems = append(problems, fmt.Sprintf("%s: position %d, want %d", lr.Name, lr.Status.Position, i+1))
		}
		if i == 0 {
			continue
		}
		prev := queued[i-1]
		if before(lr, prev) {
			problems = append(problems, fmt.Sprintf("%s (priority %s, enqueued %s) is queued behind %s (priority %s, enqueued %s)",
				lr.Name, lr.Spec.Priority, enqueued(lr), prev.Name, prev.Spec.Priority, enqueued(prev)))
		}
	}
	if pl == nil {
		if len(queued) > 0 {
			problems = append(problems, fmt.Sprintf("%d waiters but no ProjectLock", len(queued)))
		}
		return problems
	}
	if int(pl.Status.QueueLength) != len(queued) {
		problems = append(problems, fmt.Sprintf("ProjectLock %s: queueLength %d, but %d requests are queued", pl.Name, pl.Status.QueueLength, len(queued)))
	}
	for i, e := range pl.Status.Queue {
		if i < len(queued) && e.Request != queued[i].Name {
			problems = append(problems, fmt.Sprintf("ProjectLock %s: queue[%d] is %s, but position %d is %s", pl.Name, i, e.Request, i+1, queued[i].Name))
		}
	}
	return problems
}

// before reports whether a is served before b.
func before(a, b lockingv1alpha1.LockRequest) bool {
	if pa, pb := a.Spec.Priority.Rank(), b.Spec.Priority.Rank(); pa != pb {
		return pa > pb
	}
	if ea, eb := enqueuedAt(a), enqueuedAt(b); !ea.Equal(eb) {
		return ea.Before(eb)
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

func enqueuedAt(lr lockingv1alpha1.LockRequest) time.Time {
	if lr.Status.EnqueuedTime == nil {
		return time.Time{}
	}
	return lr.Status.EnqueuedTime.Time
}

func enqueued(lr lockingv1alpha1.LockRequest) string {
	return enqueuedAt(lr).Format("15:04:05.000000")
}

// Memory is the operator's memory over the traffic, sampled every
// -sample-interval: the resident set size, and the live Go heap right after a
// forced garbage collection (what the operator's data takes, free of the
// collector's headroom).
type Memory struct {
	Samples int `json:"samples"`
	// First, Last and Max are resident set sizes in bytes.
	First uint64 `json:"firstBytes"`
	Last  uint64 `json:"lastBytes"`
	Max   uint64 `json:"maxBytes"`
	// FirstLive, LastLive and MaxLive are live heaps in bytes.
	FirstLive float64 `json:"firstLiveBytes"`
	LastLive  float64 `json:"lastLiveBytes"`
	MaxLive   float64 `json:"maxLiveBytes"`
	// SlopeRSS and SlopeLive are the least-squares trends over the whole
	// traffic, in MB per minute.
	SlopeRSS  float64 `json:"slopeRSSMBPerMinute"`
	SlopeLive float64 `json:"slopeLiveMBPerMinute"`
	// Warmup is how long the memory may grow before it is judged (see
	// eventCacheWarmup).
	Warmup time.Duration `json:"warmupNanoseconds"`
	// SlopeAfterWarmup is the live heap's trend after Warmup, in MB per minute;
	// nil when the traffic was too short to judge.
	SlopeAfterWarmup *float64 `json:"slopeAfterWarmupMBPerMinute,omitempty"`
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}
