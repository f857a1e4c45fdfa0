package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	emudv "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	emugraph "github.com/bookingsync/bookingsync/internal/emulator/graph"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	"github.com/bookingsync/bookingsync/internal/store"
)

// createdWrites counts, through the emulator's observer, the events Graph
// really created per booking (our property's value): a POST answered with
// an earlier event because of its transactionId creates nothing.
type createdWrites struct {
	prop string
	mu   gosync.Mutex
	n    map[string]int
}

func (c *createdWrites) observe(w emugraph.Write) {
	if w.ChangeType != "created" {
		return
	}
	for id, v := range w.Extended {
		if strings.EqualFold(id, c.prop) {
			c.mu.Lock()
			c.n[strings.ToLower(v)]++
			c.mu.Unlock()
		}
	}
}

func (c *createdWrites) of(booking string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[strings.ToLower(booking)]
}

// emulatorControl calls the emulator's control API over HTTPS, as a test
// outside the process would.
func emulatorControl(t *testing.T, sb *Sandbox, method, path string, body any) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, sb.Emulator.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := sb.Emulator.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %v %v", method, path, resp.StatusCode, out, err)
	}
	return out
}

// graphStats returns the event POST count and the lost-response and
// transactionId-replay counters from GET /_emulator/stats.
func graphStats(t *testing.T, sb *Sandbox) (posts, lost, replays int64) {
	t.Helper()
	st := emulatorControl(t, sb, "GET", "/_emulator/stats", nil)
	routes, _ := st["graph"].(map[string]any)
	n := func(v any) int64 { f, _ := v.(float64); return int64(f) }
	return n(routes["POST /users/{id}/events"]), n(st["graph_lost_responses"]), n(st["graph_transaction_replays"])
}

