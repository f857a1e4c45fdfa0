package sync

import (
	"fmt"
	"strings"
	"time"
)

// Input is everything Decide looks at for one booking (or one unlinked
// Outlook event). The caller loads it; Decide reads no clock and does no I/O.
type Input struct {
	Now    time.Time
	Policy Policy
	// Link is the last agreed state; nil: none. A link with EventID == ""
	// is a create whose outcome is unknown (crash, timeout): the caller has
	// looked the event up by our extended property and put it in Event.
	Link *Link
	// Booking is the current booking; nil: deleted or not found.
	Booking *Booking
	// Resource is the booking's current resource (for an Outlook-created
	// event: the resource whose mailbox holds it); nil: unknown/not enrolled.
	Resource *Resource
	// Desired is Booking rendered by the caller (nil when Booking is nil).
	Desired *Content
	// Event is the linked event, or the event found by our property, or
	// the Outlook event that triggered the evaluation.
	Event *Event
	// EventFetched: Event was read just now (nil then means deleted). False
	// (a booking-side trigger): the event is assumed to be as the link
	// recorded it, and no Graph read was spent.
	EventFetched bool
}

// ActionKind names a write (or a warning) the executor performs.
type ActionKind string

// Action kinds.
const (
	CreateEvent        ActionKind = "create_event"         // Mailbox, BookingID, Content (all fields)
	UpdateEvent        ActionKind = "update_event"         // Mailbox, EventID, Fields of Content
	DeleteEvent        ActionKind = "delete_event"         // Mailbox, EventID
	UpdateBookingTimes ActionKind = "update_booking_times" // BookingID, Start, End (and duration)
	CancelBooking      ActionKind = "cancel_booking"       // BookingID → the configured Canceled status
	CreateBooking      ActionKind = "create_booking"       // Content.Subject is the name; Start, End; for Input.Resource
	Warn               ActionKind = "warn"                 // record Reason in the audit log; no write
)

// Action is one step of a plan.
type Action struct {
	Kind      ActionKind
	Mailbox   string
	EventID   string
	BookingID string
	Content   Content
	Fields    FieldSet // UpdateEvent: only these fields are written
	Start     time.Time
	End       time.Time
	// IfMatch is the version the write expects (event etag or booking
	// etag); a mismatch means "re-read and decide again".
	IfMatch string
	Reason  string
}

// LinkOp says what happens to the link row after the actions.
type LinkOp string

// Link operations.
const (
	LinkKeep LinkOp = "keep" // leave the row as it is
	// LinkSave records the state both sides now agree on: the versions and
	// hashes of the booking and event after the actions.
	LinkSave   LinkOp = "save"
	LinkDelete LinkOp = "delete"
	// LinkDetach keeps the row as a tombstone (Link.Detached): nothing is
	// synced for this booking any more, and it is not created again.
	LinkDetach LinkOp = "detach"
)

// Plan is Decide's answer.
type Plan struct {
	Rule     string   // the row of docs/sync-rules.md that decided, e.g. "B6"
	Reason   string   // one sentence for the audit log
	Actions  []Action // in execution order
	Link     LinkOp
	Conflict bool // conflict: manual left both sides as they are; record it
}

// Decide is the sync's decision core: given the last agreed state (link),
// the booking and the event, it says what to write. The rules are checked
// in the order below; each return names its row in docs/sync-rules.md.
func Decide(in Input) Plan {
	l, e := in.Link, in.Event
	linked := l != nil && l.EventID != ""
	target := ""
	if in.Resource != nil {
		target = in.Resource.Mailbox
	}
	scope := BookingScope(in.Booking, in.Resource, linked && l.Mailbox == target, in.Now, in.Policy)

	// Recurrence: bookings are single events. Occurrences are handled
	// through their master, which is the item notifications report.
	if e != nil && (e.Type == EventOccurrence || e.Type == EventException) {
		return keep("R3", "occurrence of a recurring series: only the series master is considered")
	}
	if l != nil && l.Detached {
		if in.Booking == nil && in.EventFetched && e == nil {
			return Plan{Rule: "U2", Reason: "detached link: booking and event both gone", Link: LinkDelete}
		}
		return keep("U1", "detached link: this booking is no longer synced")
	}
	ours := e != nil && (e.BookingID != "" || linked && e.ID == l.EventID)
	if e != nil && e.Type == EventSeriesMaster {
		return decideSeries(in, scope, target, ours)
	}
	if l == nil && in.Booking == nil && e != nil && e.BookingID == "" {
		return decideOutlookCreated(in)
	}
	if !linked {
		return decideUnlinked(in, scope, target)
	}
	return decideLinked(in, scope, target)
}

