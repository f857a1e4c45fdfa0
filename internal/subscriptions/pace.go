package subscriptions

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Graph's subscription service limits per app per tenant are 1,000 writes
// (POST/PATCH/DELETE on /subscriptions) and 5,000 requests of any kind per
// 20 s. Our defaults stay 20 % below: a second instance during a rolling
// deploy, an admin script or another tool of the same app registration
// draws on the same budget, and Graph counts the windows itself, so running
// right at the edge would still earn 429s.
const (
	DefaultWritesPerWindow   = 800
	DefaultRequestsPerWindow = 4000
	DefaultLimitWindow       = 20 * time.Second
)

// pacer spaces subscription requests so that no window of the configured
// length (half-open, [t, t+window)) ever holds more than the budgets. It is a
// sliding-window log: it remembers the grant times of the last n requests in
// a ring, and a request may go once the n-th previous one is a window old.
// Unlike a token bucket whose burst plus refill admits up to twice the budget
// in one window, this is exact, and its memory is fixed by the budgets
// (about 115 KB at the defaults), not by how many mailboxes there are.
type pacer struct {
	mu     sync.Mutex
	now    func() time.Time
	window time.Duration
	writes ring // nil ring: unlimited
	all    ring
}

type ring struct {
	times []time.Time // grant times, oldest at next; zero = never used
	next  int
}

// wait is how long until the ring admits one more request at now.
func (r *ring) wait(now time.Time, window time.Duration) time.Duration {
	if len(r.times) == 0 {
		return 0
	}
	oldest := r.times[r.next]
	if oldest.IsZero() {
		return 0
	}
	return max(oldest.Add(window).Sub(now), 0)
}

func (r *ring) record(now time.Time) {
	if len(r.times) == 0 {
		return
	}
	r.times[r.next] = now
	r.next = (r.next + 1) % len(r.times)
}

// newPacer returns nil (no pacing) when both budgets are unlimited.
func newPacer(writes, all int, window time.Duration, now func() time.Time) *pacer {
	if writes <= 0 && all <= 0 {
		return nil
	}
	p := &pacer{now: now, window: window}
	if writes > 0 {
		p.writes.times = make([]time.Time, writes)
	}
	if all > 0 {
		p.all.times = make([]time.Time, all)
	}
	return p
}

// wait blocks until one request (a write when write is set) may be sent, and
// records it against both budgets at the same instant, so that a write
// never holds a slot in one ring while it waits for the other. It returns
// the context's error, wrapped, when ctx ends first.
func (p *pacer) wait(ctx context.Context, op string, write bool) error {
	if p == nil {
		return ctx.Err()
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: waiting for Graph subscription budget: %w", op, err)
		}
		p.mu.Lock()
		now := p.now()
		d := p.all.wait(now, p.window)
		if write {
			d = max(d, p.writes.wait(now, p.window))
		}
		if d == 0 {
			p.all.record(now)
			if write {
				p.writes.record(now)
			}
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
		// Sleep and look again: another waiter may take the slot first.
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: waiting for Graph subscription budget: %w", op, ctx.Err())
		}
	}
}

// budget resolves a configured budget: zero is the default, negative is
// unlimited (returned as 0).
func budget(configured, def int) int {
	switch {
	case configured == 0:
		return def
	case configured < 0:
		return 0
	}
	return configured
}
