package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrTargetNotEmpty is returned by Copy when the target store already holds
// rows in a table Copy would fill.
var ErrTargetNotEmpty = errors.New("store: target store is not empty")

// CopyOptions adjusts Copy.
type CopyOptions struct {
	// DryRun only counts what would be copied (and checks that the target
	// is empty); nothing is written.
	DryRun bool
	// BatchRows is how many rows one INSERT carries (default 200).
	BatchRows int
}

// TableCopy is what Copy did (or, dry, would do) for one table.
type TableCopy struct {
	Table string
	Rows  int64
}

// CopyReport is Copy's outcome.
type CopyReport struct {
	DryRun bool
	// Tables in copy order, with the rows copied (or to copy).
	Tables []TableCopy
	// SkippedProcessedNotifications counts inbox rows already processed:
	// history, not copied.
	SkippedProcessedNotifications int64
}

// Rows returns the count Copy reported for table (0 if absent).
func (r CopyReport) Rows(table string) int64 {
	for _, t := range r.Tables {
		if t.Table == table {
			return t.Rows
		}
	}
	return 0
}

// colKind says how a column is read from one backend and written to the other.
type colKind int

const (
	colText     colKind = iota // TEXT NOT NULL
	colNullText                // TEXT, nullable
	colInt                     // INTEGER / BIGINT NOT NULL
	colBool                    // BOOLEAN NOT NULL
	colTS                      // timestamp NOT NULL
	colNullTS                  // timestamp, nullable
	colBlob                    // BLOB / BYTEA NOT NULL
)

type copyCol struct {
	name string
	kind colKind
}

// copyTable is one table Copy moves: its columns (every column that
// carries state), which rows, and whether its id is an identity column
// whose values are kept (and whose sequence must then move past them).
type copyTable struct {
	name     string
	cols     []copyCol
	where    string // "" or a WHERE clause selecting the rows to copy
	orderBy  string
	identity bool // id {id}: insert the source ids, then advance the sequence
	inbox    bool // lives in the inbox database (its own file on SQLite)
}

// copyTables lists the tables in an order that satisfies the foreign keys
// (subscriptions reference resources). Leases are not copied: they belong
// to running instances. River's job tables are not copied either: the
// periodic jobs are re-created by their schedule, and the unprocessed inbox
// rows are claimed again by the inbox processor.
//
// Keep in step with the migrations: a column added there must be added
// here, or Copy silently drops it (TestCopy compares every field the store
// reads back).
var copyTables = []copyTable{
	{name: "resources", orderBy: "id", cols: []copyCol{
		{"id", colText}, {"name", colText}, {"mailbox", colText}, {"upn", colText}, {"opt_in", colText},
		{"active", colBool}, {"last_status_text", colNullText}, {"created_at", colTS}, {"updated_at", colTS},
	}},
	{name: "subscriptions", orderBy: "id", cols: []copyCol{
		{"id", colText}, {"resource_id", colText}, {"mailbox", colText}, {"resource", colText},
		{"change_types", colText}, {"expires_at", colTS}, {"client_state_hash", colBlob},
		{"lifetime_seconds", colInt}, {"created_at", colTS}, {"last_renewed_at", colNullTS},
		{"renew_failures", colInt}, {"last_error", colText}, {"last_notification_at", colNullTS},
	}},
	{name: "links", orderBy: "booking_id", cols: []copyCol{
		{"booking_id", colText}, {"resource_id", colText}, {"mailbox", colText}, {"event_id", colText},
		{"booking_version", colInt}, {"booking_hash", colText}, {"event_change_key", colText},
		{"event_etag", colText}, {"event_hash", colText}, {"agreed_start", colNullTS}, {"agreed_end", colNullTS},
		{"create_txid", colText}, {"origin", colText}, {"detached", colBool}, {"version", colInt},
		{"created_at", colTS}, {"updated_at", colTS},
	}},
	{name: "sync_state", orderBy: "key", cols: []copyCol{
		{"key", colText}, {"value", colText}, {"updated_at", colTS},
	}},
	{name: "conflicts", orderBy: "id", identity: true, cols: []copyCol{
		{"id", colInt}, {"booking_id", colText}, {"resource_id", colText}, {"mailbox", colText},
		{"event_id", colText}, {"rule", colText}, {"reason", colText}, {"detected_at", colTS},
		{"resolved_at", colNullTS}, {"resolution", colText},
	}},
	{name: "guard_passes", orderBy: "id", cols: []copyCol{
		{"id", colText}, {"scope", colText}, {"side", colText}, {"deletes", colInt}, {"linked", colInt},
		{"plan_json", colText}, {"status", colText}, {"created_at", colTS}, {"approved_at", colNullTS},
		{"approved_by", colText},
	}},
	{name: "audit", orderBy: "id", identity: true, cols: []copyCol{
		{"id", colInt}, {"at", colTS}, {"resource_id", colText}, {"booking_id", colText},
		{"event_id", colText}, {"side", colText}, {"action", colText}, {"reason", colText},
		{"before_json", colNullText}, {"after_json", colNullText}, {"outcome", colText}, {"error", colText},
	}},
	// Pending and dead rows only: processed ones are history. Claims
	// (claimed_by, claimed_until) are left out: they belong to the stopped
	// service, and a copied claim would only delay the row until it ran out.
	{name: "notifications", orderBy: "id", identity: true, inbox: true,
		where: "WHERE processed_at IS NULL OR dead_at IS NOT NULL", cols: []copyCol{
			{"id", colInt}, {"source", colText}, {"subscription_id", colText}, {"mailbox", colText},
			{"item_id", colText}, {"change_type", colText}, {"etag", colText}, {"dedupe_key", colText},
			{"payload", colBlob}, {"received_at", colTS}, {"processed_at", colNullTS}, {"attempts", colInt},
			{"next_attempt_at", colNullTS}, {"last_error", colText}, {"dead_at", colNullTS},
		}},
}

