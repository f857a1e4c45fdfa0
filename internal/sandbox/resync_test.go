package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator"
	emudv "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	"github.com/bookingsync/bookingsync/internal/httpapi"
	"github.com/bookingsync/bookingsync/internal/store"
)

// resync calls POST /api/v1/resync as `bookingsync resync` does.
func resync(t *testing.T, sb *Sandbox, resource string, dryRun bool) httpapi.ResyncReport {
	t.Helper()
	q := url.Values{"resource": {resource}}
	if dryRun {
		q.Set("dry_run", "1")
	}
	req, _ := http.NewRequest(http.MethodPost, sb.Service.AdminURL()+"/api/v1/resync?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+sb.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resync: HTTP %d: %s", resp.StatusCode, body)
	}
	var rep httpapi.ResyncReport
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	for _, it := range rep.Items {
		t.Logf("resync (dry run %v): %s booking=%s event=%.12s… actions=%v writes=%d %s %s", dryRun, it.Rule, it.BookingID, it.EventID, it.Actions, it.Writes, it.Reason, it.Error)
	}
	return rep
}

// writes are the emulators' request counts except reads ($batch only reads
// here; its inner requests are counted under their own routes).
func writes(sb *Sandbox) map[string]int64 {
	out := map[string]int64{}
	g, _ := sb.Emulator.Graph().Stats()
	d, _ := sb.Emulator.Dataverse().Stats()
	for prefix, routes := range map[string]map[string]int64{"graph ": g, "dataverse ": d} {
		for k, v := range routes {
			if !strings.HasPrefix(k, "GET ") && k != "POST /$batch" {
				out[prefix+k] = v
			}
		}
	}
	return out
}

