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
				CONSTRAINT notifications_dedupe_key_uniq UNIQUE (dedupe_key)
			)`,
			`CREATE INDEX notifications_unprocessed_idx ON notifications (id) WHERE processed_at IS NULL`,
			`CREATE INDEX notifications_received_at_idx ON notifications (received_at)`,

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
}

// LatestSchemaVersion is the version Open migrates to.
func LatestSchemaVersion() int { return migrations[len(migrations)-1].version }

// postgresMigrationLockID serialises concurrent Opens against one Postgres
// database (several instances starting at once).
const postgresMigrationLockID = 0x626b7379 // "bksy"

// Migrate applies pending bookingsync migrations in one transaction, then
// River's. It is idempotent; Open calls it.
func (s *Store) Migrate(ctx context.Context) error {
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		if s.dialect.backend == BackendPostgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, postgresMigrationLockID); err != nil {
				return fmt.Errorf("taking migration lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.dialect.ddl(`CREATE TABLE IF NOT EXISTS schema_version (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at {ts} NOT NULL
		)`)); err != nil {
			return fmt.Errorf("creating schema_version: %w", err)
		}
		current, err := s.schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		for _, m := range migrations {
			if m.version <= current {
				continue
			}
			for i, stmt := range m.stmts {
				if _, err := tx.ExecContext(ctx, s.dialect.ddl(stmt)); err != nil {
					return fmt.Errorf("migration %d (%s) statement %d: %w", m.version, m.name, i+1, err)
				}
			}
			if _, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, s.dialect.ts(s.now())); err != nil {
				return fmt.Errorf("recording migration %d: %w", m.version, err)
			}
			s.logger.InfoContext(ctx, "store: applied migration", slog.Int("version", m.version), slog.String("name", m.name))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: migrating: %w", err)
	}
	if err := s.migrateRiver(ctx); err != nil {
		return fmt.Errorf("store: migrating river: %w", err)
	}
	return nil
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
	return s.schemaVersion(ctx, s.db)
}

func (s *Store) schemaVersion(ctx context.Context, q DBTX) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return int(v.Int64), nil
}
