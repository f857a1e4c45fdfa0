package subscriptions

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/httpx"
	"github.com/bookingsync/bookingsync/internal/metrics"
	"github.com/bookingsync/bookingsync/internal/store"
)

// fakeGraph is Graph's /subscriptions behind an http.RoundTripper, so it runs
// inside a synctest bubble (no sockets). It enforces the maximum lifetime the
// way Graph does, drops subscriptions that lapse, and records every lapse of
// a subscription the test still expects to be alive.
type fakeGraph struct {
	mu       sync.Mutex
	now      func() time.Time
	maxMin   int
	subs     map[string]*graph.Subscription
	next     int
	renewals []time.Time
	creates  int
	lapsed   []string
	gone     map[string]bool // ids that answer 404 on PATCH (deleted behind our back)
	patchErr int             // if set, PATCH answers this status
	postErr  int             // if set, POST answers this status
	patched  []string        // ids of every PATCH received, answered or not
}

func newFakeGraph(maxMin int) *fakeGraph {
	return &fakeGraph{now: time.Now, maxMin: maxMin, subs: map[string]*graph.Subscription{}, gone: map[string]bool{}}
}

func (f *fakeGraph) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	f.serve(rec, r)
	return rec.Result(), nil
}

func (f *fakeGraph) expire() {
	now := f.now()
	for id, s := range f.subs {
		if !s.ExpirationDateTime.After(now) {
			f.lapsed = append(f.lapsed, id)
			delete(f.subs, id)
		}
	}
}

func (f *fakeGraph) tooLong(exp time.Time) bool {
	return exp.After(f.now().Add(time.Duration(f.maxMin) * time.Minute))
}

func graphErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "2")
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":%q,"innerError":{"request-id":"r","date":"d"}}}`, code, msg)
}

func (f *fakeGraph) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expire()
	path := strings.TrimPrefix(r.URL.Path, "/v1.0")
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
	}
	switch {
	case r.Method == http.MethodPost && path == "/subscriptions":
		if f.postErr != 0 {
			graphErr(w, f.postErr, "TooManyRequests", "Too many requests.")
			return
		}
		var s graph.Subscription
		if err := json.Unmarshal(body, &s); err != nil {
			graphErr(w, 400, "BadRequest", err.Error())
			return
		}
		if f.tooLong(s.ExpirationDateTime) {
			graphErr(w, 400, "ExtensionError", fmt.Sprintf("Subscription expiration can only be %d minutes in the future.", f.maxMin))
			return
		}
		f.next++
		f.creates++
		s.ID = fmt.Sprintf("sub-%04d", f.next)
		s.ClientState = ""
		f.subs[s.ID] = &s
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(s)
	case r.Method == http.MethodGet && path == "/subscriptions":
		var list []graph.Subscription
		for _, s := range f.subs {
			list = append(list, *s)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"value": list})
	case r.Method == http.MethodPatch && strings.HasPrefix(path, "/subscriptions/"):
		id := strings.TrimPrefix(path, "/subscriptions/")
		f.patched = append(f.patched, id)
		s, ok := f.subs[id]
		if f.patchErr != 0 {
			graphErr(w, f.patchErr, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
			return
		}
		if !ok || f.gone[id] {
			graphErr(w, 404, "ResourceNotFound", "The object was not found.")
			return
		}
		var p graph.Subscription
		_ = json.Unmarshal(body, &p)
		if f.tooLong(p.ExpirationDateTime) {
			graphErr(w, 400, "ExtensionError", fmt.Sprintf("Subscription expiration can only be %d minutes in the future.", f.maxMin))
			return
		}
		s.ExpirationDateTime = p.ExpirationDateTime
		f.renewals = append(f.renewals, f.now())
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	case r.Method == http.MethodDelete && strings.HasPrefix(path, "/subscriptions/"):
		id := strings.TrimPrefix(path, "/subscriptions/")
		if _, ok := f.subs[id]; !ok {
			graphErr(w, 404, "ResourceNotFound", "The object was not found.")
			return
		}
		delete(f.subs, id)
		w.WriteHeader(204)
	default:
		graphErr(w, 400, "BadRequest", "unexpected "+r.Method+" "+path)
	}
}

