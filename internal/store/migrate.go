package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// migration is one schema step. Statements use the dialect's type tokens
// ({id}, {ts}, {blob}); everything else is SQL both engines accept.
// Append new steps; never edit or reorder applied ones.
type migration struct {
	version int
	name    string
	stmts   []string
}

var migrations = []migration{
	{
		version: 1,
		name:    "initial schema",
		stmts: []string{
			`CREATE TABLE resources (
				id               TEXT PRIMARY KEY,
				name             TEXT NOT NULL DEFAULT '',
				mailbox          TEXT NOT NULL DEFAULT '',
				upn              TEXT NOT NULL DEFAULT '',
				opt_in           TEXT NOT NULL DEFAULT 'unknown' CHECK (opt_in IN ('allowed', 'not_allowed', 'unknown')),
				active           BOOLEAN NOT NULL DEFAULT TRUE,
				last_status_text TEXT,
				created_at       {ts} NOT NULL,
				updated_at       {ts} NOT NULL
			)`,
			`CREATE INDEX resources_mailbox_idx ON resources (mailbox)`,

			`CREATE TABLE subscriptions (
				id                   TEXT PRIMARY KEY,
				resource_id          TEXT NOT NULL REFERENCES resources (id),
				mailbox              TEXT NOT NULL,
				resource             TEXT NOT NULL,
				change_types         TEXT NOT NULL,
				expires_at           {ts} NOT NULL,
				client_state_hash    {blob} NOT NULL,
				lifetime_seconds     BIGINT NOT NULL DEFAULT 0,
				created_at           {ts} NOT NULL,
				last_renewed_at      {ts},
				renew_failures       INTEGER NOT NULL DEFAULT 0,
				last_error           TEXT NOT NULL DEFAULT '',
				last_notification_at {ts}
			)`,
			`CREATE INDEX subscriptions_mailbox_idx ON subscriptions (mailbox)`,
			`CREATE INDEX subscriptions_resource_idx ON subscriptions (resource_id)`,
			`CREATE INDEX subscriptions_expires_at_idx ON subscriptions (expires_at)`,

			// The notifications table is the inbox: see inboxMigrations.

			`CREATE TABLE links (
				booking_id       TEXT PRIMARY KEY,
				resource_id      TEXT NOT NULL DEFAULT '',
				mailbox          TEXT NOT NULL,
				event_id         TEXT NOT NULL,
				booking_version  BIGINT NOT NULL DEFAULT 0,
				booking_hash     TEXT NOT NULL DEFAULT '',
				event_change_key TEXT NOT NULL DEFAULT '',
				event_etag       TEXT NOT NULL DEFAULT '',
				event_hash       TEXT NOT NULL DEFAULT '',
				version          BIGINT NOT NULL,
				created_at       {ts} NOT NULL,
				updated_at       {ts} NOT NULL,
				CONSTRAINT links_event_uniq UNIQUE (mailbox, event_id)
			)`,
			`CREATE INDEX links_resource_idx ON links (resource_id)`,

			`CREATE TABLE sync_state (
				key        TEXT PRIMARY KEY,
				value      TEXT NOT NULL,
				updated_at {ts} NOT NULL
			)`,

			`CREATE TABLE audit (
				id          {id},
				at          {ts} NOT NULL,
				resource_id TEXT NOT NULL DEFAULT '',
				booking_id  TEXT NOT NULL DEFAULT '',
				event_id    TEXT NOT NULL DEFAULT '',
				side        TEXT NOT NULL DEFAULT '',
				action      TEXT NOT NULL,
				reason      TEXT NOT NULL DEFAULT '',
				before_json TEXT,
				after_json  TEXT,
				outcome     TEXT NOT NULL,
				error       TEXT NOT NULL DEFAULT ''
			)`,
			`CREATE INDEX audit_at_idx ON audit (at)`,
			`CREATE INDEX audit_resource_at_idx ON audit (resource_id, at)`,
			`CREATE INDEX audit_booking_at_idx ON audit (booking_id, at)`,
		},
	},
	{
		version: 2,
		name:    "link agreed times and create intent",
		stmts: []string{
			// The agreed times tell an Outlook move from an edit of a field
			// Dynamics 365 owns; the hashes alone cannot.
			`ALTER TABLE links ADD COLUMN agreed_start {ts}`,
			`ALTER TABLE links ADD COLUMN agreed_end {ts}`,
			// The transactionId of a create in flight, written before the
			// POST so a retry after a crash reuses it (and looks first).
			`ALTER TABLE links ADD COLUMN create_txid TEXT NOT NULL DEFAULT ''`,
			// Which side created the pair ('' = Dynamics 365, 'outlook'), and
			// whether the link is a tombstone that stops the sync of its booking.
			`ALTER TABLE links ADD COLUMN origin TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE links ADD COLUMN detached BOOLEAN NOT NULL DEFAULT FALSE`,
			// Expiring leases serialise work on one booking across instances;
			// a crashed holder's lease simply runs out.
			`CREATE TABLE leases (
				key        TEXT PRIMARY KEY,
				owner      TEXT NOT NULL,
				expires_at {ts} NOT NULL
			)`,
		},
	},
	{
		version: 3,
		name:    "conflicts and mass-delete guard",
		stmts: []string{
			// Conflicts left for a person (sync.conflict: manual): at most one
			// open per booking; resolving keeps the row as history.
			`CREATE TABLE conflicts (
				id          {id},
				booking_id  TEXT NOT NULL,
				resource_id TEXT NOT NULL DEFAULT '',
				mailbox     TEXT NOT NULL DEFAULT '',
				event_id    TEXT NOT NULL DEFAULT '',
				rule        TEXT NOT NULL,
				reason      TEXT NOT NULL,
				detected_at {ts} NOT NULL,
				resolved_at {ts},
				resolution  TEXT NOT NULL DEFAULT ''
			)`,
			`CREATE UNIQUE INDEX conflicts_open_booking_uniq ON conflicts (booking_id) WHERE resolved_at IS NULL`,
			// Passes the mass-delete guard stopped: the deletions they would
			// have made wait here for "bookingsync approve PASS-ID".
			`CREATE TABLE guard_passes (
				id          TEXT PRIMARY KEY,
				scope       TEXT NOT NULL,
				side        TEXT NOT NULL,
				deletes     INTEGER NOT NULL,
				linked      INTEGER NOT NULL,
				plan_json   TEXT NOT NULL,
				status      TEXT NOT NULL CHECK (status IN ('held', 'approved', 'applied', 'discarded')),
				created_at  {ts} NOT NULL,
				approved_at {ts},
				approved_by TEXT NOT NULL DEFAULT ''
			)`,
			`CREATE INDEX guard_passes_status_idx ON guard_passes (status, created_at)`,
		},
	},
}

