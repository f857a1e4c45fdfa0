// Package storetest is the conformance suite every store backend runs
// (Exercise), plus helpers that open isolated test stores.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/bookingsync/bookingsync/internal/store"
)

// Environment variables for Postgres tests.
const (
	// EnvPostgresURL names a database where tests may create schemas, e.g.
	// postgres://bookingsync:bookingsync@127.0.0.1:5432/bookingsync_test?sslmode=disable
	EnvPostgresURL = "BOOKINGSYNC_TEST_POSTGRES_URL"
	// EnvPostgresRequired=true makes a missing EnvPostgresURL fail instead of skip (CI).
	EnvPostgresRequired = "BOOKINGSYNC_TEST_POSTGRES_REQUIRED"
)

// Backend is a way to open a fresh, isolated store.
type Backend struct {
	Name string
	New  func(t testing.TB, opts ...store.Option) *store.Store
}

// Backends returns SQLite and Postgres; the Postgres one skips (or fails,
// see EnvPostgresRequired) when EnvPostgresURL is unset.
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", New: NewSQLite},
		{Name: "postgres", New: NewPostgres},
	}
}

// NewSQLite opens a store on a new SQLite file in a temporary directory.
func NewSQLite(t testing.TB, opts ...store.Option) *store.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", store.DefaultFileName)
	s, err := store.Open(context.Background(), "sqlite:"+path, nil, opts...)
	if err != nil {
		t.Fatalf("opening sqlite store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgresURL returns EnvPostgresURL, skipping the test when it is unset
// (failing when EnvPostgresRequired=true).
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvPostgresURL)
	if u == "" {
		if os.Getenv(EnvPostgresRequired) == "true" {
			t.Fatalf("%s is not set but %s=true", EnvPostgresURL, EnvPostgresRequired)
		}
		t.Skipf("%s not set; skipping Postgres test", EnvPostgresURL)
	}
	return u
}

// NewPostgres opens a store in a new schema of the EnvPostgresURL database,
// dropped when the test ends.
func NewPostgres(t testing.TB, opts ...store.Option) *store.Store {
	t.Helper()
	base := PostgresURL(t)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("opening postgres: %v", err)
	}
	t.Cleanup(func() { admin.Close() })

	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "bstest_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parsing %s: %v", EnvPostgresURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	s, err := store.Open(ctx, u.String(), nil, opts...)
	if err != nil {
		t.Fatalf("opening postgres store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
