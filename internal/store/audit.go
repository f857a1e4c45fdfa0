package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Side is which system an audited action touched.
type Side string

const (
	SideDataverse Side = "dataverse"
	SideOutlook   Side = "outlook"
)

// AuditEntry is one decision or write of the sync engine.
type AuditEntry struct {
	ID         int64
	At         time.Time
	ResourceID string
	BookingID  string
	EventID    string
	Side       Side
	Action     string // e.g. "create_event", "skip"
	Reason     string
	Before     json.RawMessage // nil when absent
	After      json.RawMessage
	Outcome    string // e.g. "ok", "failed", "skipped"
	Error      string
}

// InsertAudit appends an entry (At defaults to now) and returns its id.
func (s *Store) InsertAudit(ctx context.Context, q DBTX, e AuditEntry) (int64, error) {
	if e.Action == "" || e.Outcome == "" {
		return 0, errors.New("store: insert audit: action and outcome are required")
	}
	if e.At.IsZero() {
		e.At = s.now()
	}
	for _, j := range []json.RawMessage{e.Before, e.After} {
		if j != nil && !json.Valid(j) {
			return 0, errors.New("store: insert audit: before/after must be valid JSON")
		}
	}
	var id int64
	err := q.QueryRowContext(ctx, s.dialect.rebind(`
		INSERT INTO audit (at, resource_id, booking_id, event_id, side, action, reason, before_json, after_json, outcome, error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`),
		s.dialect.ts(e.At), e.ResourceID, e.BookingID, e.EventID, string(e.Side), e.Action, e.Reason,
		jsonArg(e.Before), jsonArg(e.After), e.Outcome, e.Error).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store: insert audit: %w", err)
	}
	return id, nil
}

func jsonArg(j json.RawMessage) any {
	if j == nil {
		return nil
	}
	return string(j)
}

// AuditFilter selects entries; empty fields match everything.
type AuditFilter struct {
	ResourceID string
	BookingID  string
	Since      time.Time // inclusive
	Limit      int       // default 100
}

// QueryAudit returns matching entries, newest first.
func (s *Store) QueryAudit(ctx context.Context, q DBTX, f AuditFilter) ([]AuditEntry, error) {
	query := `SELECT id, at, resource_id, booking_id, event_id, side, action, reason, before_json, after_json, outcome, error
		FROM audit WHERE 1 = 1`
	var args []any
	if f.ResourceID != "" {
		query += ` AND resource_id = ?`
		args = append(args, f.ResourceID)
	}
	if f.BookingID != "" {
		query += ` AND booking_id = ?`
		args = append(args, f.BookingID)
	}
	if !f.Since.IsZero() {
		query += ` AND at >= ?`
		args = append(args, s.dialect.ts(f.Since))
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	query += ` ORDER BY at DESC, id DESC LIMIT ?`
	args = append(args, f.Limit)

	rows, err := q.QueryContext(ctx, s.dialect.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: query audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var before, after sql.NullString
		if err := rows.Scan(&e.ID, scanTime(&e.At), &e.ResourceID, &e.BookingID, &e.EventID, &e.Side, &e.Action,
			&e.Reason, &before, &after, &e.Outcome, &e.Error); err != nil {
			return nil, fmt.Errorf("store: query audit: %w", err)
		}
		if before.Valid {
			e.Before = json.RawMessage(before.String)
		}
		if after.Valid {
			e.After = json.RawMessage(after.String)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: query audit: %w", err)
	}
	return out, nil
}