// inboxMigrations build the notification inbox. On SQLite they run in the
// inbox's own file, on PostgreSQL in the main database; either way their
// versions are recorded in inbox_schema_version, apart from the main list.
// Append new steps; never edit or reorder applied ones.
var inboxMigrations = []migration{
	{
		version: 1,
		name:    "notification inbox",
		stmts: []string{
			// The inbox is the durable queue: a row is pending until
			// processed_at or dead_at is set. A processor claims pending rows
			// for a while (claimed_by, claimed_until) and, when processing
			// fails, schedules the next attempt (attempts counts the claims,
			// next_attempt_at; NULL means at once) or, once out of attempts,
			// sets dead_at. last_error is the latest failure.
			`CREATE TABLE notifications (
				id              {id},
				source          TEXT NOT NULL CHECK (source IN ('graph', 'graph_lifecycle', 'dataverse')),
				subscription_id TEXT NOT NULL DEFAULT '',
				mailbox         TEXT NOT NULL DEFAULT '',
				item_id         TEXT NOT NULL DEFAULT '',
				change_type     TEXT NOT NULL DEFAULT '',
				etag            TEXT NOT NULL DEFAULT '',
				dedupe_key      TEXT NOT NULL,
				payload         {blob} NOT NULL,
				received_at     {ts} NOT NULL,
				processed_at    {ts},
				attempts        INTEGER NOT NULL DEFAULT 0,
				next_attempt_at {ts},
				claimed_by      TEXT,
				claimed_until   {ts},
				last_error      TEXT NOT NULL DEFAULT '',
				dead_at         {ts},
				CONSTRAINT notifications_dedupe_key_uniq UNIQUE (dedupe_key)
			)`,
			// What claims walk, in id order: the pending rows only.
			`CREATE INDEX notifications_pending_idx ON notifications (id) WHERE processed_at IS NULL AND dead_at IS NULL`,
			// Dead rows, for the gauge and the admin list; costs the intake nothing.
			`CREATE INDEX notifications_dead_idx ON notifications (id) WHERE dead_at IS NOT NULL`,
			// No index on received_at: ids grow with time, so retention finds
			// its rows by id range (every index costs each intake row a write).
		},
	},
}

