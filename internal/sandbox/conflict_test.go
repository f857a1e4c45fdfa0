package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/httpapi"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
	"github.com/bookingsync/bookingsync/internal/sync/outlook"
)

// pauseTriggers makes the emulated tenant drop every change notification
// and webhook, so both sides can change before the service sees either;
// resume delivers again (what was dropped stays lost: the test hands the
// changes to the service itself).
func pauseTriggers(t *testing.T, sb *Sandbox) (resume func()) {
	t.Helper()
	set := func(graph, dv string) {
		if err := sb.Emulator.Graph().SetFaults(json.RawMessage(graph)); err != nil {
			t.Fatal(err)
		}
		if err := sb.Emulator.Dataverse().SetFaults(json.RawMessage(dv)); err != nil {
			t.Fatal(err)
		}
	}
	set(`{"drop_notifications_rate": 1}`, `{"drop_webhooks_rate": 1}`)
	return func() { set(`{}`, `{}`) }
}

// pair is a linked booking and its event, with the times both sides are
// edited to: the booking moved by 1 h, the event by 3 h.
type pair struct {
	id, evID       string
	bStart, bEnd   time.Time // the booking's new times
	eStart, eEnd   time.Time // the event's new times
	origStart, end time.Time
}

// linkedPairs creates n linked bookings for tc and waits until each link
// records its event's current version (Outlook's own update after our
// create has been seen): nothing is in flight when the test pauses.
func linkedPairs(t *testing.T, sb *Sandbox, tc tech, n int) []pair {
	t.Helper()
	out := make([]pair, n)
	for i := range out {
		id, evID := linkedBooking(t, sb, tc, "Both sides")
		ev, _ := eventOf(t, sb, tc.mailbox, id)
		s, e := ev.Content.Start, ev.Content.End
		out[i] = pair{id: id, evID: evID, origStart: s, end: e,
			bStart: s.Add(time.Hour), bEnd: e.Add(time.Hour), eStart: s.Add(3 * time.Hour), eEnd: e.Add(3 * time.Hour)}
	}
	// Outlook's own update of a new event comes 500 ms after the create
	// (the emulator's extra_update_delay_ms): let it happen before the
	// link can be seen settled, or it lands after the test's edits and
	// makes the event look newer than it is.
	time.Sleep(700 * time.Millisecond)
	st := sb.Service.Store
	for _, p := range out {
		waitFor(t, "link settled", func() (bool, error) {
			l, err := st.GetLink(context.Background(), st.DB(), p.id)
			if err != nil {
				return false, nil
			}
			ev, ok := p.event(t, sb, tc)
			return ok && l.EventETag == ev.ETag, nil
		})
	}
	return out
}

