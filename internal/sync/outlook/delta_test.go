package outlook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	emugraph "github.com/bookingsync/bookingsync/internal/emulator/graph"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/sync"
)

func TestDeltaRounds(t *testing.T) {
	h := newHarness(t, emugraph.Options{}, Options{})
	ctx := context.Background()
	from, to := at("2027-03-01T00:00:00Z"), at("2027-04-01T00:00:00Z")
	mk := func(booking string, day int) *sync.Event {
		t.Helper()
		start := from.AddDate(0, 0, day).Add(9 * time.Hour)
		ev, err := h.cal.Create(ctx, adele, booking, TransactionID(booking, adele, 1),
			sync.Content{Subject: "job " + booking, Start: start, End: start.Add(time.Hour), ShowAs: "busy"})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	a, b, c := mk("b-a", 1), mk("b-b", 2), mk("b-c", 3)

	first, err := h.cal.Delta(ctx, adele, from, to, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Removed) != 0 || first.DeltaLink == "" {
		t.Fatalf("first round: removed %v, link %q", first.Removed, first.DeltaLink)
	}
	ids := eventIDs(first.Events)
	for _, ev := range []*sync.Event{a, b, c} {
		if !slices.Contains(ids, ev.ID) {
			t.Errorf("first round lacks %s", ev.ID)
		}
	}
	for _, ev := range first.Events {
		if ev.Mailbox != adele || ev.ETag == "" || ev.Content.Start.IsZero() || ev.Content.Start.Location() != time.UTC {
			t.Errorf("mapped delta event: %+v", ev)
		}
		if ev.BookingID != "" {
			t.Errorf("delta has no extended properties, but BookingID = %q", ev.BookingID)
		}
	}

	// Move a inside the window, b out of it, delete c.
	moved := sync.Content{Start: a.Content.Start.Add(2 * time.Hour), End: a.Content.End.Add(2 * time.Hour)}
	if _, err := h.cal.Update(ctx, adele, a.ID, moved, FieldStart|FieldEnd); err != nil {
		t.Fatal(err)
	}
	out := sync.Content{Start: to.AddDate(0, 1, 0), End: to.AddDate(0, 1, 0).Add(time.Hour)}
	if _, err := h.cal.Update(ctx, adele, b.ID, out, FieldStart|FieldEnd); err != nil {
		t.Fatal(err)
	}
	if err := h.cal.Delete(ctx, adele, c.ID); err != nil {
		t.Fatal(err)
	}
	next, err := h.cal.Delta(ctx, adele, time.Time{}, time.Time{}, first.DeltaLink)
	if err != nil {
		t.Fatal(err)
	}
	if got := eventIDs(next.Events); !slices.Equal(got, []string{a.ID}) {
		t.Errorf("second round events = %v, want only the moved %s", got, a.ID)
	} else if !next.Events[0].Content.Start.Equal(moved.Start) {
		t.Errorf("moved event start = %v, want %v", next.Events[0].Content.Start, moved.Start)
	}
	slices.Sort(next.Removed)
	want := []string{b.ID, c.ID}
	slices.Sort(want)
	if !slices.Equal(next.Removed, want) {
		t.Errorf("removed = %v, want the deleted and the moved-out %v", next.Removed, want)
	}

	// An invalid (expired, foreign) link: start again.
	bad := next.DeltaLink[:strings.Index(next.DeltaLink, "$deltatoken=")] + "$deltatoken=garbage.x"
	_, err = h.cal.Delta(ctx, adele, time.Time{}, time.Time{}, bad)
	if !errors.Is(err, ErrDeltaExpired) || !errors.Is(err, graph.ErrSyncStateNotFound) {
		t.Errorf("expired link: err = %v, want ErrDeltaExpired", err)
	}
}

func TestViewAndGetMany(t *testing.T) {
	h := newHarness(t, emugraph.Options{}, Options{})
	ctx := context.Background()
	from := at("2027-05-01T00:00:00Z")
	var ids []string
	for i := range 23 {
		booking := fmt.Sprintf("bk-%02d", i)
		start := from.Add(time.Duration(i) * time.Hour)
		ev, err := h.cal.Create(ctx, adele, booking, TransactionID(booking, adele, 1),
			sync.Content{Subject: booking, Start: start, End: start.Add(30 * time.Minute), ShowAs: "busy"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	view, err := h.cal.View(ctx, adele, from, from.AddDate(0, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(view) != 23 {
		t.Fatalf("view has %d events, want 23", len(view))
	}
	if err := h.cal.Delete(ctx, adele, ids[5]); err != nil {
		t.Fatal(err)
	}
	h.requests()
	got, err := h.cal.GetMany(ctx, adele, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 22 || got[ids[5]] != nil {
		t.Errorf("GetMany returned %d events (deleted one present: %v), want 22", len(got), got[ids[5]] != nil)
	}
	for i, id := range ids {
		if i == 5 {
			continue
		}
		if ev := got[id]; ev == nil || ev.BookingID != fmt.Sprintf("bk-%02d", i) {
			t.Errorf("event %d: %+v, want booking bk-%02d", i, ev, i)
		}
	}
	reqs := h.requests()
	if len(reqs) != 2 {
		t.Errorf("GetMany of 23 sent %d requests, want 2 batches", len(reqs))
	}
	for _, r := range reqs {
		if r.Method != "POST" || !strings.HasSuffix(r.Path, "/$batch") {
			t.Errorf("request %s %s, want POST /$batch", r.Method, r.Path)
		}
	}
}

func eventIDs(evs []sync.Event) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}
