package benchutil

import (
	"context"
	"sync"
)

// Parallel runs fn(ctx, i) for every i in [0, n), each in its own goroutine, and
// waits for all of them. The first error cancels the ctx the others were given and
// is returned.
func Parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
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
