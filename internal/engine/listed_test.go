package engine

import (
	"context"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/store"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
)

// A resync lists the links, then the calendar view, and hands each linked
// event's listed copy to SyncListed: the copy replaces the engine's own
// read unless a write of ours was recorded since the listing.
func TestSyncListedReadsNoEventTwice(t *testing.T) {
	start := now.Add(24 * time.Hour)
	moveEvent := func(h *harness) {
		ev := h.cal.inMailbox("mbx-1")[0]
		h.cal.userEdit(ev.ID, func(e *bsync.Event) {
			e.Content.Start, e.Content.End = e.Content.Start.Add(2*time.Hour), e.Content.End.Add(2*time.Hour)
		})
	}
	editBooking := func(edit func(*bsync.Booking)) func(h *harness) {
		return func(h *harness) {
			b := *h.dv.get("b1")
			edit(&b)
			h.dv.put(b)
		}
	}
	reschedule := editBooking(func(b *bsync.Booking) { b.Start, b.End = b.Start.Add(time.Hour), b.End.Add(time.Hour) })
	rename := editBooking(func(b *bsync.Booking) { b.Name = "Renamed by the dispatcher" })
	for _, tc := range []struct {
		name string
		// drift happens before the listing; ourWrite after it, and is
		// synced (a write of ours the listing does not show).
		drift, ourWrite func(h *harness)
		reads, writes   int           // by SyncListed: Graph event reads, writes on both sides
		bookingShift    time.Duration // the booking's start afterwards, from start
		eventShift      time.Duration // the event's
	}{
		{name: "in sync"},
		{name: "booking rescheduled in Dynamics 365", drift: reschedule, writes: 1, bookingShift: time.Hour, eventShift: time.Hour},
		{name: "event moved in Outlook", drift: moveEvent, writes: 1, bookingShift: 2 * time.Hour, eventShift: 2 * time.Hour},
		// The copy shows the old subject, which must not be taken for an
		// Outlook edit; with nothing left to write it is not read either.
		{name: "booking renamed and synced after the listing", ourWrite: rename},
		// The move was applied by the rename's booking trigger after the
		// listing: the listed (moved) copy is older than the link.
		{name: "event moved, applied after the listing", drift: moveEvent, ourWrite: rename, reads: 1,
			bookingShift: 2 * time.Hour, eventShift: 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			h.booking("b1", "res-1", start)
			h.syncBooking("b1")
			// listing returns the link and the event as a resync sees them.
			listing := func() (store.Link, *bsync.Event) {
				l := h.link("b1")
				ev := h.cal.inMailbox(l.Mailbox)[0]
				return *l, &ev
			}
			if tc.drift != nil {
				tc.drift(h)
			}
			listed, ev := listing()
			if tc.ourWrite != nil {
				tc.ourWrite(h)
				h.syncBooking("b1")
			}
			r0, _, _ := h.cal.counts()
			w0 := h.writes()
			if _, err := h.eng.SyncListed(ctx, listed, ev); err != nil {
				t.Fatal(err)
			}
			if r, _, _ := h.cal.counts(); r-r0 != tc.reads {
				t.Errorf("engine read the event %d times, want %d", r-r0, tc.reads)
			}
			if w := h.writes() - w0; w != tc.writes {
				t.Errorf("%d writes, want %d", w, tc.writes)
			}
			if b := h.dv.get("b1"); !b.Start.Equal(start.Add(tc.bookingShift)) {
				t.Errorf("booking starts %v, want %v", b.Start, start.Add(tc.bookingShift))
			}
			if e := h.cal.inMailbox("mbx-1")[0]; !e.Content.Start.Equal(start.Add(tc.eventShift)) {
				t.Errorf("event starts %v, want %v", e.Content.Start, start.Add(tc.eventShift))
			}
			// Whatever it did, a second look finds nothing to do.
			w0 = h.writes()
			l, ev2 := listing()
			if _, err := h.eng.SyncListed(ctx, l, ev2); err != nil {
				t.Fatal(err)
			}
			if h.writes() != w0 {
				t.Errorf("a second SyncListed wrote %d times", h.writes()-w0)
			}
		})
	}
}
