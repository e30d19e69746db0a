package managerproc

import (
	"context"
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
}

// Sampler reads one manager's usage, queue depth and heap every interval until
// stopped or the process exits.
type Sampler struct {
	mu      sync.Mutex
	samples []Sample
	cancel  context.CancelFunc
	done    chan struct{}
}

// StartSampler starts sampling m, naming the samples name and timing them from
// origin. The first sample is taken at once.
func StartSampler(ctx context.Context, m *Manager, name string, origin time.Time, interval time.Duration) *Sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &Sampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			if sample, err := m.sample(ctx, name, origin); err == nil {
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

// sample reads the process's usage and scrapes its queue depth and heap.
func (m *Manager) sample(ctx context.Context, name string, origin time.Time) (Sample, error) {
	u, err := m.Usage()
	if err != nil {
		return Sample{}, err
	}
	s := Sample{Manager: name, At: time.Since(origin), Usage: u}
	if metrics, err := m.Scrape(ctx); err == nil {
		s.QueueDepth = metrics.Sum("workqueue_depth", "name", LockQueue)
		s.HeapInuse = metrics.Sum("go_memstats_heap_inuse_bytes")
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
