package store

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// dialect is the one place where SQLite and Postgres differ. Queries are
// written with "?" placeholders and portable SQL (ON CONFLICT, RETURNING and
// IS DISTINCT FROM work on both); what remains is placeholders, column types
// in DDL, and how timestamps are stored.
type dialect struct {
	backend Backend
}

// rebind rewrites "?" placeholders to "$1", "$2"... for Postgres. Queries
// here never contain "?" inside string literals, so no quoting is handled.
func (d dialect) rebind(query string) string {
	if d.backend != BackendPostgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// ddl expands the type tokens used by migrations.
func (d dialect) ddl(stmt string) string {
	if d.backend == BackendPostgres {
		return strings.NewReplacer(
			"{id}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
			"{ts}", "TIMESTAMPTZ",
			"{blob}", "BYTEA",
		).Replace(stmt)
	}
	return strings.NewReplacer(
		// AUTOINCREMENT so ids are never reused after retention deletes rows:
		// a queued job naming an old id must not pick up a new row.
		"{id}", "INTEGER PRIMARY KEY AUTOINCREMENT",
		// Timestamps are fixed-width UTC text so they sort and compare
		// lexically; TEXT (not TIMESTAMP) so the driver doesn't reinterpret them.
		"{ts}", "TEXT",
		"{blob}", "BLOB",
	).Replace(stmt)
}

// sqliteTimeLayout is fixed width (always 6 fractional digits) so that string
// comparison orders timestamps correctly.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// ts converts a time for a query argument. Both backends keep microseconds,
// so a value reads back identically from either.
func (d dialect) ts(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if d.backend == BackendSQLite {
		return t.Format(sqliteTimeLayout)
	}
	return t
}

// tsPtr is ts for nullable columns.
func (d dialect) tsPtr(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return d.ts(*t)
}

// timeScan scans a timestamp column of either backend: time.Time from pgx,
// text from SQLite. A NULL leaves *dst nil (for nullable) or zero.
type timeScan struct {
	dst      *time.Time
	nullable **time.Time
}

func scanTime(dst *time.Time) *timeScan     { return &timeScan{dst: dst} }
func scanTimePtr(dst **time.Time) *timeScan { return &timeScan{nullable: dst} }

func (s *timeScan) Scan(src any) error {
	var t time.Time
	switch v := src.(type) {
	case nil:
		if s.nullable != nil {
			*s.nullable = nil
		} else {
			*s.dst = time.Time{}
		}
		return nil
	case time.Time:
		t = v
	case string:
		p, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return fmt.Errorf("parsing timestamp %q: %w", v, err)
		}
		t = p
	case []byte:
		p, err := time.Parse(time.RFC3339Nano, string(v))
		if err != nil {
			return fmt.Errorf("parsing timestamp %q: %w", v, err)
		}
		t = p
	default:
		return fmt.Errorf("unsupported timestamp type %T", src)
	}
	t = t.UTC()
	if s.nullable != nil {
		*s.nullable = &t
	} else {
		*s.dst = t
	}
	return nil
}

// placeholders returns "(?, ?, ?), (?, ?, ?)..." for rows×cols.
func placeholders(rows, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}

// inList returns "?, ?, ?" for n arguments.
func inList(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// isUniqueViolation reports a unique/primary-key violation from either driver.
func isUniqueViolation(err error) bool {
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) {
		return pgErr.SQLState() == "23505"
	}
	var liteErr interface{ Code() int }
	if errors.As(err, &liteErr) {
		// SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
		return liteErr.Code() == 2067 || liteErr.Code() == 1555
	}
	return false
}
