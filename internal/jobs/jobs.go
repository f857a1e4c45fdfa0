// Package jobs runs bookingsync's background work on River, in the same
// database as the store, with one code path for both backends:
// river.Client[*sql.Tx] over riversqlite (SQLite) or riverdatabasesql with a
// pgx listener (Postgres). Job arguments can therefore be inserted in the
// same *sql.Tx as store writes (InsertTx).
//
// Notifications are not River jobs: the inbox is their queue, worked by
// Inbox (inbox.go).
package jobs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/bookingsync/bookingsync/internal/store"
)

// Handlers are the work the caller plugs in. A nil handler leaves its job
// kind unregistered (inserting it fails with river.UnknownJobKindError) and
// its periodic job unscheduled. Notifications are processed by Inbox.
type Handlers struct {
	RenewSubscriptions func(ctx context.Context) error
	CatchupMailbox     func(ctx context.Context, args CatchupMailboxArgs) error
	PollDataverse      func(ctx context.Context) error
}

// Defaults for Config.
const (
	RenewIntervalDefault         = 15 * time.Minute
	PollDataverseIntervalDefault = 5 * time.Minute
	MaxWorkersDefault            = 10
	StopTimeoutDefault           = 30 * time.Second
)

// Config configures a Queue. The zero value (plus a Logger) is usable.
type Config struct {
	Logger   *slog.Logger
	Handlers Handlers

	// RenewInterval and PollDataverseInterval schedule the periodic jobs,
	// which only the elected leader enqueues.
	RenewInterval         time.Duration
	PollDataverseInterval time.Duration

	// MaxWorkers per queue.
	MaxWorkers int
	// MaxAttempts and RetryPolicy pass through to River (defaults: 25
	// attempts, attempt^4 seconds backoff with jitter).
	MaxAttempts int
	RetryPolicy river.ClientRetryPolicy
	// FetchPollInterval passes through to River. Notifications wake workers
	// immediately on both backends, so polling is only the fallback.
	FetchPollInterval time.Duration
	// PostgresPollOnly uses riverdatabasesql.New (no LISTEN connection)
	// instead of NewWithPgxListener.
	PostgresPollOnly bool
	// StopTimeout bounds the graceful part of Stop; running jobs are then
	// cancelled.
	StopTimeout time.Duration

	// Register adds workers for kinds defined by later packages.
	Register func(w *river.Workers) error
	// PeriodicJobs adds periodic jobs defined by later packages.
	PeriodicJobs []*river.PeriodicJob

	// CompletedRetention, CancelledRetention and DiscardedRetention pass
	// through to River's job cleaner (run by the leader); zero keeps
	// River's defaults (24h, 24h, 7d).
	CompletedRetention, CancelledRetention, DiscardedRetention time.Duration

	// Test passes through to River (e.g. a stubbed clock).
	Test river.TestConfig
}

// jobTimeout bounds one job's run.
const jobTimeout = 10 * time.Minute

// Queue wraps the River client.
type Queue struct {
	client   *river.Client[*sql.Tx]
	store    *store.Store
	log      *slog.Logger
	listener *pgxpool.Pool
	stopWait time.Duration

	mu      sync.Mutex
	started bool
	closed  bool
	// hbStop ends the instance heartbeat (PostgreSQL); hbDone closes when it has.
	hbStop context.CancelFunc
	hbDone chan struct{}
}

