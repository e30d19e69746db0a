package orchestrator

import (
	"slices"
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
	// RequestUID is the waiting request's UID.
	RequestUID string
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
		// Owners are per namespace, so a cycle never leaves one: name them as their
		// users know them.
		prefix := ""
		if e.Lock.Namespace != "" {
			prefix = e.Lock.Namespace + "/"
		}
		waiter, holder := strings.TrimPrefix(e.Waiter, prefix), strings.TrimPrefix(e.Holder, prefix)
		parts = append(parts, waiter+" waits for "+holder+" on "+e.Lock.Key.String()+" (request "+e.Request+")")
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
	// Only strongly connected components of two or more owners hold cycles, so the
	// search for each next cycle stays inside one component: a graph with many small
	// cycles costs the size of those cycles, not of the whole graph each time.
	for _, comp := range g.components() {
		if len(comp) < 2 {
			continue
		}
		g.orderByName(comp)
		for {
			cycle := g.findCycle(comp)
			if cycle == nil {
				break
			}
			found = append(found, g.breakCycle(cycle))
		}
	}
	return found
}

// orderByName sorts a component's owners, and their arcs, by owner name: the cycles
// found, and so the victims, are then the same on every run and every replica,
// whatever order the edges came in. Only components with cycles pay for it.
func (g *waitGraph) orderByName(comp []int) {
	byName := func(a, b int) int { return strings.Compare(g.names[a], g.names[b]) }
	slices.SortFunc(comp, byName)
	for _, v := range comp {
		slices.SortFunc(g.adj[v], func(a, b arc) int { return byName(a.holder, b.holder) })
	}
}

// breakCycle chooses the victim among the waiting requests on a cycle's arcs and
// takes its request out of the graph.
func (g *waitGraph) breakCycle(cycle []int) Deadlock {
	var cycleEdges []WaitEdge
	victim, vw, vh := int32(-1), 0, 0
	for i, w := range cycle {
		h := cycle[(i+1)%len(cycle)]
		a := g.arc(w, h)
		first := true
		for i := a.lo; i < a.hi; i++ {
			if g.removed[i] {
				continue
			}
			r := g.reqs[i]
			if first {
				cycleEdges = append(cycleEdges, g.edges[r])
				first = false
			}
			if victim < 0 || worseVictim(g.edges[r], g.edges[victim]) {
				victim, vw, vh = r, w, h
			}
		}
	}
	g.remove(vw, vh, victim)
	return Deadlock{Cycle: cycleEdges, Victim: g.edges[victim]}
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
	// comp is each owner's strongly connected component; color is findCycle's
	// visiting state, kept to reuse its memory across searches.
	comp  []int
	color []uint8
	// reqs lists edge indexes grouped by arc; removed marks those taken out.
	reqs    []int32
	removed []bool
	// adj[w] lists the arcs out of owner w, ordered by holder.
	adj [][]arc
}

// arc is "waiter waits for holder", through the requests edges[reqs[lo:hi]] whose
// removed flag is not set.
type arc struct {
	holder int
	lo, hi int32
}

func newWaitGraph(edges []WaitEdge) *waitGraph {
	ids := make(map[string]int, len(edges))
	names := make([]string, 0, len(edges))
	id := func(o string) int {
		i, ok := ids[o]
		if !ok {
			i = len(names)
			ids[o] = i
			names = append(names, o)
		}
		return i
	}
	type pair struct{ w, h, idx int }
	pairs := make([]pair, 0, len(edges))
	for i, e := range edges {
		if w, h := id(e.Waiter), id(e.Holder); w != h {
			pairs = append(pairs, pair{w, h, i})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if a.w != b.w {
			return a.w - b.w
		}
		if a.h != b.h {
			return a.h - b.h
		}
		return a.idx - b.idx
	})
	g := &waitGraph{
		names:   names,
		edges:   edges,
		adj:     make([][]arc, len(names)),
		color:   make([]uint8, len(names)),
		reqs:    make([]int32, len(pairs)),
		removed: make([]bool, len(pairs)),
	}
	for i, p := range pairs {
		g.reqs[i] = int32(p.idx)
		out := g.adj[p.w]
		if n := len(out); n > 0 && out[n-1].holder == p.h {
			out[n-1].hi++
			continue
		}
		g.adj[p.w] = append(out, arc{holder: p.h, lo: int32(i), hi: int32(i + 1)})
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
	left := 0
	for i := a.lo; i < a.hi; i++ {
		if g.reqs[i] == idx {
			g.removed[i] = true
		}
		if !g.removed[i] {
			left++
		}
	}
	if left > 0 {
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

// components returns the strongly connected components of the graph (Tarjan's
// algorithm, iterative so that long wait chains cannot exhaust the stack), and
// records each owner's component for findCycle.
func (g *waitGraph) components() [][]int {
	n := len(g.names)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	g.comp = make([]int, n)
	var stack []int
	var comps [][]int
	type frame struct{ v, next int }
	next := 0
	for start := range n {
		if index[start] >= 0 {
			continue
		}
		call := []frame{{v: start}}
		index[start], low[start] = next, next
		next++
		stack = append(stack, start)
		onStack[start] = true
		for len(call) > 0 {
			top := &call[len(call)-1]
			v := top.v
			if top.next < len(g.adj[v]) {
				w := g.adj[v][top.next].holder
				top.next++
				switch {
				case index[w] < 0:
					index[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{v: w})
				case onStack[w]:
					low[v] = min(low[v], index[w])
				}
				continue
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				parent := call[len(call)-1].v
				low[parent] = min(low[parent], low[v])
			}
			if low[v] == index[v] {
				var comp []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					g.comp[w] = len(comps)
					comp = append(comp, w)
					if w == v {
						break
					}
				}
				comps = append(comps, comp)
			}
		}
	}
	return comps
}

// findCycle returns the owners of one cycle within the component comp, in order, or
// nil. It is an iterative depth-first search that never leaves the component.
func (g *waitGraph) findCycle(comp []int) []int {
	const (
		white = iota
		grey
		black
	)
	c := g.comp[comp[0]]
	for _, v := range comp {
		g.color[v] = white
	}
	type frame struct{ owner, next int }
	var stack []frame
	for _, start := range comp {
		if g.color[start] != white {
			continue
		}
		stack = append(stack[:0], frame{owner: start})
		g.color[start] = grey
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			out := g.adj[top.owner]
			if top.next == len(out) {
				g.color[top.owner] = black
				stack = stack[:len(stack)-1]
				continue
			}
			h := out[top.next].holder
			top.next++
			if g.comp[h] != c {
				continue
			}
			switch g.color[h] {
			case white:
				g.color[h] = grey
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
				slices.Reverse(cycle)
				return cycle
			}
		}
	}
	return nil
}