// Copy copies the state of from into to, which must hold no rows in any of
// the copied tables (ErrTargetNotEmpty otherwise, naming each table and its
// count). Each table is copied in one transaction on to, in foreign-key
// order; rows keep their ids and every column, so links keep their
// versions and agreed times, subscriptions their clientState hashes and
// sync_state its delta and change-tracking tokens. Not copied: leases,
// River's tables, and processed inbox rows (counted in the report).
//
// Nothing may write to from while Copy runs: stop the service first. If a
// table fails, the tables before it stay copied in to; start again on an
// empty target.
func Copy(ctx context.Context, from, to *Store, opts CopyOptions) (CopyReport, error) {
	if opts.BatchRows <= 0 {
		opts.BatchRows = 200
	}
	rep := CopyReport{DryRun: opts.DryRun}

	var skipped int64
	if err := from.InboxReadDB().QueryRowContext(ctx,
		`SELECT COUNT(*) FROM notifications WHERE processed_at IS NOT NULL AND dead_at IS NULL`).Scan(&skipped); err != nil {
		return rep, fmt.Errorf("store: copy: counting processed notifications: %w", err)
	}
	rep.SkippedProcessedNotifications = skipped

	if err := checkEmpty(ctx, to); err != nil {
		if opts.DryRun {
			// Still report what would be copied: the counts help decide.
			for _, t := range copyTables {
				n, cerr := countRows(ctx, from.srcDB(t), t.name, t.where)
				if cerr != nil {
					return rep, cerr
				}
				rep.Tables = append(rep.Tables, TableCopy{Table: t.name, Rows: n})
			}
		}
		return rep, err
	}

	for _, t := range copyTables {
		if opts.DryRun {
			n, err := countRows(ctx, from.srcDB(t), t.name, t.where)
			if err != nil {
				return rep, err
			}
			rep.Tables = append(rep.Tables, TableCopy{Table: t.name, Rows: n})
			continue
		}
		var n int64
		txFn := to.InTx
		if t.inbox {
			txFn = to.InboxTx
		}
		err := txFn(ctx, func(tx *sql.Tx) error {
			var err error
			n, err = copyRows(ctx, from, to, tx, t, opts.BatchRows)
			return err
		})
		if err != nil {
			return rep, fmt.Errorf("store: copy %s: %w (the tables before it were copied; empty the target before running again)", t.name, err)
		}
		rep.Tables = append(rep.Tables, TableCopy{Table: t.name, Rows: n})
	}
	return rep, nil
}

// srcDB is where t is read from: the read pools, which on SQLite neither
// wait for nor block the writer.
func (s *Store) srcDB(t copyTable) *sql.DB {
	if t.inbox {
		return s.InboxReadDB()
	}
	return s.ReadDB()
}

func countRows(ctx context.Context, db DBTX, table, where string) (int64, error) {
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` `+where).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: copy: counting %s: %w", table, err)
	}
	return n, nil
}