// LatestSchemaVersion is the version Open migrates to.
func LatestSchemaVersion() int { return migrations[len(migrations)-1].version }

// postgresMigrationLockID serialises concurrent Opens against one Postgres
// database (several instances starting at once).
const postgresMigrationLockID = 0x626b7379 // "bksy"

// LatestInboxSchemaVersion is the inbox version Open migrates to.
func LatestInboxSchemaVersion() int { return inboxMigrations[len(inboxMigrations)-1].version }

// Migrate applies pending bookingsync migrations in one transaction, the
// inbox's in another (on SQLite in the inbox file), then River's. It is
// idempotent; Open calls it.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.migrate(ctx, s.db, "schema_version", migrations); err != nil {
		return fmt.Errorf("store: migrating: %w", err)
	}
	if err := s.migrate(ctx, s.inboxDB, "inbox_schema_version", inboxMigrations); err != nil {
		return fmt.Errorf("store: migrating the inbox: %w", err)
	}
	if err := s.migrateRiver(ctx); err != nil {
		return fmt.Errorf("store: migrating river: %w", err)
	}
	return nil
}

// migrate applies the steps of list newer than the highest version recorded
// in table, in one transaction on db.
func (s *Store) migrate(ctx context.Context, db *sql.DB, table string, list []migration) error {
	return s.inTx(ctx, db, func(tx *sql.Tx) error {
		if s.dialect.backend == BackendPostgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, postgresMigrationLockID); err != nil {
				return fmt.Errorf("taking migration lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.dialect.ddl(`CREATE TABLE IF NOT EXISTS `+table+` (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at {ts} NOT NULL
		)`)); err != nil {
			return fmt.Errorf("creating %s: %w", table, err)
		}
		current, err := schemaVersion(ctx, tx, table)
		if err != nil {
			return err
		}
		for _, m := range list {
			if m.version <= current {
				continue
			}
			for i, stmt := range m.stmts {
				if _, err := tx.ExecContext(ctx, s.dialect.ddl(stmt)); err != nil {
					return fmt.Errorf("migration %d (%s) statement %d: %w", m.version, m.name, i+1, err)
				}
			}
			if _, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO `+table+` (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, s.dialect.ts(s.now())); err != nil {
				return fmt.Errorf("recording migration %d: %w", m.version, err)
			}
			s.logger.InfoContext(ctx, "store: applied migration", slog.String("list", table),
				slog.Int("version", m.version), slog.String("name", m.name))
		}
		return nil
	})
}

// migrateRiver runs River's own migrations outside our transaction: River
// deprecates MigrateTx because some of its steps cannot share one.
func (s *Store) migrateRiver(ctx context.Context) error {
	cfg := &rivermigrate.Config{Logger: s.logger}
	var res *rivermigrate.MigrateResult
	var err error
	switch s.dialect.backend {
	case BackendSQLite:
		var m *rivermigrate.Migrator[*sql.Tx]
		if m, err = rivermigrate.New(riversqlite.New(s.db), cfg); err == nil {
			res, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		}
	case BackendPostgres:
		var m *rivermigrate.Migrator[*sql.Tx]
		if m, err = rivermigrate.New(riverdatabasesql.New(s.db), cfg); err == nil {
			res, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		}
	}
	if err != nil {
		return err
	}
	for _, v := range res.Versions {
		s.logger.InfoContext(ctx, "store: applied river migration", slog.Int("version", v.Version), slog.String("name", v.Name))
	}
	return nil
}

// SchemaVersion returns the highest applied bookingsync migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	return schemaVersion(ctx, s.db, "schema_version")
}

// InboxSchemaVersion returns the highest applied inbox migration.
func (s *Store) InboxSchemaVersion(ctx context.Context) (int, error) {
	return schemaVersion(ctx, s.inboxDB, "inbox_schema_version")
}

func schemaVersion(ctx context.Context, q DBTX, table string) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM `+table).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading %s: %w", table, err)
	}
	return int(v.Int64), nil
}
