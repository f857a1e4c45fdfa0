package jobs_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/bookingsync/bookingsync/internal/jobs"
	"github.com/bookingsync/bookingsync/internal/store"
	"github.com/bookingsync/bookingsync/internal/store/storetest"
)

// testDeadline bounds waits for River so a broken queue fails instead of
// hanging; it is not a speed assertion.
const testDeadline = 60 * time.Second

func forEachBackend(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.New(t))
		})
	}
}

func newQueue(t *testing.T, st *store.Store, cfg jobs.Config) *jobs.Queue {
	t.Helper()
	cfg.FetchPollInterval = 200 * time.Millisecond
	q, err := jobs.New(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Stop)
	return q
}

func start(t *testing.T, q *jobs.Queue) {
	t.Helper()
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitEvents returns the first n events for which keep returns true.
func waitEvents(t *testing.T, ch <-chan *river.Event, n int, keep func(*river.Event) bool) []*river.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	var out []*river.Event
	for len(out) < n {
		select {
		case ev := <-ch:
			if keep(ev) {
				out = append(out, ev)
			}
		case <-ctx.Done():
			t.Fatalf("got %d of %d River events before the deadline", len(out), n)
		}
	}
	return out
}

func ofKind(kind string) func(*river.Event) bool {
	return func(ev *river.Event) bool { return ev.Job.Kind == kind }
}

func countJobs(t *testing.T, st *store.Store, kind string) int {
	t.Helper()
	var n int
	q := `SELECT COUNT(*) FROM river_job WHERE kind = ?`
	if st.Backend() == store.BackendPostgres {
		q = `SELECT COUNT(*) FROM river_job WHERE kind = $1`
	}
	if err := st.DB().QueryRow(q, kind).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTransactionalInsert(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		var mu sync.Mutex
		var handled []string
		q := newQueue(t, st, jobs.Config{Handlers: jobs.Handlers{
			ProcessNotifications: func(ctx context.Context, ns []store.Notification) error {
				mu.Lock()
				defer mu.Unlock()
				for _, n := range ns {
					handled = append(handled, n.ItemID)
				}
				return nil
			},
		}})
		events, cancel := q.Client().Subscribe(river.EventKindJobCompleted)
		defer cancel()

		insert := func(item string, commit bool) {
			errRollback := errors.New("rollback")
			err := st.InTx(ctx, func(tx *sql.Tx) error {
				res, err := st.InsertNotifications(ctx, tx, []store.Notification{{Source: store.SourceGraph, ItemID: item, ETag: "1"}})
				if err != nil {
					return err
				}
				if err := q.EnqueueNotifications(ctx, tx, res.NewIDs()); err != nil {
					return err
				}
				if !commit {
					return errRollback
				}
				return nil
			})
			if commit && err != nil || !commit && !errors.Is(err, errRollback) {
				t.Fatalf("insert %s: %v", item, err)
			}
		}
		insert("rolled-back", false)
		if n := countJobs(t, st, jobs.KindProcessNotifications); n != 0 {
			t.Fatalf("%d jobs exist after rollback; a rolled-back job must never exist to run", n)
		}
		insert("committed", true)
		start(t, q)
		waitEvents(t, events, 1, ofKind(jobs.KindProcessNotifications))

		mu.Lock()
		got := fmt.Sprint(handled)
		mu.Unlock()
		if got != "[committed]" {
			t.Errorf("handled %s, want [committed]", got)
		}
		if n, err := st.CountUnprocessedNotifications(ctx, st.DB()); err != nil || n != 0 {
			t.Errorf("unprocessed = %d, %v; want 0", n, err)
		}
		stats, err := q.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if stats.Completed != 1 || stats.Depth() != 0 {
			t.Errorf("Stats = %+v, want 1 completed and nothing queued", stats)
		}
	})
}

// TestIntakeEndToEnd wires the store's group-commit intake to River: every
// submitted notification ends up processed exactly once.
func TestIntakeEndToEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		var mu sync.Mutex
		seen := map[int64]int{}
		q := newQueue(t, st, jobs.Config{Handlers: jobs.Handlers{
			ProcessNotifications: func(ctx context.Context, ns []store.Notification) error {
				mu.Lock()
				defer mu.Unlock()
				for _, n := range ns {
					seen[n.ID]++
				}
				return nil
			},
		}})
		events, cancel := q.Client().Subscribe(river.EventKindJobCompleted)
		defer cancel()
		in, err := store.NewIntake(st, store.IntakeConfig{Enqueue: q.EnqueueNotifications})
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer in.Stop()
		start(t, q)

		const submitters, each = 8, 10
		var wg sync.WaitGroup
		for g := range submitters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					n := store.Notification{Source: store.SourceGraph, SubscriptionID: "s", ItemID: fmt.Sprintf("e-%d-%d", g, i), ETag: "1"}
					if _, err := in.Submit(ctx, []store.Notification{n, n}); err != nil {
						t.Errorf("Submit: %v", err)
					}
				}
			}()
		}
		wg.Wait()
		jobsInserted := countJobs(t, st, jobs.KindProcessNotifications)
		if jobsInserted > submitters*each {
			t.Errorf("%d jobs for %d submissions; want at most one per commit", jobsInserted, submitters*each)
		}
		waitEvents(t, events, jobsInserted, ofKind(jobs.KindProcessNotifications))

		mu.Lock()
		defer mu.Unlock()
		if len(seen) != submitters*each {
			t.Errorf("handled %d distinct rows, want %d", len(seen), submitters*each)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("row %d handled %d times", id, n)
			}
		}
		if n, err := st.CountUnprocessedNotifications(ctx, st.DB()); err != nil || n != 0 {
			t.Errorf("unprocessed = %d, %v; want 0", n, err)
		}
	})
}