// New builds the River client for st's backend. River's tables must exist
// (store.Open migrates them).
func New(ctx context.Context, st *store.Store, cfg Config) (*Queue, error) {
	if cfg.Logger == nil {
		cfg.Logger = st.Logger()
	}
	if cfg.RenewInterval <= 0 {
		cfg.RenewInterval = RenewIntervalDefault
	}
	if cfg.PollDataverseInterval <= 0 {
		cfg.PollDataverseInterval = PollDataverseIntervalDefault
	}
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = MaxWorkersDefault
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = StopTimeoutDefault
	}
	q := &Queue{store: st, log: cfg.Logger, stopWait: cfg.StopTimeout}

	workers := river.NewWorkers()
	var periodic []*river.PeriodicJob
	if h := cfg.Handlers.RenewSubscriptions; h != nil {
		river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, _ *river.Job[RenewSubscriptionsArgs]) error {
			return h(ctx)
		}))
		periodic = append(periodic, river.NewPeriodicJob(river.PeriodicInterval(cfg.RenewInterval),
			func() (river.JobArgs, *river.InsertOpts) { return RenewSubscriptionsArgs{}, nil },
			&river.PeriodicJobOpts{ID: KindRenewSubscriptions, RunOnStart: true}))
	}
	if h := cfg.Handlers.CatchupMailbox; h != nil {
		river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[CatchupMailboxArgs]) error {
			return h(ctx, job.Args)
		}))
	}
	if h := cfg.Handlers.PollDataverse; h != nil {
		river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, _ *river.Job[PollDataverseArgs]) error {
			return h(ctx)
		}))
		periodic = append(periodic, river.NewPeriodicJob(river.PeriodicInterval(cfg.PollDataverseInterval),
			func() (river.JobArgs, *river.InsertOpts) { return PollDataverseArgs{}, nil },
			&river.PeriodicJobOpts{ID: KindPollDataverse, RunOnStart: true}))
	}
	if cfg.Register != nil {
		if err := cfg.Register(workers); err != nil {
			return nil, fmt.Errorf("jobs: registering workers: %w", err)
		}
	}
	periodic = append(periodic, cfg.PeriodicJobs...)

	rcfg := &river.Config{
		ID:                ClientID(),
		Logger:            cfg.Logger,
		Workers:           workers,
		PeriodicJobs:      periodic,
		MaxAttempts:       cfg.MaxAttempts,
		RetryPolicy:       cfg.RetryPolicy,
		FetchPollInterval: cfg.FetchPollInterval,
		// Passes over thousands of bookings outlast River's 1-minute default;
		// a job left "running" by a killed instance is rescued soon after
		// instead of after River's default hour (its uniqueness would block
		// the periodic job that long).
		JobTimeout:           jobTimeout,
		RescueStuckJobsAfter: jobTimeout + time.Minute,

		CompletedJobRetentionPeriod: cfg.CompletedRetention,
		CancelledJobRetentionPeriod: cfg.CancelledRetention,
		DiscardedJobRetentionPeriod: cfg.DiscardedRetention,
		Queues: map[string]river.QueueConfig{
			QueueMaintenance: {MaxWorkers: cfg.MaxWorkers},
		},
		Test: cfg.Test,
	}

	var driver riverdriver.Driver[*sql.Tx]
	switch st.Backend() {
	case store.BackendSQLite:
		driver = riversqlite.New(st.DB())
	case store.BackendPostgres:
		if cfg.PostgresPollOnly {
			driver = riverdatabasesql.New(st.DB())
		} else {
			pcfg, err := pgxpool.ParseConfig(st.ConnString())
			if err != nil {
				return nil, fmt.Errorf("jobs: parsing listener connection string: %w", err)
			}
			// River hijacks one connection per client for LISTEN (see
			// riverdatabasesql.NewWithPgxListener).
			pcfg.MinConns, pcfg.MaxConns = 0, 1
			q.listener, err = pgxpool.NewWithConfig(ctx, pcfg)
			if err != nil {
				return nil, fmt.Errorf("jobs: creating listener pool: %w", err)
			}
			driver = riverdatabasesql.NewWithPgxListener(st.DB(), q.listener)
		}
	default:
		return nil, fmt.Errorf("jobs: unsupported backend %q", st.Backend())
	}

	client, err := river.NewClient(driver, rcfg)
	if err != nil {
		q.closeListener()
		return nil, fmt.Errorf("jobs: creating river client: %w", err)
	}
	q.client = client
	return q, nil
}

// clientIDHostMax keeps ClientID within River's 100 characters (and
// river_leader's leader_id < 128).
const clientIDHostMax = 60

// ClientID is this process's River client ID: host, pid and a random
// suffix, so an operator can tell which instance is the leader (river_leader)
// or attempted a job (river_job.attempted_by). The suffix keeps IDs unique
// where every container runs as pid 1 under a shared hostname.
func ClientID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown-host"
	}
	// River avoids dots in its default IDs; do the same.
	host = strings.ReplaceAll(host, ".", "_")
	if len(host) > clientIDHostMax {
		host = host[:clientIDHostMax]
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), rand.Text()[:4])
}

// ID is the River client ID (see ClientID).
func (q *Queue) ID() string { return q.client.ID() }

