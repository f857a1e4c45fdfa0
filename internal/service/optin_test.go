package service_test

import (
	"encoding/json"
	"testing"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	emudv "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	"github.com/bookingsync/bookingsync/internal/store"
)

// An opt-in whose webhook is lost is found by the opt-in poll, and the
// technician's bookings reach the calendar then, not at the next hourly
// window pass (the chaos run found this gap).
func TestOptInPollBringsBookings(t *testing.T) {
	f := startFixture(t)
	ctx := f.ctx()
	if err := f.sb.Emulator.Dataverse().SetFaults(json.RawMessage(`{"drop_webhooks_rate": 1}`)); err != nil {
		t.Fatal(err)
	}
	u := tenant.Technicians()[1]
	rid := emudv.ResourceID(u.ID)
	if err := f.sb.Service.Dataverse.Update(ctx, dataverse.SetResources, rid,
		map[string]any{f.sb.Config.Dataverse.OptInColumn: 100000000}, "*"); err != nil {
		t.Fatal(err)
	}
	links := func() int {
		ls, err := f.store().ListLinksByMailbox(ctx, f.store().DB(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ls)
	}
	if n := links(); n != 0 {
		t.Fatalf("%d links before the poll: the webhook was not dropped", n)
	}
	if err := f.sb.Service.PollResources(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := f.store().GetResource(ctx, f.store().DB(), rid)
	if err != nil || r.OptIn != store.OptInAllowed {
		t.Fatalf("after the poll: resource %+v, %v", r, err)
	}
	f.waitFor("the technician's events after the poll", func() bool { return links() > 0 && f.pendingWork() == 0 })
}
