package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// OptIn is a resource's calendar-sync opt-in state.
type OptIn string

const (
	OptInUnknown    OptIn = "unknown"
	OptInAllowed    OptIn = "allowed"
	OptInNotAllowed OptIn = "not_allowed"
)

// Resource is a Field Service bookable resource and its Outlook mailbox.
type Resource struct {
	ID      string // bookableresourceid
	Name    string
	Mailbox string // user's AAD object id; "" when not yet resolved
	UPN     string
	OptIn   OptIn
	Active  bool
	// LastStatusText is the status last written back to Dataverse; nil if
	// never written. Compare before writing so unchanged text isn't rewritten.
	LastStatusText *string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

const resourceCols = `id, name, mailbox, upn, opt_in, active, last_status_text, created_at, updated_at`

func scanResource(row interface{ Scan(...any) error }) (Resource, error) {
	var r Resource
	var status sql.NullString
	err := row.Scan(&r.ID, &r.Name, &r.Mailbox, &r.UPN, &r.OptIn, &r.Active, &status,
		scanTime(&r.CreatedAt), scanTime(&r.UpdatedAt))
	if status.Valid {
		r.LastStatusText = &status.String
	}
	return r, err
}

// UpsertResource inserts or updates a resource's directory fields. It leaves
// LastStatusText and CreatedAt of an existing row alone.
func (s *Store) UpsertResource(ctx context.Context, q DBTX, r Resource) (Resource, error) {
	if r.ID == "" {
		return Resource{}, errors.New("store: upsert resource: empty id")
	}
	if r.OptIn == "" {
		r.OptIn = OptInUnknown
	}
	now := s.dialect.ts(s.now())
	row := q.QueryRowContext(ctx, s.dialect.rebind(`
		INSERT INTO resources (id, name, mailbox, upn, opt_in, active, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			name = excluded.name, mailbox = excluded.mailbox, upn = excluded.upn,
			opt_in = excluded.opt_in, active = excluded.active, updated_at = excluded.updated_at
		RETURNING `+resourceCols),
		r.ID, r.Name, r.Mailbox, r.UPN, string(r.OptIn), r.Active, now, now)
	out, err := scanResource(row)
	if err != nil {
		return Resource{}, fmt.Errorf("store: upsert resource %s: %w", r.ID, err)
	}
	return out, nil
}

// GetResource returns the resource with id, or ErrNotFound.
func (s *Store) GetResource(ctx context.Context, q DBTX, id string) (Resource, error) {
	r, err := scanResource(q.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+resourceCols+` FROM resources WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Resource{}, fmt.Errorf("store: resource %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Resource{}, fmt.Errorf("store: get resource %s: %w", id, err)
	}
	return r, nil
}

// ResourceFilter narrows ListResources; zero values match everything.
type ResourceFilter struct {
	OptIn      OptIn
	ActiveOnly bool
	Mailbox    string
}

// ListResources returns matching resources ordered by id.
func (s *Store) ListResources(ctx context.Context, q DBTX, f ResourceFilter) ([]Resource, error) {
	query := `SELECT ` + resourceCols + ` FROM resources WHERE 1 = 1`
	var args []any
	if f.OptIn != "" {
		query += ` AND opt_in = ?`
		args = append(args, string(f.OptIn))
	}
	if f.ActiveOnly {
		query += ` AND active = ?`
		args = append(args, true)
	}
	if f.Mailbox != "" {
		query += ` AND mailbox = ?`
		args = append(args, f.Mailbox)
	}
	rows, err := q.QueryContext(ctx, s.dialect.rebind(query+` ORDER BY id`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list resources: %w", err)
	}
	defer rows.Close()
	var out []Resource
	for rows.Next() {
		r, err := scanResource(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list resources: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list resources: %w", err)
	}
	return out, nil
}

// SetResourceStatusText records the status text written to Dataverse.
// changed is false when the stored text already equals text, so callers
// can skip the Dataverse write: check with GetResource first, or call this
// in the same transaction before writing. ErrNotFound if no such resource.
func (s *Store) SetResourceStatusText(ctx context.Context, q DBTX, id, text string) (changed bool, err error) {
	res, err := q.ExecContext(ctx, s.dialect.rebind(`
		UPDATE resources SET last_status_text = ?, updated_at = ?
		WHERE id = ? AND last_status_text IS DISTINCT FROM ?`),
		text, s.dialect.ts(s.now()), id, text)
	if err != nil {
		return false, fmt.Errorf("store: set status text for %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: set status text for %s: %w", id, err)
	}
	if n == 1 {
		return true, nil
	}
	if _, err := s.GetResource(ctx, q, id); err != nil {
		return false, err
	}
	return false, nil
}

// DeleteResource removes a resource; ErrNotFound if absent. It fails while
// subscriptions still reference it (foreign key).
func (s *Store) DeleteResource(ctx context.Context, q DBTX, id string) error {
	return s.execOne(ctx, q, "delete resource "+id, `DELETE FROM resources WHERE id = ?`, id)
}

// execOne runs a statement that must affect exactly one row.
func (s *Store) execOne(ctx context.Context, q DBTX, what, query string, args ...any) error {
	res, err := q.ExecContext(ctx, s.dialect.rebind(query), args...)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("store: %s: %w", what, ErrNotFound)
	}
	return nil
}
