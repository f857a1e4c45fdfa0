package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bookingsync/bookingsync/internal/store"
	"github.com/bookingsync/bookingsync/internal/store/storetest"
)

func TestStore(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			storetest.Exercise(t, func(t testing.TB) *store.Store { return b.New(t) })
		})
	}
}

// TestSQLiteSettings checks the DSN really applies go-choices §3.4 settings
// on the pool's connection (pragmas are per connection).
func TestSQLiteSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	s, err := store.Open(context.Background(), store.DefaultURL(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, store.DefaultFileName)); err != nil {
		t.Errorf("database file not created under the data directory: %v", err)
	}
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
	}
	for _, tt := range tests {
		var got string
		if err := s.DB().QueryRow("PRAGMA " + tt.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
		}
	}
	if s.DB().Stats().MaxOpenConnections != 1 {
		t.Errorf("MaxOpenConnections = %d, want 1 (single SQLite writer shared with River)", s.DB().Stats().MaxOpenConnections)
	}
}

func TestOpenRejectsUnknownURL(t *testing.T) {
	for _, u := range []string{"mysql://x", "", "sqlite:"} {
		if s, err := store.Open(context.Background(), u, nil); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}