// Start starts working jobs and, when elected leader, enqueuing periodic jobs.
func (q *Queue) Start(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errors.New("jobs: queue was stopped and cannot be restarted")
	}
	if q.started {
		return nil
	}
	if q.store.Backend() == store.BackendSQLite {
		// SQLite has one instance by design: a job still "running" was
		// running in a process that is gone (killed). Make it runnable now.
		if _, err := q.store.DB().ExecContext(ctx, `UPDATE river_job SET state = 'available' WHERE state = 'running'`); err != nil {
			return fmt.Errorf("jobs: releasing jobs of a previous run: %w", err)
		}
	}
	if q.store.Backend() == store.BackendPostgres {
		// The lease exists before this instance fetches its first job, so
		// no other instance takes its running jobs for orphans.
		id := q.client.ID()
		if _, err := q.store.TryLease(ctx, q.store.DB(), InstanceLeaseKey(id), id, instanceLeaseTTL); err != nil {
			return fmt.Errorf("jobs: instance lease: %w", err)
		}
	}
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("jobs: starting river client: %w", err)
	}
	if q.store.Backend() == store.BackendPostgres {
		hctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		q.hbStop, q.hbDone = stop, make(chan struct{})
		go q.heartbeat(hctx, q.hbDone)
	}
	q.started = true
	return nil
}

// Stop waits up to StopTimeout for running jobs, then cancels them, and
// releases the Postgres listener connection. It is idempotent; a stopped
// Queue cannot be restarted (build a new one).
func (q *Queue) Stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	if q.started {
		ctx, cancel := context.WithTimeout(context.Background(), q.stopWait)
		err := q.client.Stop(ctx)
		cancel()
		if err != nil {
			q.log.Warn("jobs: graceful stop timed out, cancelling running jobs", slog.String("err", err.Error()))
			ctx, cancel := context.WithTimeout(context.Background(), q.stopWait)
			if err := q.client.StopAndCancel(ctx); err != nil {
				q.log.Error("jobs: stop and cancel failed", slog.String("err", err.Error()))
			}
			cancel()
		}
	}
	if q.hbStop != nil {
		q.hbStop()
		<-q.hbDone
	}
	q.closeListener()
}

func (q *Queue) closeListener() {
	if q.listener != nil {
		q.listener.Close()
		q.listener = nil
	}
}

// Client exposes the River client (e.g. for the River UI or subscriptions).
func (q *Queue) Client() *river.Client[*sql.Tx] { return q.client }

// InsertTx enqueues a job in tx, so it exists only if tx commits.
func (q *Queue) InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	res, err := q.client.InsertTx(ctx, tx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("jobs: inserting %s: %w", args.Kind(), err)
	}
	return res, nil
}

// Insert enqueues a job in its own transaction. Don't call it while holding
// a store transaction (SQLite has one connection): use InsertTx.
func (q *Queue) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	res, err := q.client.Insert(ctx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("jobs: inserting %s: %w", args.Kind(), err)
	}
	return res, nil
}

// Stats counts jobs by state, for /readyz and metrics.
type Stats struct {
	Available, Scheduled, Retryable, Running, Pending int64
	Completed, Cancelled, Discarded                   int64
}

// Depth is the number of jobs not yet finished.
func (s Stats) Depth() int64 {
	return s.Available + s.Scheduled + s.Retryable + s.Running + s.Pending
}

// Stats reads job counts per state. Finished jobs are counted until River's
// cleaner removes them (completed after 24h, discarded after 7 days by default).
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	rows, err := q.store.DB().QueryContext(ctx, `SELECT state, COUNT(*) FROM river_job GROUP BY state`)
	if err != nil {
		return Stats{}, fmt.Errorf("jobs: counting jobs: %w", err)
	}
	defer rows.Close()
	var s Stats
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return Stats{}, fmt.Errorf("jobs: counting jobs: %w", err)
		}
		switch rivertype.JobState(state) {
		case rivertype.JobStateAvailable:
			s.Available = n
		case rivertype.JobStateScheduled:
			s.Scheduled = n
		case rivertype.JobStateRetryable:
			s.Retryable = n
		case rivertype.JobStateRunning:
			s.Running = n
		case rivertype.JobStatePending:
			s.Pending = n
		case rivertype.JobStateCompleted:
			s.Completed = n
		case rivertype.JobStateCancelled:
			s.Cancelled = n
		case rivertype.JobStateDiscarded:
			s.Discarded = n
		}
	}
	if err := rows.Err(); err != nil {
		return Stats{}, fmt.Errorf("jobs: counting jobs: %w", err)
	}
	return s, nil
}
