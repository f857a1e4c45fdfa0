package sync

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/config"
)

var now = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func testRenderer(t *testing.T) *Renderer {
	t.Helper()
	c := config.Templates{Subject: config.DefaultSubjectTemplate, Body: config.DefaultBodyTemplate, Location: config.DefaultLocationTemplate}
	r, err := NewRenderer(c, "https://org.example.test")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// outlookWrap is what Outlook does to the HTML we send: wrap and re-indent.
func outlookWrap(c Content) Content {
	c.Body = "<html><head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n" +
		"<style>p {margin:0}</style></head>\r\n<body>\r\n<div>" + strings.ReplaceAll(c.Body, "<br>\n", "<br>\r\n") +
		"</div>\r\n</body>\r\n</html>\r\n"
	return c
}

// fixture is one consistent world: a committed booking of an enrolled
// resource, linked to an event that shows it, as the engine records it.
type fixture struct {
	t         *testing.T
	r         *Renderer
	policy    Policy
	booking   *Booking
	resource  *Resource
	link      *Link
	event     *Event
	fetched   bool
	noDesired bool
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, r: testRenderer(t), policy: DefaultPolicy()}
	start := now.Add(24 * time.Hour)
	f.booking = &Booking{ID: "b1", Version: 10, ETag: `W/"10"`, Name: "Repair boiler", Start: start, End: start.Add(2 * time.Hour),
		Status: StatusCommitted, StatusName: "Scheduled", Active: true, ResourceID: "r1", ModifiedOn: now.Add(-3 * time.Hour),
		WorkOrder: &WorkOrder{ID: "wo1", Number: "WO-00123", Customer: "Contoso Ltd", IncidentType: "Repair boiler",
			Instructions: "Ring twice", Street1: "1 Main St", City: "Springfield"}}
	f.resource = &Resource{ID: "r1", Name: "Alex", Mailbox: "mb1", OptedIn: true}
	d := f.render()
	f.event = &Event{ID: "ev1", Mailbox: "mb1", ChangeKey: "ck1", ETag: `W/"ck1"`, BookingID: "b1", Content: outlookWrap(d),
		Sensitivity: "normal", Type: EventSingleInstance, LastModified: now.Add(-2 * time.Hour)}
	f.link = &Link{BookingID: "b1", ResourceID: "r1", Mailbox: "mb1", EventID: "ev1", BookingVersion: 10,
		BookingHash: ContentHash(d), EventChangeKey: "ck1", EventETag: `W/"ck1"`, EventHash: ContentHash(f.event.Content),
		AgreedStart: d.Start, AgreedEnd: d.End, Version: 3}
	return f
}