// decideSeries: a series master.
func decideSeries(in Input, scope Scope, target string, ours bool) Plan {
	l, e := in.Link, in.Event
	if !ours {
		return keep("R1", "recurring series not created by the sync: ignored")
	}
	if l != nil && l.Origin == OriginOutlook {
		return Plan{Rule: "R4", Reason: "the Outlook appointment behind an Outlook-created booking became a recurring series: detached",
			Actions: []Action{warn("Outlook appointment became a recurring series; booking no longer synced")}, Link: LinkDetach}
	}
	why := "the booking's event was turned into a recurring series in Outlook"
	acts := []Action{warn(why + "; replacing it with a single event"), deleteEvent(mailboxOf(e, l, target), e.ID, e.ETag)}
	if scope.In && in.Desired != nil {
		acts = append(acts, createEvent(target, in.Booking.ID, *in.Desired))
		return Plan{Rule: "R2", Reason: why + ": series deleted, single event created again", Actions: acts, Link: LinkSave}
	}
	return Plan{Rule: "R2", Reason: why + ": series deleted (" + scope.Reason + ")", Actions: acts, Link: linkDeleteIf(l != nil)}
}

// decideOutlookCreated: an event without our property and without a link.
func decideOutlookCreated(in Input) Plan {
	p, e, r := in.Policy, in.Event, in.Resource
	if p.OnOutlookCreate != OnOutlookCreateCreateBooking {
		return keep("N1", "event created in Outlook: ignored (on_outlook_create: ignore)")
	}
	why := ""
	switch {
	case e.IsCancelled:
		why = "it is canceled"
	case strings.EqualFold(e.Content.ShowAs, "free"):
		why = "it is shown as free"
	case r == nil || !r.OptedIn || r.Mailbox == "":
		why = "its mailbox belongs to no enrolled resource"
	case e.Mailbox != "" && e.Mailbox != r.Mailbox:
		why = "it is not in the resource's mailbox"
	case !e.Content.End.After(e.Content.Start):
		why = "it has no duration"
	case !overlaps(e.Content.Start, e.Content.End, in.Now, p):
		why = "it is outside the sync window"
	}
	if why != "" {
		return keep("N2", "event created in Outlook: no booking because "+why)
	}
	name := OutlookBookingName(*e, p)
	start, end := e.Content.Start.UTC(), e.Content.End.UTC()
	return Plan{Rule: "N3", Reason: "event created in Outlook: booking created (on_outlook_create: create_booking)",
		Actions: []Action{{Kind: CreateBooking, Mailbox: e.Mailbox, EventID: e.ID,
			Content: Content{Subject: name, Start: start, End: end}, Start: start, End: end}},
		Link: LinkSave}
}

// OutlookBookingName is the name of a booking created from an Outlook
// event: its subject, or PrivateBookingName for private and confidential
// events (their subject and body never reach Dynamics 365) and for events
// without a subject. At most 100 characters, the column's length.
func OutlookBookingName(e Event, p Policy) string {
	name := collapseSpace(e.Content.Subject)
	switch strings.ToLower(e.Sensitivity) {
	case "private", "confidential":
		name = ""
	}
	if name == "" {
		name = p.PrivateBookingName
	}
	if r := []rune(name); len(r) > 100 {
		name = string(r[:100])
	}
	return name
}

