package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator"
	emudv "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
	"github.com/bookingsync/bookingsync/internal/sync/outlook"
)

// tech is one demo technician as both sides know them.
type tech struct{ resource, mailbox string }

// technicians returns the demo technicians' bookable resources.
func technicians(t *testing.T, sb *Sandbox) []tech {
	t.Helper()
	var out []tech
	for _, u := range tenant.Technicians() {
		out = append(out, tech{resource: emudv.ResourceID(u.ID), mailbox: u.ID})
	}
	return out
}

func optIn(t *testing.T, sb *Sandbox, techs ...tech) {
	t.Helper()
	for _, tc := range techs {
		setOptIn(t, sb, tc.resource, 100000000)
	}
	for _, tc := range techs {
		waitFor(t, "subscription for "+tc.mailbox, func() (bool, error) {
			return len(graphSubscriptionsFor(t, sb, tc.mailbox)) == 1, nil
		})
	}
}

// ourEvents lists the events in mailbox that carry our booking property,
// keyed by booking id, read through Graph as any client would.
func ourEvents(t *testing.T, sb *Sandbox, mailbox string) map[string][]bsync.Event {
	t.Helper()
	ctx := context.Background()
	now := sb.Service.Store.Now()
	evs, err := sb.Service.Graph.CalendarView(ctx, mailbox, now.AddDate(-1, 0, 0), now.AddDate(2, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	cal := outlook.New(sb.Service.Graph, outlook.Options{})
	out := map[string][]bsync.Event{}
	for _, e := range evs {
		full, err := cal.Get(ctx, mailbox, e.ID)
		if errors.Is(err, outlook.ErrNotFound) {
			continue // deleted since the list was read
		}
		if err != nil {
			t.Fatal(err)
		}
		if full.BookingID != "" {
			out[strings.ToLower(full.BookingID)] = append(out[strings.ToLower(full.BookingID)], *full)
		}
	}
	return out
}

// expectedBookings are the bookings of res that should be in its calendar:
// active, not canceled, inside the sync window.
func expectedBookings(t *testing.T, sb *Sandbox, res string) map[string]bool {
	t.Helper()
	now := sb.Service.Store.Now()
	q := dataverse.Query{Select: dataverse.BookingSelect, Filter: dataverse.Eq("_resource_value", dataverse.GUID(res))}
	rows, err := dataverse.ListAll[dataverse.Booking](context.Background(), sb.Service.Dataverse, dataverse.SetBookings, q)
	if err != nil {
		t.Fatal(err)
	}
	from, to := now.Add(-sb.Config.Sync.WindowPast), now.Add(sb.Config.Sync.WindowFuture)
	out := map[string]bool{}
	for _, r := range rows {
		if r.StateCode != 0 || strings.EqualFold(r.BookingStatusID, emudv.BookingStatusID("Canceled")) {
			continue
		}
		if r.EndTime.After(from) && r.StartTime.Before(to) {
			out[strings.ToLower(r.ID)] = true
		}
	}
	return out
}

// calendarMatches reports whether mailbox holds exactly one event of ours per
// expected booking and nothing else of ours.
func calendarMatches(t *testing.T, sb *Sandbox, tc tech) (bool, string) {
	t.Helper()
	want := expectedBookings(t, sb, tc.resource)
	got := ourEvents(t, sb, tc.mailbox)
	for id := range want {
		if n := len(got[id]); n != 1 {
			return false, fmt.Sprintf("booking %s has %d events", id, n)
		}
	}
	for id, evs := range got {
		if !want[id] {
			return false, fmt.Sprintf("event %s of booking %s should not be there", evs[0].ID, id)
		}
	}
	return true, ""
}

func waitCalendar(t *testing.T, sb *Sandbox, what string, tcs ...tech) {
	t.Helper()
	var last string
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok := true
		for _, tc := range tcs {
			var why string
			if ok, why = calendarMatches(t, sb, tc); !ok {
				last = tc.mailbox + ": " + why
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: calendar never matched the bookings: %s", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func createBooking(t *testing.T, sb *Sandbox, res, name string, start time.Time, d time.Duration, workOrder string) string {
	t.Helper()
	body := map[string]any{
		"name": name, "starttime": start.UTC().Format(time.RFC3339), "endtime": start.Add(d).UTC().Format(time.RFC3339),
		"duration": int(d.Minutes()), "bookingtype": 1,
		dataverse.NavBookingResource + "@odata.bind": "/" + dataverse.SetResources + "(" + res + ")",
		dataverse.NavBookingStatus + "@odata.bind":   "/" + dataverse.SetBookingStatuses + "(" + emudv.BookingStatusID("Scheduled") + ")",
	}
	if workOrder != "" {
		body[dataverse.NavBookingWorkOrder+"@odata.bind"] = "/" + dataverse.SetWorkOrders + "(" + workOrder + ")"
	}
	id, err := sb.Service.Dataverse.Create(context.Background(), dataverse.SetBookings, body)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(id)
}

func updateRow(t *testing.T, sb *Sandbox, set, id string, body map[string]any) {
	t.Helper()
	if err := sb.Service.Dataverse.Update(context.Background(), set, id, body, "*"); err != nil {
		t.Fatal(err)
	}
}

func eventOf(t *testing.T, sb *Sandbox, mailbox, booking string) (bsync.Event, bool) {
	t.Helper()
	evs := ourEvents(t, sb, mailbox)[booking]
	if len(evs) != 1 {
		return bsync.Event{}, false
	}
	return evs[0], true
}

// TestBookingsToOutlook is Part II end to end, once through the webhook path
// and once through change tracking alone: every step leaves exactly the
// expected events in each technician's calendar, counted through Graph.
func TestBookingsToOutlook(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	for _, path := range []string{"webhooks", "change tracking only"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sb, err := Start(ctx, Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), NoBookingWebhooks: path != "webhooks",
				Emulator: emulator.Options{Addr: "127.0.0.1:0", Seed: "demo"}})
			if err != nil {
				t.Fatal(err)
			}
			defer sb.Stop()
			// Without webhooks nothing wakes the service: stand in for the
			// periodic poll by running it after each change.
			poll := func() {
				if path == "webhooks" {
					return
				}
				if err := sb.Service.PollBookings(ctx); err != nil {
					t.Fatalf("poll: %v", err)
				}
			}
			techs := technicians(t, sb)
			a, b, c := techs[0], techs[1], techs[2]
			optIn(t, sb, a, b)
			poll()
			waitCalendar(t, sb, "opt-in brings the week's bookings", a, b)

			// Create.
			start := sb.Service.Store.Now().Truncate(time.Hour).Add(26 * time.Hour)
			wo := strings.ToLower(emudvWorkOrder(t, sb))
			id := createBooking(t, sb, a.resource, "New job", start, 2*time.Hour, wo)
			poll()
			waitCalendar(t, sb, "create", a, b)
			ev, _ := eventOf(t, sb, a.mailbox, id)
			if !strings.HasPrefix(ev.Content.Subject, "WO-") || ev.Content.ShowAs != "busy" || !ev.Content.Start.Equal(start) {
				t.Errorf("created event: %+v", ev.Content)
			}

			// Reschedule.
			start = start.Add(3 * time.Hour)
			updateRow(t, sb, dataverse.SetBookings, id, map[string]any{"starttime": start.Format(time.RFC3339), "endtime": start.Add(2 * time.Hour).Format(time.RFC3339)})
			poll()
			waitFor(t, "rescheduled event", func() (bool, error) {
				ev, ok := eventOf(t, sb, a.mailbox, id)
				return ok && ev.Content.Start.Equal(start), nil
			})

			// Work order details.
			updateRow(t, sb, dataverse.SetWorkOrders, wo, map[string]any{"msdyn_instructions": "Gate code 4711"})
			poll()
			waitFor(t, "work order instructions in the body", func() (bool, error) {
				ev, ok := eventOf(t, sb, a.mailbox, id)
				return ok && strings.Contains(ev.Content.Body, "Gate code 4711"), nil
			})

			// Reassign to an opted-in technician, then to one who is not.
			updateRow(t, sb, dataverse.SetBookings, id, map[string]any{dataverse.NavBookingResource + "@odata.bind": "/" + dataverse.SetResources + "(" + b.resource + ")"})
			poll()
			waitCalendar(t, sb, "reassign to an opted-in technician", a, b)
			updateRow(t, sb, dataverse.SetBookings, id, map[string]any{dataverse.NavBookingResource + "@odata.bind": "/" + dataverse.SetResources + "(" + c.resource + ")"})
			poll()
			waitCalendar(t, sb, "reassign to a technician who does not sync", a, b)
			if evs := ourEvents(t, sb, c.mailbox); len(evs) != 0 {
				t.Errorf("technician who does not sync got %d events", len(evs))
			}

			// Back, then cancel.
			updateRow(t, sb, dataverse.SetBookings, id, map[string]any{dataverse.NavBookingResource + "@odata.bind": "/" + dataverse.SetResources + "(" + a.resource + ")"})
			poll()
			waitCalendar(t, sb, "reassign back", a, b)
			updateRow(t, sb, dataverse.SetBookings, id, map[string]any{dataverse.NavBookingStatus + "@odata.bind": "/" + dataverse.SetBookingStatuses + "(" + emudv.BookingStatusID("Canceled") + ")"})
			poll()
			waitCalendar(t, sb, "cancel", a, b)

			// Delete, and move out of the window.
			id2 := createBooking(t, sb, a.resource, "Second job", start.Add(24*time.Hour), time.Hour, "")
			id3 := createBooking(t, sb, a.resource, "Third job", start.Add(48*time.Hour), time.Hour, "")
			poll()
			waitCalendar(t, sb, "two more", a, b)
			if err := sb.Service.Dataverse.Delete(ctx, dataverse.SetBookings, id2, "*"); err != nil {
				t.Fatal(err)
			}
			far := start.Add(sb.Config.Sync.WindowFuture + 72*time.Hour)
			updateRow(t, sb, dataverse.SetBookings, id3, map[string]any{"starttime": far.Format(time.RFC3339), "endtime": far.Add(time.Hour).Format(time.RFC3339)})
			poll()
			waitCalendar(t, sb, "delete and move out of the window", a, b)
		})
	}
}

// emudvWorkOrder returns one demo work order's id.
func emudvWorkOrder(t *testing.T, sb *Sandbox) string {
	t.Helper()
	var id string
	err := sb.Service.Dataverse.List(context.Background(), dataverse.SetWorkOrders, dataverse.Query{Select: []string{"msdyn_workorderid"}, Top: 1},
		func(raw json.RawMessage) error {
			var r struct {
				ID string `json:"msdyn_workorderid"`
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			if id == "" {
				id = r.ID
			}
			return nil
		})
	if err != nil || id == "" {
		t.Fatalf("no demo work order: %v", err)
	}
	return id
}
