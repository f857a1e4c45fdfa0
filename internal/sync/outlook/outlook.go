// Package outlook is the Graph side of the sync engine: it reads Outlook
// events as sync.Event values and performs the engine's event writes
// (create with our booking-id property and a transactionId, partial update,
// delete) through the thin client in internal/graph.
//
// Every request carries Prefer: IdType="ImmutableId" (the graph client adds
// it), so event ids survive moves between folders. Times handed to and
// returned by this package are UTC; Options.TimeZone only chooses the zone
// the wall-clock times are written in, so Outlook shows the event's zone.
package outlook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/sync"
)

// PropertyID is the default single-value extended property that carries the
// booking id on every event we create (config graph.extended_property_id).
// Graph wants one id format per property for its whole life, so a
// deployment must never change it once events carry it.
const PropertyID = "String {9e3413e8-252f-4aeb-b786-be55309c8c60} Name BookingId"

// Sentinels for errors.Is.
var (
	// ErrNotFound: the event is gone (404 on the event). The error also
	// matches graph.ErrNotFound.
	ErrNotFound = errors.New("outlook: event not found")
	// ErrMailboxNotFound: the mailbox itself does not exist or has no
	// Exchange Online mailbox. Kept apart from ErrNotFound so that a wrong
	// or removed mailbox is never mistaken for "the user deleted the event"
	// (which would make the engine re-create it again and again).
	ErrMailboxNotFound = errors.New("outlook: mailbox not found")
)

// Graph error codes of a 404 about the mailbox rather than the event.
var mailboxCodes = []string{"ErrorInvalidUser", "MailboxNotEnabledForRESTAPI", "Request_ResourceNotFound"}

// Options configure a Calendar.
type Options struct {
	// TimeZone returns the Windows time-zone name (e.g. "W. Europe Standard
	// Time") to write a mailbox's event times in; nil or "" means UTC.
	TimeZone func(mailbox string) string
	// PropertyID overrides the extended property id ("" = PropertyID).
	PropertyID string
}

// Calendar performs event reads and writes for the engine. It is safe for
// concurrent use.
type Calendar struct {
	c    *graph.Client
	opts Options
}

func (c *Calendar) prop() string {
	if c.opts.PropertyID != "" {
		return c.opts.PropertyID
	}
	return PropertyID
}

// New returns a Calendar using c.
func New(c *graph.Client, o Options) *Calendar {
	return &Calendar{c: c, opts: o}
}

// Fields selects the event fields Update writes: the decision core's set.
type Fields = sync.FieldSet

// The fields Update can write.
const (
	FieldSubject  = sync.FieldSubject
	FieldBody     = sync.FieldBody
	FieldLocation = sync.FieldLocation
	FieldStart    = sync.FieldStart
	FieldEnd      = sync.FieldEnd
	FieldShowAs   = sync.FieldShowAs
	FieldAll      = sync.AllFields
)

// Get reads one event with our property expanded. Times are UTC whatever
// zone Graph answers in.
func (c *Calendar) Get(ctx context.Context, mailbox, eventID string) (*sync.Event, error) {
	ev, err := c.c.GetEvent(ctx, mailbox, eventID, c.prop())
	if err != nil {
		return nil, classify(err)
	}
	out, err := toSync(mailbox, c.prop(), ev)
	if err != nil {
		return nil, fmt.Errorf("get event %s for %s: %w", eventID, mailbox, err)
	}
	return out, nil
}

// FindByBooking returns the events in the mailbox whose property carries
// bookingID (Graph compares the value case-insensitively). Used before a
// create whose outcome is unknown, and to recover a lost link.
func (c *Calendar) FindByBooking(ctx context.Context, mailbox, bookingID string) ([]sync.Event, error) {
	if bookingID == "" {
		return nil, errors.New("outlook: find by booking: empty booking id")
	}
	evs, err := c.c.FindEventsByExtendedProperty(ctx, mailbox, c.prop(), bookingID)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]sync.Event, 0, len(evs))
	for i := range evs {
		se, err := toSync(mailbox, c.prop(), &evs[i])
		if err != nil {
			return nil, fmt.Errorf("find events for booking %s in %s: %w", bookingID, mailbox, err)
		}
		// A $filter response leaves the property out; it matched, so it
		// carries this booking.
		if se.BookingID == "" {
			se.BookingID = bookingID
		}
		out = append(out, *se)
	}
	return out, nil
}

