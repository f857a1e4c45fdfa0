package jobs_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
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

// TestTransactionalInsert: a job inserted in a store transaction exists
// only if the transaction commits.
func TestTransactionalInsert(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		var mu sync.Mutex
		var handled []string
		q := newQueue(t, st, jobs.Config{Handlers: jobs.Handlers{
			CatchupMailbox: func(ctx context.Context, args jobs.CatchupMailboxArgs) error {
				mu.Lock()
				defer mu.Unlock()
				handled = append(handled, args.Mailbox)
				return nil
			},
		}})
		events, cancel := q.Client().Subscribe(river.EventKindJobCompleted)
		defer cancel()

		insert := func(mailbox string, commit bool) {
			errRollback := errors.New("rollback")
			err := st.InTx(ctx, func(tx *sql.Tx) error {
				if err := st.SetSyncState(ctx, tx, "k-"+mailbox, "v"); err != nil {
					return err
				}
				if _, err := q.InsertTx(ctx, tx, jobs.CatchupMailboxArgs{Mailbox: mailbox}, nil); err != nil {
					return err
				}
				if !commit {
					return errRollback
				}
				return nil
			})
			if commit && err != nil || !commit && !errors.Is(err, errRollback) {
				t.Fatalf("insert %s: %v", mailbox, err)
			}
		}
		insert("rolled-back", false)
		if n := countJobs(t, st, jobs.KindCatchupMailbox); n != 0 {
			t.Fatalf("%d jobs exist after rollback; a rolled-back job must never exist to run", n)
		}
		insert("committed", true)
		start(t, q)
		waitEvents(t, events, 1, ofKind(jobs.KindCatchupMailbox))

		mu.Lock()
		got := fmt.Sprint(handled)
		mu.Unlock()
		if got != "[committed]" {
			t.Errorf("handled %s, want [committed]", got)
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

// TestFailuresRetryAndDiscard checks that Stats reports retryable and
// dead (discarded) jobs.
func TestFailuresRetryAndDiscard(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		q := newQueue(t, st, jobs.Config{
			Handlers: jobs.Handlers{
				CatchupMailbox: func(context.Context, jobs.CatchupMailboxArgs) error { return errors.New("graph unavailable") },
			},
			// River makes a retry due within a few seconds "available" at
			// once; back off an hour so the job stays visibly retryable.
			RetryPolicy: hourRetry{},
		})
		events, cancel := q.Client().Subscribe(river.EventKindJobFailed)
		defer cancel()

		for i, maxAttempts := range []int{1, 0} { // 0: River's default (25)
			if _, err := q.Insert(ctx, jobs.CatchupMailboxArgs{Mailbox: fmt.Sprint("u", i)}, &river.InsertOpts{MaxAttempts: maxAttempts}); err != nil {
				t.Fatal(err)
			}
		}
		start(t, q)
		states := map[rivertype.JobState]int{}
		for _, ev := range waitEvents(t, events, 2, ofKind(jobs.KindCatchupMailbox)) {
			states[ev.Job.State]++
			if len(ev.Job.Errors) != 1 {
				t.Errorf("job %d has %d recorded errors, want 1", ev.Job.ID, len(ev.Job.Errors))
			}
		}
		if states[rivertype.JobStateDiscarded] != 1 || states[rivertype.JobStateRetryable] != 1 {
			t.Errorf("job states after failure = %v, want one discarded and one retryable", states)
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

func TestClientID(t *testing.T) {
	a, b := jobs.ClientID(), jobs.ClientID()
	if a == b {
		t.Errorf("two client IDs are equal: %q", a)
	}
	if len(a) > 100 || strings.Contains(a, ".") {
		t.Errorf("client ID %q: want at most 100 characters and no dots", a)
	}
	if !strings.Contains(a, fmt.Sprintf("-%d-", os.Getpid())) {
		t.Errorf("client ID %q does not carry the pid %d", a, os.Getpid())
	}
	st := storetest.NewSQLite(t)
	q := newQueue(t, st, jobs.Config{})
	if id := q.ID(); !strings.Contains(id, fmt.Sprintf("-%d-", os.Getpid())) {
		t.Errorf("queue's River client ID is %q, not a ClientID", id)
	}
}

// TestRescueOrphanedJobs: a job left running by an instance that no longer
// holds its lease (killed) is made available again; those of live
// instances and of this one are left alone. Without it the kind's unique
// periodic job would be blocked until River's rescue, 11 minutes later.
func TestRescueOrphanedJobs(t *testing.T) {
	st := storetest.NewPostgres(t)
	ctx := context.Background()
	worked := make(chan string, 3)
	q := newQueue(t, st, jobs.Config{Handlers: jobs.Handlers{
		CatchupMailbox: func(_ context.Context, a jobs.CatchupMailboxArgs) error { worked <- a.Mailbox; return nil },
	}})
	owners := map[string]string{"dead": "gone-1-ABCD", "live": "other-2-EFGH", "self": q.ID()}
	for mailbox, owner := range owners {
		res, err := q.Insert(ctx, jobs.CatchupMailboxArgs{Mailbox: mailbox}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.DB().ExecContext(ctx, `UPDATE river_job SET state = 'running', attempted_by = ARRAY[$1::text], attempt = 1 WHERE id = $2`, owner, res.Job.ID); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := st.TryLease(ctx, st.DB(), jobs.InstanceLeaseKey(owners["live"]), owners["live"], time.Minute); err != nil || !ok {
		t.Fatalf("lease of the live instance: %v %v", ok, err)
	}
	n, err := q.RescueOrphanedJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("rescued %d jobs, want 1 (the dead instance's)", n)
	}
	start(t, q)
	select {
	case mb := <-worked:
		if mb != "dead" {
			t.Errorf("worked the job of mailbox %q, want the dead instance's", mb)
		}
	case <-time.After(testDeadline):
		t.Fatal("the rescued job was not worked")
	}
	// River records completion asynchronously: wait for it.
	var running int
	for deadline := time.Now().Add(testDeadline); ; time.Sleep(50 * time.Millisecond) {
		if err := st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job WHERE state = 'running'`).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running <= 2 || time.Now().After(deadline) {
			break
		}
	}
	if running != 2 {
		t.Errorf("%d running jobs left, want 2 (the live instance's and our own)", running)
	}
}