// TestResyncDriftedSandbox drifts a sandbox behind the service's back —
// an event deleted and one moved in Outlook with Graph's notifications
// dropped, a booking rescheduled with no booking webhooks and no poll — then
// checks that resync --dry-run reports exactly those differences with their
// rules and changes nothing, and that resync repairs them.
func TestResyncDriftedSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb, err := Start(ctx, Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), NoBookingWebhooks: true,
		// Change tracking would repair the booking by itself within a minute.
		Env:      []string{"BOOKINGSYNC_DATAVERSE_POLL_INTERVAL=1h"},
		Emulator: emulator.Options{Addr: "127.0.0.1:0", Seed: "demo"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Stop)
	t.Cleanup(func() { dumpOnFailure(t, sb) })
	a := technicians(t, sb)[0]
	optIn(t, sb, a)
	waitCalendar(t, sb, "opt-in", a)
	time.Sleep(time.Second) // Outlook's own update after each create, and its notification
	waitQuiet(t, sb)

	clean := resync(t, sb, a.resource, true)
	if len(clean.Items) != 0 || clean.Errors != 0 || clean.Bookings == 0 || clean.Links != clean.Bookings || clean.InSync != clean.Evaluated {
		t.Fatalf("dry run on a sandbox in sync: %+v, want no differences", clean)
	}

	// Drift.
	if err := sb.Emulator.Graph().SetFaults(json.RawMessage(`{"drop_notifications_rate": 1}`)); err != nil {
		t.Fatal(err)
	}
	links, err := sb.Service.Store.ListLinksByMailbox(ctx, sb.Service.Store.DB(), a.mailbox)
	if err != nil || len(links) < 3 {
		t.Fatalf("links: %d, %v", len(links), err)
	}
	deleted, moved, rescheduled := links[0], links[1], links[2]
	if err := sb.Service.Graph.DeleteEvent(ctx, a.mailbox, deleted.EventID); err != nil {
		t.Fatal(err)
	}
	movedTo := moved.AgreedStart.Add(2 * time.Hour)
	moveEvent(t, sb, a.mailbox, moved.EventID, movedTo, movedTo.Add(moved.AgreedEnd.Sub(moved.AgreedStart)))
	rescheduledTo := rescheduled.AgreedStart.Add(-time.Hour)
	updateRow(t, sb, dataverse.SetBookings, rescheduled.BookingID, map[string]any{
		"starttime": rescheduledTo.Format(time.RFC3339), "endtime": rescheduledTo.Add(rescheduled.AgreedEnd.Sub(rescheduled.AgreedStart)).Format(time.RFC3339)})
	time.Sleep(300 * time.Millisecond) // nothing should reach the service; give it the chance
	if b, _ := getBooking(t, sb, moved.BookingID); !b.StartTime.Equal(moved.AgreedStart) {
		t.Fatalf("the move reached the booking (%v) without a notification", b.StartTime)
	}

	// The plan.
	before, linksBefore := writes(sb), mustLinks(t, sb)
	g, _ := sb.Emulator.Graph().Stats()
	batches := g["POST /$batch"]
	plan := resync(t, sb, a.resource, true)
	if g, _ := sb.Emulator.Graph().Stats(); g["POST /$batch"] == batches {
		t.Error("the deleted event was not read through $batch")
	}
	wantRules := map[string]int{"O4": 1, "O1": 1, "B6": 1}
	wantCounts := map[string]int{"dataverse.cancel": 1, "dataverse.update": 1, "outlook.update": 1, "link.delete": 1}
	if !maps.Equal(plan.Rules, wantRules) || !maps.Equal(plan.Counts, wantCounts) || plan.Errors != 0 {
		t.Errorf("plan: rules %v counts %v errors %d, want rules %v counts %v", plan.Rules, plan.Counts, plan.Errors, wantRules, wantCounts)
	}
	byBooking := map[string]httpapi.ResyncItem{}
	for _, it := range plan.Items {
		byBooking[strings.ToLower(it.BookingID)] = it
	}
	for id, want := range map[string]string{deleted.BookingID: "O4 dataverse cancel", moved.BookingID: "O1 dataverse update", rescheduled.BookingID: "B6 outlook update"} {
		it := byBooking[strings.ToLower(id)]
		got := it.Rule
		if len(it.Actions) == 1 {
			got += " " + it.Actions[0].Side + " " + it.Actions[0].Op
		}
		if got != want || it.Reason == "" {
			t.Errorf("plan for booking %s: %q (%s), want %q", id, got, it.Reason, want)
		}
	}
	if after := writes(sb); !maps.Equal(before, after) {
		t.Errorf("dry run wrote: before %v, after %v", before, after)
	}
	if got := mustLinks(t, sb); !equalLinks(linksBefore, got) {
		t.Errorf("dry run changed links")
	}
	if b, _ := getBooking(t, sb, deleted.BookingID); strings.EqualFold(b.BookingStatusID, emudv.BookingStatusID("Canceled")) {
		t.Error("dry run canceled a booking")
	}

	// The repair.
	done := resync(t, sb, a.resource, false)
	if done.Repairs != 3 || done.Errors != 0 || !maps.Equal(done.Rules, wantRules) {
		t.Errorf("resync: %d repairs, rules %v, errors %d; want 3 repairs by %v", done.Repairs, done.Rules, done.Errors, wantRules)
	}
	if b, _ := getBooking(t, sb, deleted.BookingID); !strings.EqualFold(b.BookingStatusID, emudv.BookingStatusID("Canceled")) {
		t.Error("the booking whose event was deleted in Outlook was not canceled (on_outlook_delete: cancel_booking)")
	}
	if b, _ := getBooking(t, sb, moved.BookingID); !b.StartTime.Equal(movedTo) {
		t.Errorf("moved event's booking starts %v, want %v", b.StartTime, movedTo)
	}
	if ev, ok := eventOf(t, sb, a.mailbox, strings.ToLower(rescheduled.BookingID)); !ok || !ev.Content.Start.Equal(rescheduledTo) {
		t.Errorf("rescheduled booking's event: %+v (found %v), want start %v", ev.Content, ok, rescheduledTo)
	}
	if again := resync(t, sb, a.resource, true); len(again.Items) != 0 {
		t.Errorf("dry run after the repair: %d differences left", len(again.Items))
	}
}

func mustLinks(t *testing.T, sb *Sandbox) []store.Link {
	t.Helper()
	ls, err := sb.Service.Store.ListLinks(context.Background(), sb.Service.Store.DB())
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func equalLinks(a, b []store.Link) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if fmt.Sprint(a[i]) != fmt.Sprint(b[i]) {
			return false
		}
	}
	return true
}
