package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Source says where a notification came from.
type Source string

const (
	SourceGraph          Source = "graph"
	SourceGraphLifecycle Source = "graph_lifecycle"
	SourceDataverse      Source = "dataverse"
)

func (s Source) valid() bool {
	return s == SourceGraph || s == SourceGraphLifecycle || s == SourceDataverse
}

// Notification is one inbox row: a change notification persisted before we
// answered 2xx, waiting for the sync engine.
type Notification struct {
	ID             int64
	Source         Source
	SubscriptionID string // Graph subscription id ("" for Dataverse)
	Mailbox        string // user id the change happened in ("" for Dataverse)
	ItemID         string // Graph resourceData.id (event id) or Dataverse record id
	ChangeType     string // created/updated/deleted, a lifecycle event, or a Dataverse message
	ETag           string // Graph @odata.etag or Dataverse versionnumber
	// DedupeKey identifies repeats of the same change. If empty, Insert
	// derives it from (Source, SubscriptionID, ItemID, ChangeType, ETag).
	// Callers whose notifications carry no version (lifecycle events) should
	// set it, or every later repeat is dropped as a duplicate.
	DedupeKey   string
	Payload     []byte // raw JSON as received
	ReceivedAt  time.Time
	ProcessedAt *time.Time

	// Queue state (see ClaimNotifications): how many times the row was
	// claimed, the latest failure, and when it was given up on.
	Attempts  int
	LastError string
	DeadAt    *time.Time
}

// NotificationDedupeKey returns the default dedupe key: a hex SHA-256 of the
// identifying fields, NUL-separated so field boundaries are unambiguous.
func NotificationDedupeKey(n Notification) string {
	h := sha256.New()
	for _, f := range []string{string(n.Source), n.SubscriptionID, n.ItemID, n.ChangeType, n.ETag} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Store) prepareNotification(n *Notification, now time.Time) error {
	if !n.Source.valid() {
		return fmt.Errorf("store: notification: invalid source %q", n.Source)
	}
	// Postgres TEXT rejects NUL and invalid UTF-8; refuse such input here so
	// one bad notification fails its own Submit, not a whole group commit.
	for _, f := range []string{n.SubscriptionID, n.Mailbox, n.ItemID, n.ChangeType, n.ETag, n.DedupeKey} {
		if !utf8.ValidString(f) || strings.IndexByte(f, 0) >= 0 {
			return fmt.Errorf("store: notification: field %q is not valid text", f)
		}
	}
	if n.DedupeKey == "" {
		n.DedupeKey = NotificationDedupeKey(*n)
	}
	if n.Payload == nil {
		n.Payload = []byte{}
	}
	if n.ReceivedAt.IsZero() {
		n.ReceivedAt = now
	}
	return nil
}

// InsertResult reports what InsertNotifications stored.
type InsertResult struct {
	// IDs is aligned with the input: the new row's id, or 0 for a duplicate
	// (already stored, or repeated earlier in the same input).
	IDs      []int64
	Inserted int
}

// NewIDs returns the ids of the rows that were inserted, in input order.
func (r InsertResult) NewIDs() []int64 {
	out := make([]int64, 0, r.Inserted)
	for _, id := range r.IDs {
		if id != 0 {
			out = append(out, id)
		}
	}
	return out
}

// notificationChunkSizes are the row counts one notification INSERT (or
// processed-mark UPDATE) is built for: a batch is split into chunks of
// these sizes, largest first, so only a few distinct statements exist and
// SQLite runs them prepared instead of parsing a new statement every time.
// The largest keeps one INSERT under SQLite's 32766 and Postgres' 65535
// bind-parameter limits (insertNotificationCols per row).
var notificationChunkSizes = []int{512, 256, 128, 64, 32, 16, 8, 4, 2, 1}

// chunkSizes splits n into notificationChunkSizes, largest first.
func chunkSizes(n int) []int {
	var out []int
	for _, size := range notificationChunkSizes {
		for n >= size {
			out = append(out, size)
			n -= size
		}
	}
	return out
}

