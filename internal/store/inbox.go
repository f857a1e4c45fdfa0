package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The inbox is the durable queue of notifications (no job per delivery): a
// row is pending until processed_at or dead_at is set. A processor takes
// pending rows with ClaimNotifications, which leases them to it; a lease
// that runs out (a crashed or stopped processor) makes its rows claimable
// again. After processing, rows are marked processed
// (MarkNotificationsProcessed); on failure FailNotifications schedules their
// next attempt or gives up on them (dead), and RequeueNotification puts a
// dead row back in the queue.

// claimNotificationsSQL takes up to limit pending rows, oldest first, that
// nobody holds a live lease on and whose next attempt is due. The CTE is
// MATERIALIZED so the locking subquery runs exactly once; on PostgreSQL
// FOR UPDATE SKIP LOCKED lets several instances claim at once without
// waiting for or ever sharing a row (a row another claimer just committed
// is re-checked against the WHERE clause and skipped). SQLite has a single
// writer: the same statement needs no locking clause.
func (s *Store) claimNotificationsSQL() string {
	lock := ""
	if s.dialect.backend == BackendPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	return s.dialect.rebind(`WITH c AS MATERIALIZED (
			SELECT id FROM notifications
			WHERE processed_at IS NULL AND dead_at IS NULL
			AND (claimed_until IS NULL OR claimed_until < ?)
			AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
			ORDER BY id LIMIT ?` + lock + `)
		UPDATE notifications SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1
		WHERE id IN (SELECT id FROM c)
		RETURNING ` + notificationCols)
}

// ClaimNotifications leases up to limit pending rows to owner until
// now+lease and returns them in id order, each with Attempts counting this
// claim. A row is in at most one live claim: until the lease runs out (or
// the row is processed, failed or released) no other claim returns it, in
// this process or another one on the same database.
//
// While an Intake runs on this store the claim is made in its next group
// commit (no transaction or fsync of its own; on SQLite never waiting for
// the inbox writer); it returns once committed.
func (s *Store) ClaimNotifications(ctx context.Context, owner string, limit int, lease time.Duration) ([]Notification, error) {
	if limit <= 0 {
		return nil, nil
	}
	if owner == "" {
		return nil, errors.New("store: claim notifications: empty owner")
	}
	if in := s.intake.Load(); in != nil {
		ns, err := in.claim(ctx, owner, limit, lease)
		if !errors.Is(err, ErrIntakeStopped) {
			return ns, err
		}
	}
	var out []Notification
	err := s.InboxTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.claimNotifications(ctx, tx, owner, limit, lease)
		return err
	})
	return out, err
}

