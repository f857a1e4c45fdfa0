package httpx

import (
	"context"
	"sync"
)

// KeyedLimiter allows at most N concurrent holders per key (for example per
// mailbox, matching Outlook's 4-concurrent-requests limit). A key's state is
// dropped as soon as nobody holds or waits for it, so memory is proportional
// to the keys in use, not to every key ever seen.
type KeyedLimiter struct {
	n     int
	mu    sync.Mutex
	slots map[string]*keySlot
}

type keySlot struct {
	sem  chan struct{}
	refs int // holders plus waiters; the slot is deleted when it drops to 0
}

// NewKeyedLimiter returns a limiter allowing n holders per key. n < 1 is treated as 1.
func NewKeyedLimiter(n int) *KeyedLimiter {
	if n < 1 {
		n = 1
	}
	return &KeyedLimiter{n: n, slots: make(map[string]*keySlot)}
}

// Acquire blocks until a slot for key is free or ctx is done. The returned
// release func must be called exactly once; extra calls are no-ops.
func (l *KeyedLimiter) Acquire(ctx context.Context, key string) (release func(), err error) {
	l.mu.Lock()
	s := l.slots[key]
	if s == nil {
		s = &keySlot{sem: make(chan struct{}, l.n)}
		l.slots[key] = s
	}
	s.refs++
	l.mu.Unlock()

	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		l.unref(key, s)
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-s.sem
			l.unref(key, s)
		})
	}, nil
}

func (l *KeyedLimiter) unref(key string, s *keySlot) {
	l.mu.Lock()
	s.refs--
	if s.refs == 0 {
		delete(l.slots, key)
	}
	l.mu.Unlock()
}

// Keys reports how many keys currently have holders or waiters.
func (l *KeyedLimiter) Keys() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.slots)
}

// Limit reports the per-key limit.
func (l *KeyedLimiter) Limit() int { return l.n }