// decideUnlinked: no link, or a create whose outcome is unknown. Event, if
// any, carries our property (found by it).
func decideUnlinked(in Input, scope Scope, target string) Plan {
	l, e, b := in.Link, in.Event, in.Booking
	pending := l != nil
	if e != nil && e.BookingID == "" {
		e = nil // not ours: never adopt an event we did not create
	}
	if !scope.In {
		if e != nil {
			return Plan{Rule: "X1", Reason: "orphan event of a booking that is out of scope: " + scope.Reason,
				Actions: []Action{deleteEvent(mailboxOf(e, l, target), e.ID, e.ETag)}, Link: linkDeleteIf(pending)}
		}
		if pending {
			return Plan{Rule: "X2", Reason: "the unfinished create left no event and the booking is out of scope: " + scope.Reason, Link: LinkDelete}
		}
		return keep("Z1", "nothing to sync: "+scope.Reason)
	}
	if in.Desired == nil {
		return missingDesired(in)
	}
	d := *in.Desired
	if e == nil {
		return Plan{Rule: "B1", Reason: "booking in scope without an event: event created",
			Actions: []Action{createEvent(target, b.ID, d)}, Link: LinkSave}
	}
	if mb := mailboxOf(e, l, target); mb != target {
		return Plan{Rule: "B4", Reason: "the event found by our property is in another mailbox: moved to the resource's",
			Actions: []Action{deleteEvent(mb, e.ID, e.ETag), createEvent(target, b.ID, d)}, Link: LinkSave}
	}
	diff := Diff(e.Content, d)
	if diff == 0 {
		return Plan{Rule: "B2", Reason: "event found by our property already shows the booking: adopted", Link: LinkSave}
	}
	return Plan{Rule: "B3", Reason: "event found by our property adopted and updated (" + diff.String() + ")",
		Actions: []Action{updateEvent(target, e.ID, d, diff, e.ETag)}, Link: LinkSave}
}