func (s *Store) claimNotifications(ctx context.Context, tx *sql.Tx, owner string, limit int, lease time.Duration) ([]Notification, error) {
	now := s.now()
	args := []any{s.dialect.ts(now), s.dialect.ts(now), limit, owner, s.dialect.ts(now.Add(lease))}
	var rows *sql.Rows
	var err error
	if s.claimStmt != nil { // SQLite: prepared at Open, not parsed per claim
		rows, err = tx.StmtContext(ctx, s.claimStmt).QueryContext(ctx, args...)
	} else {
		rows, err = tx.QueryContext(ctx, s.claimNotificationsSQL(), args...)
	}
	if err != nil {
		return nil, fmt.Errorf("store: claim notifications: %w", err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		n, err := scanNotification(rows)
		if err != nil {
			return nil, fmt.Errorf("store: claim notifications: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: claim notifications: %w", err)
	}
	slices.SortFunc(out, func(a, b Notification) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// InboxHandOff lets an inbox processor take new rows without claiming them
// from the database: while one is set (SetInboxHandOff), each Intake group
// commit inserts the first rows the processor has room for already claimed
// by Owner until now+Lease (attempts 1, as ClaimNotifications would leave
// them), and after the commit hands them over in memory. At a steady rate
// this saves every intake commit a second commit (and fsync) carrying the
// processor's claim, which the next acknowledgement would wait behind.
// The claim is as durable as any other: a crash leaves the rows claimed
// until their lease runs out (on SQLite, until the next processor's
// ReleaseOtherClaims). Rows the processor had no room for are stored
// pending, and Deliver says how many.
type InboxHandOff struct {
	Owner string
	Lease time.Duration
	// Reserve is called by the committer before a commit that inserts n
	// rows and returns how many of them (the first ones, in order) to
	// claim: 0..n. It must not block.
	Reserve func(n int) int
	// Deliver is called after that commit, once per Reserve, with the
	// reservation, the rows claimed and stored (in id order; duplicates
	// and a failed commit store none) and how many new rows were stored
	// unclaimed. It must not block.
	Deliver func(reserved int, claimed []Notification, unclaimed int)
	// CaughtUp, if set, is called after a commit in which a claim by
	// Owner (ClaimNotifications while the Intake runs) returned fewer rows
	// than asked for, after that commit's Deliver: no row stored by this
	// or an earlier commit waits unclaimed and due. It must not block.
	CaughtUp func()
}

// SetInboxHandOff makes Intake commits hand their new rows to h (nil: to
// nobody). Once it returns, no commit is between the previous handoff's
// Reserve and Deliver.
func (s *Store) SetInboxHandOff(h *InboxHandOff) {
	s.handoffMu.Lock()
	s.handoff = h
	s.handoffMu.Unlock()
}

// ClearInboxHandOff removes h if it is the current handoff (another
// processor may have replaced it), as SetInboxHandOff(nil) would.
func (s *Store) ClearInboxHandOff(h *InboxHandOff) {
	s.handoffMu.Lock()
	if s.handoff == h {
		s.handoff = nil
	}
	s.handoffMu.Unlock()
}

// NotificationFailure is the outcome of a failed attempt at one claimed row.
type NotificationFailure struct {
	ID    int64
	Error string
	// RetryAt is when the row may be claimed again; zero gives up on it:
	// the row is dead until RequeueNotification.
	RetryAt time.Time
}

// lastErrorMax bounds the stored last_error.
const lastErrorMax = 2000

// FailNotifications records failed attempts at rows claimed by owner:
// each is released with its error and either scheduled for RetryAt or
// marked dead. Rows already processed, or no longer claimed by owner (the
// lease ran out and another processor took them), are left alone. It
// returns how many rows it marked dead.
func (s *Store) FailNotifications(ctx context.Context, owner string, fails []NotificationFailure) (dead int64, err error) {
	if len(fails) == 0 {
		return 0, nil
	}
	type group struct {
		retryAt time.Time
		errText string
	}
	groups := map[group][]int64{}
	var order []group
	for _, f := range fails {
		g := group{retryAt: f.RetryAt, errText: cleanText(f.Error, lastErrorMax)}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], f.ID)
	}
	now := s.now()
	err = s.InboxTx(ctx, func(tx *sql.Tx) error {
		for _, g := range order {
			ids := groups[g]
			var next, deadAt any
			if g.retryAt.IsZero() {
				deadAt = s.dialect.ts(now)
			} else {
				next = s.dialect.ts(g.retryAt)
			}
			for start := 0; start < len(ids); start += 500 {
				chunk := ids[start:min(start+500, len(ids))]
				args := []any{g.errText, next, deadAt, owner}
				for _, id := range chunk {
					args = append(args, id)
				}
				res, err := tx.ExecContext(ctx, s.dialect.rebind(`UPDATE notifications
					SET claimed_by = NULL, claimed_until = NULL, last_error = ?, next_attempt_at = ?, dead_at = ?
					WHERE claimed_by = ? AND processed_at IS NULL AND dead_at IS NULL AND id IN (`+inList(len(chunk))+`)`), args...)
				if err != nil {
					return err
				}
				if deadAt != nil {
					n, err := res.RowsAffected()
					if err != nil {
						return err
					}
					dead += n
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: fail notifications: %w", err)
	}
	return dead, nil
}

// ReleaseNotifications gives up owner's claim on ids without counting a
// failure (e.g. a processor stopping before it got to them): they can be
// claimed again at once. Processed rows are left alone.
func (s *Store) ReleaseNotifications(ctx context.Context, owner string, ids []int64) error {
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		args := []any{owner}
		for _, id := range chunk {
			args = append(args, id)
		}
		if _, err := s.inboxDB.ExecContext(ctx, s.dialect.rebind(`UPDATE notifications SET claimed_by = NULL, claimed_until = NULL
			WHERE claimed_by = ? AND processed_at IS NULL AND id IN (`+inList(len(chunk))+`)`), args...); err != nil {
			return fmt.Errorf("store: release notifications: %w", err)
		}
	}
	return nil
}

// RequeueNotification puts an unprocessed row back in the queue with a
// fresh count of attempts: a dead one, or one waiting for its next attempt.
// A row under a live claim is refused (ErrConflict): requeueing it would let
// a second processor take it while the first still works on it.
// ErrNotFound: no such row, or it was processed.
func (s *Store) RequeueNotification(ctx context.Context, id int64) error {
	now := s.dialect.ts(s.now())
	res, err := s.inboxDB.ExecContext(ctx, s.dialect.rebind(`UPDATE notifications
		SET dead_at = NULL, attempts = 0, next_attempt_at = NULL, claimed_by = NULL, claimed_until = NULL
		WHERE id = ? AND processed_at IS NULL AND (dead_at IS NOT NULL OR claimed_until IS NULL OR claimed_until < ?)`), id, now)
	if err != nil {
		return fmt.Errorf("store: requeue notification %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: requeue notification %d: %w", id, err)
	} else if n == 1 {
		return nil
	}
	got, err := s.GetNotifications(ctx, s.inboxDB, []int64{id})
	if err != nil {
		return err
	}
	if len(got) == 0 || got[0].ProcessedAt != nil {
		return fmt.Errorf("store: requeue notification %d: %w", id, ErrNotFound)
	}
	return fmt.Errorf("store: requeue notification %d: being processed: %w", id, ErrConflict)
}

// cleanText makes s storable as TEXT on both backends (valid UTF-8, no
// NUL) and at most max bytes long.
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// ExtendClaims renews owner's lease on those of ids it still holds, to
// now+lease: a processor working on a batch for longer than its lease keeps
// it from being claimed by another.
func (s *Store) ExtendClaims(ctx context.Context, owner string, ids []int64, lease time.Duration) error {
	until := s.dialect.ts(s.now().Add(lease))
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		args := []any{until, owner}
		for _, id := range chunk {
			args = append(args, id)
		}
		if _, err := s.inboxDB.ExecContext(ctx, s.dialect.rebind(`UPDATE notifications SET claimed_until = ?
			WHERE claimed_by = ? AND processed_at IS NULL AND id IN (`+inList(len(chunk))+`)`), args...); err != nil {
			return fmt.Errorf("store: extend notification claims: %w", err)
		}
	}
	return nil
}

// ReleaseOtherClaims releases every claim not held by owner and returns
// how many. Only for SQLite, where one process (one processor) owns the
// database: claims it finds at start were left by a crashed predecessor and
// need not wait for their lease. On PostgreSQL other instances' claims are
// live, so it does nothing there.
func (s *Store) ReleaseOtherClaims(ctx context.Context, owner string) (int64, error) {
	if s.dialect.backend != BackendSQLite {
		return 0, nil
	}
	res, err := s.inboxDB.ExecContext(ctx, `UPDATE notifications SET claimed_by = NULL, claimed_until = NULL
		WHERE processed_at IS NULL AND dead_at IS NULL AND claimed_by IS NOT NULL AND claimed_by <> ?`, owner)
	if err != nil {
		return 0, fmt.Errorf("store: release stale claims: %w", err)
	}
	return res.RowsAffected()
}
