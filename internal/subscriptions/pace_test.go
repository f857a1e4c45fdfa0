package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bookingsync/bookingsync/internal/graph"
)

// maxInWindow is the most of the sorted times that fall in any half-open
// window [t, t+w): the measure Graph's "N requests per 20 s" limits.
func maxInWindow(times []time.Time, w time.Duration) int {
	best, j := 0, 0
	for i := range times {
		for j < len(times) && times[j].Before(times[i].Add(w)) {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

func TestMaxInWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(secs ...float64) []time.Time {
		var out []time.Time
		for _, s := range secs {
			out = append(out, t0.Add(time.Duration(s*float64(time.Second))))
		}
		return out
	}
	for _, tc := range []struct {
		times []time.Time
		want  int
	}{
		{nil, 0},
		{at(0), 1},
		{at(0, 0, 0), 3},
		{at(0, 19.9, 20), 2}, // 20 s later is the next window
		{at(0, 1, 2, 25, 26), 3},
	} {
		if got := maxInWindow(tc.times, 20*time.Second); got != tc.want {
			t.Errorf("maxInWindow(%v) = %d, want %d", tc.times, got, tc.want)
		}
	}
}

func TestBudget(t *testing.T) {
	for _, tc := range []struct{ configured, want int }{{0, 800}, {-1, 0}, {5, 5}} {
		if got := budget(tc.configured, 800); got != tc.want {
			t.Errorf("budget(%d) = %d, want %d", tc.configured, got, tc.want)
		}
	}
}

// TestPacer fires requests from many goroutines at once and checks that no
// window holds more than a budget, and how long the last one waited.
func TestPacer(t *testing.T) {
	for _, tc := range []struct {
		name          string
		writes, all   int
		nWrite, nRead int
		wantLast      time.Duration // when the last request is let through
	}{
		{"writes only", 5, 0, 12, 0, 2 * time.Second},
		{"reads only", 5, 10, 0, 25, 2 * time.Second},
		{"writes within all", 5, 10, 5, 15, 1 * time.Second},
		{"writes bound", 2, 100, 7, 3, 3 * time.Second},
		{"unlimited", -1, -1, 50, 50, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				p := newPacer(tc.writes, tc.all, time.Second, time.Now) // <= 0: that budget is unlimited
				var (
					mu           sync.Mutex
					writes, alls []time.Time
					wg           sync.WaitGroup
				)
				for i := range tc.nWrite + tc.nRead {
					write := i < tc.nWrite
					wg.Go(func() {
						if err := p.wait(context.Background(), "op", write); err != nil {
							t.Error(err)
						}
						mu.Lock()
						defer mu.Unlock()
						alls = append(alls, time.Now())
						if write {
							writes = append(writes, time.Now())
						}
					})
				}
				wg.Wait()
				slices.SortFunc(alls, time.Time.Compare)
				slices.SortFunc(writes, time.Time.Compare)
				if tc.writes > 0 && maxInWindow(writes, time.Second) > tc.writes {
					t.Errorf("%d writes in one window, budget %d", maxInWindow(writes, time.Second), tc.writes)
				}
				if tc.all > 0 && maxInWindow(alls, time.Second) > tc.all {
					t.Errorf("%d requests in one window, budget %d", maxInWindow(alls, time.Second), tc.all)
				}
				if last := alls[len(alls)-1].Sub(start); last != tc.wantLast {
					t.Errorf("last request at +%v, want +%v", last, tc.wantLast)
				}
			})
		})
	}
}

func TestPacerCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(1, 0, time.Minute, time.Now)
		ctx, cancel := context.WithCancel(context.Background())
		if err := p.wait(ctx, "first", true); err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		err := p.wait(ctx, "renew subscription s1", true)
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "renew subscription s1") {
			t.Fatalf("err = %v", err)
		}
		if waited := time.Since(start); waited != time.Second {
			t.Fatalf("returned after %v, want at the cancel (1s), not at the window's end", waited)
		}
	})
}

// TestThrottledErrorsSurface: a 429 that outlasts the HTTP client's retries
// comes back wrapped, recognisable as graph.ErrThrottled (so the job
// retries), and a renewal round stops at it instead of sending the rest of
// its PATCHes into the throttling.
func TestThrottledErrorsSurface(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFakeGraph(10070)
		m, _ := newTestManager(t, f, 10000*time.Minute)
		for i := range 5 {
			if _, err := m.Ensure(ctx, fmt.Sprintf("res-%d", i), fmt.Sprintf("mbx-%d", i)); err != nil {
				t.Fatal(err)
			}
		}

		f.postErr = http.StatusTooManyRequests
		_, err := m.Ensure(ctx, "res-x", "mbx-x")
		if !errors.Is(err, graph.ErrThrottled) || !strings.Contains(err.Error(), "create subscription for mbx-x") {
			t.Fatalf("Ensure under throttling: %v", err)
		}
		if got := describe(err); !strings.Contains(got, "throttling") {
			t.Errorf("status text %q", got)
		}

		f.patchErr = http.StatusTooManyRequests
		time.Sleep(4 * 24 * time.Hour) // past half the lifetime: all five are due, none lapsed
		f.patched = nil
		renewed, err := m.RenewDue(ctx)
		if renewed != 0 || !errors.Is(err, graph.ErrThrottled) || !strings.Contains(err.Error(), "renew subscription") {
			t.Fatalf("RenewDue under throttling: %d, %v", renewed, err)
		}
		if ids := slices.Compact(slices.Clone(f.patched)); len(ids) != 1 {
			t.Fatalf("PATCHed %v after the first 429, want one subscription only", ids)
		}
	})
}

