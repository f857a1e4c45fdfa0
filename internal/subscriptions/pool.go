package subscriptions

import (
	"context"
	"sync"
)

// pool runs submitted jobs on a fixed number of goroutines and keeps the
// first error. It holds no per-job state: memory stays flat however many
// jobs pass through.
type pool struct {
	ctx  context.Context
	jobs chan func(context.Context) error
	wg   sync.WaitGroup

	mu       sync.Mutex
	firstErr error

	closeOnce sync.Once
}

func newPool(ctx context.Context, workers int) *pool {
	p := &pool{ctx: ctx, jobs: make(chan func(context.Context) error)}
	for range max(workers, 1) {
		p.wg.Go(func() {
			for job := range p.jobs {
				if err := job(ctx); err != nil {
					p.mu.Lock()
					if p.firstErr == nil {
						p.firstErr = err
					}
					p.mu.Unlock()
				}
			}
		})
	}
	return p
}

// submit hands job to the next free worker, waiting for one; it returns
// ctx's error instead if ctx ends first.
func (p *pool) submit(job func(context.Context) error) error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	select {
	case p.jobs <- job:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

// close waits for the submitted jobs to finish and returns the first error
// one of them returned. It may be called more than once.
func (p *pool) close() error {
	p.closeOnce.Do(func() { close(p.jobs) })
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstErr
}