// decideLinked: the booking has an event.
func decideLinked(in Input, scope Scope, target string) Plan {
	p, l, b, e := in.Policy, in.Link, in.Booking, in.Event
	fetched := in.EventFetched
	if e != nil && e.ID != l.EventID {
		e, fetched = nil, false // another event (a duplicate): say nothing about the linked one
	}
	eventGone := fetched && e == nil
	origin := l.Origin == OriginOutlook

	if !scope.In {
		switch {
		case eventGone:
			return Plan{Rule: "D2", Reason: "booking out of scope (" + scope.Reason + ") and its event already deleted", Link: LinkDelete}
		case scope.Unenrolled && b != nil && b.ResourceID == l.ResourceID:
			// Opting out stops the sync; it does not wipe the technician's
			// calendar. Opting in again resumes from this link.
			return keep("D6", "the resource no longer syncs: its event is left in Outlook and the link kept")
		case origin:
			return Plan{Rule: "D5", Reason: "booking created from an Outlook appointment is out of scope (" + scope.Reason + "): the appointment is left alone", Link: LinkDetach}
		case scope.Removed && fetched && ChangedFields(l.EventHash, e.Content) != 0:
			switch {
			case p.Conflict == ConflictOutlookWins,
				p.Conflict == ConflictNewestWins && b != nil && e.LastModified.After(b.ModifiedOn):
				return Plan{Rule: "D3", Reason: scope.Reason + " in D365 but edited in Outlook; Outlook wins (" + p.Conflict + "): event kept, link detached",
					Actions: []Action{warn(scope.Reason + " while its event was edited in Outlook: event kept, no longer synced")}, Link: LinkDetach}
			case p.Conflict == ConflictManual:
				return Plan{Rule: "D4", Reason: scope.Reason + " in D365 but edited in Outlook: left for a person (conflict: manual)",
					Link: LinkKeep, Conflict: true}
			}
		}
		return Plan{Rule: "D1", Reason: "booking out of scope (" + scope.Reason + "): event deleted",
			Actions: []Action{deleteEvent(l.Mailbox, l.EventID, l.EventETag)}, Link: LinkDelete}
	}
	if in.Desired == nil {
		return missingDesired(in)
	}
	d := *in.Desired
	if target != l.Mailbox {
		if origin {
			return Plan{Rule: "D5", Reason: "booking created from an Outlook appointment moved to another resource: the appointment is left alone", Link: LinkDetach}
		}
		var acts []Action
		if !eventGone {
			acts = append(acts, deleteEvent(l.Mailbox, l.EventID, l.EventETag))
		}
		acts = append(acts, createEvent(target, b.ID, d))
		return Plan{Rule: "B5", Reason: "booking reassigned: event moved to the new resource's calendar", Actions: acts, Link: LinkSave}
	}

	// Which fields each side owns here: for an Outlook-created booking only
	// the times are exchanged (the appointment's text is the user's).
	mask, may := AllFields, p.OutlookMayChange&FieldTimes
	if origin {
		mask, may = FieldTimes, FieldTimes
	}
	dChanged := ChangedFields(l.BookingHash, d) & mask
	if eventGone {
		return decideOutlookDeleted(in, d, dChanged)
	}
	if !fetched {
		// Booking-side trigger: the event is as recorded; write only the
		// changed fields the recorded event does not already show.
		w := dChanged & ChangedFields(l.EventHash, d)
		switch {
		case w != 0:
			return Plan{Rule: "B6", Reason: "booking changed: event updated (" + w.String() + ")",
				Actions: []Action{updateEvent(l.Mailbox, l.EventID, d, w, l.EventETag)}, Link: LinkSave}
		case dChanged == 0 && b.Version == l.BookingVersion:
			return keep("K1", "nothing changed since the link was recorded")
		}
		return Plan{Rule: "K2", Reason: "booking version changed, no synced field to write: new version recorded", Link: LinkSave}
	}

	oChanged := ChangedFields(l.EventHash, e.Content)
	if dChanged == 0 && oChanged == 0 {
		sameEvent := (e.ETag != "" && e.ETag == l.EventETag) || (e.ChangeKey != "" && e.ChangeKey == l.EventChangeKey)
		switch {
		case sameEvent && b.Version == l.BookingVersion:
			return keep("K1", "nothing changed since the link was recorded")
		case sameEvent:
			return Plan{Rule: "K2", Reason: "booking version changed, no synced field to write: new version recorded", Link: LinkSave}
		}
		return Plan{Rule: "K3", Reason: "event version changed, content unchanged: new version recorded", Link: LinkSave}
	}
	oMay := oChanged & may
	oOwned := oChanged &^ may & mask

	// The times Outlook proposes (only the fields it may change).
	ns, ne := d.Start, d.End
	if oMay.Has(FieldStart) {
		ns = e.Content.Start
	}
	if oMay.Has(FieldEnd) {
		ne = e.Content.End
	}
	if oMay != 0 && !ne.After(ns) {
		// An empty or inverted range is no move: treat it as an edit of an
		// owned field.
		oOwned |= oMay
		oMay, ns, ne = 0, d.Start, d.End
	}
	moved := Diff(Content{Start: ns, End: ne}, Content{Start: d.Start, End: d.End}) != 0

	var forced FieldSet // fields put back because D365 won a conflict
	rule, reason := "", ""
	if moved && dChanged&FieldTimes != 0 {
		var d365Wins bool
		rule, d365Wins = conflictWinner(p.Conflict, e, b)
		if rule == "C5" {
			return Plan{Rule: "C5", Reason: "times changed on both sides: left for a person (conflict: manual)", Link: LinkKeep, Conflict: true}
		}
		if d365Wins {
			forced, moved, ns, ne = oMay, false, d.Start, d.End
			reason = "times changed on both sides; D365 wins (" + p.Conflict + ")"
		} else {
			reason = "times changed on both sides; Outlook wins (" + p.Conflict + ")"
		}
	}
	want := d
	want.Start, want.End = ns, ne
	var acts []Action
	if moved {
		acts = append(acts, Action{Kind: UpdateBookingTimes, BookingID: b.ID, Start: ns.UTC(), End: ne.UTC(), IfMatch: b.ETag,
			Reason: "event moved or resized in Outlook"})
	}
	w := dChanged | forced
	if p.RevertOwnedFields {
		w |= oOwned
	}
	w &= Diff(e.Content, want)
	if w != 0 {
		acts = append(acts, updateEvent(l.Mailbox, l.EventID, want, w, e.ETag))
	}
	if rule == "" {
		var parts, rules []string
		if moved {
			rules, parts = append(rules, "O1"), append(parts, "moved in Outlook: booking times updated")
		}
		if w&dChanged != 0 {
			rules, parts = append(rules, "B6"), append(parts, "booking changed: event updated ("+(w&dChanged).String()+")")
		}
		if rev := w &^ dChanged; rev != 0 {
			rules, parts = append(rules, "O2"), append(parts, "Outlook edit of D365-owned fields put back ("+rev.String()+")")
		}
		if kept := oOwned &^ w; kept != 0 && !p.RevertOwnedFields {
			rules, parts = append(rules, "O3"), append(parts, "Outlook edit of D365-owned fields recorded ("+kept.String()+")")
		}
		switch len(rules) {
		case 0:
			return Plan{Rule: "K3", Reason: "event changed, nothing to write (both sides agree): new versions recorded", Link: LinkSave}
		case 1:
			rule = rules[0]
		default:
			rule = "M1"
		}
		reason = strings.Join(parts, "; ")
	}
	return Plan{Rule: rule, Reason: reason, Actions: acts, Link: LinkSave}
}

