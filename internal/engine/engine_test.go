package engine

import (
	"context"
	gosync "sync"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/config"
	"github.com/bookingsync/bookingsync/internal/store"
	"github.com/bookingsync/bookingsync/internal/store/storetest"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
)

var now = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

type harness struct {
	t   *testing.T
	st  *store.Store
	dv  *fakeBookings
	cal *fakeCalendars
	eng *Engine
}

func newHarness(t *testing.T, mutate ...func(*bsync.Policy)) *harness {
	t.Helper()
	st := storetest.NewSQLite(t)
	ctx := context.Background()
	for _, r := range []store.Resource{
		{ID: "res-1", Name: "Ana", Mailbox: "mbx-1", OptIn: store.OptInAllowed, Active: true},
		{ID: "res-2", Name: "Bo", Mailbox: "mbx-2", OptIn: store.OptInAllowed, Active: true},
		{ID: "res-3", Name: "Cy", Mailbox: "mbx-3", OptIn: store.OptInNotAllowed, Active: true},
	} {
		if _, err := st.UpsertResource(ctx, st.DB(), r); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.Default()
	r, err := bsync.NewRenderer(cfg.Sync.Templates, "https://org.example.test")
	if err != nil {
		t.Fatal(err)
	}
	p := bsync.PolicyFromConfig(cfg.Sync)
	for _, m := range mutate {
		m(&p)
	}
	h := &harness{t: t, st: st, dv: newFakeBookings(), cal: newFakeCalendars()}
	h.eng, err = New(Config{Store: st, Bookings: h.dv, Calendars: h.cal, Renderer: r, Policy: p,
		CanceledStatus: "canceled", OutlookCreatedStatus: "committed", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) booking(id, resource string, start time.Time) bsync.Booking {
	b := bsync.Booking{ID: id, Name: "Repair boiler", Start: start, End: start.Add(2 * time.Hour), Status: bsync.StatusCommitted,
		StatusID: "st-committed", StatusName: "Scheduled", Active: true, ResourceID: resource, ModifiedOn: now,
		WorkOrder: &bsync.WorkOrder{ID: "wo-1", Number: "WO-00123", Customer: "Contoso Ltd", IncidentType: "Repair boiler",
			Street1: "1 Main St", City: "Springfield"}}
	h.dv.put(b)
	return *h.dv.get(id)
}

func (h *harness) syncBooking(id string) Outcome {
	h.t.Helper()
	b := h.dv.get(id)
	var v int64
	if b != nil {
		v = b.Version
	}
	out, err := h.eng.SyncBooking(context.Background(), id, v)
	if err != nil {
		h.t.Fatalf("SyncBooking(%s): %v", id, err)
	}
	return out
}

func (h *harness) link(id string) *store.Link {
	h.t.Helper()
	l, err := h.eng.link(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return l
}

func TestBookingLifecycleWritesOncePerChange(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	start := now.Add(24 * time.Hour)
	h.booking("b1", "res-1", start)

	h.syncBooking("b1")
	evs := h.cal.inMailbox("mbx-1")
	if len(evs) != 1 {
		t.Fatalf("after create: %d events, want 1", len(evs))
	}
	ev := evs[0]
	if ev.BookingID != "b1" || ev.Content.ShowAs != "busy" || !ev.Content.Start.Equal(start) {
		t.Errorf("created event = %+v", ev)
	}
	l := h.link("b1")
	if l == nil || l.EventID != ev.ID || l.EventETag != ev.ETag || l.Pending() {
		t.Fatalf("link after create = %+v", l)
	}

	// The webhook about the booking version we already hold, and Graph's
	// notification about our own create: both echoes, no API call at all.
	_, w0, _ := h.cal.counts()
	reads0 := h.dv.reads
	if out := h.syncBooking("b1"); !out.Echo {
		t.Errorf("repeat of booking version: %+v, want echo", out)
	}
	if out, err := h.eng.SyncEvent(ctx, "mbx-1", ev.ID, ev.ETag, "created"); err != nil || !out.Echo {
		t.Errorf("echo of our create: %+v, %v", out, err)
	}
	if r, w, _ := h.cal.counts(); w != w0 || r != 0 || h.dv.reads != reads0 {
		t.Errorf("echoes cost calls: graph reads %d writes %d→%d, dataverse reads %d→%d", r, w0, w, reads0, h.dv.reads)
	}

	// Outlook's own extra update after create: one read, no write.
	touched := h.cal.userEdit(ev.ID, func(*bsync.Event) {})
	if _, err := h.eng.SyncEvent(ctx, "mbx-1", ev.ID, touched.ETag, "updated"); err != nil {
		t.Fatal(err)
	}
	if _, w, _ := h.cal.counts(); w != w0 {
		t.Errorf("Outlook's extra update caused %d writes", w-w0)
	}
	if h.link("b1").EventETag != touched.ETag {
		t.Errorf("new etag not recorded")
	}

	// A change that touches no synced field: no Graph call.
	b := *h.dv.get("b1")
	b.ModifiedOn = now.Add(time.Minute)
	h.dv.put(b)
	if h.syncBooking("b1"); h.writesSince(w0) != 0 {
		t.Errorf("unsynced change wrote to Graph")
	}
	if h.link("b1").BookingVersion != h.dv.get("b1").Version {
		t.Errorf("new booking version not recorded")
	}

	// Reschedule: exactly one write.
	b = *h.dv.get("b1")
	b.Start, b.End = b.Start.Add(time.Hour), b.End.Add(time.Hour)
	h.dv.put(b)
	h.syncBooking("b1")
	if n := h.writesSince(w0); n != 1 {
		t.Errorf("reschedule: %d Graph writes, want 1", n)
	}
	if got := h.cal.inMailbox("mbx-1")[0].Content.Start; !got.Equal(b.Start) {
		t.Errorf("event start = %v, want %v", got, b.Start)
	}

	// Reassign to another opted-in resource: removed here, created there.
	b = *h.dv.get("b1")
	b.ResourceID = "res-2"
	h.dv.put(b)
	h.syncBooking("b1")
	if len(h.cal.inMailbox("mbx-1")) != 0 || len(h.cal.inMailbox("mbx-2")) != 1 {
		t.Errorf("after reassignment: mbx-1 %d, mbx-2 %d events", len(h.cal.inMailbox("mbx-1")), len(h.cal.inMailbox("mbx-2")))
	}

	// Delete: the event goes, and so does the link.
	h.dv.mu.Lock()
	delete(h.dv.rows, "b1")
	h.dv.mu.Unlock()
	if _, err := h.eng.SyncBooking(ctx, "b1", 0); err != nil {
		t.Fatal(err)
	}
	if len(h.cal.inMailbox("mbx-2")) != 0 || h.link("b1") != nil {
		t.Errorf("after delete: events %d, link %+v", len(h.cal.inMailbox("mbx-2")), h.link("b1"))
	}
}

func (h *harness) writesSince(w0 int) int {
	_, w, _ := h.cal.counts()
	return w - w0
}

func TestCrashAfterGraphCreatedDoesNotDuplicate(t *testing.T) {
	h := newHarness(t)
	h.booking("b1", "res-1", now.Add(48*time.Hour))
	h.cal.failCreateAfter = true
	if _, err := h.eng.SyncBooking(context.Background(), "b1", h.dv.get("b1").Version); err == nil {
		t.Fatal("first attempt should report the lost response")
	}
	if l := h.link("b1"); l == nil || !l.Pending() {
		t.Fatalf("after the lost response the link should be pending: %+v", l)
	}
	h.syncBooking("b1") // the job's retry
	if evs := h.cal.inMailbox("mbx-1"); len(evs) != 1 {
		t.Fatalf("%d events after retry, want 1", len(evs))
	}
	if _, _, creates := h.cal.counts(); creates != 1 {
		t.Errorf("%d creates, want 1", creates)
	}
	if l := h.link("b1"); l == nil || l.Pending() {
		t.Errorf("link after recovery = %+v", l)
	}
}

func TestSameChangeDeliveredConcurrentlyIsAppliedOnce(t *testing.T) {
	h := newHarness(t)
	h.booking("b1", "res-1", now.Add(24*time.Hour))
	h.syncBooking("b1")
	_, w0, _ := h.cal.counts()
	b := *h.dv.get("b1")
	b.Start, b.End = b.Start.Add(30*time.Minute), b.End.Add(30*time.Minute)
	h.dv.put(b)
	v := h.dv.get("b1").Version

	// A second engine on the same store stands in for another instance:
	// the link's compare-and-swap, not the in-process lock, must hold.
	other, err := New(h.eng.cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg gosync.WaitGroup
	for i := range 40 {
		eng := h.eng
		if i%2 == 1 {
			eng = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := eng.SyncBooking(context.Background(), "b1", v); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := h.writesSince(w0); n != 1 {
		t.Errorf("%d Graph writes for one change delivered 40 times, want 1", n)
	}
}

func TestOutlookMoveUpdatesBookingOnce(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.booking("b1", "res-1", now.Add(24*time.Hour))
	h.syncBooking("b1")
	ev := h.cal.inMailbox("mbx-1")[0]
	moved := h.cal.userEdit(ev.ID, func(e *bsync.Event) {
		e.Content.Start, e.Content.End = e.Content.Start.Add(2*time.Hour), e.Content.End.Add(3*time.Hour)
	})
	if _, err := h.eng.SyncEvent(ctx, "mbx-1", ev.ID, moved.ETag, "updated"); err != nil {
		t.Fatal(err)
	}
	b := h.dv.get("b1")
	if !b.Start.Equal(moved.Content.Start) || !b.End.Equal(moved.Content.End) {
		t.Errorf("booking times = %v–%v, want %v–%v", b.Start, b.End, moved.Content.Start, moved.Content.End)
	}
	if h.dv.writes != 1 {
		t.Errorf("%d Dataverse writes, want 1", h.dv.writes)
	}
	// The webhook about our own booking write is an echo.
	reads := h.dv.reads
	if out := h.syncBooking("b1"); !out.Echo || h.dv.reads != reads {
		t.Errorf("echo of our booking write: %+v (dataverse reads %d→%d)", out, reads, h.dv.reads)
	}
}

// A dispatcher's edit between our read and our If-Match write: Dataverse
// answers 412, and the engine reads again and decides again at once.
func TestPreconditionFailedIsDecidedAgain(t *testing.T) {
	h := newHarness(t)
	h.booking("b1", "res-1", now.Add(24*time.Hour))
	h.syncBooking("b1")
	ev := h.cal.inMailbox("mbx-1")[0]
	moved := h.cal.userEdit(ev.ID, func(e *bsync.Event) {
		e.Content.Start, e.Content.End = e.Content.Start.Add(time.Hour), e.Content.End.Add(time.Hour)
	})
	h.dv.beforeWrite = func() {
		b := *h.dv.get("b1")
		b.Name = "Renamed by the dispatcher"
		h.dv.put(b)
	}
	if _, err := h.eng.SyncEvent(context.Background(), "mbx-1", ev.ID, moved.ETag, "updated"); err != nil {
		t.Fatal(err)
	}
	b := h.dv.get("b1")
	if !b.Start.Equal(moved.Content.Start) || b.Name != "Renamed by the dispatcher" {
		t.Errorf("booking after the race: %v %q", b.Start, b.Name)
	}
	if h.dv.writes != 1 {
		t.Errorf("%d Dataverse writes, want 1 (the failed If-Match write is not one)", h.dv.writes)
	}
}

// A deleted notification carries the etag we recorded: it is not an echo.
func TestDeletedNotificationIsNeverAnEcho(t *testing.T) {
	h := newHarness(t, func(p *bsync.Policy) { p.OnOutlookDelete = bsync.OnOutlookDeleteRecreateEvent })
	h.booking("b1", "res-1", now.Add(24*time.Hour))
	h.syncBooking("b1")
	ev := h.cal.inMailbox("mbx-1")[0]
	if err := h.cal.Delete(context.Background(), "mbx-1", ev.ID); err != nil {
		t.Fatal(err)
	}
	out, err := h.eng.SyncEvent(context.Background(), "mbx-1", ev.ID, ev.ETag, "deleted")
	if err != nil || out.Echo {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	if evs := h.cal.inMailbox("mbx-1"); len(evs) != 1 || evs[0].ID == ev.ID {
		t.Errorf("event not recreated: %+v", evs)
	}
}

// A deletion of a just-created event, processed while the create is being
// recorded: SyncEvent's first lookup finds no link (the create is still
// pending), and by the time it lists the pending creates the link has been
// recorded. The deletion must still be applied, not dropped as the deletion
// of an unlinked event (seen end to end under load: the deletion was lost).
func TestDeletionRacingTheCreateRecord(t *testing.T) {
	h := newHarness(t) // on_outlook_delete: cancel_booking
	ctx := context.Background()
	h.booking("b1", "res-1", now.Add(24*time.Hour))
	created, release := make(chan bsync.Event), make(chan struct{})
	h.cal.afterCreate = func(ev bsync.Event) {
		created <- ev
		<-release
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.eng.SyncBooking(ctx, "b1", h.dv.get("b1").Version)
		done <- err
	}()
	ev := <-created
	if err := h.cal.Delete(ctx, "mbx-1", ev.ID); err != nil {
		t.Fatal(err)
	}
	// Between the two lookups the create finishes and records its link.
	testHookAfterLinkLookup = func() {
		testHookAfterLinkLookup = nil
		close(release)
		if err := <-done; err != nil {
			t.Errorf("SyncBooking: %v", err)
		}
	}
	t.Cleanup(func() { testHookAfterLinkLookup = nil })
	out, err := h.eng.SyncEvent(ctx, "mbx-1", ev.ID, "", "deleted")
	if err != nil {
		t.Fatal(err)
	}
	if b := h.dv.get("b1"); b.StatusID != "st-canceled" {
		t.Errorf("booking status %q after its event was deleted (outcome %+v), want canceled", b.StatusID, out)
	}
}
