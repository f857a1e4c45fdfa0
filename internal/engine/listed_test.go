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
	// listing returns the link and the event as a resync sees them now.
	listing := func(h *harness) (store.Link, *bsync.Event) {
		h.t.Helper()
		l := h.link("b1")
		ev, err := h.cal.Get(context.Background(), l.Mailbox, l.EventID)
		if err != nil {
			h.t.Fatal(err)
		}
		h.cal.mu.Lock()
		h.cal.reads-- // the listing's read is the resync's, not the engine's
		h.cal.mu.Unlock()
		return *l, ev
	}
	moveEvent := func(h *harness) *bsync.Event {
		ev := h.cal.inMailbox("mbx-1")[0]
		return h.cal.userEdit(ev.ID, func(e *bsync.Event) {
			e.Content.Start, e.Content.End = e.Content.Start.Add(2*time.Hour), e.Content.End.Add(2*time.Hour)
		})
	}
	reschedule := func(h *harness) {
		b := *h.dv.get("b1")
		b.Start, b.End = b.Start.Add(time.Hour), b.End.Add(time.Hour)
		h.dv.put(b)
	}
	for _, tc := range []struct {
		name  string
		setup func(h *harness) (store.Link, *bsync.Event)
		reads int // Graph event reads by the engine
		// check is run on the result.
		check func(h *harness) string
	}{
		{
			name:  "in sync",
			setup: listing,
			check: func(h *harness) string {
				if w := h.writes(); w != 0 {
					return "writes happened"
				}
				return ""
			},
		},
		{
			name: "booking rescheduled in Dynamics 365",
			setup: func(h *harness) (store.Link, *bsync.Event) {
				reschedule(h)
				return listing(h)
			},
			check: func(h *harness) string {
				ev := h.cal.inMailbox("mbx-1")[0]
				if !ev.Content.Start.Equal(start.Add(time.Hour)) {
					return "event not moved with the booking"
				}
				return ""
			},
		},
		{
			name: "event moved in Outlook",
			setup: func(h *harness) (store.Link, *bsync.Event) {
				moveEvent(h)
				return listing(h)
			},
			check: func(h *harness) string {
				if b := h.dv.get("b1"); !b.Start.Equal(start.Add(2 * time.Hour)) {
					return "booking not moved with the event"
				}
				return ""
			},
		},
		{
			// Our own write after the listing: the copy shows the old
			// subject, which must not be taken for an Outlook edit.
			name: "booking renamed and synced after the listing",
			setup: func(h *harness) (store.Link, *bsync.Event) {
				l, ev := listing(h)
				b := *h.dv.get("b1")
				b.Name = "Renamed by the dispatcher"
				h.dv.put(b)
				h.syncBooking("b1")
				h.cal.mu.Lock()
				h.cal.reads, h.cal.writes = 0, 0
				h.cal.mu.Unlock()
				return l, ev
			},
			// Nothing to write once the copy is set aside, so no read.
			reads: 0,
			check: func(h *harness) string {
				if w := h.writes(); w != 0 {
					return "the stale copy caused writes"
				}
				return ""
			},
		},
		{
			// The Outlook move was applied by a booking trigger after the
			// listing: the listed (moved) copy is older than the link.
			name: "event moved, applied after the listing",
			setup: func(h *harness) (store.Link, *bsync.Event) {
				moveEvent(h)
				l, ev := listing(h)
				b := *h.dv.get("b1")
				b.Name = "Renamed by the dispatcher"
				h.dv.put(b)
				h.syncBooking("b1")
				h.cal.mu.Lock()
				h.cal.reads, h.cal.writes = 0, 0
				h.cal.mu.Unlock()
				h.dv.mu.Lock()
				h.dv.writes = 0
				h.dv.mu.Unlock()
				return l, ev
			},
			reads: 1,
			check: func(h *harness) string {
				if w := h.writes(); w != 0 {
					return "the stale copy caused writes"
				}
				if b := h.dv.get("b1"); !b.Start.Equal(start.Add(2 * time.Hour)) {
					return "booking lost the move"
				}
				return ""
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.booking("b1", "res-1", start)
			h.syncBooking("b1")
			h.cal.mu.Lock()
			h.cal.reads, h.cal.writes = 0, 0
			h.cal.mu.Unlock()
			listed, ev := tc.setup(h)
			if _, err := h.eng.SyncListed(context.Background(), listed, ev); err != nil {
				t.Fatal(err)
			}
			if r, _, _ := h.cal.counts(); r != tc.reads {
				t.Errorf("engine read the event %d times, want %d", r, tc.reads)
			}
			if msg := tc.check(h); msg != "" {
				t.Error(msg)
			}
			// Whatever it did, a second look finds nothing to do.
			w0 := h.writes()
			l, ev2 := listing(h)
			if _, err := h.eng.SyncListed(context.Background(), l, ev2); err != nil {
				t.Fatal(err)
			}
			if h.writes() != w0 {
				t.Errorf("a second SyncListed wrote %d times", h.writes()-w0)
			}
		})
	}
}
