package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

func eventPath(userID, eventID string) string {
	return userPath(userID) + "/events/" + pathSegment(eventID)
}

// CreateEvent creates ev in the user's default calendar. transactionID
// lets Graph drop a duplicate POST when we retry; without it the request
// is sent at most once (a retried POST could create a second event).
// The response does not include singleValueExtendedProperties.
func (c *Client) CreateEvent(ctx context.Context, userID string, ev Event, transactionID string) (*Event, error) {
	ev.ID, ev.ODataEtag, ev.Removed, ev.ChangeKey = "", "", nil, ""
	ev.TransactionID = transactionID
	var out Event
	_, err := c.do(ctx, call{
		method: http.MethodPost, path: userPath(userID) + "/events",
		body: ev, out: &out, mailbox: userID, noRetry: transactionID == "",
	})
	if err != nil {
		return nil, fmt.Errorf("create event for %s (transaction %s): %w", userID, transactionID, err)
	}
	return &out, nil
}

// GetEvent reads an event. When extPropID is set, the single-value
// extended property with that id is expanded into SingleValueExtendedProperties.
func (c *Client) GetEvent(ctx context.Context, userID, eventID, extPropID string) (*Event, error) {
	var q url.Values
	if extPropID != "" {
		q = url.Values{"$expand": {"singleValueExtendedProperties($filter=id eq " + quote(extPropID) + ")"}}
	}
	var out Event
	if _, err := c.do(ctx, call{method: http.MethodGet, path: eventPath(userID, eventID), query: q, out: &out, mailbox: userID}); err != nil {
		return nil, fmt.Errorf("get event %s for %s: %w", eventID, userID, err)
	}
	return &out, nil
}

// UpdateEvent PATCHes only the fields set in patch. With ifMatch (an
// @odata.etag) a mismatch yields ErrPreconditionFailed — if Exchange
// enforces it, which the docs don't promise.
func (c *Client) UpdateEvent(ctx context.Context, userID, eventID string, patch EventPatch, ifMatch string) (*Event, error) {
	var h http.Header
	if ifMatch != "" {
		h = http.Header{"If-Match": {ifMatch}}
	}
	var out Event
	if _, err := c.do(ctx, call{method: http.MethodPatch, path: eventPath(userID, eventID), body: patch, header: h, out: &out, mailbox: userID}); err != nil {
		return nil, fmt.Errorf("update event %s for %s: %w", eventID, userID, err)
	}
	return &out, nil
}

// DeleteEvent deletes an event (204). Callers usually treat ErrNotFound as done.
func (c *Client) DeleteEvent(ctx context.Context, userID, eventID string) error {
	if _, err := c.do(ctx, call{method: http.MethodDelete, path: eventPath(userID, eventID), mailbox: userID}); err != nil {
		return fmt.Errorf("delete event %s for %s: %w", eventID, userID, err)
	}
	return nil
}

// FindEventsByExtendedProperty returns the events whose single-value
// extended property propID equals value (Graph compares values
// case-insensitively). The results do not carry the property itself.
func (c *Client) FindEventsByExtendedProperty(ctx context.Context, userID, propID, value string) ([]Event, error) {
	q := url.Values{"$filter": {"singleValueExtendedProperties/Any(ep: ep/id eq " + quote(propID) + " and ep/value eq " + quote(value) + ")"}}
	evs, err := list[Event](ctx, c, call{method: http.MethodGet, path: userPath(userID) + "/events", query: q, mailbox: userID})
	if err != nil {
		return nil, fmt.Errorf("find events for %s by %s: %w", userID, propID, err)
	}
	return evs, nil
}

// graphTime formats a query-string instant the way the Graph docs do.
func graphTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.0000000Z")
}

// CalendarViewPageSize is the $top CalendarView asks for. Outlook pages
// event lists by 10 unless told otherwise, so a resync of a technician's
// 1,000 bookings took 100 requests; Outlook collections accept $top up to
// 1,000, and the nextLink keeps it.
const CalendarViewPageSize = 500

// CalendarView returns the occurrences, exceptions and single instances in
// [start, end) of the user's default calendar, following @odata.nextLink.
func (c *Client) CalendarView(ctx context.Context, userID string, start, end time.Time) ([]Event, error) {
	if !end.After(start) {
		return nil, errors.New("calendar view: end must be after start")
	}
	q := url.Values{"startDateTime": {graphTime(start)}, "endDateTime": {graphTime(end)},
		"$top": {strconv.Itoa(CalendarViewPageSize)}}
	evs, err := list[Event](ctx, c, call{method: http.MethodGet, path: userPath(userID) + "/calendarView", query: q, mailbox: userID})
	if err != nil {
		return nil, fmt.Errorf("calendar view for %s: %w", userID, err)
	}
	return evs, nil
}

// DeltaResult is one complete calendarView/delta round.
type DeltaResult struct {
	Events  []Event  // changed or new events (may contain only changed properties)
	Removed []string // ids reported under @removed; includes events that left the window
	// DeltaLink starts the next round; store it whole.
	DeltaLink string
}

// CalendarViewDelta runs one delta round. With link == "" it starts a new
// round for [start, end); otherwise it continues from a stored deltaLink
// (or a nextLink of an interrupted round) and ignores start/end. It follows
// nextLinks to the final deltaLink. An expired or invalid token returns
// an error matching ErrSyncStateNotFound: restart with link == "".
func (c *Client) CalendarViewDelta(ctx context.Context, userID string, start, end time.Time, link string) (*DeltaResult, error) {
	cl := call{method: http.MethodGet, path: link, mailbox: userID}
	if link == "" {
		if !end.After(start) {
			return nil, errors.New("calendar view delta: end must be after start")
		}
		cl.path = userPath(userID) + "/calendarView/delta"
		cl.query = url.Values{"startDateTime": {graphTime(start)}, "endDateTime": {graphTime(end)}}
	}
	res := &DeltaResult{}
	for {
		var p page[json.RawMessage]
		cl.out = &p
		if _, err := c.do(ctx, cl); err != nil {
			return nil, fmt.Errorf("calendar view delta for %s: %w", userID, err)
		}
		for _, raw := range p.Value {
			var ev Event
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("calendar view delta for %s: decode item: %w", userID, err)
			}
			if ev.Removed != nil {
				res.Removed = append(res.Removed, ev.ID)
				continue
			}
			res.Events = append(res.Events, ev)
		}
		switch {
		case p.DeltaLink != "":
			res.DeltaLink = p.DeltaLink
			return res, nil
		case p.NextLink != "":
			cl = call{method: http.MethodGet, path: p.NextLink, mailbox: userID}
		default:
			return nil, fmt.Errorf("calendar view delta for %s: page has neither @odata.nextLink nor @odata.deltaLink", userID)
		}
	}
}

// GetUser reads a user by object id or user principal name.
func (c *Client) GetUser(ctx context.Context, idOrUPN string) (*User, error) {
	var out User
	q := url.Values{"$select": {"id,displayName,mail,userPrincipalName"}}
	if _, err := c.do(ctx, call{method: http.MethodGet, path: userPath(idOrUPN), query: q, out: &out}); err != nil {
		return nil, fmt.Errorf("get user %s: %w", idOrUPN, err)
	}
	return &out, nil
}
