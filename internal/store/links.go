package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Link ties a booking to the Outlook event mirroring it, with the state both
// sides last agreed on. Version guards concurrent sync jobs: updates are
// compare-and-swap on it.
type Link struct {
	BookingID      string
	ResourceID     string
	Mailbox        string
	EventID        string
	BookingVersion int64  // Dataverse versionnumber
	BookingHash    string // hash of the synced booking fields
	EventChangeKey string
	EventETag      string
	EventHash      string // hash of the synced event fields
	// AgreedStart and AgreedEnd are the times both sides last agreed on
	// (zero if unknown).
	AgreedStart time.Time
	AgreedEnd   time.Time
	// CreateTxID is the Graph transactionId of a create whose outcome is not
	// yet recorded (EventID is then PendingEventID(BookingID)).
	CreateTxID string
	// Origin is "" for a pair created from a booking, "outlook" for a
	// booking created from an Outlook appointment.
	Origin string
	// Detached links are tombstones: the booking is no longer synced.
	Detached  bool
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

const linkCols = `booking_id, resource_id, mailbox, event_id, booking_version, booking_hash, event_change_key,
	event_etag, event_hash, agreed_start, agreed_end, create_txid, origin, detached, version, created_at, updated_at`

// pendingPrefix marks the event id of a link whose event is being created.
// A placeholder rather than NULL keeps event_id NOT NULL and unique per
// mailbox (one pending create per booking).
const pendingPrefix = "pending:"

// PendingEventID is the EventID of a link whose create is in flight.
func PendingEventID(bookingID string) string { return pendingPrefix + bookingID }

// Pending reports whether the link records a create whose outcome is not
// known yet: before creating again, look the event up by our property.
func (l Link) Pending() bool { return strings.HasPrefix(l.EventID, pendingPrefix) }

func scanLink(row interface{ Scan(...any) error }) (Link, error) {
	var l Link
	err := row.Scan(&l.BookingID, &l.ResourceID, &l.Mailbox, &l.EventID, &l.BookingVersion, &l.BookingHash,
		&l.EventChangeKey, &l.EventETag, &l.EventHash, scanTime(&l.AgreedStart), scanTime(&l.AgreedEnd), &l.CreateTxID,
		&l.Origin, &l.Detached, &l.Version, scanTime(&l.CreatedAt), scanTime(&l.UpdatedAt))
	return l, err
}

// InsertLink stores a new link with Version 1. ErrConflict if the booking is
// already linked or the event is already linked to another booking.
func (s *Store) InsertLink(ctx context.Context, q DBTX, l Link) (Link, error) {
	if l.BookingID == "" || l.Mailbox == "" || l.EventID == "" {
		return Link{}, errors.New("store: insert link: booking id, mailbox and event id are required")
	}
	now := s.dialect.ts(s.now())
	out, err := scanLink(q.QueryRowContext(ctx, s.dialect.rebind(`
		INSERT INTO links (booking_id, resource_id, mailbox, event_id, booking_version, booking_hash,
			event_change_key, event_etag, event_hash, agreed_start, agreed_end, create_txid, origin, detached, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
		ON CONFLICT DO NOTHING
		RETURNING `+linkCols),
		l.BookingID, l.ResourceID, l.Mailbox, l.EventID, l.BookingVersion, l.BookingHash,
		l.EventChangeKey, l.EventETag, l.EventHash, s.dialect.tsPtr(&l.AgreedStart), s.dialect.tsPtr(&l.AgreedEnd), l.CreateTxID, l.Origin, l.Detached, now, now))
	if errors.Is(err, sql.ErrNoRows) {
		return Link{}, fmt.Errorf("store: insert link for booking %s: %w", l.BookingID, ErrConflict)
	}
	if err != nil {
		return Link{}, fmt.Errorf("store: insert link for booking %s: %w", l.BookingID, err)
	}
	return out, nil
}

// GetLink returns the link for a booking, or ErrNotFound.
func (s *Store) GetLink(ctx context.Context, q DBTX, bookingID string) (Link, error) {
	return s.getLink(ctx, q, "booking "+bookingID, `WHERE booking_id = ?`, bookingID)
}

// GetLinkByEvent returns the link for an event in a mailbox, or ErrNotFound.
func (s *Store) GetLinkByEvent(ctx context.Context, q DBTX, mailbox, eventID string) (Link, error) {
	return s.getLink(ctx, q, "event "+eventID, `WHERE mailbox = ? AND event_id = ?`, mailbox, eventID)
}

func (s *Store) getLink(ctx context.Context, q DBTX, what, where string, args ...any) (Link, error) {
	l, err := scanLink(q.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+linkCols+` FROM links `+where), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Link{}, fmt.Errorf("store: link for %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return Link{}, fmt.Errorf("store: get link for %s: %w", what, err)
	}
	return l, nil
}

// UpdateLink replaces the link's state if its stored Version is still
// expectedVersion, and returns it with Version expectedVersion+1.
// ErrConflict if another writer got there first; ErrNotFound if the link is gone.
func (s *Store) UpdateLink(ctx context.Context, q DBTX, l Link, expectedVersion int64) (Link, error) {
	out, err := scanLink(q.QueryRowContext(ctx, s.dialect.rebind(`
		UPDATE links SET resource_id = ?, mailbox = ?, event_id = ?, booking_version = ?, booking_hash = ?,
			event_change_key = ?, event_etag = ?, event_hash = ?, agreed_start = ?, agreed_end = ?, create_txid = ?,
			origin = ?, detached = ?, version = version + 1, updated_at = ?
		WHERE booking_id = ? AND version = ?
		RETURNING `+linkCols),
		l.ResourceID, l.Mailbox, l.EventID, l.BookingVersion, l.BookingHash,
		l.EventChangeKey, l.EventETag, l.EventHash, s.dialect.tsPtr(&l.AgreedStart), s.dialect.tsPtr(&l.AgreedEnd), l.CreateTxID,
		l.Origin, l.Detached, s.dialect.ts(s.now()), l.BookingID, expectedVersion))
	if errors.Is(err, sql.ErrNoRows) {
		if _, gerr := s.GetLink(ctx, q, l.BookingID); gerr != nil {
			return Link{}, gerr
		}
		return Link{}, fmt.Errorf("store: update link for booking %s at version %d: %w", l.BookingID, expectedVersion, ErrConflict)
	}
	if err != nil {
		if isUniqueViolation(err) {
			return Link{}, fmt.Errorf("store: update link for booking %s: event already linked: %w", l.BookingID, ErrConflict)
		}
		return Link{}, fmt.Errorf("store: update link for booking %s: %w", l.BookingID, err)
	}
	return out, nil
}

// DeleteLink removes a link if its Version is still expectedVersion.
func (s *Store) DeleteLink(ctx context.Context, q DBTX, bookingID string, expectedVersion int64) error {
	res, err := q.ExecContext(ctx, s.dialect.rebind(`DELETE FROM links WHERE booking_id = ? AND version = ?`), bookingID, expectedVersion)
	if err != nil {
		return fmt.Errorf("store: delete link for booking %s: %w", bookingID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: delete link for booking %s: %w", bookingID, err)
	}
	if n == 0 {
		if _, gerr := s.GetLink(ctx, q, bookingID); gerr != nil {
			return gerr
		}
		return fmt.Errorf("store: delete link for booking %s at version %d: %w", bookingID, expectedVersion, ErrConflict)
	}
	return nil
}

// ListLinksByMailbox returns a mailbox's links ordered by booking id.
func (s *Store) ListLinksByMailbox(ctx context.Context, q DBTX, mailbox string) ([]Link, error) {
	return s.listLinks(ctx, q, `WHERE mailbox = ?`, mailbox)
}

// ListPendingLinks returns a mailbox's links whose create is in flight.
func (s *Store) ListPendingLinks(ctx context.Context, q DBTX, mailbox string) ([]Link, error) {
	return s.listLinks(ctx, q, `WHERE mailbox = ? AND event_id LIKE ?`, mailbox, pendingPrefix+"%")
}

// ListLinks returns every link ordered by booking id (window passes, resync).
func (s *Store) ListLinks(ctx context.Context, q DBTX) ([]Link, error) {
	return s.listLinks(ctx, q, ``)
}

func (s *Store) listLinks(ctx context.Context, q DBTX, where string, args ...any) ([]Link, error) {
	rows, err := q.QueryContext(ctx, s.dialect.rebind(`SELECT `+linkCols+` FROM links `+where+` ORDER BY booking_id`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list links: %w", err)
	}
	defer rows.Close()
	var out []Link
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list links: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list links: %w", err)
	}
	return out, nil
}