// memStore is an in-memory Store and ResourceStore.
type memStore struct {
	mu    sync.Mutex
	subs  map[string]store.Subscription
	byMbx map[string]map[string]bool // mailbox → subscription ids, so 10,000 mailboxes stay fast
	res   map[string]store.Resource
}

func newMemStore() *memStore {
	return &memStore{subs: map[string]store.Subscription{}, byMbx: map[string]map[string]bool{}, res: map[string]store.Resource{}}
}

func (m *memStore) SubscriptionsByMailbox(_ context.Context, mailbox string) ([]store.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Subscription
	for id := range m.byMbx[mailbox] {
		out = append(out, m.subs[id])
	}
	return out, nil
}

func (m *memStore) AllSubscriptions(context.Context) ([]store.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]store.Subscription, 0, len(m.subs))
	for _, s := range m.subs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *memStore) GetSubscription(_ context.Context, id string) (store.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.subs[id]
	if !ok {
		return store.Subscription{}, store.ErrNotFound
	}
	return s, nil
}

func (m *memStore) InsertSubscription(_ context.Context, s store.Subscription) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subs[s.ID] = s
	if m.byMbx[s.Mailbox] == nil {
		m.byMbx[s.Mailbox] = map[string]bool{}
	}
	m.byMbx[s.Mailbox][s.ID] = true
	return nil
}

func (m *memStore) RecordRenewed(_ context.Context, id string, exp, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.subs[id]
	s.ExpiresAt, s.LastRenewedAt, s.RenewFailures, s.LastError = exp, &at, 0, ""
	m.subs[id] = s
	return nil
}

func (m *memStore) RecordRenewFailure(_ context.Context, id, text string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.subs[id]
	s.RenewFailures++
	s.LastError = text
	m.subs[id] = s
	return nil
}

func (m *memStore) DeleteSubscription(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.subs[id]; ok {
		delete(m.byMbx[s.Mailbox], id)
		if len(m.byMbx[s.Mailbox]) == 0 {
			delete(m.byMbx, s.Mailbox)
		}
	}
	delete(m.subs, id)
	return nil
}

func newTestManager(t *testing.T, f *fakeGraph, lifetime time.Duration) (*Manager, *memStore) {
	t.Helper()
	gc, err := graph.New(&httpx.Client{HTTP: &http.Client{Transport: f}}, graph.Options{BaseURL: "https://graph.test/v1.0"})
	if err != nil {
		t.Fatal(err)
	}
	ms := newMemStore()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := New(Config{NotificationURL: "https://bs.test/notifications/graph", LifecycleURL: "https://bs.test/notifications/graph/lifecycle",
		Lifetime: lifetime, RenewWhenRemaining: 0.5}, gc, ms, log, metrics.New(), nil)
	return m, ms
}

// TestThirtyDaysNoLapse runs the renewal policy for 30 simulated days over
// 200 mailboxes enrolled at the same instant: no subscription ever lapses,
// and renewals are spread out rather than all at once.
func TestThirtyDaysNoLapse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFakeGraph(10070)
		m, _ := newTestManager(t, f, 10000*time.Minute)
		const mailboxes = 200
		for i := range mailboxes {
			if _, err := m.Ensure(ctx, fmt.Sprintf("res-%d", i), fmt.Sprintf("mbx-%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		for time.Since(start) < 30*24*time.Hour {
			if _, err := m.RenewDue(ctx); err != nil {
				t.Fatalf("at +%v: %v", time.Since(start), err)
			}
			time.Sleep(5 * time.Minute) // the periodic job's interval
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.expire()
		if len(f.lapsed) > 0 {
			t.Fatalf("%d subscriptions lapsed, e.g. %s", len(f.lapsed), f.lapsed[0])
		}
		if len(f.subs) != mailboxes || f.creates != mailboxes {
			t.Fatalf("Graph has %d subscriptions after %d creates, want %d and %d", len(f.subs), f.creates, mailboxes, mailboxes)
		}
		// 30 days at a renewal every ~3.5 days: at least 7 rounds each.
		if len(f.renewals) < 7*mailboxes {
			t.Fatalf("%d renewals, want at least %d", len(f.renewals), 7*mailboxes)
		}
		perHour := map[int64]int{}
		busiest := 0
		for _, at := range f.renewals {
			h := at.Unix() / 3600
			perHour[h]++
			busiest = max(busiest, perHour[h])
		}
		// All 200 at once is what an unspread policy does; the jitter spreads
		// them over a tenth of the lifetime (~16 h), about 12 an hour.
		if busiest > mailboxes/5 {
			t.Fatalf("busiest hour had %d of %d renewals: not spread", busiest, mailboxes)
		}
	})
}

