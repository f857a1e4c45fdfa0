// Package store is bookingsync's durable state: the notification inbox,
// resources, Graph subscriptions, booking↔event links, sync cursors and the
// audit log, on embedded SQLite (default) or PostgreSQL, through database/sql
// with one set of repository methods. River's tables live in the same
// database so that a store write and a job insert commit together.
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
	"strings"
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
		dsn, err := sqliteDSN(strings.TrimPrefix(rawURL, "sqlite:"), o.synchronous)
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

	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("store: connecting to %s: %w", s.dialect.backend, err)
	}
	if err := s.Migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// sqliteDSN builds the modernc.org/sqlite DSN with the settings from
// go-choices §3.4. Pragmas go in the DSN because they are per connection.
func sqliteDSN(path, synchronous string) (string, error) {
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
	q.Set("_txlock", "immediate")
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

// Close closes the pool.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: closing: %w", err)
	}
	return nil
}

// InTx runs fn in a transaction, committing if fn returns nil and rolling back
// otherwise. On SQLite the transaction takes the write lock at BEGIN
// (_txlock=immediate). fn must use tx only, never the Store's pool.
func (s *Store) InTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
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