func TestPeriodicJobsRun(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store) {
		renewed := make(chan struct{}, 10)
		polled := make(chan struct{}, 10)
		q := newQueue(t, st, jobs.Config{Handlers: jobs.Handlers{
			RenewSubscriptions: func(context.Context) error { renewed <- struct{}{}; return nil },
			PollDataverse:      func(context.Context) error { polled <- struct{}{}; return nil },
		}})
		start(t, q)
		ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
		defer cancel()
		for name, ch := range map[string]chan struct{}{"renew_subscriptions": renewed, "poll_dataverse": polled} {
			select {
			case <-ch:
			case <-ctx.Done():
				t.Fatalf("periodic job %s did not run", name)
			}
		}
	})
}

func TestUniqueCatchupPerMailbox(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		q := newQueue(t, st, jobs.Config{Handlers: jobs.Handlers{
			CatchupMailbox: func(context.Context, jobs.CatchupMailboxArgs) error { return nil },
		}})
		steps := []struct {
			args     jobs.CatchupMailboxArgs
			wantSkip bool
		}{
			{jobs.CatchupMailboxArgs{Mailbox: "u1", Reason: "missed"}, false},
			{jobs.CatchupMailboxArgs{Mailbox: "u1", Reason: "lifecycle"}, true}, // reason is not part of the key
			{jobs.CatchupMailboxArgs{Mailbox: "u2"}, false},
		}
		for i, s := range steps {
			res, err := q.Insert(ctx, s.args, nil)
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if res.UniqueSkippedAsDuplicate != s.wantSkip {
				t.Errorf("step %d %+v: UniqueSkippedAsDuplicate = %v, want %v", i, s.args, res.UniqueSkippedAsDuplicate, s.wantSkip)
			}
		}
		if n := countJobs(t, st, jobs.KindCatchupMailbox); n != 2 {
			t.Errorf("%d catchup jobs, want 2", n)
		}
		// Kinds without a handler are not registered, so inserting fails loudly.
		var unknown *river.UnknownJobKindError
		if _, err := q.Insert(ctx, jobs.PollDataverseArgs{}, nil); !errors.As(err, &unknown) {
			t.Errorf("inserting an unregistered kind: err = %v, want UnknownJobKindError", err)
		}
	})
}

type hourRetry struct{}

func (hourRetry) NextRetry(job *rivertype.JobRow) time.Time { return time.Now().Add(time.Hour) }

// TestFailuresRetryAndDiscard checks that a failing handler leaves rows
// unprocessed, and that Stats reports retryable and dead (discarded) jobs.
func TestFailuresRetryAndDiscard(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		q := newQueue(t, st, jobs.Config{
			Handlers: jobs.Handlers{
				ProcessNotifications: func(context.Context, []store.Notification) error { return errors.New("graph unavailable") },
			},
			// River makes a retry due within a few seconds "available" at
			// once; back off an hour so the job stays visibly retryable.
			RetryPolicy: hourRetry{},
		})
		events, cancel := q.Client().Subscribe(river.EventKindJobFailed)
		defer cancel()

		for i, maxAttempts := range []int{1, 0} { // 0: River's default (25)
			err := st.InTx(ctx, func(tx *sql.Tx) error {
				res, err := st.InsertNotifications(ctx, tx, []store.Notification{{Source: store.SourceGraph, ItemID: fmt.Sprint(i)}})
				if err != nil {
					return err
				}
				_, err = q.InsertTx(ctx, tx, jobs.ProcessNotificationsArgs{IDs: res.NewIDs()}, &river.InsertOpts{MaxAttempts: maxAttempts})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		start(t, q)
		states := map[rivertype.JobState]int{}
		for _, ev := range waitEvents(t, events, 2, ofKind(jobs.KindProcessNotifications)) {
			states[ev.Job.State]++
			if len(ev.Job.Errors) != 1 {
				t.Errorf("job %d has %d recorded errors, want 1", ev.Job.ID, len(ev.Job.Errors))
			}
		}
		if states[rivertype.JobStateDiscarded] != 1 || states[rivertype.JobStateRetryable] != 1 {
			t.Errorf("job states after failure = %v, want one discarded and one retryable", states)
		}
		if n, err := st.CountUnprocessedNotifications(ctx, st.DB()); err != nil || n != 2 {
			t.Errorf("unprocessed = %d, %v; want 2", n, err)
		}
		stats, err := q.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if stats.Discarded != 1 || stats.Retryable != 1 || stats.Depth() != 1 {
			t.Errorf("Stats = %+v, want 1 discarded, 1 retryable, depth 1", stats)
		}
	})
}
