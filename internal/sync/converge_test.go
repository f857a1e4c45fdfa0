package sync

import (
	"testing"
	"time"
)

// apply performs a plan on the fixture's world the way the executor does,
// and records the link from what both sides hold afterwards (hashes of the
// rendered booking and of the event as stored).
func apply(t *testing.T, f *fixture, p Plan) {
	t.Helper()
	origin, created := OriginD365, false
	if f.link != nil {
		origin = f.link.Origin
	}
	for _, a := range p.Actions {
		switch a.Kind {
		case CreateEvent:
			f.event = &Event{ID: "ev-new", Mailbox: a.Mailbox, BookingID: a.BookingID, Content: outlookWrap(a.Content),
				ChangeKey: "n1", ETag: `W/"n1"`, Type: EventSingleInstance, LastModified: now}
			created = true
		case UpdateEvent:
			if f.event == nil || f.event.ID != a.EventID || f.event.Mailbox != a.Mailbox {
				t.Fatalf("update of an event that is not there: %+v", a)
			}
			f.event.Content = outlookWrap(ApplyFields(f.event.Content, a.Content, a.Fields))
			f.event.ChangeKey += "u"
			f.event.ETag = `W/"` + f.event.ChangeKey + `"`
		case DeleteEvent:
			if f.event != nil && f.event.ID == a.EventID {
				f.event = nil
			}
		case UpdateBookingTimes:
			f.booking.Start, f.booking.End = a.Start, a.End
			f.booking.Version++
		case CancelBooking:
			f.booking.Status, f.booking.StatusName = StatusCanceled, "Canceled"
			f.booking.Version++
		case CreateBooking:
			f.booking = &Booking{ID: "b-new", Version: 1, Name: a.Content.Subject, Start: a.Start, End: a.End,
				Status: StatusCommitted, Active: true, ResourceID: f.resource.ID}
			origin = OriginOutlook
		}
	}
	f.fetched = true
	switch p.Link {
	case LinkSave:
		d := f.render()
		f.link = &Link{BookingID: f.booking.ID, ResourceID: f.booking.ResourceID, Mailbox: f.event.Mailbox, EventID: f.event.ID,
			BookingVersion: f.booking.Version, BookingHash: ContentHash(d), EventChangeKey: f.event.ChangeKey,
			EventETag: f.event.ETag, EventHash: ContentHash(f.event.Content), AgreedStart: d.Start, AgreedEnd: d.End, Origin: origin}
	case LinkDelete:
		f.link = nil
	case LinkDetach:
		f.link.Detached = true
	}
	if created {
		// Outlook updates a new event once more on its own: new etag, same content.
		f.event.ChangeKey += "o"
		f.event.ETag = `W/"` + f.event.ChangeKey + `"`
	}
}

// TestDecideConverges: after any plan is applied and recorded, deciding
// again writes nothing. This is the no-ping-pong property: every write is
// recognised on the next round as the state both sides agreed on.
func TestDecideConverges(t *testing.T) {
	for _, c := range decideCases() {
		t.Run(c.name(), func(t *testing.T) {
			f := newFixture(t)
			c.setup(f)
			p := Decide(f.input())
			apply(t, f, p)
			for round := 2; round <= 3; round++ {
				p2 := Decide(f.input())
				for _, a := range p2.Actions {
					if a.Kind != Warn {
						t.Fatalf("round %d after %s: %s wants %v (%s)", round, p.Rule, p2.Rule, kinds(p2), p2.Reason)
					}
				}
				apply(t, f, p2)
			}
		})
	}
}

// TestDecideWindowMoves: the window pass alone (no booking change) brings a
// booking in and takes its event out again.
func TestDecideWindowMoves(t *testing.T) {
	f := newFixture(t)
	f.link, f.event = nil, nil
	f.booking.Start, f.booking.End = now.Add(91*24*time.Hour), now.Add(91*24*time.Hour+time.Hour)
	if p := Decide(f.input()); p.Rule != "Z1" {
		t.Fatalf("beyond the window: %s", p.Rule)
	}
	in := f.input()
	in.Now = now.Add(2 * 24 * time.Hour)
	if p := Decide(in); p.Rule != "B1" {
		t.Fatalf("entered the window: %s", p.Rule)
	}
	f = newFixture(t)
	in = f.input()
	in.Now = now.Add(9 * 24 * time.Hour)
	if p := Decide(in); p.Rule != "D1" {
		t.Fatalf("left the window: %s", p.Rule)
	}
}
