package outlook

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/sync"
)

// ErrDeltaExpired: the stored delta link is no longer valid (410 Gone,
// syncStateNotFound, resyncRequired). Start a new round with link == "" and
// compare everything. The error also matches graph.ErrSyncStateNotFound.
var ErrDeltaExpired = errors.New("outlook: delta state expired")

// Delta is one complete calendarView/delta round of a mailbox.
type Delta struct {
	// Events are the new or changed events of the round, mapped like Get's
	// but without BookingID: delta does not return extended properties, so
	// whether an event is ours is for the link table (or a Get) to say.
	// Occurrences and exceptions of series come with SeriesMasterID set.
	Events []sync.Event
	// Removed are the ids reported under @removed: deleted events, and
	// events that moved out of (or changed outside) the round's window.
	Removed []string
	// DeltaLink starts the next round; it is tied to the round's window.
	DeltaLink string
}

// Delta runs one delta round over [start, end) of mailbox's calendar. With
// link == "" it starts a new round (every event in the window, no
// removals); otherwise it continues from a stored DeltaLink and start/end
// are ignored. An expired link returns an error matching ErrDeltaExpired.
func (c *Calendar) Delta(ctx context.Context, mailbox string, start, end time.Time, link string) (*Delta, error) {
	res, err := c.c.CalendarViewDelta(ctx, mailbox, start, end, link)
	if errors.Is(err, graph.ErrSyncStateNotFound) {
		return nil, fmt.Errorf("%w: %w", ErrDeltaExpired, err)
	}
	if err != nil {
		return nil, classify(err)
	}
	out := &Delta{Removed: res.Removed, DeltaLink: res.DeltaLink}
	out.Events = make([]sync.Event, 0, len(res.Events))
	for i := range res.Events {
		ev, err := c.mapListed(mailbox, &res.Events[i])
		if err != nil {
			return nil, fmt.Errorf("delta for %s: %w", mailbox, err)
		}
		out.Events = append(out.Events, *ev)
	}
	return out, nil
}

// View lists the events in [start, end) of mailbox's calendar (occurrences
// of series expanded, SeriesMasterID set). Like Delta's events they carry
// no BookingID: calendarView cannot expand our property (see GetMany).
func (c *Calendar) View(ctx context.Context, mailbox string, start, end time.Time) ([]sync.Event, error) {
	evs, err := c.c.CalendarView(ctx, mailbox, start, end)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]sync.Event, 0, len(evs))
	for i := range evs {
		ev, err := c.mapListed(mailbox, &evs[i])
		if err != nil {
			return nil, fmt.Errorf("calendar view of %s: %w", mailbox, err)
		}
		out = append(out, *ev)
	}
	return out, nil
}

// GetMany reads events of one mailbox with our property expanded, 20 to a
// $batch request (Graph's limit). The result has an entry for every id
// found; ids that are gone (404) are left out. Inner responses that fail
// otherwise (429, 5xx) are read again one by one, with the client's retries.
func (c *Calendar) GetMany(ctx context.Context, mailbox string, ids []string) (map[string]*sync.Event, error) {
	out := make(map[string]*sync.Event, len(ids))
	q := url.Values{"$expand": {"singleValueExtendedProperties($filter=id eq '" + strings.ReplaceAll(c.prop(), "'", "''") + "')"}}
	for lo := 0; lo < len(ids); lo += graph.MaxBatchRequests {
		chunk := ids[lo:min(lo+graph.MaxBatchRequests, len(ids))]
		reqs := make([]graph.BatchRequest, len(chunk))
		for i, id := range chunk {
			reqs[i] = graph.BatchRequest{ID: strconv.Itoa(i + 1), Method: "GET",
				URL: "/users/" + url.PathEscape(mailbox) + "/events/" + url.PathEscape(id) + "?" + q.Encode()}
		}
		resps, err := c.c.Batch(ctx, reqs)
		if err != nil {
			return nil, fmt.Errorf("read %d events of %s: %w", len(chunk), mailbox, classify(err))
		}
		for i, r := range resps {
			id := chunk[i]
			if err := r.Err(); err != nil {
				if errors.Is(err, graph.ErrNotFound) && !isMailboxError(err) {
					continue
				}
				ev, err := c.Get(ctx, mailbox, id)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, err
				}
				out[id] = ev
				continue
			}
			var ge graph.Event
			if err := r.Decode(&ge); err != nil {
				return nil, fmt.Errorf("read event %s of %s: %w", id, mailbox, err)
			}
			ev, err := toSync(mailbox, c.prop(), &ge)
			if err != nil {
				return nil, fmt.Errorf("read event %s of %s: %w", id, mailbox, err)
			}
			ev.SeriesMasterID = ge.SeriesMasterID
			out[id] = ev
		}
	}
	return out, nil
}

// mapListed maps an event of a list (delta, calendarView): no extended
// properties, SeriesMasterID kept.
func (c *Calendar) mapListed(mailbox string, ge *graph.Event) (*sync.Event, error) {
	ev, err := toSync(mailbox, c.prop(), ge)
	if err != nil {
		return nil, err
	}
	ev.SeriesMasterID = ge.SeriesMasterID
	return ev, nil
}

// isMailboxError reports a 404 about the mailbox rather than the event.
func isMailboxError(err error) bool {
	return errors.Is(classify(err), ErrMailboxNotFound)
}