// insertNotificationCols is the number of bind parameters per inserted row.
const insertNotificationCols = 12

func insertNotificationsSQL(rows int) string {
	return `INSERT INTO notifications (source, subscription_id, mailbox, item_id, change_type, etag, dedupe_key, payload, received_at,
			claimed_by, claimed_until, attempts)
			VALUES ` + placeholders(rows, insertNotificationCols) + `
			ON CONFLICT (dedupe_key) DO NOTHING
			RETURNING id, dedupe_key`
}

func markNotificationsSQL(ids int) string {
	return `UPDATE notifications SET processed_at = ? WHERE processed_at IS NULL AND id IN (` + inList(ids) + `)`
}

// stmt returns the statement prepared at Open for query, bound to q, or nil
// (run the text instead: on Postgres pgx caches prepared statements itself).
// q must already be an inbox handle (inboxW).
func (s *Store) stmt(ctx context.Context, q DBTX, prepared map[int]*sql.Stmt, size int) *sql.Stmt {
	st := prepared[size]
	if st == nil {
		return nil
	}
	switch q := q.(type) {
	case *sql.Tx:
		return q.StmtContext(ctx, st)
	case *sql.DB:
		if q == s.inboxDB {
			return st
		}
	}
	return nil
}

// inboxW and inboxR map the store's own pools to the inbox's, so that the
// notification methods called with DB() or ReadDB() (as every other
// repository method is) reach the inbox file on SQLite: its writer for
// writes, its read pool for reads. A *sql.Tx is used as given: it must come
// from InboxTx (on PostgreSQL, InTx is the same database).
func (s *Store) inboxW(q DBTX) DBTX {
	if db, ok := q.(*sql.DB); ok && (db == s.db || db == s.rdb || db == s.inboxRDB) {
		return s.inboxDB
	}
	return q
}

func (s *Store) inboxR(q DBTX) DBTX {
	if db, ok := q.(*sql.DB); ok && (db == s.db || db == s.rdb || db == s.inboxDB) {
		return s.inboxRDB
	}
	return q
}

// InsertNotifications stores ns, ignoring duplicates of rows already stored
// (by dedupe key), in as few statements as possible.
func (s *Store) InsertNotifications(ctx context.Context, q DBTX, ns []Notification) (InsertResult, error) {
	if len(ns) == 0 {
		return InsertResult{IDs: make([]int64, 0)}, nil
	}
	now := s.now()
	prepared := make([]Notification, len(ns))
	copy(prepared, ns)
	for i := range prepared {
		if err := s.prepareNotification(&prepared[i], now); err != nil {
			return InsertResult{}, err
		}
	}
	return s.insertNotifications(ctx, q, prepared, insertClaim{})
}

// insertClaim makes insertNotifications store the first n rows claimed by
// owner until until, with attempts 1 (see InboxHandOff).
type insertClaim struct {
	n     int
	owner string
	until time.Time
}

