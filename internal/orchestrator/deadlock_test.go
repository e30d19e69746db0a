package orchestrator

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

func edge(waiter, holder, request string, prio int, enq time.Time) WaitEdge {
	key := lockkey.New("acme/infra", "mod-"+holder, "default", "")
	return WaitEdge{Waiter: waiter, Holder: holder, Request: request, Priority: prio, EnqueuedAt: enq,
		Lock: LockRef{Namespace: "ns", Name: key.ObjectName(), Key: key}}
}

func victims(found []Deadlock) []string {
	var v []string
	for _, d := range found {
		v = append(v, d.Victim.Request)
	}
	sort.Strings(v)
	return v
}

func TestFindDeadlocks(t *testing.T) {
	tests := []struct {
		name        string
		edges       []WaitEdge
		wantVictims []string
		wantCycles  []int // length of each cycle, in order found
	}{{
		name:  "no edges",
		edges: nil,
	}, {
		name:  "a chain is not a deadlock",
		edges: []WaitEdge{edge("a", "b", "ra", 1, t0), edge("b", "c", "rb", 1, t0), edge("c", "d", "rc", 1, t0)},
	}, {
		name:        "two owners waiting for each other",
		edges:       []WaitEdge{edge("a", "b", "ra", 1, t0), edge("b", "a", "rb", 1, t0.Add(time.Second))},
		wantVictims: []string{"rb"}, // the younger one
		wantCycles:  []int{2},
	}, {
		name: "lowest priority is chosen before youngest",
		edges: []WaitEdge{edge("a", "b", "ra", 0, t0), edge("b", "c", "rb", 1, t0.Add(time.Second)),
			edge("c", "a", "rc", 2, t0.Add(2*time.Second))},
		wantVictims: []string{"ra"},
		wantCycles:  []int{3},
	}, {
		name: "two disjoint cycles each lose one request",
		edges: []WaitEdge{edge("a", "b", "ra", 1, t0), edge("b", "a", "rb", 1, t0.Add(time.Second)),
			edge("c", "d", "rc", 1, t0), edge("d", "e", "rd", 1, t0), edge("e", "c", "re", 1, t0.Add(time.Minute)),
			edge("f", "a", "rf", 1, t0)},
		wantVictims: []string{"rb", "re"},
		wantCycles:  []int{2, 3},
	}, {
		name: "an owner waiting twice on one holder needs both requests failed",
		edges: []WaitEdge{edge("a", "b", "ra1", 1, t0), edge("a", "b", "ra2", 1, t0.Add(time.Second)),
			edge("b", "a", "rb", 2, t0)},
		wantVictims: []string{"ra1", "ra2"},
		wantCycles:  []int{2, 2},
	}, {
		name:  "waiting on oneself is no cycle",
		edges: []WaitEdge{edge("a", "a", "ra", 1, t0)},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			found := FindDeadlocks(tc.edges)
			if diff := cmp.Diff(tc.wantVictims, victims(found)); diff != "" {
				t.Errorf("victims (-want +got):\n%s", diff)
			}
			var lens []int
			for _, d := range found {
				lens = append(lens, len(d.Cycle))
				for i, e := range d.Cycle {
					if next := d.Cycle[(i+1)%len(d.Cycle)]; e.Holder != next.Waiter {
						t.Errorf("cycle %s is not closed at %d", d.Describe(), i)
					}
				}
			}
			if diff := cmp.Diff(tc.wantCycles, lens); diff != "" {
				t.Errorf("cycle lengths (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeadlockDescribeNamesTheWholeCycle(t *testing.T) {
	found := FindDeadlocks([]WaitEdge{edge("a", "b", "ra", 1, t0), edge("b", "c", "rb", 1, t0), edge("c", "a", "rc", 1, t0)})
	if len(found) != 1 {
		t.Fatalf("found %d deadlocks, want 1", len(found))
	}
	got := found[0].Describe()
	for _, want := range []string{"a waits for b", "b waits for c", "c waits for a"} {
		if !strings.Contains(got, want) {
			t.Errorf("description %q lacks %q", got, want)
		}
	}
}

// BenchmarkFindDeadlocks10k scans 10,000 waiting requests: 5,000 keys held by 5,000
// owners, each owner waiting on the next owner's key (one long chain), plus 5,000
// more waiters on random holders, and no cycle.
func BenchmarkFindDeadlocks10k(b *testing.B) {
	edges := make([]WaitEdge, 0, 10000)
	for i := 0; i < 5000; i++ {
		edges = append(edges, edge(fmt.Sprint("o", i), fmt.Sprint("o", i+1), fmt.Sprint("r", i), 1, t0))
	}
	for i := 0; i < 5000; i++ {
		edges = append(edges, edge(fmt.Sprint("w", i), fmt.Sprint("o", (i*7919)%5000), fmt.Sprint("w", i), 1, t0))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if found := FindDeadlocks(edges); len(found) != 0 {
			b.Fatalf("found %d deadlocks in a graph without cycles", len(found))
		}
	}
}

// TestDeadlockFoundTwiceIsReportedOnce scans twice before the victim's lock is
// decided again: the cycle is still current, but one deadlock, reported once.
func TestDeadlockFoundTwiceIsReportedOnce(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	o := New(NewMemoryBackend(), clk, DefaultConfig())
	var notices int
	o.AddObserver(ObserverFunc(func(n Notice) {
		if n.Kind == NoticeDeadlock {
			notices++
		}
	}))
	k1, k2 := LockRef{Namespace: "ns", Name: "k1"}, LockRef{Namespace: "ns", Name: "k2"}
	for _, c := range []struct {
		ref            LockRef
		holder, waiter string
	}{{k1, "alice", "bob"}, {k2, "bob", "alice"}} {
		st := o.lockState(c.ref)
		st.holder = &Holder{Owner: c.holder}
		st.queue = []queuedWaiter{{Owner: c.waiter, Request: c.waiter + "-" + c.ref.Name}}
	}
	for scan := 1; scan <= 2; scan++ {
		if got := len(o.DetectDeadlocks()); got != 1 {
			t.Fatalf("scan %d returned %d cycles, want the 1 still there", scan, got)
		}
	}
	m := o.GetMetrics()
	if notices != 1 || m.Deadlocks != 1 || m.CurrentDeadlocks != 1 {
		t.Errorf("%d notices, %d deadlocks counted, %d current; want 1, 1, 1", notices, m.Deadlocks, m.CurrentDeadlocks)
	}
}
