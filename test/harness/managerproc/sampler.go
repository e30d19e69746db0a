package managerproc

import (
	"context"
	"io"
	"sync"
	"time"
)

// LockQueue is the work queue of the operator's lock controller: the value of the
// name label of controller-runtime's workqueue_* series and of the controller label
// of its controller_runtime_* series.
const LockQueue = "lock"

// Sample is one reading of a manager process.
type Sample struct {
	// Manager names the process.
	Manager string `json:"manager"`
	// At is when the sample was taken, as time since the sampler's origin.
	At time.Duration `json:"atNanoseconds"`
	Usage
	// QueueDepth is workqueue_depth of the lock controller.
	QueueDepth float64 `json:"queueDepth"`
	// HeapInuse is go_memstats_heap_inuse_bytes: the Go heap's spans in use.
	HeapInuse float64 `json:"heapInuseBytes"`
	// LiveHeap is go_memstats_heap_alloc_bytes right after a forced garbage
	// collection (SamplerOptions.LiveHeap), else 0.
	LiveHeap float64 `json:"liveHeapBytes,omitempty"`
}

// SamplerOptions say what a Sampler reads, and how often.
type SamplerOptions struct {
	// Name names the manager in the samples.
	Name string
	// Origin is the time samples are timed from.
	Origin time.Time
	// Interval is the time between samples; the first is taken at once.
	Interval time.Duration
	// LiveHeap forces a garbage collection before each sample (through the
	// manager's heap profile; it needs Options.Pprof) and reads the live heap. A
	// collection costs CPU in proportion to the live heap: leave it off where the
	// CPU is measured.
	LiveHeap bool
}

// Sampler reads one manager's usage, queue depth and heap every interval until
// stopped or the process exits.
type Sampler struct {
	mu      sync.Mutex
	samples []Sample
	cancel  context.CancelFunc
	done    chan struct{}
}

// StartSampler starts sampling m.
func StartSampler(ctx context.Context, m *Manager, opts SamplerOptions) *Sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &Sampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(opts.Interval)
		defer tick.Stop()
		for {
			if sample, err := m.sample(ctx, opts); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, sample)
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-m.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// sample reads the process's usage and scrapes its queue depth and heap; then,
// when asked, the live heap after a forced collection.
func (m *Manager) sample(ctx context.Context, opts SamplerOptions) (Sample, error) {
	u, err := m.Usage()
	if err != nil {
		return Sample{}, err
	}
	s := Sample{Manager: opts.Name, At: time.Since(opts.Origin), Usage: u}
	metrics, err := m.Scrape(ctx)
	if err != nil {
		return s, nil //nolint:nilerr // the process's own figures stand alone
	}
	s.QueueDepth = metrics.Sum("workqueue_depth", "name", LockQueue)
	s.HeapInuse = metrics.Sum("go_memstats_heap_inuse_bytes")
	if opts.LiveHeap {
		if err := m.HeapProfile(ctx, io.Discard); err != nil {
			return s, err
		}
		if metrics, err = m.Scrape(ctx); err != nil {
			return s, err
		}
		s.LiveHeap = metrics.Sum("go_memstats_heap_alloc_bytes")
	}
	return s, nil
}

// Samples returns the samples taken so far.
func (s *Sampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.samples...)
}

// Stop stops sampling and returns the samples.
func (s *Sampler) Stop() []Sample {
	s.cancel()
	<-s.done
	return s.Samples()
}