// conflictWinner applies the conflict policy to "both sides changed the
// times". It returns the rule and whether D365's times win.
func conflictWinner(policy string, e *Event, b *Booking) (rule string, d365Wins bool) {
	switch policy {
	case ConflictOutlookWins:
		return "C2", false
	case ConflictNewestWins:
		if e.LastModified.After(b.ModifiedOn) {
			return "C3", false
		}
		return "C4", true
	case ConflictManual:
		return "C5", false
	}
	return "C1", true
}

// decideOutlookDeleted: the linked event is gone, the booking is in scope.
func decideOutlookDeleted(in Input, d Content, dChanged FieldSet) Plan {
	p, l, b := in.Policy, in.Link, in.Booking
	if dChanged != 0 {
		// Change versus delete. The time of a deletion is not known, so
		// newest_wins lets the deletion win, as outlook_wins does.
		switch p.Conflict {
		case ConflictManual:
			return Plan{Rule: "C8", Reason: "event deleted in Outlook while the booking changed: left for a person (conflict: manual)",
				Link: LinkKeep, Conflict: true}
		case ConflictOutlookWins, ConflictNewestWins:
			plan := onOutlookDelete(in, d)
			plan.Rule, plan.Reason = "C7", "event deleted in Outlook while the booking changed; the deletion wins ("+p.Conflict+"): "+plan.Reason
			return plan
		}
		return Plan{Rule: "C6", Reason: "event deleted in Outlook while the booking changed; D365 wins: event created again",
			Actions: []Action{createEvent(l.Mailbox, b.ID, d)}, Link: LinkSave}
	}
	return onOutlookDelete(in, d)
}

func onOutlookDelete(in Input, d Content) Plan {
	l, b := in.Link, in.Booking
	switch in.Policy.OnOutlookDelete {
	case OnOutlookDeleteRecreateEvent:
		return Plan{Rule: "O5", Reason: "event deleted in Outlook: created again (on_outlook_delete: recreate_event)",
			Actions: []Action{createEvent(l.Mailbox, b.ID, d)}, Link: LinkSave}
	case OnOutlookDeleteUnlink:
		return Plan{Rule: "O6", Reason: "event deleted in Outlook: booking left as is and no longer synced (on_outlook_delete: unlink)", Link: LinkDetach}
	}
	var acts []Action
	if b.Status != StatusCanceled {
		acts = []Action{{Kind: CancelBooking, BookingID: b.ID, IfMatch: b.ETag, Reason: "event deleted in Outlook"}}
	}
	return Plan{Rule: "O4", Reason: "event deleted in Outlook: booking canceled (on_outlook_delete: cancel_booking)", Actions: acts, Link: LinkDelete}
}

func missingDesired(in Input) Plan {
	id := ""
	if in.Booking != nil {
		id = in.Booking.ID
	}
	why := fmt.Sprintf("booking %s is in scope but no content was rendered for it: nothing done", id)
	return Plan{Rule: "E1", Reason: why, Actions: []Action{warn(why)}, Link: LinkKeep}
}

func keep(rule, reason string) Plan { return Plan{Rule: rule, Reason: reason, Link: LinkKeep} }

func linkDeleteIf(hasLink bool) LinkOp {
	if hasLink {
		return LinkDelete
	}
	return LinkKeep
}

func warn(reason string) Action { return Action{Kind: Warn, Reason: reason} }

func createEvent(mailbox, bookingID string, c Content) Action {
	return Action{Kind: CreateEvent, Mailbox: mailbox, BookingID: bookingID, Content: c, Fields: AllFields}
}

func updateEvent(mailbox, eventID string, c Content, f FieldSet, ifMatch string) Action {
	return Action{Kind: UpdateEvent, Mailbox: mailbox, EventID: eventID, Content: c, Fields: f, IfMatch: ifMatch}
}

func deleteEvent(mailbox, eventID, ifMatch string) Action {
	return Action{Kind: DeleteEvent, Mailbox: mailbox, EventID: eventID, IfMatch: ifMatch}
}

// mailboxOf is where an event lives: its own Mailbox, else the link's,
// else the target's.
func mailboxOf(e *Event, l *Link, target string) string {
	switch {
	case e != nil && e.Mailbox != "":
		return e.Mailbox
	case l != nil && l.Mailbox != "":
		return l.Mailbox
	}
	return target
}
