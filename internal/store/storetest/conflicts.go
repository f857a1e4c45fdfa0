package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/store"
)

// testConflicts: one open conflict per booking (a second detection updates
// it), listing by filter, resolving keeps the row as history, and a new
// conflict for a resolved booking opens a new row.
func testConflicts(t *testing.T, s *store.Store) {
	ctx := context.Background()
	db := s.DB()
	first := must(s.OpenConflict(ctx, db, store.Conflict{BookingID: "b1", ResourceID: "r1", Mailbox: "m1", EventID: "e1",
		Rule: "C5", Reason: "times changed on both sides", DetectedAt: t0}))
	if first.ID == 0 || !first.Open() || !first.DetectedAt.Equal(t0) || first.Rule != "C5" {
		t.Fatalf("OpenConflict = %+v", first)
	}
	again := must(s.OpenConflict(ctx, db, store.Conflict{BookingID: "b1", ResourceID: "r1", Mailbox: "m1", EventID: "e1",
		Rule: "C8", Reason: "event deleted while the booking changed", DetectedAt: t0.Add(time.Minute)}))
	if again.ID != first.ID || again.Rule != "C8" || again.Reason != "event deleted while the booking changed" || !again.DetectedAt.Equal(t0) {
		t.Errorf("second OpenConflict for an open booking = %+v, want row %d updated, detected_at kept", again, first.ID)
	}
	must(s.OpenConflict(ctx, db, store.Conflict{BookingID: "b2", ResourceID: "r2", Rule: "D4", Reason: "removed vs edited", DetectedAt: t0.Add(2 * time.Minute)}))
	must(s.OpenConflict(ctx, db, store.Conflict{BookingID: "b3", ResourceID: "r1", Rule: "C5", Reason: "x", DetectedAt: t0.Add(3 * time.Minute)}))

	ids := func(cs []store.Conflict) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.BookingID)
		}
		return out
	}
	check := func(name string, f store.ConflictFilter, want ...string) {
		t.Helper()
		got := ids(must(s.ListConflicts(ctx, db, f)))
		if len(got) != len(want) {
			t.Errorf("%s: ListConflicts(%+v) = %v, want %v", name, f, got, want)
			return
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: ListConflicts(%+v) = %v, want %v", name, f, got, want)
				return
			}
		}
	}
	check("all", store.ConflictFilter{}, "b1", "b2", "b3")
	check("resource", store.ConflictFilter{ResourceID: "r1"}, "b1", "b3")
	check("booking", store.ConflictFilter{BookingID: "b2"}, "b2")

	res := must(s.ResolveConflict(ctx, db, "b1", "d365 kept by admin"))
	if res.Open() || res.Resolution != "d365 kept by admin" || res.ID != first.ID {
		t.Errorf("ResolveConflict = %+v", res)
	}
	if _, err := s.ResolveConflict(ctx, db, "b1", "again"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("resolving a resolved conflict: err = %v, want ErrNotFound", err)
	}
	if _, err := s.ResolveConflict(ctx, db, "nope", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("resolving without a conflict: err = %v, want ErrNotFound", err)
	}
	check("open after resolve", store.ConflictFilter{Open: true}, "b2", "b3")
	check("history kept", store.ConflictFilter{BookingID: "b1"}, "b1")

	// The booking conflicts again: a new row, the old one stays resolved.
	reopened := must(s.OpenConflict(ctx, db, store.Conflict{BookingID: "b1", Rule: "C5", Reason: "again", DetectedAt: t0.Add(time.Hour)}))
	if reopened.ID == first.ID || !reopened.Open() {
		t.Errorf("conflict after a resolved one = %+v, want a new open row", reopened)
	}
	all := must(s.ListConflicts(ctx, db, store.ConflictFilter{BookingID: "b1"}))
	if len(all) != 2 || all[0].Open() || !all[1].Open() {
		t.Errorf("booking b1's conflicts = %+v, want the resolved one then the open one", all)
	}
	if _, err := s.OpenConflict(ctx, db, store.Conflict{Rule: "C5"}); err == nil {
		t.Error("OpenConflict without a booking id succeeded")
	}
}

// testConflictsConcurrentOpen: many workers recording the same conflict at
// once leave exactly one open row.
func testConflictsConcurrentOpen(t *testing.T, s *store.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.OpenConflict(ctx, s.DB(), store.Conflict{BookingID: "b1", Rule: "C5", Reason: "race"}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent OpenConflict: %v", err)
	}
	if got := must(s.ListConflicts(ctx, s.DB(), store.ConflictFilter{Open: true})); len(got) != 1 {
		t.Errorf("%d open conflicts after concurrent opens, want 1", len(got))
	}
}