// Create posts the event with PropertyID = bookingID and the given
// transactionId (see TransactionID): a retry with the same transactionId
// returns the first event instead of creating a second one. Attendees are
// never written, as Graph would mail them invitations.
//
// The returned event is mapped from Graph's response (the first event's,
// on a deduplicated retry), so its content is what Graph stored and what a
// later Get returns; BookingID is bookingID since the response omits
// extended properties.
func (c *Calendar) Create(ctx context.Context, mailbox, bookingID, transactionID string, content sync.Content) (*sync.Event, error) {
	if bookingID == "" {
		return nil, errors.New("outlook: create: empty booking id")
	}
	// Without a transactionId a lost response can mean a duplicate event.
	if transactionID == "" {
		return nil, fmt.Errorf("outlook: create for booking %s: empty transaction id", bookingID)
	}
	if err := checkTimes(content); err != nil {
		return nil, fmt.Errorf("outlook: create for booking %s: %w", bookingID, err)
	}
	start, end := c.times(mailbox, content.Start, content.End)
	ev := graph.Event{
		Subject: content.Subject,
		Body:    htmlBody(content.Body),
		Start:   &start,
		End:     &end,
		ShowAs:  content.ShowAs,
		SingleValueExtendedProperties: []graph.SingleValueLegacyExtendedProperty{
			{ID: c.prop(), Value: bookingID},
		},
	}
	if content.Location != "" {
		ev.Location = &graph.Location{DisplayName: content.Location}
	}
	got, err := c.c.CreateEvent(ctx, mailbox, ev, transactionID)
	if err != nil {
		return nil, classify(err)
	}
	out, err := toSync(mailbox, c.prop(), got)
	if err != nil {
		return nil, fmt.Errorf("create event for booking %s in %s: %w", bookingID, mailbox, err)
	}
	out.BookingID = bookingID
	return out, nil
}

// Update patches only the fields in fields and returns the event as Graph
// answers (new changeKey and @odata.etag). BookingID is empty in the result:
// the PATCH response omits extended properties and Update does not touch
// ours. fields == 0 is an error: a change that touches no synced field must
// cost no Graph call.
func (c *Calendar) Update(ctx context.Context, mailbox, eventID string, content sync.Content, fields Fields) (*sync.Event, error) {
	if fields == 0 || fields&^FieldAll != 0 {
		return nil, fmt.Errorf("outlook: update event %s: invalid field set %s", eventID, fields)
	}
	if fields.Has(FieldStart|FieldEnd) && !content.End.After(content.Start) {
		return nil, fmt.Errorf("outlook: update event %s: end %s is not after start %s", eventID, content.End, content.Start)
	}
	if fields.Has(FieldShowAs) && content.ShowAs == "" {
		return nil, fmt.Errorf("outlook: update event %s: empty showAs", eventID)
	}
	var p graph.EventPatch
	if fields.Has(FieldSubject) {
		p.Subject = &content.Subject
	}
	if fields.Has(FieldBody) {
		p.Body = htmlBody(content.Body)
	}
	if fields.Has(FieldLocation) {
		// An empty displayName clears the location.
		p.Location = &graph.Location{DisplayName: content.Location}
	}
	if fields&(FieldStart|FieldEnd) != 0 {
		if (fields.Has(FieldStart) && content.Start.IsZero()) || (fields.Has(FieldEnd) && content.End.IsZero()) {
			return nil, fmt.Errorf("outlook: update event %s: zero start or end", eventID)
		}
		start, end := c.times(mailbox, content.Start, content.End)
		if fields.Has(FieldStart) {
			p.Start = &start
		}
		if fields.Has(FieldEnd) {
			p.End = &end
		}
	}
	if fields.Has(FieldShowAs) {
		p.ShowAs = &content.ShowAs
	}
	// No If-Match: Graph does not document it for events; the engine does
	// its own compare-and-set on changeKey.
	got, err := c.c.UpdateEvent(ctx, mailbox, eventID, p, "")
	if err != nil {
		return nil, classify(err)
	}
	out, err := toSync(mailbox, c.prop(), got)
	if err != nil {
		return nil, fmt.Errorf("update event %s in %s: %w", eventID, mailbox, err)
	}
	return out, nil
}

