package bench

import (
	"context"
	"testing"
	"time"
)

func TestResync(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sandbox")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Resync(ctx, ResyncOptions{Bookings: 40, Drift: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.InSync.Writes != 0 || res.InSync.Repairs != 0 || res.InSync.Planned != 0 || res.InSync.Errors != 0 {
		t.Errorf("in_sync: %d writes, %d repairs, %d items, %d errors; want none", res.InSync.Writes, res.InSync.Repairs, res.InSync.Planned, res.InSync.Errors)
	}
	if res.DryRun.Writes != 0 || res.DryRun.Planned != 0 || res.DryRun.Errors != 0 {
		t.Errorf("dry_run: %d writes, %d planned, %d errors; want none", res.DryRun.Writes, res.DryRun.Planned, res.DryRun.Errors)
	}
	// The demo week's bookings are in the window too.
	if res.InSync.ComparedBookings < 40 || res.InSync.ComparedEvents < 40 {
		t.Errorf("in_sync compared %d bookings and %d events, want at least 40", res.InSync.ComparedBookings, res.InSync.ComparedEvents)
	}
	// The view comes in one page (CalendarViewPageSize), and an in-sync
	// resync reads nothing else from Graph, the dry run no more.
	for name, sc := range map[string]ResyncScenario{"in_sync": res.InSync, "dry_run": res.DryRun} {
		if sc.GraphRequests != 1 || sc.GraphByRequest["GET /users/{id}/calendarView"] != 1 {
			t.Errorf("%s: Graph requests %v, want one calendarView page", name, sc.GraphByRequest)
		}
		if sc.Met == nil && name == "in_sync" || sc.Met != nil && !*sc.Met {
			t.Errorf("%s: met %v", name, sc.Met)
		}
	}

	d := res.Drift
	changed := d.Changed["event_moved"] + d.Changed["booking_rescheduled"] + d.Changed["event_deleted"]
	if changed != 4 || d.Changed["event_deleted"] < 1 {
		t.Errorf("drift changed %v, want 4 changes with a deletion", d.Changed)
	}
	if d.Repairs != changed || d.Errors != 0 || d.Writes < changed {
		t.Errorf("drift: %d repairs, %d writes, %d errors; want %d repairs", d.Repairs, d.Writes, d.Errors, changed)
	}
	if d.AfterPlanned == nil || *d.AfterPlanned != 0 || *d.AfterErrors != 0 {
		t.Errorf("dry run after the drift resync planned %v (errors %v), want nothing", d.AfterPlanned, d.AfterErrors)
	}
	// Deleted events are found by the $batch read and not read again; a
	// moved event and a rescheduled booking are decided on the listed copy
	// (Engine.SyncListed): no single reads, one PATCH per rescheduled booking.
	if d.GraphBatchRequests != 1 || d.GraphBatchSteps != int64(d.Changed["event_deleted"]) {
		t.Errorf("drift: %d $batch with %d steps, want one with %d", d.GraphBatchRequests, d.GraphBatchSteps, d.Changed["event_deleted"])
	}
	if got := d.GraphByRequest["GET /users/{id}/events/{id}"]; got != 0 {
		t.Errorf("drift: %d single event reads, want none (%v)", got, d.GraphByRequest)
	}
	if got, want := d.GraphRequests, int64(2+d.Changed["booking_rescheduled"]); got != want {
		t.Errorf("drift: %d Graph requests, want %d: the view, the $batch and a PATCH per rescheduled booking (%v)", got, want, d.GraphByRequest)
	}
	if d.DataverseRequests == 0 || d.DurationMs <= 0 {
		t.Errorf("drift: %d Dataverse requests in %.1f ms", d.DataverseRequests, d.DurationMs)
	}
}
