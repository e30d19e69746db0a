package main

import (
	"context"
	"slices"
	"sync"
	"time"
)

// parallel runs fn(ctx, i) for every i in [0, n), each in its own goroutine, and
// waits for all of them. The first error cancels the ctx the others were given and
// is returned.
func parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i := range n {
		wg.Go(func() {
			if err := fn(ctx, i); err != nil {
				once.Do(func() {
					first = err
					cancel(err)
				})
			}
		})
	}
	wg.Wait()
	return first
}

// perClient collects samples from n goroutines without locks: goroutine i appends to
// its own slice only.
type perClient [][]time.Duration

func newPerClient(n int) perClient { return make(perClient, n) }

// add records sample d of client i.
func (p perClient) add(i int, d time.Duration) { p[i] = append(p[i], d) }

// all returns every sample; call it once the goroutines are done.
func (p perClient) all() []time.Duration { return slices.Concat(p...) }
