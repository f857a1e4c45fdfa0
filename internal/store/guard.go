package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// GuardStatus is the state of a pass the mass-delete guard held.
type GuardStatus string

const (
	// GuardHeld: waiting for `bookingsync approve PASS-ID`. Later passes
	// add their deletions of the same scope and side to it.
	GuardHeld GuardStatus = "held"
	// GuardApproved: approved; its items are being (or were partly) re-run.
	GuardApproved GuardStatus = "approved"
	// GuardApplied: every item was re-run after approval.
	GuardApplied GuardStatus = "applied"
	// GuardDiscarded: an admin refused it; its items were not applied.
	GuardDiscarded GuardStatus = "discarded"
)

// GuardPass is one row of guard_passes: the part of a sync pass (one
// mailbox, one side) that the mass-delete guard stopped because it would
// have deleted too much.
type GuardPass struct {
	ID    string // "P-…"
	Scope string // the mailbox (Entra object id of its user)
	Side  Side   // SideOutlook: events deleted; SideDataverse: bookings canceled
	// Deletes is how many deletions (or cancellations) the held items plan;
	// Linked is how many linked items the mailbox had when it was counted.
	Deletes int
	Linked  int
	// Plan is the held items as JSON (engine.PassItem list: rule, reason,
	// the planned actions); the store does not interpret it.
	Plan       json.RawMessage
	Status     GuardStatus
	CreatedAt  time.Time
	ApprovedAt *time.Time
	ApprovedBy string
}

const guardPassCols = `id, scope, side, deletes, linked, plan_json, status, created_at, approved_at, approved_by`

func scanGuardPass(row interface{ Scan(...any) error }) (GuardPass, error) {
	var p GuardPass
	var plan string
	err := row.Scan(&p.ID, &p.Scope, &p.Side, &p.Deletes, &p.Linked, &plan, &p.Status,
		scanTime(&p.CreatedAt), scanTimePtr(&p.ApprovedAt), &p.ApprovedBy)
	p.Plan = json.RawMessage(plan)
	return p, err
}

// NewGuardPassID returns a fresh pass id, e.g. "P-7KQ2M4XW9DTB".
func NewGuardPassID() string { return "P-" + rand.Text()[:12] }

// InsertGuardPass stores a held pass (ID defaults to NewGuardPassID,
// CreatedAt to now, Status to GuardHeld) and returns it as stored.
func (s *Store) InsertGuardPass(ctx context.Context, q DBTX, p GuardPass) (GuardPass, error) {
	if p.Scope == "" || p.Side == "" {
		return GuardPass{}, errors.New("store: insert guard pass: scope and side are required")
	}
	if p.Plan == nil || !json.Valid(p.Plan) {
		return GuardPass{}, errors.New("store: insert guard pass: plan must be valid JSON")
	}
	if p.ID == "" {
		p.ID = NewGuardPassID()
	}
	if p.Status == "" {
		p.Status = GuardHeld
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = s.now()
	}
	out, err := scanGuardPass(q.QueryRowContext(ctx, s.dialect.rebind(`
		INSERT INTO guard_passes (id, scope, side, deletes, linked, plan_json, status, created_at, approved_at, approved_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING `+guardPassCols),
		p.ID, p.Scope, string(p.Side), p.Deletes, p.Linked, string(p.Plan), string(p.Status), s.dialect.ts(p.CreatedAt),
		s.dialect.tsPtr(p.ApprovedAt), p.ApprovedBy))
	if err != nil {
		return GuardPass{}, fmt.Errorf("store: insert guard pass: %w", err)
	}
	return out, nil
}