func TestClampToGraphMaximum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFakeGraph(4230) // an older tenant
		m, _ := newTestManager(t, f, 10000*time.Minute)
		sub, err := m.Ensure(ctx, "res-1", "mbx-1")
		if err != nil {
			t.Fatal(err)
		}
		want := time.Now().Add(4230*time.Minute - clampMargin)
		if !sub.ExpiresAt.Equal(want) {
			t.Fatalf("expires %v, want %v", sub.ExpiresAt, want)
		}
		// Renewals keep working with the learned limit over a week.
		for range 7 * 24 * 12 {
			if _, err := m.RenewDue(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Minute)
		}
		if len(f.lapsed) > 0 || len(f.renewals) == 0 {
			t.Fatalf("lapsed %v, renewals %d", f.lapsed, len(f.renewals))
		}
	})
}

func TestEnsureIsIdempotentAndCleansOrphans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFakeGraph(10070)
		m, ms := newTestManager(t, f, 10000*time.Minute)
		a, err := m.Ensure(ctx, "res-1", "mbx-1")
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.Ensure(ctx, "res-1", "mbx-1")
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != b.ID || f.creates != 1 {
			t.Fatalf("second Ensure created again: %s vs %s, creates %d", a.ID, b.ID, f.creates)
		}
		// Simulate a crash between Graph's 201 and our commit: Graph has one,
		// our store does not.
		ms.DeleteSubscription(ctx, a.ID)
		c, err := m.Ensure(ctx, "res-1", "mbx-1")
		if err != nil {
			t.Fatal(err)
		}
		if _, still := f.subs[a.ID]; still {
			t.Fatal("orphaned subscription left in Graph")
		}
		if len(f.subs) != 1 || f.subs[c.ID] == nil {
			t.Fatalf("Graph has %d subscriptions, want exactly the new one", len(f.subs))
		}
		if err := m.Remove(ctx, "mbx-1"); err != nil {
			t.Fatal(err)
		}
		if len(f.subs) != 0 || len(ms.subs) != 0 {
			t.Fatalf("after Remove: graph %d, store %d", len(f.subs), len(ms.subs))
		}
	})
}

func TestRenewRecreatesOn404AndCatchesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFakeGraph(10070)
		m, _ := newTestManager(t, f, 10000*time.Minute)
		var caught []string
		m.CatchUp = func(_ context.Context, mailbox, reason string) error {
			caught = append(caught, mailbox+":"+reason)
			return nil
		}
		sub, err := m.Ensure(ctx, "res-1", "mbx-1")
		if err != nil {
			t.Fatal(err)
		}
		f.gone[sub.ID] = true
		got, err := m.Renew(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID == sub.ID || f.creates != 2 {
			t.Fatalf("not recreated: %s (creates %d)", got.ID, f.creates)
		}
		if len(caught) != 1 || !strings.HasPrefix(caught[0], "mbx-1:") {
			t.Fatalf("catch-ups %v, want one for mbx-1", caught)
		}
	})
}

