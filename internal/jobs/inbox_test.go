package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/jobs"
	"github.com/bookingsync/bookingsync/internal/store"
	"github.com/bookingsync/bookingsync/internal/store/storetest"
)

func note(item string) store.Notification {
	return store.Notification{Source: store.SourceGraph, SubscriptionID: "s", ItemID: item, ETag: "1"}
}

// waitUntil polls cond (not a clock: it fails by testDeadline, never by speed).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startInbox(t *testing.T, st *store.Store, cfg jobs.InboxConfig) *jobs.Inbox {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	p := jobs.NewInbox(st, cfg)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func startIntake(t *testing.T, st *store.Store, cfg store.IntakeConfig) *store.Intake {
	t.Helper()
	in, err := store.NewIntake(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	return in
}

// counter records how often each row was handled and checks that no row
// is ever in two batches at once.
type counter struct {
	t        *testing.T
	mu       sync.Mutex
	seen     map[int64]int
	inFlight map[int64]bool
}

func newCounter(t *testing.T) *counter {
	return &counter{t: t, seen: map[int64]int{}, inFlight: map[int64]bool{}}
}

func (c *counter) handle(ctx context.Context, ns []store.Notification) error {
	c.mu.Lock()
	for i, n := range ns {
		if i > 0 && ns[i-1].ID >= n.ID {
			c.t.Errorf("batch not in id order: %d before %d", ns[i-1].ID, n.ID)
		}
		if c.inFlight[n.ID] {
			c.t.Errorf("row %d in two batches at once", n.ID)
		}
		c.inFlight[n.ID] = true
		c.seen[n.ID]++
	}
	c.mu.Unlock()
	time.Sleep(time.Millisecond) // let batches overlap
	c.mu.Lock()
	for _, n := range ns {
		delete(c.inFlight, n.ID)
	}
	c.mu.Unlock()
	return nil
}

func (c *counter) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *counter) checkOnce(t *testing.T, want int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) != want {
		t.Errorf("handled %d distinct rows, want %d", len(c.seen), want)
	}
	for id, n := range c.seen {
		if n != 1 {
			t.Errorf("row %d handled %d times, want once", id, n)
		}
	}
}

// TestInboxEndToEnd wires the group-commit intake to the inbox processor:
// every submitted notification is processed exactly once, woken by the
// intake, with batches running concurrently.
func TestInboxEndToEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		c := newCounter(t)
		// A poll interval far beyond the test: rows are found by wake-ups.
		p := jobs.NewInbox(st, jobs.InboxConfig{ProcessNotifications: c.handle, BatchSize: 7, Concurrency: 3, PollInterval: time.Hour})
		in := startIntake(t, st, store.IntakeConfig{Stored: p.Wake})
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)

		const submitters, each = 8, 25
		var wg sync.WaitGroup
		for g := range submitters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					n := note(fmt.Sprintf("e-%d-%d", g, i))
					if _, err := in.Submit(ctx, []store.Notification{n, n}); err != nil {
						t.Errorf("Submit: %v", err)
					}
				}
			}()
		}
		wg.Wait()
		waitUntil(t, "every row processed", func() bool {
			n, err := st.CountUnprocessedNotifications(ctx, st.DB())
			return err == nil && n == 0
		})
		c.checkOnce(t, submitters*each)
	})
}

// TestInboxTwoProcessorsPostgres runs two processors (as two instances
// would) on one PostgreSQL database: every row is processed exactly once.
func TestInboxTwoProcessorsPostgres(t *testing.T) {
	st := storetest.NewPostgres(t)
	ctx := context.Background()
	const rows = 3000
	for start := 0; start < rows; start += 500 {
		batch := make([]store.Notification, 500)
		for i := range batch {
			batch[i] = note(fmt.Sprint("pg-", start+i))
		}
		if _, err := st.InsertNotifications(ctx, st.DB(), batch); err != nil {
			t.Fatal(err)
		}
	}
	c := newCounter(t)
	a := startInbox(t, st, jobs.InboxConfig{ProcessNotifications: c.handle, BatchSize: 20, Concurrency: 4, Owner: "instance-a"})
	b := startInbox(t, st, jobs.InboxConfig{ProcessNotifications: c.handle, BatchSize: 20, Concurrency: 4, Owner: "instance-b"})
	for range 50 { // wake-ups race with each other's claims
		a.Wake()
		b.Wake()
	}
	waitUntil(t, "every row processed", func() bool { return c.distinct() == rows })
	waitUntil(t, "every row marked", func() bool {
		n, err := st.CountUnprocessedNotifications(ctx, st.DB())
		return err == nil && n == 0
	})
	c.checkOnce(t, rows)
}

