package orchestrator

import (
	"container/heap"
	"sync"
	"time"
)

// TimeoutManager holds the next deadline (queue timeout or hold expiry) of every lock
// in one heap: the single deadline structure behind RequeueAfter in the controller.
// Nothing sleeps: callers ask for the earliest deadline, or for the locks whose
// deadline has passed.
type TimeoutManager struct {
	mu      sync.Mutex
	entries deadlineHeap
	index   map[lockID]*deadlineEntry
}

// NewTimeoutManager returns an empty TimeoutManager.
func NewTimeoutManager() *TimeoutManager {
	return &TimeoutManager{index: map[lockID]*deadlineEntry{}}
}

// Set records the next deadline of a lock; a zero deadline removes it.
func (m *TimeoutManager) Set(ref LockRef, deadline time.Time) {
	id := ref.id()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.index[id]
	switch {
	case deadline.IsZero() && ok:
		heap.Remove(&m.entries, e.index)
		delete(m.index, id)
		return
	case deadline.IsZero():
		return
	case ok:
		e.deadline = deadline
		heap.Fix(&m.entries, e.index)
	default:
		e = &deadlineEntry{id: id, deadline: deadline}
		heap.Push(&m.entries, e)
		m.index[id] = e
	}
}

// Next returns the earliest deadline, or false when there is none.
func (m *TimeoutManager) Next() (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.entries) == 0 {
		return time.Time{}, false
	}
	return m.entries[0].deadline, true
}

// Len returns the number of locks with a deadline.
func (m *TimeoutManager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

type deadlineEntry struct {
	id       lockID
	deadline time.Time
	index    int
}

type deadlineHeap []*deadlineEntry

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *deadlineHeap) Push(x any) {
	e := x.(*deadlineEntry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *deadlineHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
