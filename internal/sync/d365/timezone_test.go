package d365

import (
	"errors"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	dvemu "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

func TestResourceTimeZone(t *testing.T) {
	e := newEnv(t, 0)
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	z := NewTimeZones(e.c)
	z.Now = func() time.Time { return now }
	techs := tenant.Technicians()
	for _, u := range techs {
		got, err := z.ResourceTimeZone(e.ctx, dvemu.ResourceID(u.ID))
		if err != nil {
			t.Fatal(err)
		}
		if got != u.TimeZone {
			t.Errorf("%s: time zone %q, want %q", u.DisplayName, got, u.TimeZone)
		}
	}
	// The definitions are read once: one GET of the resource per lookup,
	// no second read of timezonedefinitions.
	calls := e.delta(func() {
		if _, err := z.ResourceTimeZone(e.ctx, dvemu.ResourceID(techs[0].ID)); err != nil {
			t.Fatal(err)
		}
	})
	if len(calls) != 1 || calls["GET /bookableresources({id})"] != 1 {
		t.Errorf("cached lookup made %v", calls)
	}

	// A resource moved to a zone: read again on the next lookup (the
	// resource row is not cached here; the caller caches per mailbox).
	rid := dvemu.ResourceID(techs[0].ID)
	if err := e.c.Update(e.ctx, dataverse.SetResources, rid, map[string]any{"timezone": 4}, "*"); err != nil {
		t.Fatal(err)
	}
	if got, err := z.ResourceTimeZone(e.ctx, rid); err != nil || got != "Pacific Standard Time" {
		t.Errorf("after the move: %q, %v", got, err)
	}

	// An unknown code reloads the definitions at most once a minute.
	if err := e.c.Update(e.ctx, dataverse.SetResources, rid, map[string]any{"timezone": 999}, "*"); err != nil {
		t.Fatal(err)
	}
	calls = e.delta(func() {
		for range 3 {
			if _, err := z.ResourceTimeZone(e.ctx, rid); !errors.Is(err, ErrUnknownTimeZone) {
				t.Errorf("unknown code: %v", err)
			}
		}
	})
	if calls["GET /timezonedefinitions"] != 0 {
		t.Errorf("unknown code reloaded within the minute: %v", calls)
	}
	now = now.Add(2 * time.Minute)
	calls = e.delta(func() { _, _ = z.ResourceTimeZone(e.ctx, rid) })
	if calls["GET /timezonedefinitions"] != 1 {
		t.Errorf("unknown code after a minute: %v", calls)
	}
	// And the definitions are refreshed daily.
	now = now.Add(25 * time.Hour)
	calls = e.delta(func() {
		if n, err := z.Name(e.ctx, 110); err != nil || n != "W. Europe Standard Time" {
			t.Errorf("Name(110) = %q, %v", n, err)
		}
	})
	if calls["GET /timezonedefinitions"] != 1 {
		t.Errorf("daily refresh: %v", calls)
	}

	if _, err := z.ResourceTimeZone(e.ctx, "00000000-0000-0000-0000-0000000000ff"); !errors.Is(err, dataverse.ErrNotFound) {
		t.Errorf("unknown resource: %v", err)
	}
}
