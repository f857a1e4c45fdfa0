package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/store"
)

// ResourceStore on memStore.

func (m *memStore) UpsertResource(_ context.Context, r store.Resource) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.res[r.ID] = r
	return nil
}

func (m *memStore) GetResource(_ context.Context, id string) (store.Resource, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.res[id]
	if !ok {
		return store.Resource{}, store.ErrNotFound
	}
	return r, nil
}

func (m *memStore) ListResources(context.Context) ([]store.Resource, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]store.Resource, 0, len(m.res))
	for _, r := range m.res {
		out = append(out, r)
	}
	return out, nil
}

func (m *memStore) SetResourceStatusText(_ context.Context, id, text string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.res[id]
	changed := r.LastStatusText == nil || *r.LastStatusText != text
	r.LastStatusText = &text
	m.res[id] = r
	return changed, nil
}

// fakeDV is Dataverse with n opted-in user resources res-NNNNN, each with
// its enabled systemuser su-NNNNN (Entra id aad-NNNNN). Rows are generated
// while paging, as the real List streams them.
type fakeDV struct {
	n        int
	failUser string       // Get of this systemuser fails
	listed   atomic.Int64 // rows handed to the callback
	updates  atomic.Int64 // status write-backs
}

func (f *fakeDV) List(ctx context.Context, _ string, _ dataverse.Query, each func(json.RawMessage) error) error {
	for i := range f.n {
		if err := ctx.Err(); err != nil {
			return err
		}
		f.listed.Add(1)
		row := fmt.Appendf(nil, `{"bookableresourceid":"res-%05d","name":"R %d","resourcetype":3,"_userid_value":"su-%05d","statecode":0,"bsync_outlooksync":100000000}`, i, i, i)
		if err := each(row); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeDV) Get(ctx context.Context, set, id string, _ dataverse.Query, out any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if set != dataverse.SetSystemUsers {
		return dataverse.ErrNotFound // a resource not listed is gone
	}
	if id == f.failUser {
		return errors.New("dataverse: HTTP 500")
	}
	n := strings.TrimPrefix(id, "su-")
	*out.(*dataverse.SystemUser) = dataverse.SystemUser{ID: id, AADObjectID: "aad-" + n, DomainName: "u" + n + "@contoso.example"}
	return nil
}

func (f *fakeDV) Update(ctx context.Context, _, _ string, _ any, _ string) error {
	f.updates.Add(1)
	return ctx.Err()
}

func newTestEnroller(dv DataverseAPI, m *Manager, ms *memStore, workers int) *Enroller {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return NewEnroller(EnrollConfig{OptInColumn: "bsync_outlooksync", Allowed: 100000000, NotAllowed: 100000001,
		StatusColumn: "bsync_outlooksyncstatus", Workers: workers}, dv, m, ms, log)
}

const massEnrollment = 10000

// enrollMany runs one ReconcileAll over massEnrollment resources against
// Graph's limits, at the default budgets and workers, and returns how long
// it took in the bubble's time. Call it inside synctest.Test.
func enrollMany(t *testing.T) (*Manager, *memStore, *throttledGraph, time.Duration) {
	t.Helper()
	g := newThrottledGraph()
	ms := newMemStore()
	m := newPacedManager(g, ms)
	e := newTestEnroller(&fakeDV{n: massEnrollment}, m, ms, 0)
	start := time.Now()
	if err := e.ReconcileAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m, ms, g, time.Since(start)
}

// TestReconcileAllPacesMassEnrollment enrolls 10,000 resources at once:
// Graph never has to throttle, every mailbox gets its subscription, and the
// enrollment takes as long as the write budget dictates (10,000 / 800 per
// 20 s: the last create goes in the 13th window, at 240 s).
func TestReconcileAllPacesMassEnrollment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ms, g, took := enrollMany(t)
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.throttled != 0 {
			t.Errorf("Graph answered 429 %d times", g.throttled)
		}
		if len(g.subs) != massEnrollment || len(ms.subs) != massEnrollment || len(ms.byMbx) != massEnrollment {
			t.Errorf("Graph has %d subscriptions, our store %d for %d mailboxes; want %d each",
				len(g.subs), len(ms.subs), len(ms.byMbx), massEnrollment)
		}
		maxW, maxAll := maxInWindow(g.writes, 20*time.Second), maxInWindow(g.all, 20*time.Second)
		if maxW > DefaultWritesPerWindow || maxAll > DefaultRequestsPerWindow {
			t.Errorf("busiest 20 s: %d writes, %d requests; budgets %d and %d", maxW, maxAll, DefaultWritesPerWindow, DefaultRequestsPerWindow)
		}
		// Listing Graph's subscriptions once per orphanListTTL, not once per
		// mailbox (which would be 10,000 walks over up to 10,000 subscriptions).
		if reads := len(g.all) - len(g.writes); reads != 1 {
			t.Errorf("%d list requests, want 1", reads)
		}
		want := time.Duration(massEnrollment/DefaultWritesPerWindow) * DefaultLimitWindow // 12 full windows before the last
		if took < want || took > want+DefaultLimitWindow {
			t.Errorf("enrollment took %v, want about %v", took, want)
		}
		t.Logf("10,000 resources enrolled in %v simulated; busiest 20 s window: %d writes, %d requests; 429s: %d",
			took, maxW, maxAll, g.throttled)
	})
}

