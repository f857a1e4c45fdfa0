package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// TryLease takes the lease on key for owner until now+ttl if it is free,
// expired, or already owner's (then it is extended). It reports whether
// owner holds it. Leases serialise work on one item across instances
// sharing a database; a holder that crashes loses it when it expires.
func (s *Store) TryLease(ctx context.Context, q DBTX, key, owner string, ttl time.Duration) (bool, error) {
	now := s.now()
	var got string
	err := q.QueryRowContext(ctx, s.dialect.rebind(`
		INSERT INTO leases (key, owner, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE leases.expires_at < ? OR leases.owner = excluded.owner
		RETURNING owner`), key, owner, s.dialect.ts(now.Add(ttl)), s.dialect.ts(now)).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: lease %s: %w", key, err)
	}
	return got == owner, nil
}

// ReleaseLease gives up owner's lease on key (a no-op if it expired and
// someone else holds it now).
func (s *Store) ReleaseLease(ctx context.Context, q DBTX, key, owner string) error {
	if _, err := q.ExecContext(ctx, s.dialect.rebind(`DELETE FROM leases WHERE key = ? AND owner = ?`), key, owner); err != nil {
		return fmt.Errorf("store: release lease %s: %w", key, err)
	}
	return nil
}

// ReleaseAllLeases drops every lease. Only for a database one process uses
// (SQLite): at start, any lease left is a killed run's, and waiting for it
// to expire would hold up the work queued behind it.
func (s *Store) ReleaseAllLeases(ctx context.Context) error {
	if s.dialect.backend != BackendSQLite {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM leases`); err != nil {
		return fmt.Errorf("store: release leases of a previous run: %w", err)
	}
	return nil
}