func TestLifecycle(t *testing.T) {
	tests := []struct {
		event       string
		wantCreates int
		wantRenews  int
		wantCatchUp bool
	}{
		{graph.LifecycleReauthorizationRequired, 1, 1, false},
		{graph.LifecycleSubscriptionRemoved, 2, 0, true},
		{graph.LifecycleMissed, 1, 0, true},
		{"somethingNew", 1, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.event, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				f := newFakeGraph(10070)
				m, _ := newTestManager(t, f, 10000*time.Minute)
				caught := 0
				m.CatchUp = func(context.Context, string, string) error { caught++; return nil }
				sub, err := m.Ensure(ctx, "res-1", "mbx-1")
				if err != nil {
					t.Fatal(err)
				}
				if tc.event == graph.LifecycleSubscriptionRemoved {
					delete(f.subs, sub.ID) // Graph removed it
				}
				if err := m.HandleLifecycle(ctx, sub.ID, tc.event); err != nil {
					t.Fatal(err)
				}
				if f.creates != tc.wantCreates || len(f.renewals) != tc.wantRenews || (caught > 0) != tc.wantCatchUp {
					t.Fatalf("creates %d renewals %d catch-ups %d; want %d %d %v",
						f.creates, len(f.renewals), caught, tc.wantCreates, tc.wantRenews, tc.wantCatchUp)
				}
			})
		})
	}
}

func TestRenewalFailureAlerts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFakeGraph(10070)
		m, ms := newTestManager(t, f, 10000*time.Minute)
		alerts := 0
		m.OnAlert = func(context.Context, store.Subscription, error) { alerts++ }
		sub, err := m.Ensure(ctx, "res-1", "mbx-1")
		if err != nil {
			t.Fatal(err)
		}
		f.patchErr = http.StatusForbidden // e.g. an application access policy now excludes the mailbox
		for i := range AlertAfterFailures {
			cur := ms.subs[sub.ID]
			if _, err := m.Renew(ctx, cur); err == nil {
				t.Fatalf("renewal %d succeeded", i)
			}
		}
		if alerts != 1 || ms.subs[sub.ID].RenewFailures != AlertAfterFailures {
			t.Fatalf("alerts %d failures %d", alerts, ms.subs[sub.ID].RenewFailures)
		}
	})
}

// TestConcurrentEnsureLearnsMaximum enrolls many mailboxes at once against
// an older tenant: every create learns the same maximum concurrently (a
// data race under -race before the lifetime was guarded), and each mailbox
// ends with exactly one subscription.
func TestConcurrentEnsureLearnsMaximum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFakeGraph(4230)
		m, ms := newTestManager(t, f, 10000*time.Minute)
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				// Twice per mailbox: the per-mailbox lock keeps it to one create.
				for range 2 {
					if _, err := m.Ensure(ctx, fmt.Sprintf("res-%d", i), fmt.Sprintf("mbx-%d", i)); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if len(f.subs) != 20 || len(ms.subs) != 20 {
			t.Fatalf("graph has %d, store %d subscriptions; want 20 each", len(f.subs), len(ms.subs))
		}
		if got := m.lifetime(); got != 4230*time.Minute-clampMargin {
			t.Fatalf("learned lifetime %v", got)
		}
	})
}

// TestMinLifetime: a lifetime below Graph's 45 minutes is raised to it unless
// Config.MinLifetime (end-to-end tests against an emulator with a lowered
// floor) allows it.
func TestMinLifetime(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		life, floor, want time.Duration
	}{
		{10 * time.Second, 0, MinLifetime},
		{10 * time.Second, 10 * time.Second, 10 * time.Second},
		{5 * time.Second, 10 * time.Second, 10 * time.Second},
		{time.Hour, 0, time.Hour},
	} {
		m := New(Config{Lifetime: tc.life, MinLifetime: tc.floor}, nil, newMemStore(), log, nil, nil)
		if got := m.lifetime(); got != tc.want {
			t.Errorf("Lifetime %v, MinLifetime %v: requests %v, want %v", tc.life, tc.floor, got, tc.want)
		}
	}
	if got := clampLifetime(1, 10*time.Second); got != 10*time.Second {
		t.Errorf("clamp to a 1-minute maximum with a 10s floor: %v", got)
	}
}
