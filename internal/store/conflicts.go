package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Conflict is one conflict left for a person (sync.conflict: manual): both
// sides changed since the last agreed state and the policy writes neither.
// At most one is open per booking; a resolved one stays as history.
type Conflict struct {
	ID         int64
	BookingID  string
	ResourceID string
	Mailbox    string
	EventID    string
	Rule       string // the decision core's row, e.g. C5
	Reason     string
	DetectedAt time.Time  // when it was first detected (kept when re-detected)
	ResolvedAt *time.Time // nil while open
	Resolution string     // e.g. "d365 kept by admin"
}

// Open reports whether the conflict still waits for a person.
func (c Conflict) Open() bool { return c.ResolvedAt == nil }

const conflictCols = `id, booking_id, resource_id, mailbox, event_id, rule, reason, detected_at, resolved_at, resolution`

func scanConflict(row interface{ Scan(...any) error }) (Conflict, error) {
	var c Conflict
	err := row.Scan(&c.ID, &c.BookingID, &c.ResourceID, &c.Mailbox, &c.EventID, &c.Rule, &c.Reason,
		scanTime(&c.DetectedAt), scanTimePtr(&c.ResolvedAt), &c.Resolution)
	return c, err
}

// OpenConflict records a conflict for c.BookingID (DetectedAt defaults to
// now). If one is already open for the booking, it is updated instead (its
// resource, mailbox, event, rule and reason; DetectedAt stays the first
// detection's), so evaluating the same conflict again never fails and never
// makes a second row.
func (s *Store) OpenConflict(ctx context.Context, q DBTX, c Conflict) (Conflict, error) {
	if c.BookingID == "" || c.Rule == "" {
		return Conflict{}, errors.New("store: open conflict: booking id and rule are required")
	}
	if c.DetectedAt.IsZero() {
		c.DetectedAt = s.now()
	}
	out, err := scanConflict(q.QueryRowContext(ctx, s.dialect.rebind(`
		INSERT INTO conflicts (booking_id, resource_id, mailbox, event_id, rule, reason, detected_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (booking_id) WHERE resolved_at IS NULL DO UPDATE SET
			resource_id = excluded.resource_id, mailbox = excluded.mailbox, event_id = excluded.event_id,
			rule = excluded.rule, reason = excluded.reason
		RETURNING `+conflictCols),
		c.BookingID, c.ResourceID, c.Mailbox, c.EventID, c.Rule, c.Reason, s.dialect.ts(c.DetectedAt)))
	if err != nil {
		return Conflict{}, fmt.Errorf("store: open conflict for booking %s: %w", c.BookingID, err)
	}
	return out, nil
}

// ConflictFilter selects conflicts; empty fields match everything.
type ConflictFilter struct {
	Open       bool // only conflicts not resolved yet
	BookingID  string
	ResourceID string
	Limit      int // default 1000
}

// ListConflicts returns matching conflicts, oldest detection first.
func (s *Store) ListConflicts(ctx context.Context, q DBTX, f ConflictFilter) ([]Conflict, error) {
	query := `SELECT ` + conflictCols + ` FROM conflicts WHERE 1 = 1`
	var args []any
	if f.Open {
		query += ` AND resolved_at IS NULL`
	}
	if f.BookingID != "" {
		query += ` AND booking_id = ?`
		args = append(args, f.BookingID)
	}
	if f.ResourceID != "" {
		query += ` AND resource_id = ?`
		args = append(args, f.ResourceID)
	}
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	query += ` ORDER BY detected_at, id LIMIT ?`
	args = append(args, f.Limit)
	rows, err := q.QueryContext(ctx, s.dialect.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list conflicts: %w", err)
	}
	defer rows.Close()
	var out []Conflict
	for rows.Next() {
		c, err := scanConflict(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list conflicts: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list conflicts: %w", err)
	}
	return out, nil
}

// ResolveConflict closes the booking's open conflict with resolution (e.g.
// "d365 kept by admin") and returns it. ErrNotFound if none is open.
func (s *Store) ResolveConflict(ctx context.Context, q DBTX, bookingID, resolution string) (Conflict, error) {
	if resolution == "" {
		return Conflict{}, errors.New("store: resolve conflict: resolution is required")
	}
	out, err := scanConflict(q.QueryRowContext(ctx, s.dialect.rebind(`
		UPDATE conflicts SET resolved_at = ?, resolution = ?
		WHERE booking_id = ? AND resolved_at IS NULL
		RETURNING `+conflictCols),
		s.dialect.ts(s.now()), resolution, bookingID))
	if errors.Is(err, sql.ErrNoRows) {
		return Conflict{}, fmt.Errorf("store: no open conflict for booking %s: %w", bookingID, ErrNotFound)
	}
	if err != nil {
		return Conflict{}, fmt.Errorf("store: resolve conflict for booking %s: %w", bookingID, err)
	}
	return out, nil
}