// checkEmpty returns ErrTargetNotEmpty, naming every copied table of to
// that holds rows and how many.
func checkEmpty(ctx context.Context, to *Store) error {
	var held []string
	for _, t := range copyTables {
		n, err := countRows(ctx, to.srcDB(t), t.name, "")
		if err != nil {
			return err
		}
		if n > 0 {
			held = append(held, fmt.Sprintf("%s (%d)", t.name, n))
		}
	}
	if len(held) == 0 {
		return nil
	}
	return fmt.Errorf("%w: it already holds rows in %s; copy only into a new database (or schema) that no service has used",
		ErrTargetNotEmpty, strings.Join(held, ", "))
}

// copyRows streams t's rows from from into tx on to, BatchRows per INSERT.
func copyRows(ctx context.Context, from, to *Store, tx *sql.Tx, t copyTable, batch int) (int64, error) {
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name
	}
	colList := strings.Join(names, ", ")
	rows, err := from.srcDB(t).QueryContext(ctx, `SELECT `+colList+` FROM `+t.name+` `+t.where+` ORDER BY `+t.orderBy)
	if err != nil {
		return 0, fmt.Errorf("reading: %w", err)
	}
	defer rows.Close()

	overriding := ""
	if t.identity && to.dialect.backend == BackendPostgres {
		overriding = " OVERRIDING SYSTEM VALUE"
	}
	insert := func(args []any, n int) error {
		q := `INSERT INTO ` + t.name + ` (` + colList + `)` + overriding + ` VALUES ` + placeholders(n, len(t.cols))
		if _, err := tx.ExecContext(ctx, to.dialect.rebind(q), args...); err != nil {
			return fmt.Errorf("writing: %w", err)
		}
		return nil
	}

	var total int64
	pending := 0
	args := make([]any, 0, batch*len(t.cols))
	dst := make([]any, len(t.cols))
	for rows.Next() {
		vals, err := scanCopyRow(rows, t.cols, dst)
		if err != nil {
			return 0, fmt.Errorf("reading: %w", err)
		}
		for i, c := range t.cols {
			args = append(args, to.copyArg(c.kind, vals[i]))
		}
		pending++
		total++
		if pending == batch {
			if err := insert(args, pending); err != nil {
				return 0, err
			}
			args, pending = args[:0], 0
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("reading: %w", err)
	}
	if pending > 0 {
		if err := insert(args, pending); err != nil {
			return 0, err
		}
	}
	if t.identity && total > 0 && to.dialect.backend == BackendPostgres {
		// New rows must get ids above the copied ones.
		if _, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+t.name+`', 'id'), (SELECT MAX(id) FROM `+t.name+`))`); err != nil {
			return 0, fmt.Errorf("advancing the id sequence: %w", err)
		}
	}
	// SQLite's AUTOINCREMENT records the highest inserted id by itself.
	return total, nil
}

// scanCopyRow reads one row into values of the kinds' Go types.
func scanCopyRow(rows *sql.Rows, cols []copyCol, dst []any) ([]any, error) {
	vals := make([]any, len(cols))
	for i, c := range cols {
		switch c.kind {
		case colText:
			dst[i] = new(string)
		case colNullText:
			dst[i] = new(sql.NullString)
		case colInt:
			dst[i] = new(int64)
		case colBool:
			dst[i] = new(bool)
		case colTS:
			dst[i] = scanTime(new(time.Time))
		case colNullTS:
			dst[i] = scanTimePtr(new(*time.Time))
		case colBlob:
			dst[i] = new([]byte)
		}
	}
	if err := rows.Scan(dst...); err != nil {
		return nil, err
	}
	for i, c := range cols {
		switch c.kind {
		case colText:
			vals[i] = *dst[i].(*string)
		case colNullText:
			vals[i] = *dst[i].(*sql.NullString)
		case colInt:
			vals[i] = *dst[i].(*int64)
		case colBool:
			vals[i] = *dst[i].(*bool)
		case colTS:
			vals[i] = *dst[i].(*timeScan).dst
		case colNullTS:
			vals[i] = *dst[i].(*timeScan).nullable
		case colBlob:
			b := *dst[i].(*[]byte)
			if b == nil {
				b = []byte{} // NOT NULL: an empty blob, not NULL
			}
			vals[i] = b
		}
	}
	return vals, nil
}

// copyArg converts a value read by scanCopyRow into a query argument of
// s's backend.
func (s *Store) copyArg(kind colKind, v any) any {
	switch kind {
	case colNullText:
		ns := v.(sql.NullString)
		if !ns.Valid {
			return nil
		}
		return ns.String
	case colTS:
		return s.dialect.ts(v.(time.Time))
	case colNullTS:
		return s.dialect.tsPtr(v.(*time.Time))
	default:
		return v
	}
}