// waitLinked waits until the booking's link records an event (no create
// left pending) and returns it.
func waitLinked(t *testing.T, sb *Sandbox, bookingID string, within time.Duration) store.Link {
	t.Helper()
	st := sb.Service.Store
	deadline := time.Now().Add(within)
	for {
		l, err := st.GetLink(context.Background(), st.DB(), bookingID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if err == nil && !l.Pending() {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("booking %s: link %+v (%v) never recorded its event", bookingID, l, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNoDuplicateAfterLostCreateResponse is "no duplicate after a crash
// between Graph's 201 and our commit", end to end: with the emulator
// applying every event POST and then losing its response (504, then reset
// connections), new bookings still end up with exactly one event each.
// The client's own retries carry the create's transactionId (Graph answers
// with the first event, counted as replays); when they are exhausted the
// create fails, the link stays pending, and the service's next attempt (the
// inbox retry, or the notification about the new event) looks our property
// up and adopts the event instead of posting again. Counted through the
// emulator: one created event per booking, and every event POST beyond the
// first of a booking is a transactionId replay.
func TestNoDuplicateAfterLostCreateResponse(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sb := startWith(t)
	ctx := context.Background()
	created := &createdWrites{prop: sb.Config.Graph.ExtendedPropertyID, n: map[string]int{}}
	sb.Emulator.Graph().Observe(emugraph.Observer{OnWrite: created.observe})
	t.Cleanup(func() { sb.Emulator.Graph().Observe(emugraph.Observer{}) })

	// A mailbox with nothing in it yet: the dispatcher becomes a bookable
	// resource, so what follows is about the new bookings only (the demo
	// technicians' weeks would only add waiting).
	d := newResource(t, sb, "Dispatcher")
	optIn(t, sb, d)
	posts0, lost0, replays0 := graphStats(t, sb)
	if lost0 != 0 || replays0 != 0 {
		t.Fatalf("before the fault: lost %d, replays %d", lost0, replays0)
	}

	start := sb.Service.Store.Now().Truncate(time.Hour).Add(50 * time.Hour)
	var faulted []string
	for i, mode := range []string{emugraph.LoseTimeout, emugraph.LoseReset} {
		emulatorControl(t, sb, "POST", "/_emulator/faults", map[string]any{"graph": map[string]any{
			"lose_response_rate": 1, "lose_response_method": "POST", "lose_response_mode": mode}})
		var ids []string
		for j := range 3 {
			s := start.Add(time.Duration(i*24+j*3) * time.Hour)
			ids = append(ids, createBooking(t, sb, d.resource, "Lost response "+mode, s, time.Hour, ""))
		}
		for _, id := range ids {
			l := waitLinked(t, sb, id, 45*time.Second)
			if n := created.of(id); n != 1 {
				t.Errorf("%s: booking %s: Graph created %d events, want 1", mode, id, n)
			}
			evs := ourEventsOf(t, sb, l.Mailbox, id)
			if len(evs) != 1 || evs[0] != l.EventID {
				t.Errorf("%s: booking %s: events %v, link %s", mode, id, evs, l.EventID)
			}
		}
		faulted = append(faulted, ids...)
	}
	emulatorControl(t, sb, "POST", "/_emulator/faults", map[string]any{"graph": map[string]any{}})

	// Every faulted create really hit the window: its first POST was
	// applied and its answer lost, so the engine saw the create fail.
	st := sb.Service.Store
	for _, id := range faulted {
		ents, err := st.QueryAudit(ctx, st.DB(), store.AuditFilter{BookingID: id})
		if err != nil {
			t.Fatal(err)
		}
		failed, ok := 0, 0
		for _, e := range ents {
			if e.Action == "create_event" {
				switch e.Outcome {
				case "failed":
					failed++
				case "ok":
					ok++
				}
			}
		}
		if failed == 0 || ok != 0 {
			t.Errorf("booking %s: %d failed and %d successful creates in the audit, want ≥1 and 0 (adopted, not re-created)", id, failed, ok)
		}
	}

	posts, lost, replays := graphStats(t, sb)
	newPosts, newCreated := posts-posts0, int64(0)
	for _, id := range faulted {
		newCreated += int64(created.of(id))
	}
	t.Logf("%d bookings under the fault: %d event POSTs, %d created, %d responses lost, %d transactionId replays",
		len(faulted), newPosts, newCreated, lost, replays)
	if lost < int64(len(faulted)) {
		t.Errorf("%d responses lost, want at least one per faulted booking (%d)", lost, len(faulted))
	}
	// No second successful POST: all POSTs but one per booking were answered
	// from the transactionId, none created anything.
	if newCreated != int64(len(faulted)) || newPosts != newCreated+replays {
		t.Errorf("event POSTs %d = created %d + replays %d does not hold, or created ≠ %d bookings", newPosts, newCreated, replays, len(faulted))
	}
	// And the calendar as a whole: exactly one event per booking, no other.
	if ok, why := calendarMatches(t, sb, d); !ok {
		t.Error(why)
	}
}

// newResource makes the demo user with jobTitle a bookable resource (user
// type, bound to their systemuser, in their mailbox's zone), not opted in.
func newResource(t *testing.T, sb *Sandbox, jobTitle string) tech {
	t.Helper()
	for _, u := range tenant.DemoUsers() {
		if u.JobTitle != jobTitle {
			continue
		}
		id, err := sb.Service.Dataverse.Create(context.Background(), dataverse.SetResources, map[string]any{
			"name": u.DisplayName, "resourcetype": 3, "timezone": 110,
			dataverse.NavResourceUser + "@odata.bind": "/" + dataverse.SetSystemUsers + "(" + emudv.SystemUserID(u.ID) + ")",
		})
		if err != nil {
			t.Fatal(err)
		}
		return tech{resource: strings.ToLower(id), mailbox: u.ID}
	}
	t.Fatalf("no demo user with job title %q", jobTitle)
	return tech{}
}

// ourEventsOf lists the ids of the events in mailbox carrying bookingID,
// found by our property as the engine finds them.
func ourEventsOf(t *testing.T, sb *Sandbox, mailbox, bookingID string) []string {
	t.Helper()
	evs, err := sb.Service.Graph.FindEventsByExtendedProperty(context.Background(), mailbox, sb.Config.Graph.ExtendedPropertyID, bookingID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	return ids
}
