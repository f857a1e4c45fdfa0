package httpx

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestKeyedLimiterBoundsPerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 4
		l := NewKeyedLimiter(limit)
		var (
			inFlight = map[string]*atomic.Int32{"a": {}, "b": {}}
			peak     = map[string]*atomic.Int32{"a": {}, "b": {}}
			wg       sync.WaitGroup
		)
		for i := range 40 {
			key := []string{"a", "b"}[i%2]
			wg.Go(func() {
				release, err := l.Acquire(context.Background(), key)
				if err != nil {
					t.Error(err)
					return
				}
				n := inFlight[key].Add(1)
				for {
					p := peak[key].Load()
					if n <= p || peak[key].CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(time.Second)
				inFlight[key].Add(-1)
				release()
			})
		}
		start := time.Now()
		wg.Wait()
		for _, k := range []string{"a", "b"} {
			if p := peak[k].Load(); p != limit {
				t.Errorf("key %s peak = %d, want %d", k, p, limit)
			}
		}
		// 20 holders per key, 4 at a time, 1s each: 5 rounds, keys in parallel.
		if el := time.Since(start); el != 5*time.Second {
			t.Errorf("elapsed %v, want 5s", el)
		}
		if n := l.Keys(); n != 0 {
			t.Errorf("Keys() = %d after all released, want 0", n)
		}
	})
}

func TestKeyedLimiterFreesKeys(t *testing.T) {
	l := NewKeyedLimiter(4)
	for i := range 10000 {
		release, err := l.Acquire(context.Background(), fmt.Sprintf("mailbox-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		release()
		release() // idempotent
	}
	if n := l.Keys(); n != 0 {
		t.Fatalf("Keys() = %d, want 0", n)
	}
}

func TestKeyedLimiterCancelWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewKeyedLimiter(1)
		release, err := l.Acquire(context.Background(), "k")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err = l.Acquire(ctx, "k")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
		if n := l.Keys(); n != 1 {
			t.Errorf("Keys() = %d while held, want 1", n)
		}
		release()
		if n := l.Keys(); n != 0 {
			t.Errorf("Keys() = %d after release, want 0", n)
		}
		// The slot is usable again.
		r2, err := l.Acquire(context.Background(), "k")
		if err != nil {
			t.Fatal(err)
		}
		r2()
	})
}