// throttledGraph is a GraphAPI (no HTTP) that enforces Graph's subscription
// service limits per app and tenant itself, answering 429 like Graph, and
// records when every request arrived.
type throttledGraph struct {
	mu                   sync.Mutex
	writeLimit, anyLimit int
	window               time.Duration
	latency              time.Duration // per request, outside the lock

	writes, all []time.Time // arrival times, in order
	renewals    []time.Time
	throttled   int
	subs        map[string]graph.Subscription
	next        int
}

func newThrottledGraph() *throttledGraph {
	return &throttledGraph{writeLimit: 1000, anyLimit: 5000, window: 20 * time.Second, subs: map[string]graph.Subscription{}}
}

// inWindow counts the times after now-window (times is sorted).
func inWindow(times []time.Time, now time.Time, w time.Duration) int {
	i, _ := slices.BinarySearchFunc(times, now.Add(-w), func(t, target time.Time) int {
		if t.After(target) {
			return 1
		}
		return -1
	})
	return len(times) - i
}

// admit applies the limits under g.mu.
func (g *throttledGraph) admit(write bool) error {
	now := time.Now()
	if inWindow(g.all, now, g.window) >= g.anyLimit || write && inWindow(g.writes, now, g.window) >= g.writeLimit {
		g.throttled++
		return &graph.Error{StatusCode: http.StatusTooManyRequests, Code: "TooManyRequests", RetryAfter: g.window}
	}
	g.all = append(g.all, now)
	if write {
		g.writes = append(g.writes, now)
	}
	return nil
}

func (g *throttledGraph) delay(ctx context.Context) error {
	if g.latency > 0 {
		select {
		case <-time.After(g.latency):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (g *throttledGraph) CreateSubscription(ctx context.Context, s graph.Subscription) (*graph.Subscription, error) {
	if err := g.delay(ctx); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.admit(true); err != nil {
		return nil, err
	}
	g.next++
	s.ID = fmt.Sprintf("sub-%05d", g.next)
	g.subs[s.ID] = s
	return &s, nil
}

func (g *throttledGraph) RenewSubscription(ctx context.Context, id string, exp time.Time) (*graph.Subscription, error) {
	if err := g.delay(ctx); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.admit(true); err != nil {
		return nil, err
	}
	s, ok := g.subs[id]
	if !ok {
		return nil, &graph.Error{StatusCode: http.StatusNotFound}
	}
	s.ExpirationDateTime = exp
	g.subs[id] = s
	g.renewals = append(g.renewals, time.Now())
	return &s, nil
}

func (g *throttledGraph) DeleteSubscription(ctx context.Context, id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.admit(true); err != nil {
		return err
	}
	if _, ok := g.subs[id]; !ok {
		return &graph.Error{StatusCode: http.StatusNotFound}
	}
	delete(g.subs, id)
	return nil
}

func (g *throttledGraph) ListSubscriptions(ctx context.Context) ([]graph.Subscription, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.admit(false); err != nil {
		return nil, err
	}
	out := make([]graph.Subscription, 0, len(g.subs))
	for _, s := range g.subs {
		out = append(out, s)
	}
	return out, nil
}

// newPacedManager is a Manager at the default budgets over g.
func newPacedManager(g GraphAPI, ms *memStore) *Manager {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return New(Config{NotificationURL: "https://bs.test/notifications/graph", LifecycleURL: "https://bs.test/notifications/graph/lifecycle",
		Lifetime: 10000 * time.Minute, RenewWhenRemaining: 0.5}, g, ms, log, nil, nil)
}

// TestOrphanIndex: Graph's list is read once per orphanListTTL, not per
// Ensure, and still finds what a crashed earlier process left behind.
func TestOrphanIndex(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		g := newThrottledGraph()
		lists := func() int { g.mu.Lock(); defer g.mu.Unlock(); return len(g.all) - len(g.writes) }

		// An earlier process created mbx-1's subscription and crashed before
		// recording it.
		if _, err := newPacedManager(g, newMemStore()).Ensure(ctx, "res-1", "mbx-1"); err != nil {
			t.Fatal(err)
		}
		m := newPacedManager(g, newMemStore())
		for i := 1; i <= 3; i++ {
			if _, err := m.Ensure(ctx, fmt.Sprintf("res-%d", i), fmt.Sprintf("mbx-%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		if n := lists(); n != 2 { // one per manager
			t.Fatalf("%d list requests, want 2", n)
		}
		if len(g.subs) != 3 {
			t.Fatalf("Graph has %d subscriptions, want 3 (the orphan deleted)", len(g.subs))
		}
		time.Sleep(orphanListTTL)
		if _, err := m.Ensure(ctx, "res-4", "mbx-4"); err != nil {
			t.Fatal(err)
		}
		if n := lists(); n != 3 {
			t.Fatalf("%d list requests after the TTL, want 3", n)
		}
	})
}