// GetGuardPass returns one pass or ErrNotFound.
func (s *Store) GetGuardPass(ctx context.Context, q DBTX, id string) (GuardPass, error) {
	p, err := scanGuardPass(q.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+guardPassCols+` FROM guard_passes WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return GuardPass{}, fmt.Errorf("store: guard pass %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return GuardPass{}, fmt.Errorf("store: guard pass %s: %w", id, err)
	}
	return p, nil
}

// HeldGuardPass returns the oldest held pass of scope and side, or
// ErrNotFound: the one a later pass's deletions join.
func (s *Store) HeldGuardPass(ctx context.Context, q DBTX, scope string, side Side) (GuardPass, error) {
	p, err := scanGuardPass(q.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+guardPassCols+` FROM guard_passes
		WHERE status = ? AND scope = ? AND side = ? ORDER BY created_at, id LIMIT 1`), string(GuardHeld), scope, string(side)))
	if errors.Is(err, sql.ErrNoRows) {
		return GuardPass{}, fmt.Errorf("store: held guard pass of %s/%s: %w", scope, side, ErrNotFound)
	}
	if err != nil {
		return GuardPass{}, fmt.Errorf("store: held guard pass of %s/%s: %w", scope, side, err)
	}
	return p, nil
}

// GuardPassFilter selects passes; empty fields match everything.
type GuardPassFilter struct {
	Status GuardStatus
	Scope  string
	Limit  int // default 100
}

// ListGuardPasses returns matching passes, newest first.
func (s *Store) ListGuardPasses(ctx context.Context, q DBTX, f GuardPassFilter) ([]GuardPass, error) {
	query := `SELECT ` + guardPassCols + ` FROM guard_passes WHERE 1 = 1`
	var args []any
	if f.Status != "" {
		query += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	if f.Scope != "" {
		query += ` AND scope = ?`
		args = append(args, f.Scope)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := q.QueryContext(ctx, s.dialect.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list guard passes: %w", err)
	}
	defer rows.Close()
	var out []GuardPass
	for rows.Next() {
		p, err := scanGuardPass(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list guard passes: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list guard passes: %w", err)
	}
	return out, nil
}

// CountHeldGuardPasses returns how many passes wait for approval (the
// bookingsync_guard_held_passes gauge).
func (s *Store) CountHeldGuardPasses(ctx context.Context, q DBTX) (int64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, s.dialect.rebind(`SELECT COUNT(*) FROM guard_passes WHERE status = ?`), string(GuardHeld)).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count held guard passes: %w", err)
	}
	return n, nil
}

// UpdateHeldGuardPass replaces the counts and plan of a pass that is still
// held (a later pass added deletions to it). ErrConflict if it is no
// longer held (approved or discarded meanwhile), ErrNotFound if absent.
func (s *Store) UpdateHeldGuardPass(ctx context.Context, q DBTX, id string, deletes, linked int, plan json.RawMessage) (GuardPass, error) {
	if plan == nil || !json.Valid(plan) {
		return GuardPass{}, errors.New("store: update guard pass: plan must be valid JSON")
	}
	p, err := scanGuardPass(q.QueryRowContext(ctx, s.dialect.rebind(`UPDATE guard_passes
		SET deletes = ?, linked = ?, plan_json = ? WHERE id = ? AND status = ?
		RETURNING `+guardPassCols), deletes, linked, string(plan), id, string(GuardHeld)))
	if errors.Is(err, sql.ErrNoRows) {
		return GuardPass{}, s.guardMiss(ctx, q, id, "update")
	}
	if err != nil {
		return GuardPass{}, fmt.Errorf("store: update guard pass %s: %w", id, err)
	}
	return p, nil
}

// SetGuardPassStatus moves a pass from one status to another
// (compare-and-swap): ErrConflict if it is not in from, ErrNotFound if
// absent. Moving to GuardApproved records by and the time.
func (s *Store) SetGuardPassStatus(ctx context.Context, q DBTX, id string, from, to GuardStatus, by string) (GuardPass, error) {
	var (
		p   GuardPass
		err error
	)
	if to == GuardApproved {
		p, err = scanGuardPass(q.QueryRowContext(ctx, s.dialect.rebind(`UPDATE guard_passes
			SET status = ?, approved_at = ?, approved_by = ? WHERE id = ? AND status = ?
			RETURNING `+guardPassCols), string(to), s.dialect.ts(s.now()), by, id, string(from)))
	} else {
		p, err = scanGuardPass(q.QueryRowContext(ctx, s.dialect.rebind(`UPDATE guard_passes
			SET status = ? WHERE id = ? AND status = ?
			RETURNING `+guardPassCols), string(to), id, string(from)))
	}
	if errors.Is(err, sql.ErrNoRows) {
		return GuardPass{}, s.guardMiss(ctx, q, id, "set status of")
	}
	if err != nil {
		return GuardPass{}, fmt.Errorf("store: set status of guard pass %s: %w", id, err)
	}
	return p, nil
}

// guardMiss explains why a conditional update matched no row.
func (s *Store) guardMiss(ctx context.Context, q DBTX, id, what string) error {
	p, err := s.GetGuardPass(ctx, q, id)
	if err != nil {
		return err
	}
	return fmt.Errorf("store: %s guard pass %s: it is %s: %w", what, id, p.Status, ErrConflict)
}
