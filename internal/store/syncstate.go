package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Keys used in sync_state. Keep the naming here so all writers agree.
const (
	SyncKeyDataverseToken   = "dataverse:change_token"
	SyncKeyDataverseCatchup = "dataverse:last_catchup"
)

// SyncKeyDeltaToken is the Graph calendar delta link for a mailbox.
func SyncKeyDeltaToken(mailbox string) string { return "graph:delta:" + mailbox }

// SyncKeyMailboxCatchup is the last catch-up time of a mailbox.
func SyncKeyMailboxCatchup(mailbox string) string { return "graph:catchup:" + mailbox }

// GetSyncState returns a value and when it was set, or ErrNotFound.
func (s *Store) GetSyncState(ctx context.Context, q DBTX, key string) (value string, updatedAt time.Time, err error) {
	err = q.QueryRowContext(ctx, s.dialect.rebind(`SELECT value, updated_at FROM sync_state WHERE key = ?`), key).
		Scan(&value, scanTime(&updatedAt))
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, fmt.Errorf("store: sync state %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("store: get sync state %q: %w", key, err)
	}
	return value, updatedAt, nil
}

// SetSyncState stores value under key, replacing any previous value.
func (s *Store) SetSyncState(ctx context.Context, q DBTX, key, value string) error {
	_, err := q.ExecContext(ctx, s.dialect.rebind(`
		INSERT INTO sync_state (key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`),
		key, value, s.dialect.ts(s.now()))
	if err != nil {
		return fmt.Errorf("store: set sync state %q: %w", key, err)
	}
	return nil
}

// DeleteSyncState removes key (e.g. an expired delta token); absent keys are fine.
func (s *Store) DeleteSyncState(ctx context.Context, q DBTX, key string) error {
	if _, err := q.ExecContext(ctx, s.dialect.rebind(`DELETE FROM sync_state WHERE key = ?`), key); err != nil {
		return fmt.Errorf("store: delete sync state %q: %w", key, err)
	}
	return nil
}