func (f *fixture) render() Content {
	c, err := f.r.Render(*f.booking, *f.resource, f.policy)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// d365 edits the booking as a dispatcher would.
func (f *fixture) d365(edit func(*Booking)) {
	edit(f.booking)
	f.booking.Version++
	f.booking.ModifiedOn = now.Add(-time.Hour)
}

// outlook edits the event as a technician would; the event is then read.
func (f *fixture) outlook(edit func(*Content)) {
	edit(&f.event.Content)
	f.event.ChangeKey += "x"
	f.event.ETag = `W/"` + f.event.ChangeKey + `"`
	f.event.LastModified = now.Add(-30 * time.Minute)
	f.fetched = true
}

func (f *fixture) outlookDeleted() { f.event, f.fetched = nil, true }

func (f *fixture) outlookCreated() {
	f.link, f.booking = nil, nil
	f.event = &Event{ID: "ev9", Mailbox: "mb1", ChangeKey: "ck9", ETag: `W/"ck9"`, Sensitivity: "normal", Type: EventSingleInstance,
		Content: Content{Subject: "Dentist", Body: "<html><body>secret</body></html>", Start: now.Add(5 * time.Hour),
			End: now.Add(6 * time.Hour), ShowAs: "busy"}, LastModified: now}
	f.fetched = true
}

func (f *fixture) input() Input {
	in := Input{Now: now, Policy: f.policy, Link: f.link, Booking: f.booking, Resource: f.resource, Event: f.event, EventFetched: f.fetched}
	if f.booking != nil && !f.noDesired {
		d := f.render()
		in.Desired = &d
	}
	return in
}

func hour(n int) time.Duration { return time.Duration(n) * time.Hour }

type decideCase struct {
	rule, variant string
	setup         func(f *fixture)
	kinds         []ActionKind
	link          LinkOp
	conflict      bool
	check         func(t *testing.T, f *fixture, p Plan)
}

func (c decideCase) name() string {
	if c.variant == "" {
		return c.rule
	}
	return c.rule + "/" + c.variant
}

var none []ActionKind

func decideCases() []decideCase {
	moveOutlook := func(f *fixture) {
		f.outlook(func(c *Content) { c.Start, c.End = c.Start.Add(hour(1)), c.End.Add(hour(1)) })
	}
	moveD365 := func(f *fixture) {
		f.d365(func(b *Booking) { b.Start, b.End = b.Start.Add(hour(2)), b.End.Add(hour(2)) })
	}
	return []decideCase{
		{rule: "R3", setup: func(f *fixture) {
			f.outlook(func(*Content) {})
			f.event.Type, f.event.SeriesMasterID = EventOccurrence, "ev1"
		}, kinds: none, link: LinkKeep},
		{rule: "U1", setup: func(f *fixture) { f.link.Detached = true; moveOutlook(f) }, kinds: none, link: LinkKeep},
		{rule: "U2", setup: func(f *fixture) { f.link.Detached = true; f.booking = nil; f.outlookDeleted() }, kinds: none, link: LinkDelete},
		{rule: "R1", setup: func(f *fixture) {
			f.outlookCreated()
			f.event.Type = EventSeriesMaster
			f.policy.OnOutlookCreate = OnOutlookCreateCreateBooking
		}, kinds: none, link: LinkKeep},
		{rule: "R4", setup: func(f *fixture) {
			f.link.Origin = OriginOutlook
			f.outlook(func(*Content) {})
			f.event.Type = EventSeriesMaster
		}, kinds: []ActionKind{Warn}, link: LinkDetach},
		{rule: "R2", setup: func(f *fixture) {
			f.outlook(func(*Content) {})
			f.event.Type = EventSeriesMaster
		}, kinds: []ActionKind{Warn, DeleteEvent, CreateEvent}, link: LinkSave,
			check: func(t *testing.T, f *fixture, p Plan) {
				if a := p.Actions[1]; a.EventID != "ev1" || a.Mailbox != "mb1" {
					t.Errorf("deletes %s/%s, want mb1/ev1", a.Mailbox, a.EventID)
				}
			}},
		{rule: "R2", variant: "out of scope", setup: func(f *fixture) {
			f.outlook(func(*Content) {})
			f.event.Type = EventSeriesMaster
			f.d365(func(b *Booking) { b.Active = false })
		}, kinds: []ActionKind{Warn, DeleteEvent}, link: LinkDelete},
		{rule: "N1", setup: func(f *fixture) { f.outlookCreated() }, kinds: none, link: LinkKeep},
		{rule: "N2", variant: "resource unknown", setup: func(f *fixture) {
			f.outlookCreated()
			f.policy.OnOutlookCreate = OnOutlookCreateCreateBooking
			f.resource = nil
		}, kinds: none, link: LinkKeep},
		{rule: "N2", variant: "free", setup: func(f *fixture) {
			f.outlookCreated()
			f.policy.OnOutlookCreate = OnOutlookCreateCreateBooking
			f.event.Content.ShowAs = "free"
		}, kinds: none, link: LinkKeep},
		{rule: "N2", variant: "outside window", setup: func(f *fixture) {
			f.outlookCreated()
			f.policy.OnOutlookCreate = OnOutlookCreateCreateBooking
			f.event.Content.Start, f.event.Content.End = now.Add(hour(24*100)), now.Add(hour(24*100+1))
		}, kinds: none, link: LinkKeep},
		{rule: "N3", setup: func(f *fixture) {
			f.outlookCreated()
			f.policy.OnOutlookCreate = OnOutlookCreateCreateBooking
		}, kinds: []ActionKind{CreateBooking}, link: LinkSave, check: func(t *testing.T, f *fixture, p Plan) {
			a := p.Actions[0]
			if a.Content.Subject != "Dentist" || !a.Start.Equal(now.Add(5*time.Hour)) || !a.End.Equal(now.Add(6*time.Hour)) {
				t.Errorf("create booking %+v", a)
			}
		}},
		{rule: "N3", variant: "private", setup: func(f *fixture) {
			f.outlookCreated()
			f.policy.OnOutlookCreate = OnOutlookCreateCreateBooking
			f.event.Sensitivity = "private"
		}, kinds: []ActionKind{CreateBooking}, link: LinkSave, check: func(t *testing.T, f *fixture, p Plan) {
			a := p.Actions[0]
			if a.Content.Subject != "Private appointment" || a.Content.Body != "" || a.Content.Location != "" ||
				strings.Contains(p.Reason, "Dentist") || strings.Contains(a.Reason, "Dentist") {
				t.Errorf("private event leaked: %+v / %q", a, p.Reason)
			}
		}},
		{rule: "X1", setup: func(f *fixture) { f.link, f.booking = nil, nil; f.fetched = true }, kinds: []ActionKind{DeleteEvent}, link: LinkKeep},
		{rule: "X1", variant: "pending create, booking deleted", setup: func(f *fixture) {
			f.link.EventID, f.booking, f.fetched = "", nil, true
		}, kinds: []ActionKind{DeleteEvent}, link: LinkDelete},
		{rule: "X2", setup: func(f *fixture) { f.link.EventID, f.booking = "", nil; f.outlookDeleted() }, kinds: none, link: LinkDelete},
		{rule: "Z1", setup: func(f *fixture) { f.link, f.event, f.booking = nil, nil, nil }, kinds: none, link: LinkKeep},
		{rule: "Z1", variant: "canceled before it had an event", setup: func(f *fixture) {
			f.link, f.event = nil, nil
			f.policy.OnCancel = OnCancelMark
			f.booking.Status = StatusCanceled
		}, kinds: none, link: LinkKeep},
		{rule: "E1", setup: func(f *fixture) { f.noDesired = true }, kinds: []ActionKind{Warn}, link: LinkKeep},
		{rule: "B1", setup: func(f *fixture) { f.link, f.event = nil, nil }, kinds: []ActionKind{CreateEvent}, link: LinkSave,
			check: func(t *testing.T, f *fixture, p Plan) {
				a := p.Actions[0]
				if a.Mailbox != "mb1" || a.BookingID != "b1" || a.Content != f.render() {
					t.Errorf("create %+v", a)
				}
			}},
		{rule: "B1", variant: "pending create found nothing", setup: func(f *fixture) { f.link.EventID = ""; f.outlookDeleted() },
			kinds: []ActionKind{CreateEvent}, link: LinkSave},
		{rule: "B4", setup: func(f *fixture) {
			f.link.EventID, f.fetched = "", true
			f.event.Mailbox = "mb0"
		}, kinds: []ActionKind{DeleteEvent, CreateEvent}, link: LinkSave, check: func(t *testing.T, f *fixture, p Plan) {
			if p.Actions[0].Mailbox != "mb0" || p.Actions[1].Mailbox != "mb1" {
				t.Errorf("actions %+v", p.Actions)
			}
		}},
		{rule: "B2", setup: func(f *fixture) { f.link.EventID, f.fetched = "", true }, kinds: none, link: LinkSave},
		{rule: "B3", setup: func(f *fixture) {
			f.link = nil
			f.outlook(func(c *Content) { c.Subject = "edited" })
		}, kinds: []ActionKind{UpdateEvent}, link: LinkSave, check: wantFields(FieldSubject)},
		{rule: "D2", setup: func(f *fixture) { f.booking = nil; f.outlookDeleted() }, kinds: none, link: LinkDelete},
		{rule: "D5", setup: func(f *fixture) { f.link.Origin = OriginOutlook; f.booking = nil }, kinds: none, link: LinkDetach},
		{rule: "D5", variant: "reassigned", setup: func(f *fixture) {
			f.link.Origin = OriginOutlook
			f.d365(func(b *Booking) { b.ResourceID = "r2" })
			f.resource = &Resource{ID: "r2", Mailbox: "mb2", OptedIn: true}
		}, kinds: none, link: LinkDetach},
		{rule: "D3", setup: func(f *fixture) {
			f.policy.Conflict = ConflictOutlookWins
			f.d365(func(b *Booking) { b.Active = false })
			moveOutlook(f)
		}, kinds: []ActionKind{Warn}, link: LinkDetach},
		{rule: "D3", variant: "newest wins, event newer", setup: func(f *fixture) {
			f.policy.Conflict = ConflictNewestWins
			f.d365(func(b *Booking) { b.Status = StatusCanceled })
			moveOutlook(f)
		}, kinds: []ActionKind{Warn}, link: LinkDetach},
		{rule: "D4", setup: func(f *fixture) {
			f.policy.Conflict = ConflictManual
			f.booking = nil
			moveOutlook(f)
		}, kinds: none, link: LinkKeep, conflict: true},
		{rule: "D1", variant: "deleted", setup: func(f *fixture) { f.booking = nil }, kinds: []ActionKind{DeleteEvent}, link: LinkDelete,
			check: func(t *testing.T, f *fixture, p Plan) {
				if a := p.Actions[0]; a.Mailbox != "mb1" || a.EventID != "ev1" {
					t.Errorf("delete %+v", a)
				}
			}},
		{rule: "D1", variant: "inactive", setup: func(f *fixture) { f.d365(func(b *Booking) { b.Active = false }) },
			kinds: []ActionKind{DeleteEvent}, link: LinkDelete},
		{rule: "D1", variant: "canceled", setup: func(f *fixture) { f.d365(func(b *Booking) { b.Status = StatusCanceled }) },
			kinds: []ActionKind{DeleteEvent}, link: LinkDelete},
		{rule: "D1", variant: "left the window", setup: func(f *fixture) {
			f.booking.Start, f.booking.End = now.Add(-hour(24*8)), now.Add(-hour(24*8-2))
		}, kinds: []ActionKind{DeleteEvent}, link: LinkDelete},
		{rule: "D6", variant: "resource opted out", setup: func(f *fixture) { f.resource.OptedIn = false },
			kinds: none, link: LinkKeep},
		{rule: "D6", variant: "resource lost its mailbox", setup: func(f *fixture) { f.resource.Mailbox = "" },
			kinds: none, link: LinkKeep},
		{rule: "D1", variant: "reassigned to a resource not enrolled", setup: func(f *fixture) {
			f.d365(func(b *Booking) { b.ResourceID = "r2" })
			f.resource = &Resource{ID: "r2", Mailbox: "mb2"}
		}, kinds: []ActionKind{DeleteEvent}, link: LinkDelete},
		{rule: "D1", variant: "no work order", setup: func(f *fixture) {
			f.policy.RequireWorkOrder = true
			f.d365(func(b *Booking) { b.WorkOrder = nil })
		}, kinds: []ActionKind{DeleteEvent}, link: LinkDelete},
		{rule: "D1", variant: "removed vs edited, d365 wins", setup: func(f *fixture) {
			f.booking = nil
			moveOutlook(f)
		}, kinds: []ActionKind{DeleteEvent}, link: LinkDelete},
		{rule: "B5", setup: func(f *fixture) {
			f.d365(func(b *Booking) { b.ResourceID = "r2" })
			f.resource = &Resource{ID: "r2", Name: "Sam", Mailbox: "mb2", OptedIn: true}
		}, kinds: []ActionKind{DeleteEvent, CreateEvent}, link: LinkSave, check: func(t *testing.T, f *fixture, p Plan) {
			if p.Actions[0].Mailbox != "mb1" || p.Actions[0].EventID != "ev1" || p.Actions[1].Mailbox != "mb2" {
				t.Errorf("actions %+v", p.Actions)
			}
		}},
		{rule: "C8", setup: func(f *fixture) {
			f.policy.Conflict = ConflictManual
			moveD365(f)
			f.outlookDeleted()
		}, kinds: none, link: LinkKeep, conflict: true},
		{rule: "C7", setup: func(f *fixture) {
			f.policy.Conflict = ConflictOutlookWins
			moveD365(f)
			f.outlookDeleted()
		}, kinds: []ActionKind{CancelBooking}, link: LinkDelete},
		{rule: "C6", setup: func(f *fixture) { moveD365(f); f.outlookDeleted() }, kinds: []ActionKind{CreateEvent}, link: LinkSave},
		{rule: "O5", setup: func(f *fixture) {
			f.policy.OnOutlookDelete = OnOutlookDeleteRecreateEvent
			f.outlookDeleted()
		}, kinds: []ActionKind{CreateEvent}, link: LinkSave},
		{rule: "O6", setup: func(f *fixture) {
			f.policy.OnOutlookDelete = OnOutlookDeleteUnlink
			f.outlookDeleted()
		}, kinds: none, link: LinkDetach},
		{rule: "O4", setup: func(f *fixture) { f.outlookDeleted() }, kinds: []ActionKind{CancelBooking}, link: LinkDelete,
			check: func(t *testing.T, f *fixture, p Plan) {
				if a := p.Actions[0]; a.BookingID != "b1" || a.IfMatch != `W/"10"` {
					t.Errorf("cancel %+v", a)
				}
			}},
		{rule: "O4", variant: "already canceled (mark)", setup: func(f *fixture) {
			f.policy.OnCancel = OnCancelMark
			f.booking.Status = StatusCanceled // the link's hash is re-recorded below
			f.link.BookingHash = ContentHash(f.render())
			f.outlookDeleted()
		}, kinds: none, link: LinkDelete},
		{rule: "B6", setup: func(f *fixture) { f.d365(func(b *Booking) { b.WorkOrder.Customer = "Fabrikam" }) },
			kinds: []ActionKind{UpdateEvent}, link: LinkSave, check: wantFields(FieldSubject | FieldBody)},
		{rule: "B6", variant: "rescheduled", setup: moveD365, kinds: []ActionKind{UpdateEvent}, link: LinkSave,
			check: func(t *testing.T, f *fixture, p Plan) {
				a := p.Actions[0]
				wantFields(FieldTimes)(t, f, p)
				if a.IfMatch != `W/"ck1"` || !a.Content.Start.Equal(f.booking.Start) {
					t.Errorf("update %+v", a)
				}
			}},
		{rule: "B6", variant: "proposed to committed", setup: func(f *fixture) {
			f.booking.Status = StatusProposed
			f.link.BookingHash = ContentHash(f.render())
			f.event.Content.ShowAs = "tentative"
			f.link.EventHash = ContentHash(f.event.Content)
			f.d365(func(b *Booking) { b.Status = StatusCommitted })
		}, kinds: []ActionKind{UpdateEvent}, link: LinkSave, check: wantFields(FieldShowAs)},
		{rule: "B6", variant: "canceled, mark", setup: func(f *fixture) {
			f.policy.OnCancel = OnCancelMark
			f.d365(func(b *Booking) { b.Status, b.StatusName = StatusCanceled, "Canceled" })
		}, kinds: []ActionKind{UpdateEvent}, link: LinkSave, check: func(t *testing.T, f *fixture, p Plan) {
			wantFields(FieldSubject|FieldBody|FieldShowAs)(t, f, p)
			if c := p.Actions[0].Content; !strings.HasPrefix(c.Subject, "Canceled: ") || c.ShowAs != "free" {
				t.Errorf("content %+v", c)
			}
		}},
		{rule: "B6", variant: "event fetched", setup: func(f *fixture) {
			f.fetched = true
			f.d365(func(b *Booking) { b.WorkOrder.Instructions = "Side door" })
		}, kinds: []ActionKind{UpdateEvent}, link: LinkSave, check: wantFields(FieldBody)},
		{rule: "K1", setup: func(f *fixture) {}, kinds: none, link: LinkKeep},
		{rule: "K1", variant: "fetched echo", setup: func(f *fixture) { f.fetched = true }, kinds: none, link: LinkKeep},
		{rule: "K2", setup: func(f *fixture) { f.d365(func(b *Booking) { b.ModifiedOn = now }) }, kinds: none, link: LinkSave},
		{rule: "K2", variant: "event already shows it", setup: func(f *fixture) {
			f.d365(func(b *Booking) { b.WorkOrder.Customer = "Fabrikam" })
			f.link.EventHash = ContentHash(f.render())
		}, kinds: none, link: LinkSave},
		{rule: "K3", setup: func(f *fixture) {
			// Outlook's own update right after our create: new etag, re-wrapped body.
			f.outlook(func(c *Content) { c.Body = strings.ReplaceAll(c.Body, "<div>", "<div class=\"x\">\r\n  ") })
		}, kinds: none, link: LinkSave},
		{rule: "K3", variant: "both sides agree", setup: func(f *fixture) {
			moveD365(f)
			f.outlook(func(c *Content) { c.Start, c.End = f.booking.Start, f.booking.End })
		}, kinds: none, link: LinkSave},
		{rule: "C5", setup: func(f *fixture) { f.policy.Conflict = ConflictManual; moveD365(f); moveOutlook(f) },
			kinds: none, link: LinkKeep, conflict: true},
		{rule: "C1", setup: func(f *fixture) { moveD365(f); moveOutlook(f) }, kinds: []ActionKind{UpdateEvent}, link: LinkSave,
			check: func(t *testing.T, f *fixture, p Plan) {
				wantFields(FieldTimes)(t, f, p)
				if !p.Actions[0].Content.Start.Equal(f.booking.Start) {
					t.Errorf("event start %v, want the booking's %v", p.Actions[0].Content.Start, f.booking.Start)
				}
			}},
		{rule: "C2", setup: func(f *fixture) { f.policy.Conflict = ConflictOutlookWins; moveD365(f); moveOutlook(f) },
			kinds: []ActionKind{UpdateBookingTimes}, link: LinkSave, check: wantBookingTimes},
		{rule: "C2", variant: "with a D365 text change", setup: func(f *fixture) {
			f.policy.Conflict = ConflictOutlookWins
			f.d365(func(b *Booking) { b.Start = b.Start.Add(hour(2)); b.WorkOrder.Customer = "Fabrikam" })
			moveOutlook(f)
		}, kinds: []ActionKind{UpdateBookingTimes, UpdateEvent}, link: LinkSave, check: wantFields(FieldSubject | FieldBody)},
		{rule: "C3", setup: func(f *fixture) { f.policy.Conflict = ConflictNewestWins; moveD365(f); moveOutlook(f) },
			kinds: []ActionKind{UpdateBookingTimes}, link: LinkSave, check: wantBookingTimes},
		{rule: "C4", setup: func(f *fixture) {
			f.policy.Conflict = ConflictNewestWins
			moveOutlook(f)
			moveD365(f)
			f.booking.ModifiedOn = now.Add(-time.Minute)
		}, kinds: []ActionKind{UpdateEvent}, link: LinkSave, check: wantFields(FieldTimes)},
		{rule: "O1", setup: moveOutlook, kinds: []ActionKind{UpdateBookingTimes}, link: LinkSave, check: wantBookingTimes},
		{rule: "O1", variant: "resized, only end may change", setup: func(f *fixture) {
			f.policy.OutlookMayChange = FieldEnd
			f.outlook(func(c *Content) { c.End = c.End.Add(30 * time.Minute) })
		}, kinds: []ActionKind{UpdateBookingTimes}, link: LinkSave, check: wantBookingTimes},
		{rule: "O1", variant: "Outlook-created booking", setup: func(f *fixture) {
			f.link.Origin = OriginOutlook
			f.policy.OutlookMayChange = 0
			moveOutlook(f)
		}, kinds: []ActionKind{UpdateBookingTimes}, link: LinkSave},
		{rule: "O2", setup: func(f *fixture) { f.outlook(func(c *Content) { c.Subject, c.ShowAs = "mine", "free" }) },
			kinds: []ActionKind{UpdateEvent}, link: LinkSave, check: func(t *testing.T, f *fixture, p Plan) {
				wantFields(FieldSubject|FieldShowAs)(t, f, p)
				if c := p.Actions[0].Content; c.Subject != f.render().Subject {
					t.Errorf("reverted subject %q", c.Subject)
				}
			}},
		{rule: "O2", variant: "times owned", setup: func(f *fixture) { f.policy.OutlookMayChange = 0; moveOutlook(f) },
			kinds: []ActionKind{UpdateEvent}, link: LinkSave, check: wantFields(FieldTimes)},
		{rule: "O2", variant: "zero duration is no move", setup: func(f *fixture) {
			f.outlook(func(c *Content) { c.End = c.Start })
		}, kinds: []ActionKind{UpdateEvent}, link: LinkSave, check: wantFields(FieldEnd)},
		{rule: "O3", setup: func(f *fixture) {
			f.policy.RevertOwnedFields = false
			f.outlook(func(c *Content) { c.Location = "Back entrance" })
		}, kinds: none, link: LinkSave},
		{rule: "M1", setup: func(f *fixture) {
			f.d365(func(b *Booking) { b.WorkOrder.Customer = "Fabrikam" })
			f.outlook(func(c *Content) { c.Start, c.End, c.Location = c.Start.Add(hour(1)), c.End.Add(hour(1)), "elsewhere" })
		}, kinds: []ActionKind{UpdateBookingTimes, UpdateEvent}, link: LinkSave, check: func(t *testing.T, f *fixture, p Plan) {
			wantFields(FieldSubject|FieldBody|FieldLocation)(t, f, p)
			wantBookingTimes(t, f, p)
		}},
		{rule: "B6", variant: "Outlook-created booking", setup: func(f *fixture) {
			f.link.Origin = OriginOutlook
			f.d365(func(b *Booking) { b.End = b.End.Add(hour(1)) })
			f.outlook(func(c *Content) { c.Subject = "my own" }) // the user's text: not synced
		}, kinds: []ActionKind{UpdateEvent}, link: LinkSave, check: wantFields(FieldEnd)},
	}
}

func wantFields(want FieldSet) func(t *testing.T, f *fixture, p Plan) {
	return func(t *testing.T, f *fixture, p Plan) {
		t.Helper()
		for _, a := range p.Actions {
			if a.Kind == UpdateEvent && a.Fields != want {
				t.Errorf("update fields %v, want %v", a.Fields, want)
			}
		}
	}
}

// wantBookingTimes: the booking gets the event's times.
func wantBookingTimes(t *testing.T, f *fixture, p Plan) {
	t.Helper()
	for _, a := range p.Actions {
		if a.Kind == UpdateBookingTimes {
			if !a.Start.Equal(f.event.Content.Start) || !a.End.Equal(f.event.Content.End) || a.BookingID != "b1" {
				t.Errorf("booking times %v–%v, want the event's %v–%v", a.Start, a.End, f.event.Content.Start, f.event.Content.End)
			}
			return
		}
	}
	t.Error("no UpdateBookingTimes")
}

func kinds(p Plan) []ActionKind {
	var ks []ActionKind
	for _, a := range p.Actions {
		ks = append(ks, a.Kind)
	}
	return ks
}

func TestDecide(t *testing.T) {
	for _, c := range decideCases() {
		t.Run(c.name(), func(t *testing.T) {
			f := newFixture(t)
			c.setup(f)
			p := Decide(f.input())
			if p.Rule != c.rule {
				t.Fatalf("rule %s (%s), want %s", p.Rule, p.Reason, c.rule)
			}
			if !slices.Equal(kinds(p), c.kinds) || p.Link != c.link || p.Conflict != c.conflict {
				t.Fatalf("actions %v link %s conflict %v, want %v %s %v (%s)", kinds(p), p.Link, p.Conflict, c.kinds, c.link, c.conflict, p.Reason)
			}
			if p.Reason == "" {
				t.Error("no reason")
			}
			if c.check != nil {
				c.check(t, f, p)
			}
		})
	}
}
