// Package store is bookingsync's durable state: the notification inbox,
// resources, Graph subscriptions, booking↔event links, sync cursors and the
// audit log, on embedded SQLite (default) or PostgreSQL, through database/sql
// with one set of repository methods. River's tables live in the same
// database so that a store write and a job insert commit together.
//
// The notification inbox is the one exception on SQLite: it lives in a file
// of its own beside the main one (InboxFileName), with its own single writer,
// so that acknowledging a webhook never waits behind River's or the sync
// engine's writes. On PostgreSQL it is a table of the main database. The
// notification methods always run on the inbox (see InboxDB).
//
// Repository methods take a DBTX: pass the *sql.Tx from InTx to combine
// writes (and River's InsertTx) atomically, or Store.DB() for a single
// statement. Never use Store.DB() while holding a transaction: on SQLite the
// pool has one connection and that would deadlock.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound is returned when a looked-up row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict is returned when a compare-and-swap update finds another
	// version than expected, or an insert collides with an existing row.
	ErrConflict = errors.New("store: conflict")
)

// Backend names the database engine behind a Store.
type Backend string

const (
	BackendSQLite   Backend = "sqlite"
	BackendPostgres Backend = "postgres"
)

// DBTX is what repository methods run on: a *sql.Tx or a *sql.DB.
type DBTX interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ DBTX = (*sql.DB)(nil)
	_ DBTX = (*sql.Tx)(nil)
)

// DefaultFileName is the SQLite database file created under the data directory.
const DefaultFileName = "bookingsync.db"

// DefaultURL returns the default store URL: a SQLite file under dataDir.
func DefaultURL(dataDir string) string {
	return "sqlite:" + filepath.Join(dataDir, DefaultFileName)
}

// Option adjusts Open.
type Option func(*options)

type options struct {
	now         func() time.Time
	synchronous string
	maxConns    int
}

// WithClock replaces time.Now for the timestamps the store fills in itself.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithSQLiteSynchronous overrides PRAGMA synchronous (default FULL, so an
// acknowledged webhook survives power loss). NORMAL is only for benchmarks or
// deployments that accept losing the last commits on a crash and rely on
// catch-up to repair them.
func WithSQLiteSynchronous(mode string) Option {
	return func(o *options) { o.synchronous = mode }
}

// WithPostgresMaxConns sets the Postgres pool size (default 16).
func WithPostgresMaxConns(n int) Option { return func(o *options) { o.maxConns = n } }

// Store is the database handle. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect dialect
	connStr string
	logger  *slog.Logger
	now     func() time.Time

	// SQLite only: a pool of read-only connections (WAL readers neither
	// wait for nor block the single writer), the background checkpointer
	// that keeps WAL checkpoints out of the writer's commits, and the
	// notification INSERTs prepared on the writer for fixed chunk sizes.
	rdb        *sql.DB
	ckptStop   chan struct{}
	ckptDone   chan struct{}
	ckptOnce   sync.Once
	insertStmt map[int]*sql.Stmt
	markStmt   map[int]*sql.Stmt
	claimStmt  *sql.Stmt

	// The notification inbox: on SQLite its own file with its own single
	// writer (inboxDB) and read pool (inboxRDB), checkpointer and prepared
	// statements; on PostgreSQL both are db.
	inboxDB, inboxRDB *sql.DB
	inboxStop         chan struct{}
	inboxDone         chan struct{}

	// intake is the running Intake, if any: MarkNotificationsProcessed and
	// ClaimNotifications on the pool join its group commits instead of
	// taking their own.
	intake atomic.Pointer[Intake]

	// handoff, if set, takes the rows an Intake commit inserts, claimed in
	// that commit (SetInboxHandOff). The committer holds handoffMu for
	// reading from Reserve to Deliver.
	handoffMu sync.RWMutex
	handoff   *InboxHandOff
}

