package store

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Subscription is a Graph change-notification subscription on one mailbox.
// Only a SHA-256 of the clientState secret is stored; the secret itself
// lives only in Graph and in memory while creating the subscription.
type Subscription struct {
	ID                 string // Graph subscription id
	ResourceID         string // bookableresourceid
	Mailbox            string // user id the subscription watches
	Resource           string // Graph resource path, e.g. "/users/{id}/events"
	ChangeTypes        string // e.g. "created,updated,deleted"
	ExpiresAt          time.Time
	ClientStateHash    []byte
	Lifetime           time.Duration // requested lifetime, used when renewing
	CreatedAt          time.Time
	LastRenewedAt      *time.Time
	RenewFailures      int
	LastError          string
	LastNotificationAt *time.Time
}

// HashClientState returns the SHA-256 stored for a clientState secret.
func HashClientState(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// ClientStateMatches reports, in constant time, whether secret is this
// subscription's clientState.
func (s Subscription) ClientStateMatches(secret string) bool {
	return len(s.ClientStateHash) == sha256.Size &&
		subtle.ConstantTimeCompare(HashClientState(secret), s.ClientStateHash) == 1
}

const subscriptionCols = `id, resource_id, mailbox, resource, change_types, expires_at, client_state_hash,
	lifetime_seconds, created_at, last_renewed_at, renew_failures, last_error, last_notification_at`

func scanSubscription(row interface{ Scan(...any) error }) (Subscription, error) {
	var s Subscription
	var lifetime int64
	err := row.Scan(&s.ID, &s.ResourceID, &s.Mailbox, &s.Resource, &s.ChangeTypes, scanTime(&s.ExpiresAt),
		&s.ClientStateHash, &lifetime, scanTime(&s.CreatedAt), scanTimePtr(&s.LastRenewedAt),
		&s.RenewFailures, &s.LastError, scanTimePtr(&s.LastNotificationAt))
	s.Lifetime = time.Duration(lifetime) * time.Second
	return s, err
}

// InsertSubscription stores a newly created subscription. CreatedAt defaults
// to now. ErrConflict if the id exists.
func (s *Store) InsertSubscription(ctx context.Context, q DBTX, sub Subscription) (Subscription, error) {
	if sub.ID == "" || sub.ResourceID == "" {
		return Subscription{}, errors.New("store: insert subscription: id and resource id are required")
	}
	if len(sub.ClientStateHash) != sha256.Size {
		return Subscription{}, errors.New("store: insert subscription: client state hash must be a SHA-256")
	}
	if sub.CreatedAt.IsZero() {
		sub.CreatedAt = s.now()
	}
	out, err := scanSubscription(q.QueryRowContext(ctx, s.dialect.rebind(`
		INSERT INTO subscriptions (id, resource_id, mailbox, resource, change_types, expires_at,
			client_state_hash, lifetime_seconds, created_at, last_renewed_at, renew_failures, last_error, last_notification_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING
		RETURNING `+subscriptionCols),
		sub.ID, sub.ResourceID, sub.Mailbox, sub.Resource, sub.ChangeTypes, s.dialect.ts(sub.ExpiresAt),
		sub.ClientStateHash, int64(sub.Lifetime/time.Second), s.dialect.ts(sub.CreatedAt), s.dialect.tsPtr(sub.LastRenewedAt),
		sub.RenewFailures, sub.LastError, s.dialect.tsPtr(sub.LastNotificationAt)))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscription{}, fmt.Errorf("store: insert subscription %s: %w", sub.ID, ErrConflict)
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("store: insert subscription %s: %w", sub.ID, err)
	}
	return out, nil
}

// GetSubscription returns the subscription with id, or ErrNotFound.
func (s *Store) GetSubscription(ctx context.Context, q DBTX, id string) (Subscription, error) {
	sub, err := scanSubscription(q.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+subscriptionCols+` FROM subscriptions WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscription{}, fmt.Errorf("store: subscription %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("store: get subscription %s: %w", id, err)
	}
	return sub, nil
}

// ListSubscriptionsByMailbox returns a mailbox's subscriptions (normally one;
// two while one is being replaced), newest expiry first.
func (s *Store) ListSubscriptionsByMailbox(ctx context.Context, q DBTX, mailbox string) ([]Subscription, error) {
	return s.listSubscriptions(ctx, q, `WHERE mailbox = ? ORDER BY expires_at DESC, id`, mailbox)
}

// ListSubscriptionsExpiringBefore returns subscriptions expiring before t,
// soonest first: the renewal job's work list.
func (s *Store) ListSubscriptionsExpiringBefore(ctx context.Context, q DBTX, t time.Time) ([]Subscription, error) {
	return s.listSubscriptions(ctx, q, `WHERE expires_at < ? ORDER BY expires_at, id`, s.dialect.ts(t))
}

// ListSubscriptions returns every subscription, soonest expiry first.
func (s *Store) ListSubscriptions(ctx context.Context, q DBTX) ([]Subscription, error) {
	return s.listSubscriptions(ctx, q, `ORDER BY expires_at, id`)
}

func (s *Store) listSubscriptions(ctx context.Context, q DBTX, where string, args ...any) ([]Subscription, error) {
	rows, err := q.QueryContext(ctx, s.dialect.rebind(`SELECT `+subscriptionCols+` FROM subscriptions `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list subscriptions: %w", err)
	}
	defer rows.Close()
	var out []Subscription
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list subscriptions: %w", err)
		}
		out = append(out, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list subscriptions: %w", err)
	}
	return out, nil
}

// RecordSubscriptionRenewed stores a successful renewal and clears the
// failure count.
func (s *Store) RecordSubscriptionRenewed(ctx context.Context, q DBTX, id string, expiresAt, at time.Time) error {
	return s.execOne(ctx, q, "record renewal of subscription "+id, `
		UPDATE subscriptions SET expires_at = ?, last_renewed_at = ?, renew_failures = 0, last_error = ''
		WHERE id = ?`, s.dialect.ts(expiresAt), s.dialect.ts(at), id)
}

// RecordSubscriptionRenewFailure counts a failed renewal and keeps its error.
func (s *Store) RecordSubscriptionRenewFailure(ctx context.Context, q DBTX, id, errText string) error {
	return s.execOne(ctx, q, "record renewal failure of subscription "+id, `
		UPDATE subscriptions SET renew_failures = renew_failures + 1, last_error = ? WHERE id = ?`, errText, id)
}

// TouchSubscriptions sets last_notification_at for the given ids (unknown
// ids are ignored: notifications may name subscriptions we no longer track).
func (s *Store) TouchSubscriptions(ctx context.Context, q DBTX, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, s.dialect.ts(at))
	for _, id := range ids {
		args = append(args, id)
	}
	if _, err := q.ExecContext(ctx, s.dialect.rebind(`UPDATE subscriptions SET last_notification_at = ? WHERE id IN (`+inList(len(ids))+`)`), args...); err != nil {
		return fmt.Errorf("store: touch subscriptions: %w", err)
	}
	return nil
}

// DeleteSubscription removes a subscription; ErrNotFound if absent.
func (s *Store) DeleteSubscription(ctx context.Context, q DBTX, id string) error {
	return s.execOne(ctx, q, "delete subscription "+id, `DELETE FROM subscriptions WHERE id = ?`, id)
}