// TestInboxRetriesThenDead: a failing handler's rows are retried with
// backoff, then end dead with their error, visible and requeueable; rows
// the handler marked itself are not retried.
func TestInboxRetriesThenDead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		res, err := st.InsertNotifications(ctx, st.DB(), []store.Notification{note("ok"), note("bad")})
		if err != nil {
			t.Fatal(err)
		}
		okID, badID := res.IDs[0], res.IDs[1]
		var mu sync.Mutex
		attempts := map[int64][]int{}
		var failing = true
		handle := func(ctx context.Context, ns []store.Notification) error {
			mu.Lock()
			defer mu.Unlock()
			var done []int64
			for _, n := range ns {
				attempts[n.ID] = append(attempts[n.ID], n.Attempts)
				if n.ID == okID || !failing {
					done = append(done, n.ID)
				}
			}
			if _, err := st.MarkNotificationsProcessed(ctx, st.DB(), done, st.Now()); err != nil {
				return err
			}
			if failing {
				return errors.New("graph unavailable")
			}
			return nil
		}
		var backoffs []int
		p := startInbox(t, st, jobs.InboxConfig{ProcessNotifications: handle, MaxAttempts: 3,
			Backoff: func(n int) time.Duration {
				mu.Lock()
				backoffs = append(backoffs, n)
				mu.Unlock()
				return time.Millisecond
			}})

		waitUntil(t, "the failing row to end dead", func() bool {
			n, err := st.CountDeadNotifications(ctx, st.DB())
			return err == nil && n == 1
		})
		mu.Lock()
		if got := fmt.Sprint(attempts[okID]); got != "[1]" {
			t.Errorf("row marked by the handler was attempted %s, want [1]", got)
		}
		if got := fmt.Sprint(attempts[badID]); got != "[1 2 3]" {
			t.Errorf("failing row attempts %s, want [1 2 3]", got)
		}
		if got := fmt.Sprint(backoffs); got != "[1 2]" {
			t.Errorf("backoff asked for %s, want [1 2] (none after the last attempt)", got)
		}
		mu.Unlock()
		dead, err := st.ListDeadNotifications(ctx, st.DB(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) != 1 || dead[0].ID != badID || dead[0].DeadAt == nil || dead[0].Attempts != 3 || dead[0].LastError != "graph unavailable" {
			t.Fatalf("dead rows = %+v", dead)
		}
		if n, err := st.CountUnprocessedNotifications(ctx, st.DB()); err != nil || n != 0 {
			t.Errorf("pending = %d, %v; dead rows are not pending", n, err)
		}

		// Fixed: requeue it, and it is processed.
		mu.Lock()
		failing = false
		mu.Unlock()
		if err := st.RequeueNotification(ctx, badID); err != nil {
			t.Fatal(err)
		}
		if err := st.RequeueNotification(ctx, okID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("requeue of a processed row: err = %v, want ErrNotFound", err)
		}
		p.Wake()
		waitUntil(t, "the requeued row processed", func() bool {
			got, err := st.GetNotifications(ctx, st.DB(), []int64{badID})
			return err == nil && len(got) == 1 && got[0].ProcessedAt != nil
		})
		if n, err := st.CountDeadNotifications(ctx, st.DB()); err != nil || n != 0 {
			t.Errorf("dead = %d, %v after requeue", n, err)
		}
	})
}