// insertNotifications is InsertNotifications of rows already prepared
// (prepareNotification), the first claim.n of them claimed.
func (s *Store) insertNotifications(ctx context.Context, q DBTX, prepared []Notification, claim insertClaim) (InsertResult, error) {
	q = s.inboxW(q)
	res := InsertResult{IDs: make([]int64, len(prepared))}
	if len(prepared) == 0 {
		return res, nil
	}
	var owner, until any
	if claim.n > 0 {
		owner, until = claim.owner, s.dialect.ts(claim.until)
	}
	// A key may repeat within the input; the first occurrence gets the id.
	// Keys are matched per chunk: a repeat in a later chunk conflicts with
	// the row an earlier chunk inserted and comes back as a duplicate.
	pending := make(map[string]int, min(len(prepared), notificationChunkSizes[0]))
	args := make([]any, 0, min(len(prepared), notificationChunkSizes[0])*insertNotificationCols)
	start := 0
	for _, size := range chunkSizes(len(prepared)) {
		chunk := prepared[start : start+size]
		args = args[:0]
		clear(pending)
		for i, n := range chunk {
			if _, dup := pending[n.DedupeKey]; !dup {
				pending[n.DedupeKey] = start + i
			}
			args = append(args, string(n.Source), n.SubscriptionID, n.Mailbox, n.ItemID, n.ChangeType, n.ETag,
				n.DedupeKey, n.Payload, s.dialect.ts(n.ReceivedAt))
			if start+i < claim.n {
				args = append(args, owner, until, 1)
			} else {
				args = append(args, nil, nil, 0)
			}
		}
		start += size
		var rows *sql.Rows
		var err error
		if st := s.stmt(ctx, q, s.insertStmt, size); st != nil {
			rows, err = st.QueryContext(ctx, args...)
		} else {
			rows, err = q.QueryContext(ctx, s.dialect.rebind(insertNotificationsSQL(size)), args...)
		}
		if err != nil {
			return InsertResult{}, fmt.Errorf("store: insert notifications: %w", err)
		}
		for rows.Next() {
			var id int64
			var key string
			if err := rows.Scan(&id, &key); err != nil {
				rows.Close()
				return InsertResult{}, fmt.Errorf("store: insert notifications: %w", err)
			}
			if idx, ok := pending[key]; ok {
				res.IDs[idx] = id
				res.Inserted++
			}
		}
		if err := rows.Close(); err != nil {
			return InsertResult{}, fmt.Errorf("store: insert notifications: %w", err)
		}
		if err := rows.Err(); err != nil {
			return InsertResult{}, fmt.Errorf("store: insert notifications: %w", err)
		}
	}
	return res, nil
}

const notificationCols = `id, source, subscription_id, mailbox, item_id, change_type, etag, dedupe_key, payload, received_at, processed_at, attempts, last_error, dead_at`

func scanNotification(row interface{ Scan(...any) error }) (Notification, error) {
	var n Notification
	err := row.Scan(&n.ID, &n.Source, &n.SubscriptionID, &n.Mailbox, &n.ItemID, &n.ChangeType, &n.ETag,
		&n.DedupeKey, &n.Payload, scanTime(&n.ReceivedAt), scanTimePtr(&n.ProcessedAt),
		&n.Attempts, &n.LastError, scanTimePtr(&n.DeadAt))
	return n, err
}