// Open connects to the database named by rawURL, applies bookingsync's
// migrations (in one transaction) and River's, and returns the Store.
//
// Accepted URLs:
//
//	sqlite:/var/lib/bookingsync/bookingsync.db   (also sqlite:///abs/path, sqlite:relative/path)
//	postgres://user:pass@host:5432/db?sslmode=disable  (also postgresql://)
//
// For Postgres, a search_path query parameter selects the schema for both our
// tables and River's.
func Open(ctx context.Context, rawURL string, logger *slog.Logger, opts ...Option) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := options{now: time.Now, synchronous: "FULL", maxConns: 16}
	for _, opt := range opts {
		opt(&o)
	}

	s := &Store{logger: logger, now: o.now}
	switch {
	case strings.HasPrefix(rawURL, "sqlite:"):
		path := strings.TrimPrefix(rawURL, "sqlite:")
		dsn, err := sqliteDSN(path, o.synchronous, false)
		if err != nil {
			return nil, err
		}
		rdsn, err := sqliteDSN(path, o.synchronous, true)
		if err != nil {
			return nil, err
		}
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("store: opening sqlite: %w", err)
		}
		// One connection shared by River and our writes: SQLite has a single
		// writer and River's driver gets SQLITE_BUSY otherwise (go-choices §2.3).
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		s.db, s.dialect, s.connStr = db, dialect{backend: BackendSQLite}, dsn
		// Readers: opened after the migration below has created the file.
		s.rdb, err = sql.Open("sqlite", rdsn)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("store: opening sqlite: %w", err)
		}
		s.rdb.SetMaxOpenConns(sqliteReaders)
		s.rdb.SetMaxIdleConns(sqliteReaders)
		s.rdb.SetConnMaxLifetime(0)
		s.rdb.SetConnMaxIdleTime(0)
		if s.inboxDB, s.inboxRDB, err = openSQLitePair(InboxPath(path), o.synchronous); err != nil {
			s.closeDBs()
			return nil, err
		}
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		db, err := sql.Open("pgx", rawURL)
		if err != nil {
			return nil, fmt.Errorf("store: opening postgres: %w", err)
		}
		db.SetMaxOpenConns(o.maxConns)
		db.SetMaxIdleConns(o.maxConns)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s.db, s.dialect, s.connStr = db, dialect{backend: BackendPostgres}, rawURL
	default:
		return nil, fmt.Errorf("store: unsupported database URL %q (want sqlite:PATH or postgres://...)", redactURL(rawURL))
	}

	if s.rdb == nil {
		s.rdb = s.db
	}
	if s.inboxDB == nil {
		s.inboxDB, s.inboxRDB = s.db, s.db
	}
	fail := func(err error) (*Store, error) {
		s.closeDBs()
		return nil, err
	}
	if err := s.db.PingContext(ctx); err != nil {
		return fail(fmt.Errorf("store: connecting to %s: %w", s.dialect.backend, err))
	}
	if err := s.Migrate(ctx); err != nil {
		return fail(err)
	}
	if s.dialect.backend == BackendSQLite {
		if err := s.prepareSQLite(ctx); err != nil {
			return fail(err)
		}
		s.ckptStop, s.ckptDone = make(chan struct{}), make(chan struct{})
		go s.checkpointer(s.rdb, s.ckptStop, s.ckptDone)
		s.inboxStop, s.inboxDone = make(chan struct{}), make(chan struct{})
		go s.checkpointer(s.inboxRDB, s.inboxStop, s.inboxDone)
	}
	return s, nil
}

// InboxPath returns the SQLite inbox file that belongs to the main database
// file path: "bookingsync.db" → "bookingsync-inbox.db", in the same directory.
func InboxPath(path string) string {
	path = strings.TrimPrefix(path, "//")
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-inbox" + ext
}

// openSQLitePair opens a SQLite file as one writer connection and a pool
// of read-only connections, with the same pragmas as the main file.
func openSQLitePair(path, synchronous string) (w, r *sql.DB, err error) {
	dsn, err := sqliteDSN(path, synchronous, false)
	if err != nil {
		return nil, nil, err
	}
	rdsn, err := sqliteDSN(path, synchronous, true)
	if err != nil {
		return nil, nil, err
	}
	if w, err = sql.Open("sqlite", dsn); err != nil {
		return nil, nil, fmt.Errorf("store: opening sqlite inbox: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if r, err = sql.Open("sqlite", rdsn); err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("store: opening sqlite inbox: %w", err)
	}
	r.SetMaxOpenConns(sqliteReaders)
	r.SetMaxIdleConns(sqliteReaders)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	return w, r, nil
}

// sqliteReaders is the size of the SQLite read-only pool.
const sqliteReaders = 4

// sqliteCheckpointInterval is how often the background checkpointer copies
// the WAL back into the database file. The writer connection only
// checkpoints itself (sqliteWriterAutoCheckpoint) if this falls far behind.
const (
	sqliteCheckpointInterval   = 100 * time.Millisecond
	sqliteWriterAutoCheckpoint = 20000 // pages (~80 MB of WAL)
)

// prepareSQLite prepares the notification INSERTs, UPDATEs and claim on the inbox's writer connection.
// It must run while nothing holds that connection: preparing lazily from
// inside a transaction would wait for the pool's only connection forever.
func (s *Store) prepareSQLite(ctx context.Context) error {
	s.insertStmt = make(map[int]*sql.Stmt, len(notificationChunkSizes))
	s.markStmt = make(map[int]*sql.Stmt, len(notificationChunkSizes))
	for _, n := range notificationChunkSizes {
		st, err := s.inboxDB.PrepareContext(ctx, insertNotificationsSQL(n))
		if err != nil {
			return fmt.Errorf("store: preparing notification insert: %w", err)
		}
		s.insertStmt[n] = st
		if st, err = s.inboxDB.PrepareContext(ctx, markNotificationsSQL(n)); err != nil {
			return fmt.Errorf("store: preparing notification update: %w", err)
		}
		s.markStmt[n] = st
	}
	st, err := s.inboxDB.PrepareContext(ctx, s.claimNotificationsSQL())
	if err != nil {
		return fmt.Errorf("store: preparing notification claim: %w", err)
	}
	s.claimStmt = st
	return nil
}

// checkpointer runs PASSIVE WAL checkpoints from a reader connection of
// rdb, so the writer's commits don't do the copying (and its fsync of the
// database file) themselves. A passive checkpoint never waits for the writer.
func (s *Store) checkpointer(rdb *sql.DB, stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(sqliteCheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var busy, log, done int
		err := rdb.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done)
		cancel()
		if err != nil {
			s.logger.Warn("store: wal checkpoint failed", slog.String("err", err.Error()))
		}
	}
}