// TestInboxStopFinishesBatch: Stop waits for the batch in flight, which is
// then marked processed; rows left unprocessed at stop (or by a crash) are
// picked up by the next start.
func TestInboxStopFinishesBatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		if _, err := st.InsertNotifications(ctx, st.DB(), []store.Notification{note("a"), note("b")}); err != nil {
			t.Fatal(err)
		}
		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		p := startInbox(t, st, jobs.InboxConfig{BatchSize: 1, Concurrency: 1,
			ProcessNotifications: func(ctx context.Context, ns []store.Notification) error {
				once.Do(func() { close(entered) })
				<-release
				return ctx.Err()
			}})
		<-entered
		stopped := make(chan struct{})
		go func() { p.Stop(); close(stopped) }()
		close(release)
		<-stopped
		if n, err := st.CountUnprocessedNotifications(ctx, st.DB()); err != nil || n != 1 {
			t.Fatalf("pending after Stop = %d, %v; want 1 (the batch in flight finished, nothing new claimed)", n, err)
		}

		// A crashed instance's claim: on SQLite released at start, on
		// PostgreSQL when its lease runs out.
		if _, err := st.ClaimNotifications(ctx, "crashed", 10, time.Millisecond); err != nil {
			t.Fatal(err)
		}
		c := newCounter(t)
		startInbox(t, st, jobs.InboxConfig{ProcessNotifications: c.handle})
		waitUntil(t, "the left-over row processed at the next start", func() bool {
			n, err := st.CountUnprocessedNotifications(ctx, st.DB())
			return err == nil && n == 0
		})
		c.checkOnce(t, 1)
	})
}

// TestInboxHandOff: while the processor runs, the intake claims new rows
// for it in the commit that stores them and hands them over in memory: the
// rows come with attempts 1, nobody else can claim them while they are
// processed, and rows handed over but not started when the processor stops
// are released for the next run.
func TestInboxHandOff(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		entered := make(chan store.Notification, 10)
		release := make(chan struct{})
		p := jobs.NewInbox(st, jobs.InboxConfig{BatchSize: 2, Concurrency: 1, PollInterval: time.Hour, Owner: "me",
			ProcessNotifications: func(ctx context.Context, ns []store.Notification) error {
				for _, n := range ns {
					entered <- n
				}
				<-release
				return nil
			}})
		in := startIntake(t, st, store.IntakeConfig{Stored: p.Wake})
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		stopped := false
		t.Cleanup(func() {
			if !stopped {
				close(release)
				p.Stop()
			}
		})
		// The first row may race with the start-up claim: either way it
		// comes claimed once.
		res, err := in.Submit(ctx, []store.Notification{note("first")})
		if err != nil {
			t.Fatal(err)
		}
		var first store.Notification
		select {
		case first = <-entered:
		case <-time.After(testDeadline):
			t.Fatal("no row reached the handler")
		}
		if first.ID != res.IDs[0] || first.Attempts != 1 || first.ItemID != "first" || first.Source != store.SourceGraph {
			t.Fatalf("handler got %+v, want row %d, attempt 1", first, res.IDs[0])
		}
		if got, err := st.ClaimNotifications(ctx, "other", 10, time.Minute); err != nil || len(got) != 0 {
			t.Fatalf("another claimer got %d rows (%v) of a row in process", len(got), err)
		}
		// The only slot is busy: the next row is handed over and waits.
		res, err = in.Submit(ctx, []store.Notification{note("waiting")})
		if err != nil {
			t.Fatal(err)
		}
		waiting := res.IDs[0]
		if got, err := st.ClaimNotifications(ctx, "other", 10, time.Minute); err != nil || len(got) != 0 {
			t.Fatalf("another claimer got %d rows (%v) of a row handed over", len(got), err)
		}
		done := make(chan struct{})
		go func() { p.Stop(); close(done) }()
		stopped = true
		waitUntil(t, "the waiting row released", func() bool {
			got, err := st.ClaimNotifications(ctx, "other", 10, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 1 && (got[0].ID != waiting || got[0].Attempts != 2) {
				t.Fatalf("claimed after stop: %+v", got[0])
			}
			return len(got) == 1
		})
		close(release)
		<-done
		got, err := st.GetNotifications(ctx, st.DB(), []int64{first.ID})
		if err != nil || len(got) != 1 || got[0].ProcessedAt == nil {
			t.Fatalf("the row in process at stop: %+v, %v; want processed", got, err)
		}
	})
}