// GetNotifications returns the rows with the given ids, ordered by id.
// Missing ids are skipped (retention may have removed them).
func (s *Store) GetNotifications(ctx context.Context, q DBTX, ids []int64) ([]Notification, error) {
	q = s.inboxR(q)
	var out []Notification
	for start := 0; start < len(ids); start += 1000 {
		chunk := ids[start:min(start+1000, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		got, err := s.listNotifications(ctx, q, `WHERE id IN (`+inList(len(chunk))+`) ORDER BY id`, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// ListUnprocessedNotifications returns up to limit pending rows (neither
// processed nor dead), oldest first: for recovery and admin views.
func (s *Store) ListUnprocessedNotifications(ctx context.Context, q DBTX, limit int) ([]Notification, error) {
	return s.listNotifications(ctx, s.inboxR(q), `WHERE processed_at IS NULL AND dead_at IS NULL ORDER BY id LIMIT ?`, limit)
}

// ListDeadNotifications returns up to limit rows that ran out of attempts
// (see FailNotifications), oldest first, with their last error.
func (s *Store) ListDeadNotifications(ctx context.Context, q DBTX, limit int) ([]Notification, error) {
	return s.listNotifications(ctx, s.inboxR(q), `WHERE dead_at IS NOT NULL ORDER BY id LIMIT ?`, limit)
}

func (s *Store) listNotifications(ctx context.Context, q DBTX, where string, args ...any) ([]Notification, error) {
	rows, err := q.QueryContext(ctx, s.dialect.rebind(`SELECT `+notificationCols+` FROM notifications `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list notifications: %w", err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		n, err := scanNotification(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list notifications: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list notifications: %w", err)
	}
	return out, nil
}

// CountUnprocessedNotifications returns the inbox backlog (rows neither
// processed nor dead), for /readyz and metrics.
func (s *Store) CountUnprocessedNotifications(ctx context.Context, q DBTX) (int64, error) {
	var n int64
	if err := s.inboxR(q).QueryRowContext(ctx, `SELECT COUNT(*) FROM notifications WHERE processed_at IS NULL AND dead_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count unprocessed notifications: %w", err)
	}
	return n, nil
}

// CountDeadNotifications returns how many rows ran out of attempts.
func (s *Store) CountDeadNotifications(ctx context.Context, q DBTX) (int64, error) {
	var n int64
	if err := s.inboxR(q).QueryRowContext(ctx, `SELECT COUNT(*) FROM notifications WHERE dead_at IS NOT NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count dead notifications: %w", err)
	}
	return n, nil
}

// MarkNotificationsProcessed sets processed_at on those of ids not yet
// processed and returns how many it changed, so a retried job can tell.
//
// Called on the pool (q == DB()) while an Intake runs on this store, the
// update joins the intake's next group commit instead of taking a
// transaction (and an fsync, and on SQLite the only connection) of its own;
// it still returns only once committed.
func (s *Store) MarkNotificationsProcessed(ctx context.Context, q DBTX, ids []int64, at time.Time) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	q = s.inboxW(q)
	if q == DBTX(s.inboxDB) {
		if in := s.intake.Load(); in != nil {
			n, err := in.mark(ctx, ids, at)
			if !errors.Is(err, ErrIntakeStopped) {
				return n, err
			}
		}
	}
	return s.markNotificationsProcessed(ctx, q, ids, at)
}

func (s *Store) markNotificationsProcessed(ctx context.Context, q DBTX, ids []int64, at time.Time) (int64, error) {
	var total int64
	args := make([]any, 0, min(len(ids), notificationChunkSizes[0])+1)
	start := 0
	for _, size := range chunkSizes(len(ids)) {
		args = append(args[:0], s.dialect.ts(at))
		for _, id := range ids[start : start+size] {
			args = append(args, id)
		}
		start += size
		var res sql.Result
		var err error
		if st := s.stmt(ctx, q, s.markStmt, size); st != nil {
			res, err = st.ExecContext(ctx, args...)
		} else {
			res, err = q.ExecContext(ctx, s.dialect.rebind(markNotificationsSQL(size)), args...)
		}
		if err != nil {
			return total, fmt.Errorf("store: mark notifications processed: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("store: mark notifications processed: %w", err)
		}
		total += n
	}
	return total, nil
}

// DeleteProcessedNotificationsBefore removes processed rows received before
// t (retention). Their dedupe keys are forgotten with them.
//
// There is no index on received_at (it would cost every intake row one more
// index write). Ids grow with arrival, so the rows to delete are those below
// the first id received at or after t: that subquery walks the primary key
// from the oldest row and stops there, reading only what is deleted.
func (s *Store) DeleteProcessedNotificationsBefore(ctx context.Context, q DBTX, t time.Time) (int64, error) {
	q = s.inboxW(q)
	ts := s.dialect.ts(t)
	res, err := q.ExecContext(ctx, s.dialect.rebind(`DELETE FROM notifications
		WHERE id < COALESCE((SELECT id FROM notifications WHERE received_at >= ? ORDER BY id LIMIT 1), (SELECT MAX(id) FROM notifications) + 1)
		AND processed_at IS NOT NULL AND received_at < ?`), ts, ts)
	if err != nil {
		return 0, fmt.Errorf("store: delete processed notifications: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete processed notifications: %w", err)
	}
	return n, nil
}

// distinctSubscriptionIDs returns the non-empty subscription ids in ns, once each.
func distinctSubscriptionIDs(ns []Notification) []string {
	seen := make(map[string]struct{})
	var out []string
	for _, n := range ns {
		if n.SubscriptionID == "" {
			continue
		}
		if _, ok := seen[n.SubscriptionID]; !ok {
			seen[n.SubscriptionID] = struct{}{}
			out = append(out, n.SubscriptionID)
		}
	}
	return out
}