// event reads the pair's event by its id (ok false: deleted).
func (p pair) event(t *testing.T, sb *Sandbox, tc tech) (*bsync.Event, bool) {
	t.Helper()
	ev, err := outlook.New(sb.Service.Graph, outlook.Options{}).Get(context.Background(), tc.mailbox, p.evID)
	if errors.Is(err, outlook.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return ev, true
}

func (p pair) editBooking(t *testing.T, sb *Sandbox) {
	t.Helper()
	updateRow(t, sb, dataverse.SetBookings, p.id, map[string]any{"starttime": p.bStart.UTC().Format(time.RFC3339),
		"endtime": p.bEnd.UTC().Format(time.RFC3339), "duration": int(p.bEnd.Sub(p.bStart).Minutes())})
}

func (p pair) editEvent(t *testing.T, sb *Sandbox, tc tech) {
	t.Helper()
	moveEvent(t, sb, tc.mailbox, p.evID, p.eStart, p.eEnd)
}

// trigger hands both sides' changes to the service as its two inputs
// would: the booking's (what a webhook or the change-tracking poll gives
// the engine), then the event's notification. The booking side goes first
// on purpose: it is the trigger that does not carry the event.
func (p pair) trigger(t *testing.T, sb *Sandbox, tc tech, changeType string) {
	t.Helper()
	ctx := context.Background()
	if _, err := sb.Service.Engine.SyncBooking(ctx, p.id, 0); err != nil {
		t.Fatalf("sync booking: %v", err)
	}
	if _, err := sb.Service.Engine.SyncEvent(ctx, tc.mailbox, p.evID, "", changeType); err != nil {
		t.Fatalf("sync event: %v", err)
	}
}

// starts reads the booking's start and its event's (ok: it has one).
func (p pair) starts(t *testing.T, sb *Sandbox, tc tech) (booking, event time.Time, ok bool) {
	t.Helper()
	b, found := getBooking(t, sb, p.id)
	if !found {
		t.Fatalf("booking %s gone", p.id)
	}
	ev, ok := p.event(t, sb, tc)
	if !ok {
		return b.StartTime, time.Time{}, false
	}
	return b.StartTime, ev.Content.Start, true
}

// expectStarts waits until the booking starts at b and its event at e.
func (p pair) expectStarts(t *testing.T, sb *Sandbox, tc tech, what string, b, e time.Time) {
	t.Helper()
	waitFor(t, what, func() (bool, error) {
		gb, ge, ok := p.starts(t, sb, tc)
		return ok && gb.Equal(b) && ge.Equal(e), nil
	})
}

func conflictsVia(t *testing.T, sb *Sandbox, path string) []httpapi.Conflict {
	t.Helper()
	var out struct {
		Conflicts []httpapi.Conflict `json:"conflicts"`
	}
	adminCall(t, sb, http.MethodGet, path, &out)
	return out.Conflicts
}

// TestConflictPolicies: both sides edited between two syncs (a booking's
// times in Dataverse, its event's times in Outlook, to different values),
// then both changes reach the service: each conflict policy's outcome end
// to end, and for the default policy change versus delete both ways. One
// sandbox per policy (the policy is configuration), several bookings each.
func TestConflictPolicies(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Run("d365_wins (default), with change versus delete", func(t *testing.T) {
		t.Parallel()
		sb := startWith(t)
		a := technicians(t, sb)[0]
		optIn(t, sb, a)
		ps := linkedPairs(t, sb, a, 3)
		moved, eventDeleted, bookingDeleted := ps[0], ps[1], ps[2]
		ctx := context.Background()

		resume := pauseTriggers(t, sb)
		moved.editBooking(t, sb)
		moved.editEvent(t, sb, a)
		eventDeleted.editBooking(t, sb)
		if err := sb.Service.Graph.DeleteEvent(ctx, a.mailbox, eventDeleted.evID); err != nil {
			t.Fatal(err)
		}
		bookingDeleted.editEvent(t, sb, a)
		if err := sb.Service.Dataverse.Delete(ctx, dataverse.SetBookings, bookingDeleted.id, "*"); err != nil {
			t.Fatal(err)
		}
		resume()
		moved.trigger(t, sb, a, "updated")
		eventDeleted.trigger(t, sb, a, "deleted")
		bookingDeleted.trigger(t, sb, a, "updated")

		// C1: the event gets the booking's times.
		moved.expectStarts(t, sb, a, "D365's times on both sides", moved.bStart, moved.bStart)
		// C6: the event is created again, at the booking's new times; the
		// booking is not canceled.
		waitFor(t, "event created again", func() (bool, error) {
			ev, ok := eventOf(t, sb, a.mailbox, eventDeleted.id)
			return ok && ev.ID != eventDeleted.evID && ev.Content.Start.Equal(eventDeleted.bStart), nil
		})
		if !bookingStatusIs(t, sb, eventDeleted.id, "Scheduled") {
			t.Error("C6: the booking was canceled although D365 wins")
		}
		// D1: the edited event of the deleted booking is deleted.
		waitFor(t, "event of the deleted booking deleted", func() (bool, error) {
			_, ok := bookingDeleted.event(t, sb, a)
			return !ok, nil
		})
		if l, err := sb.Service.Store.GetLink(ctx, sb.Service.Store.DB(), bookingDeleted.id); err == nil {
			t.Errorf("D1: link left behind: %+v", l)
		}
		quiet(t)
		moved.expectStarts(t, sb, a, "still D365's times after quiet", moved.bStart, moved.bStart)
	})

	t.Run("outlook_wins", func(t *testing.T) {
		t.Parallel()
		sb := startWith(t, "BOOKINGSYNC_SYNC_CONFLICT=outlook_wins")
		a := technicians(t, sb)[0]
		optIn(t, sb, a)
		p := linkedPairs(t, sb, a, 1)[0]
		resume := pauseTriggers(t, sb)
		p.editBooking(t, sb)
		p.editEvent(t, sb, a)
		resume()
		p.trigger(t, sb, a, "updated")
		p.expectStarts(t, sb, a, "Outlook's times on both sides", p.eStart, p.eStart)
		quiet(t)
		p.expectStarts(t, sb, a, "still Outlook's times after quiet", p.eStart, p.eStart)
	})

	t.Run("newest_wins", func(t *testing.T) {
		t.Parallel()
		sb := startWith(t, "BOOKINGSYNC_SYNC_CONFLICT=newest_wins")
		a := technicians(t, sb)[0]
		optIn(t, sb, a)
		ps := linkedPairs(t, sb, a, 2)
		outlookLast, d365Last := ps[0], ps[1]
		resume := pauseTriggers(t, sb)
		outlookLast.editBooking(t, sb)
		d365Last.editEvent(t, sb, a)
		time.Sleep(1100 * time.Millisecond) // modifiedon has whole seconds
		outlookLast.editEvent(t, sb, a)
		d365Last.editBooking(t, sb)
		resume()
		outlookLast.trigger(t, sb, a, "updated")
		d365Last.trigger(t, sb, a, "updated")
		outlookLast.expectStarts(t, sb, a, "the later Outlook edit wins", outlookLast.eStart, outlookLast.eStart)
		d365Last.expectStarts(t, sb, a, "the later D365 edit wins", d365Last.bStart, d365Last.bStart)
		quiet(t)
		outlookLast.expectStarts(t, sb, a, "after quiet", outlookLast.eStart, outlookLast.eStart)
		d365Last.expectStarts(t, sb, a, "after quiet", d365Last.bStart, d365Last.bStart)
	})

	t.Run("manual, then resolved", func(t *testing.T) {
		t.Parallel()
		sb := startWith(t, "BOOKINGSYNC_SYNC_CONFLICT=manual")
		a := technicians(t, sb)[0]
		optIn(t, sb, a)
		ps := linkedPairs(t, sb, a, 3)
		resume := pauseTriggers(t, sb)
		for _, p := range ps {
			p.editBooking(t, sb)
			p.editEvent(t, sb, a)
		}
		resume()
		for _, p := range ps {
			p.trigger(t, sb, a, "updated")
		}
		// Nothing written: each side keeps its own edit; the admin API
		// and the status list the conflicts.
		for _, p := range ps {
			p.expectStarts(t, sb, a, "each side keeps its edit", p.bStart, p.eStart)
		}
		cs := conflictsVia(t, sb, "/api/v1/conflicts")
		if len(cs) != len(ps) {
			t.Fatalf("GET /api/v1/conflicts = %+v, want %d", cs, len(ps))
		}
		for i, c := range cs {
			if c.BookingID != ps[i].id || c.Rule != "C5" || c.Mailbox != a.mailbox || c.EventID != ps[i].evID || c.ResolvedAt != nil {
				t.Errorf("conflict %d = %+v, want an open C5 of booking %s", i, c, ps[i].id)
			}
		}
		if n := len(conflictsVia(t, sb, "/api/v1/status")); n != len(ps) {
			t.Errorf("status lists %d conflicts, want %d", n, len(ps))
		}

		// Resolved through the admin API: keeping D365 writes the booking's
		// times to the event, keeping Outlook the event's to the booking.
		open, keepD365, keepOutlook := ps[0], ps[1], ps[2]
		for _, r := range []struct {
			p    pair
			keep string
			want time.Time
		}{{keepD365, "d365", keepD365.bStart}, {keepOutlook, "outlook", keepOutlook.eStart}} {
			var res httpapi.ConflictResolution
			adminCall(t, sb, http.MethodPost, "/api/v1/conflicts/resolve?booking="+r.p.id+"&keep="+r.keep, &res)
			if res.Resolution != r.keep+" kept by admin" || res.Writes != 1 {
				t.Errorf("resolve keeping %s = %+v, want one write", r.keep, res)
			}
			r.p.expectStarts(t, sb, a, r.keep+" kept", r.want, r.want)
		}
		if cs := conflictsVia(t, sb, "/api/v1/conflicts"); len(cs) != 1 || cs[0].BookingID != open.id {
			t.Errorf("open conflicts after resolving two = %+v, want only booking %s", cs, open.id)
		}
		if all := conflictsVia(t, sb, "/api/v1/conflicts?all=1"); len(all) != 3 {
			t.Errorf("all conflicts = %d, want 3 (resolved ones are kept)", len(all))
		}
		quiet(t)
		open.expectStarts(t, sb, a, "the open conflict still untouched", open.bStart, open.eStart)
		keepD365.expectStarts(t, sb, a, "after quiet", keepD365.bStart, keepD365.bStart)
		keepOutlook.expectStarts(t, sb, a, "after quiet", keepOutlook.eStart, keepOutlook.eStart)
		if cs := conflictsVia(t, sb, "/api/v1/conflicts"); len(cs) != 1 {
			t.Errorf("after quiet: %d open conflicts, want 1 (the echoes of the resolutions opened none)", len(cs))
		}
	})
}

// quiet gives the echoes of what the service wrote time to arrive.
func quiet(t *testing.T) {
	t.Helper()
	time.Sleep(time.Second)
}