func (s *Store) closeDBs() error {
	for _, m := range []map[int]*sql.Stmt{s.insertStmt, s.markStmt} {
		for _, st := range m {
			st.Close()
		}
	}
	if s.claimStmt != nil {
		s.claimStmt.Close()
	}
	var errs []error
	for _, db := range []*sql.DB{s.inboxRDB, s.inboxDB, s.rdb} {
		if db != nil && db != s.db {
			errs = append(errs, db.Close())
		}
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	return errors.Join(errs...)
}

// sqliteDSN builds the modernc.org/sqlite DSN with the settings from
// go-choices §3.4. Pragmas go in the DSN because they are per connection.
func sqliteDSN(path, synchronous string, readOnly bool) (string, error) {
	path = strings.TrimPrefix(path, "//")
	if path == "" {
		return "", errors.New("store: empty sqlite path")
	}
	switch strings.ToUpper(synchronous) {
	case "OFF", "NORMAL", "FULL", "EXTRA":
	default:
		return "", fmt.Errorf("store: invalid sqlite synchronous mode %q", synchronous)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("store: creating data directory: %w", err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous("+strings.ToUpper(synchronous)+")")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
		q.Set("_txlock", "deferred")
	} else {
		q.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(sqliteWriterAutoCheckpoint)+")")
		q.Set("_txlock", "immediate")
	}
	q.Set("_time_format", "sqlite")
	return "file:" + path + "?" + q.Encode(), nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// DB returns the pool, for single statements outside a transaction and for
// River. Do not use it while a transaction from InTx is open.
func (s *Store) DB() *sql.DB { return s.db }

// ReadDB returns a pool for reads that need no transaction with writes. On
// SQLite these are separate read-only connections, so reads neither queue
// behind nor delay the single writer (WAL readers see the last commit); on
// PostgreSQL it is DB().
func (s *Store) ReadDB() *sql.DB { return s.rdb }

// InboxDB returns the notification inbox's pool: on SQLite the single
// writer connection of the inbox file (never DB(): the main file has no
// notifications table), on PostgreSQL DB(). Same rule as DB(): do not use
// it while a transaction from InboxTx is open.
func (s *Store) InboxDB() *sql.DB { return s.inboxDB }

// InboxReadDB is ReadDB for the inbox: read-only connections of the inbox
// file on SQLite, DB() on PostgreSQL.
func (s *Store) InboxReadDB() *sql.DB { return s.inboxRDB }

// InboxTx is InTx on the inbox's database.
func (s *Store) InboxTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.inTx(ctx, s.inboxDB, fn)
}

// Backend reports which database engine the store uses.
func (s *Store) Backend() Backend { return s.dialect.backend }

// ConnString returns the connection string used to open the pool (the SQLite
// DSN, or the Postgres URL including credentials: don't log it). River's
// Postgres listener opens its own pgx pool with it.
func (s *Store) ConnString() string { return s.connStr }

// Logger returns the store's logger.
func (s *Store) Logger() *slog.Logger { return s.logger }

// Now returns the store's clock reading.
func (s *Store) Now() time.Time { return s.now() }

// Close closes the pools, the inbox's too.
func (s *Store) Close() error {
	if s.ckptStop != nil {
		s.ckptOnce.Do(func() { close(s.ckptStop); close(s.inboxStop) })
		<-s.ckptDone
		<-s.inboxDone
	}
	if err := s.closeDBs(); err != nil {
		return fmt.Errorf("store: closing: %w", err)
	}
	return nil
}

// InTx runs fn in a transaction, committing if fn returns nil and rolling back
// otherwise. On SQLite the transaction takes the write lock at BEGIN
// (_txlock=immediate). fn must use tx only, never the Store's pool.
func (s *Store) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.inTx(ctx, s.db, fn)
}

func (s *Store) inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: beginning transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			s.logger.WarnContext(ctx, "store: rollback failed", slog.String("err", rbErr.Error()))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: committing transaction: %w", err)
	}
	return nil
}