// TestMassEnrollmentRenewalsSpread follows a 10,000-mailbox enrollment to
// its first renewals: the per-id jitter of DueAt spreads them over hours, so
// no 20 s window and no run of the 5-minute renewal job comes near the write
// budget. (The renewal job itself is exercised by TestThirtyDaysNoLapse;
// running it here over 10,000 subscriptions for the ~200 ticks of the spread
// costs half a minute of CPU under -race for nothing the histogram misses.)
func TestMassEnrollmentRenewalsSpread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, ms, _, took := enrollMany(t)
		subs, _ := ms.AllSubscriptions(context.Background())
		began := slices.MinFunc(subs, func(a, b store.Subscription) int { return a.CreatedAt.Compare(b.CreatedAt) }).CreatedAt
		due := make([]time.Time, 0, len(subs))
		perTick := map[time.Time]int{}
		const tick = 5 * time.Minute // the renewal job's interval
		for _, s := range subs {
			d := m.DueAt(s)
			due = append(due, d)
			// RenewDue renews at the first run at or after d.
			perTick[began.Add((d.Sub(began)+tick-1).Truncate(tick))]++
		}
		slices.SortFunc(due, time.Time.Compare)
		perWindow := maxInWindow(due, 20*time.Second)
		busiestTick := 0
		for _, n := range perTick {
			busiestTick = max(busiestTick, n)
		}
		if perWindow > DefaultWritesPerWindow || busiestTick > DefaultWritesPerWindow {
			t.Errorf("up to %d renewals due in one 20 s window and %d in one renewal run; budget %d",
				perWindow, busiestTick, DefaultWritesPerWindow)
		}
		// Without the jitter all 10,000 would fall in the 4 minutes of the
		// enrollment: require the spread to cover most of the tenth of the lifetime.
		if spread := due[len(due)-1].Sub(due[0]); spread < 9*10000*time.Minute/100 {
			t.Errorf("renewals spread over only %v", spread)
		}
		t.Logf("enrolled in %v; renewals due from +%v to +%v; busiest 20 s: %d due; busiest 5-minute run: %d of %d runs",
			took, due[0].Sub(began).Round(time.Minute), due[len(due)-1].Sub(began).Round(time.Minute),
			perWindow, busiestTick, len(perTick))
	})
}

// TestReconcileAllStopsOnCancel cancels a mass enrollment while workers
// wait for Graph and for the budget: ReconcileAll returns at once with the
// context's error, stops reading Dataverse, and leaves no goroutine behind
// (synctest.Test fails on one still blocked at the end).
func TestReconcileAllStopsOnCancel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		latency time.Duration // a create's duration (Graph's validation handshake)
		writes  int           // the manager's write budget
	}{
		{"waiting for Graph", time.Second, 0},
		{"waiting for the budget", 0, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := newThrottledGraph()
				g.latency = tc.latency
				ms := newMemStore()
				log := slog.New(slog.NewTextHandler(io.Discard, nil))
				m := New(Config{NotificationURL: "https://bs.test/n", Lifetime: 10000 * time.Minute, WritesPerWindow: tc.writes},
					g, ms, log, nil, nil)
				dv := &fakeDV{n: massEnrollment}
				e := newTestEnroller(dv, m, ms, 8)
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(30*time.Second, cancel)
				start := time.Now()
				err := e.ReconcileAll(ctx)
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("ReconcileAll = %v, want context.Canceled", err)
				}
				if took := time.Since(start); took != 30*time.Second {
					t.Errorf("returned %v after the start, want at the cancel (30s)", took)
				}
				g.mu.Lock()
				created := len(g.subs)
				g.mu.Unlock()
				if listed := dv.listed.Load(); created == 0 || listed > int64(created)+8+1 {
					t.Errorf("%d created, %d rows read: more than the workers' worth read ahead", created, listed)
				}
				t.Logf("%d created before the cancel", created)
			})
		})
	}
}

// TestReconcileAllFirstError: one resource failing does not stop the rest,
// its error is the one returned, and a resource that was opted in and is no
// longer listed is reconciled (unsubscribed) by the same pool.
func TestReconcileAllFirstError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		g := newThrottledGraph()
		ms := newMemStore()
		m := newPacedManager(g, ms)
		// res-gone was enrolled earlier and has since been deleted in Dataverse.
		if _, err := m.Ensure(ctx, "res-gone", "aad-gone"); err != nil {
			t.Fatal(err)
		}
		ms.UpsertResource(ctx, store.Resource{ID: "res-gone", Mailbox: "aad-gone", OptIn: store.OptInAllowed, Active: true})
		dv := &fakeDV{n: 100, failUser: "su-00042"}
		e := newTestEnroller(dv, m, ms, 4)
		err := e.ReconcileAll(ctx)
		if err == nil || !strings.Contains(err.Error(), "res-00042") {
			t.Fatalf("ReconcileAll = %v, want the error of res-00042", err)
		}
		if len(ms.byMbx) != 99 || ms.byMbx["aad-gone"] != nil || ms.byMbx["aad-00042"] != nil {
			t.Fatalf("%d mailboxes subscribed, want the 99 good ones", len(ms.byMbx))
		}
		if r := ms.res["res-gone"]; r.OptIn != store.OptInNotAllowed {
			t.Fatalf("res-gone still %v", r.OptIn)
		}
	})
}