// Delete deletes the event. An event that is already gone counts as
// deleted; an unknown mailbox does not (ErrMailboxNotFound).
func (c *Calendar) Delete(ctx context.Context, mailbox, eventID string) error {
	err := c.c.DeleteEvent(ctx, mailbox, eventID)
	if err == nil {
		return nil
	}
	err = classify(err)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// txNamespace is the UUIDv5 namespace of our transactionIds.
var txNamespace = uuid.MustParse("a1e4a9aa-5ce1-4cda-933c-765eb104d66c")

// TransactionID derives the Graph transactionId of a create: the same
// booking, mailbox and generation always give the same GUID, so retries of
// one create are deduplicated by Graph, while generation+1 (a deliberate
// re-create, e.g. after the user deleted the event) gives a new one. Ids
// are compared case-insensitively, as Dataverse and Entra ids are.
func TransactionID(bookingID, mailbox string, generation int64) string {
	name := fmt.Sprintf("%s\x00%s\x00%d", strings.ToLower(bookingID), strings.ToLower(mailbox), generation)
	return uuid.NewSHA1(txNamespace, []byte(name)).String()
}

// classify adds our sentinels to a client error.
func classify(err error) error {
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.StatusCode != http.StatusNotFound {
		return err
	}
	for _, code := range mailboxCodes {
		if strings.EqualFold(ge.Code, code) {
			return fmt.Errorf("%w: %w", ErrMailboxNotFound, err)
		}
	}
	return fmt.Errorf("%w: %w", ErrNotFound, err)
}

func htmlBody(s string) *graph.ItemBody {
	return &graph.ItemBody{ContentType: "html", Content: s}
}

func checkTimes(ct sync.Content) error {
	if ct.Start.IsZero() || ct.End.IsZero() {
		return errors.New("zero start or end")
	}
	if !ct.End.After(ct.Start) {
		return fmt.Errorf("end %s is not after start %s", ct.End.UTC(), ct.Start.UTC())
	}
	return nil
}

// dateTimeLayout is Graph's wall-clock format.
const dateTimeLayout = "2006-01-02T15:04:05.0000000"

// times renders start and end as dateTimeTimeZone in the mailbox's zone.
// They fall back to UTC together when the zone is unknown here (the instant
// stays right; only Outlook's zone label differs) or when either wall-clock
// time is ambiguous (the repeated hour when DST ends), which Graph would
// have to guess and could get an hour wrong.
func (c *Calendar) times(mailbox string, start, end time.Time) (graph.DateTimeTimeZone, graph.DateTimeTimeZone) {
	utc := func() (graph.DateTimeTimeZone, graph.DateTimeTimeZone) {
		return graph.NewDateTimeTimeZone(start), graph.NewDateTimeTimeZone(end)
	}
	if c.opts.TimeZone == nil {
		return utc()
	}
	name := strings.TrimSpace(c.opts.TimeZone(mailbox))
	if name == "" || strings.EqualFold(name, "UTC") {
		return utc()
	}
	loc, err := graph.LoadZone(name)
	if err != nil || ambiguous(start, loc) || ambiguous(end, loc) {
		return utc()
	}
	return graph.DateTimeTimeZone{DateTime: start.In(loc).Format(dateTimeLayout), TimeZone: name},
		graph.DateTimeTimeZone{DateTime: end.In(loc).Format(dateTimeLayout), TimeZone: name}
}

// ambiguous reports whether t's wall-clock time in loc also names another
// instant (it falls in an hour that a DST change repeats).
func ambiguous(t time.Time, loc *time.Location) bool {
	_, off := t.In(loc).Zone()
	wall := t.In(loc).Format(dateTimeLayout)
	for _, probe := range []time.Duration{-26 * time.Hour, 26 * time.Hour} {
		_, o := t.Add(probe).In(loc).Zone()
		if o == off {
			continue
		}
		other := t.Add(time.Duration(off-o) * time.Second)
		if other.In(loc).Format(dateTimeLayout) == wall {
			return true
		}
	}
	return false
}

// toSync maps a Graph event to the engine's view. Times are converted from
// whatever zone Graph used to UTC.
func toSync(mailbox, prop string, ev *graph.Event) (*sync.Event, error) {
	out := &sync.Event{
		ID:          ev.ID,
		Mailbox:     mailbox,
		ChangeKey:   ev.ChangeKey,
		ETag:        ev.ODataEtag,
		BookingID:   bookingID(ev, prop),
		Sensitivity: ev.Sensitivity,
		Type:        ev.Type,
		IsCancelled: ev.IsCancelled != nil && *ev.IsCancelled,
		Content: sync.Content{
			Subject: ev.Subject,
			ShowAs:  ev.ShowAs,
		},
	}
	if !ev.LastModifiedDateTime.IsZero() {
		out.LastModified = ev.LastModifiedDateTime.UTC()
	}
	if ev.Body != nil {
		out.Content.Body = ev.Body.Content
	}
	if ev.Location != nil {
		out.Content.Location = ev.Location.DisplayName
	}
	var err error
	if out.Content.Start, err = utcTime(ev.Start); err != nil {
		return nil, fmt.Errorf("event %s start: %w", ev.ID, err)
	}
	if out.Content.End, err = utcTime(ev.End); err != nil {
		return nil, fmt.Errorf("event %s end: %w", ev.ID, err)
	}
	return out, nil
}

func utcTime(d *graph.DateTimeTimeZone) (time.Time, error) {
	if d == nil || d.DateTime == "" {
		return time.Time{}, nil
	}
	t, err := d.Time()
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// bookingID returns our property's value. Graph may spell the type and GUID
// of a returned id in another case, so the id is compared case-insensitively
// (the $expand filter already selected our property by its exact name).
func bookingID(ev *graph.Event, prop string) string {
	for _, p := range ev.SingleValueExtendedProperties {
		if strings.EqualFold(p.ID, prop) {
			return p.Value
		}
	}
	return ""
}
