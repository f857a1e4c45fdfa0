package sandbox

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	"github.com/bookingsync/bookingsync/internal/graph"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
	"github.com/bookingsync/bookingsync/internal/sync/outlook"
)

// rawEventTimes reads an event's start/end and original zones through the
// Graph client, as Graph answers with and without Prefer: outlook.timezone.
type rawEventTimes struct {
	Start                 graph.DateTimeTimeZone `json:"start"`
	End                   graph.DateTimeTimeZone `json:"end"`
	OriginalStartTimeZone string                 `json:"originalStartTimeZone"`
	OriginalEndTimeZone   string                 `json:"originalEndTimeZone"`
}

func readRawEvent(t *testing.T, sb *Sandbox, mailbox, eventID, preferZone string) rawEventTimes {
	t.Helper()
	req := graph.BatchRequest{ID: "1", Method: "GET",
		URL: "/users/" + mailbox + "/events/" + eventID + "?$select=" + url.QueryEscape("start,end,originalStartTimeZone,originalEndTimeZone")}
	if preferZone != "" {
		req.Headers = map[string]string{"Prefer": `outlook.timezone="` + preferZone + `"`}
	}
	res, err := sb.Service.Graph.Batch(context.Background(), []graph.BatchRequest{req})
	if err != nil {
		t.Fatal(err)
	}
	if err := res[0].Err(); err != nil {
		t.Fatal(err)
	}
	var out rawEventTimes
	if err := res[0].Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitEvent waits until bookingID has exactly one event of ours in mailbox
// and ok accepts it, looking it up by our property as the engine does.
func waitEvent(t *testing.T, sb *Sandbox, what, mailbox, bookingID string, ok func(bsync.Event) bool) bsync.Event {
	t.Helper()
	cal := outlook.New(sb.Service.Graph, outlook.Options{PropertyID: sb.Config.Graph.ExtendedPropertyID})
	deadline := time.Now().Add(45 * time.Second)
	for {
		evs, err := cal.FindByBooking(context.Background(), mailbox, bookingID)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 1 {
			t.Fatalf("%s: booking %s has %d events", what, bookingID, len(evs))
		}
		if len(evs) == 1 && ok(evs[0]) {
			return evs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: booking %s: events %+v", what, bookingID, evs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEventsInResourceTimeZone: with sync.event_time_zone: resource, each
// technician's events are written in the zone of their bookable resource
// (its timezone code through timezonedefinition), on create and on
// reschedule, and the instant is the booking's.
func TestEventsInResourceTimeZone(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sb := startWith(t, "BOOKINGSYNC_SYNC_EVENT_TIME_ZONE=resource")
	techs := technicians(t, sb)
	zoneOf := map[string]string{}
	for _, u := range tenant.Technicians() {
		zoneOf[u.ID] = u.TimeZone
	}
	a, b := techs[0], techs[1]
	if zoneOf[a.mailbox] != "W. Europe Standard Time" || zoneOf[b.mailbox] != "Eastern Standard Time" {
		t.Fatalf("demo technicians changed zones: %v", zoneOf)
	}
	// The week's bookings are brought in meanwhile; this test looks only
	// at its own, by our property (one Graph call per look).
	optIn(t, sb, a, b)

	start := sb.Service.Store.Now().Truncate(time.Hour).Add(30 * time.Hour)
	ids := map[string]string{}
	for _, tc := range []tech{a, b} {
		ids[tc.mailbox] = createBooking(t, sb, tc.resource, "Zoned job", start, 90*time.Minute, "")
	}
	for _, tc := range []tech{a, b} {
		waitEvent(t, sb, "create", tc.mailbox, ids[tc.mailbox], func(bsync.Event) bool { return true })
	}

	check := func(step string, tc tech, start, end time.Time) {
		t.Helper()
		zone := zoneOf[tc.mailbox]
		ev := waitEvent(t, sb, step, tc.mailbox, ids[tc.mailbox], func(bsync.Event) bool { return true })
		loc, err := graph.LoadZone(zone)
		if err != nil {
			t.Fatal(err)
		}
		// As written: Graph keeps the zone of the request in originalStartTimeZone.
		plain := readRawEvent(t, sb, tc.mailbox, ev.ID, "")
		if plain.OriginalStartTimeZone != zone || plain.OriginalEndTimeZone != zone {
			t.Errorf("%s %s: written in %q/%q, want %q", step, tc.mailbox, plain.OriginalStartTimeZone, plain.OriginalEndTimeZone, zone)
		}
		// In the mailbox's zone: wall-clock time of the booking there.
		local := readRawEvent(t, sb, tc.mailbox, ev.ID, zone)
		if local.Start.TimeZone != zone || local.Start.DateTime != start.In(loc).Format("2006-01-02T15:04:05.0000000") {
			t.Errorf("%s %s: start %+v, want %s in %s", step, tc.mailbox, local.Start, start.In(loc).Format(time.DateTime), zone)
		}
		for _, got := range []rawEventTimes{plain, local} {
			s, err1 := got.Start.Time()
			e, err2 := got.End.Time()
			if err1 != nil || err2 != nil || !s.Equal(start) || !e.Equal(end) {
				t.Errorf("%s %s: instant %v–%v (%v, %v), want %v–%v", step, tc.mailbox, s, e, err1, err2, start, end)
			}
		}
	}
	for _, tc := range []tech{a, b} {
		check("create", tc, start, start.Add(90*time.Minute))
	}

	// A reschedule PATCHes the times in the same zone.
	moved := start.Add(5 * time.Hour)
	updateRow(t, sb, dataverse.SetBookings, ids[a.mailbox], map[string]any{
		"starttime": moved.Format(time.RFC3339), "endtime": moved.Add(time.Hour).Format(time.RFC3339)})
	waitEvent(t, sb, "reschedule", a.mailbox, ids[a.mailbox], func(ev bsync.Event) bool { return ev.Content.Start.Equal(moved) })
	check("reschedule", a, moved, moved.Add(time.Hour))
}
