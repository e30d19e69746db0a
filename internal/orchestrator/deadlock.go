package orchestrator

import (
	"sort"
	"strings"
	"time"
)

// WaitEdge is one waiting request in the wait-for graph: owner Waiter waits, through
// Request, for a key that owner Holder holds.
type WaitEdge struct {
	// Waiter is the waiting owner.
	Waiter string
	// Holder is the owner holding the key Waiter waits for.
	Holder string
	// Lock is the key waited for.
	Lock LockRef
	// Request is the waiting request's ID.
	Request string
	// Priority of the waiting request.
	Priority int
	// EnqueuedAt is when the waiting request joined the queue.
	EnqueuedAt time.Time
}

// Deadlock is one cycle of owners that wait for each other, and the waiting request
// failed to break it.
type Deadlock struct {
	// Cycle lists the edges of the cycle in order: each Waiter is the previous
	// edge's Holder, and the last edge's Holder is the first edge's Waiter.
	Cycle []WaitEdge
	// Victim is the request failed to break the cycle: the lowest priority on the
	// cycle, then the youngest (latest enqueued), then the greatest ID.
	Victim WaitEdge
}

// Describe names the whole cycle, e.g. "a/r#1 waits for a/r#2 (k2) → a/r#2 waits
// for a/r#1 (k1)".
func (d Deadlock) Describe() string {
	parts := make([]string, 0, len(d.Cycle))
	for _, e := range d.Cycle {
		parts = append(parts, e.Waiter+" waits for "+e.Holder+" on "+e.Lock.Key.String()+" (request "+e.Request+")")
	}
	return strings.Join(parts, " → ")
}

// FindDeadlocks returns every cycle in the wait-for graph of edges, each with the one
// request to fail. Cycles are broken one at a time: after a victim is chosen its
// edge leaves the graph and the search goes on, so every cycle, disjoint or
// overlapping, is broken by exactly one victim and chains are never reported.
func FindDeadlocks(edges []WaitEdge) []Deadlock {
	g := newWaitGraph(edges)
	var found []Deadlock
	for {
		cycle := g.findCycle()
		if cycle == nil {
			return found
		}
		var cycleEdges []WaitEdge
		victim, vw, vh := int32(-1), 0, 0
		for i, w := range cycle {
			h := cycle[(i+1)%len(cycle)]
			a := g.arc(w, h)
			cycleEdges = append(cycleEdges, edges[a.reqs[0]])
			for _, r := range a.reqs {
				if victim < 0 || worseVictim(edges[r], edges[victim]) {
					victim, vw, vh = r, w, h
				}
			}
		}
		found = append(found, Deadlock{Cycle: cycleEdges, Victim: edges[victim]})
		g.remove(vw, vh, victim)
	}
}

// worseVictim reports whether a is a better victim than b: lower priority, then
// younger, then the greater ID (for a stable choice).
func worseVictim(a, b WaitEdge) bool {
	if a.Priority != b.Priority {
		return a.Priority < b.Priority
	}
	if !a.EnqueuedAt.Equal(b.EnqueuedAt) {
		return a.EnqueuedAt.After(b.EnqueuedAt)
	}
	return a.Lock.String()+"/"+a.Request > b.Lock.String()+"/"+b.Request
}

// waitGraph is the wait-for graph with owners numbered densely, so that the search
// runs over slices rather than maps of strings: a scan of 10,000 waiters stays in
// the low milliseconds.
type waitGraph struct {
	names []string
	edges []WaitEdge
	// adj[w] lists the arcs out of owner w, ordered by holder.
	adj [][]arc
}

// arc is "waiter waits for holder", through the requests edges[reqs[i]].
type arc struct {
	holder int
	reqs   []int32
}

func newWaitGraph(edges []WaitEdge) *waitGraph {
	ids := make(map[string]int, len(edges))
	var names []string
	for _, e := range edges {
		for _, o := range [2]string{e.Waiter, e.Holder} {
			if _, ok := ids[o]; !ok {
				ids[o] = 0
				names = append(names, o)
			}
		}
	}
	// A fixed numbering makes the cycles found, and so the victims, the same on
	// every run and every replica.
	sort.Strings(names)
	for i, n := range names {
		ids[n] = i
	}
	type pair struct{ w, h, idx int }
	pairs := make([]pair, 0, len(edges))
	for i, e := range edges {
		if w, h := ids[e.Waiter], ids[e.Holder]; w != h {
			pairs = append(pairs, pair{w, h, i})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		a, b := pairs[i], pairs[j]
		if a.w != b.w {
			return a.w < b.w
		}
		if a.h != b.h {
			return a.h < b.h
		}
		return a.idx < b.idx
	})
	g := &waitGraph{names: names, edges: edges, adj: make([][]arc, len(names))}
	for _, p := range pairs {
		out := g.adj[p.w]
		if n := len(out); n > 0 && out[n-1].holder == p.h {
			out[n-1].reqs = append(out[n-1].reqs, int32(p.idx))
			continue
		}
		g.adj[p.w] = append(out, arc{holder: p.h, reqs: []int32{int32(p.idx)}})
	}
	return g
}

func (g *waitGraph) arc(w, h int) *arc {
	for i := range g.adj[w] {
		if g.adj[w][i].holder == h {
			return &g.adj[w][i]
		}
	}
	return nil
}

// remove takes request edges[idx] out of the arc w → h, and the arc out of the
// graph when it was the last request on it.
func (g *waitGraph) remove(w, h int, idx int32) {
	a := g.arc(w, h)
	for i, r := range a.reqs {
		if r == idx {
			a.reqs = append(a.reqs[:i:i], a.reqs[i+1:]...)
			break
		}
	}
	if len(a.reqs) > 0 {
		return
	}
	out := g.adj[w]
	for i := range out {
		if out[i].holder == h {
			g.adj[w] = append(out[:i:i], out[i+1:]...)
			return
		}
	}
}

// findCycle returns the owners of one cycle in order, or nil. It is an iterative
// depth-first search, so that long wait chains cannot exhaust the stack.
func (g *waitGraph) findCycle() []int {
	const (
		white = iota
		grey
		black
	)
	color := make([]uint8, len(g.names))
	type frame struct{ owner, next int }
	var stack []frame
	for start := range g.names {
		if color[start] != white {
			continue
		}
		stack = append(stack[:0], frame{owner: start})
		color[start] = grey
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			out := g.adj[top.owner]
			if top.next == len(out) {
				color[top.owner] = black
				stack = stack[:len(stack)-1]
				continue
			}
			h := out[top.next].holder
			top.next++
			switch color[h] {
			case white:
				color[h] = grey
				stack = append(stack, frame{owner: h})
			case grey:
				// A back edge: the cycle is the stack from h to the top.
				var cycle []int
				for i := len(stack) - 1; i >= 0; i-- {
					cycle = append(cycle, stack[i].owner)
					if stack[i].owner == h {
						break
					}
				}
				for i, j := 0, len(cycle)-1; i < j; i, j = i+1, j-1 {
					cycle[i], cycle[j] = cycle[j], cycle[i]
				}
				return cycle
			}
		}
	}
	return nil
}
