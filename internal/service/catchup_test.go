package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator"
	emudv "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/sandbox"
	"github.com/bookingsync/bookingsync/internal/service"
	"github.com/bookingsync/bookingsync/internal/store"
)

// The catch-up tests run the service against the in-process emulator: one
// technician opted in, the demo week's bookings in the calendar, then
// Graph's notifications dropped (fault drop_notifications_rate: 1) while the
// calendar is changed behind the service's back.

type fixture struct {
	t        *testing.T
	sb       *sandbox.Sandbox
	resource string
	mailbox  string
	seq      int
}

func startFixture(t *testing.T) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the emulator and the service")
	}
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, sandbox.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(),
		Emulator: emulator.Options{Addr: "127.0.0.1:0", Seed: "demo"}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Stop(); cancel() })
	u := tenant.Technicians()[0]
	f := &fixture{t: t, sb: sb, resource: emudv.ResourceID(u.ID), mailbox: u.ID}
	t.Cleanup(f.dumpOnFailure)
	if err := sb.Service.Dataverse.Update(ctx, dataverse.SetResources, f.resource,
		map[string]any{sb.Config.Dataverse.OptInColumn: 100000000}, "*"); err != nil {
		t.Fatal(err)
	}
	f.waitFor("the opted-in technician's events", func() bool {
		return len(f.links()) > 0 && f.pendingWork() == 0
	})
	// The after-start check (catchup_due on becoming leader) may catch the
	// mailbox up on its own; let it finish so it does not race the tests.
	f.waitFor("the after-start catch-up check", func() bool {
		var n int
		err := f.store().DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job WHERE kind = 'catchup_due' AND state = 'completed'`).Scan(&n)
		return err == nil && n > 0 && f.pendingWork() == 0
	})
	// The last created events are modified once more by Outlook shortly
	// after: a round taken before that would report them to the next.
	f.settle()
	return f
}

// settle waits until Outlook's extra modification after a create (the
// emulator's, 500ms later) has happened and its notification, if one is
// delivered, has been processed.
func (f *fixture) settle() {
	f.t.Helper()
	time.Sleep(700 * time.Millisecond)
	f.waitFor("quiet", func() bool { return f.pendingWork() == 0 })
}

func (f *fixture) ctx() context.Context { return context.Background() }

func (f *fixture) store() *store.Store { return f.sb.Service.Store }

func (f *fixture) links() []store.Link {
	f.t.Helper()
	ls, err := f.store().ListLinksByMailbox(f.ctx(), f.store().DB(), f.mailbox)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []store.Link
	for _, l := range ls {
		if !l.Pending() {
			out = append(out, l)
		}
	}
	return out
}

// pendingWork counts unfinished jobs and unprocessed notifications.
func (f *fixture) pendingWork() int64 {
	f.t.Helper()
	qs, err := f.sb.Service.Queue.Stats(f.ctx())
	if err != nil {
		f.t.Fatal(err)
	}
	ns, err := f.store().ListUnprocessedNotifications(f.ctx(), f.store().InboxReadDB(), 10)
	if err != nil {
		f.t.Fatal(err)
	}
	return qs.Available + qs.Running + qs.Retryable + qs.Pending + int64(len(ns))
}

func (f *fixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	// Only a bound on a hang: under -race on a busy machine the opt-in's
	// creates take seconds each.
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *fixture) dropNotifications() {
	f.t.Helper()
	if err := f.sb.Emulator.Graph().SetFaults(json.RawMessage(`{"drop_notifications_rate": 1}`)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) catchup(reason string) service.CatchupReport {
	f.t.Helper()
	rep, err := f.sb.Service.CatchupMailbox(f.ctx(), f.mailbox, reason)
	if err != nil {
		f.t.Fatalf("catch-up: %v (report %+v)", err, rep)
	}
	f.t.Logf("catch-up: %+v", rep)
	return rep
}

func (f *fixture) booking(id string) *dataverse.Booking {
	f.t.Helper()
	b, err := f.sb.Service.Dataverse.GetBooking(f.ctx(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) moveEvent(eventID string, start time.Time, d time.Duration) {
	f.t.Helper()
	s, e := graph.NewDateTimeTimeZone(start), graph.NewDateTimeTimeZone(start.Add(d))
	if _, err := f.sb.Service.Graph.UpdateEvent(f.ctx(), f.mailbox, eventID, graph.EventPatch{Start: &s, End: &e}, ""); err != nil {
		f.t.Fatal(err)
	}
}

// futureLink creates a booking tomorrow and returns its link once its
// event exists.
func (f *fixture) futureLink() store.Link {
	f.t.Helper()
	f.seq++
	start := f.store().Now().Truncate(time.Hour).Add(time.Duration(26+3*f.seq) * time.Hour)
	body := map[string]any{
		"name": "catch-up test", "starttime": start.UTC().Format(time.RFC3339), "endtime": start.Add(2 * time.Hour).UTC().Format(time.RFC3339),
		"duration": 120, "bookingtype": 1,
		dataverse.NavBookingResource + "@odata.bind": "/" + dataverse.SetResources + "(" + f.resource + ")",
		dataverse.NavBookingStatus + "@odata.bind":   "/" + dataverse.SetBookingStatuses + "(" + emudv.BookingStatusID("Scheduled") + ")",
	}
	id, err := f.sb.Service.Dataverse.Create(f.ctx(), dataverse.SetBookings, body)
	if err != nil {
		f.t.Fatal(err)
	}
	var l store.Link
	f.waitFor("the new booking's event", func() bool {
		l, err = f.store().GetLink(f.ctx(), f.store().DB(), strings.ToLower(id))
		return err == nil && !l.Pending() && f.pendingWork() == 0
	})
	f.settle()
	l, err = f.store().GetLink(f.ctx(), f.store().DB(), l.BookingID)
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

func (f *fixture) canceled(id string) bool {
	return strings.EqualFold(f.booking(id).BookingStatusID, emudv.BookingStatusID("Canceled"))
}

func (f *fixture) dumpOnFailure() {
	if !f.t.Failed() {
		return
	}
	ents, _ := f.store().QueryAudit(f.ctx(), f.store().DB(), store.AuditFilter{Limit: 40})
	for i := len(ents) - 1; i >= 0; i-- {
		e := ents[i]
		f.t.Logf("audit %s %s booking=%s %s → %s %s %s", e.At.Format("15:04:05.000"), e.Action, e.BookingID, e.Reason, e.Outcome, e.After, e.Error)
	}
}

func (f *fixture) deltaState() map[string]any {
	f.t.Helper()
	raw, _, err := f.store().GetSyncState(f.ctx(), f.store().DB(), store.SyncKeyDeltaToken(f.mailbox))
	if err != nil {
		f.t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		f.t.Fatal(err)
	}
	return v
}

func (f *fixture) setDeltaState(v map[string]any) {
	f.t.Helper()
	raw, _ := json.Marshal(v)
	if err := f.store().SetSyncState(f.ctx(), f.store().DB(), store.SyncKeyDeltaToken(f.mailbox), string(raw)); err != nil {
		f.t.Fatal(err)
	}
}

func TestCatchupRepairsMissedNotifications(t *testing.T) {
	f := startFixture(t)
	// The first round may have been run by the after-start check already.
	first := f.catchup("test: first round")
	if first.Items == 0 && first.Full || first.Repairs != 0 || first.Errors != 0 {
		t.Fatalf("catch-up of a calendar in sync: %+v, want no repairs", first)
	}
	again := f.catchup("test: nothing changed")
	if again.Full || again.Items != 0 || again.Repairs != 0 {
		t.Errorf("second round with no change: %+v", again)
	}

	f.dropNotifications()
	l := f.futureLink()
	start := l.AgreedStart.Add(3 * time.Hour)
	f.moveEvent(l.EventID, start, l.AgreedEnd.Sub(l.AgreedStart))
	time.Sleep(300 * time.Millisecond) // a notification, were one sent, would be processed by now
	if b := f.booking(l.BookingID); !b.StartTime.Equal(l.AgreedStart) {
		t.Fatalf("booking moved without a notification (start %v): the fault did not drop it", b.StartTime)
	}
	rep := f.catchup("test: missed")
	if rep.Full || rep.Items != 1 || rep.Repairs != 1 {
		t.Errorf("catch-up after a move: %+v, want one item, one repair", rep)
	}
	if b := f.booking(l.BookingID); !b.StartTime.Equal(start) {
		t.Errorf("booking start = %v, want the event's %v", b.StartTime, start)
	}
	// The counts are in the audit log.
	ents, err := f.store().QueryAudit(f.ctx(), f.store().DB(), store.AuditFilter{Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range ents {
		if e.Action == "catch_up" && e.Reason == "test: missed" && e.Outcome == "ok" {
			var got service.CatchupReport
			if err := json.Unmarshal(e.After, &got); err != nil || got.Repairs != 1 || got.Items != 1 {
				t.Errorf("audit entry %s: %+v %v", e.After, got, err)
			}
			found = true
		}
	}
	if !found {
		t.Error("no catch_up audit entry")
	}
}

// TestCatchupJobOnMissed: a `missed` lifecycle notification runs the
// catch-up through the catchup_mailbox job.
func TestCatchupJobOnMissed(t *testing.T) {
	f := startFixture(t)
	f.catchup("test: first round")
	f.dropNotifications() // change notifications only; lifecycle ones still arrive
	l := f.futureLink()
	start := l.AgreedStart.Add(time.Hour)
	f.moveEvent(l.EventID, start, l.AgreedEnd.Sub(l.AgreedStart))
	subs, err := f.store().ListSubscriptionsByMailbox(f.ctx(), f.store().DB(), f.mailbox)
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscriptions: %v %v", subs, err)
	}
	body, _ := json.Marshal(map[string]string{"subscription_id": subs[0].ID, "event": "missed"})
	resp, err := f.sb.Emulator.HTTPClient().Post(f.sb.Emulator.URL()+"/_emulator/lifecycle", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("lifecycle: HTTP %d", resp.StatusCode)
	}
	f.waitFor("the booking moved by the catch-up", func() bool { return f.booking(l.BookingID).StartTime.Equal(start) })
}

func TestCatchupExpiredDeltaLinkStartsFullRound(t *testing.T) {
	f := startFixture(t)
	f.catchup("test: first round")
	f.dropNotifications()
	l := f.futureLink()
	if err := f.sb.Service.Graph.DeleteEvent(f.ctx(), f.mailbox, l.EventID); err != nil {
		t.Fatal(err)
	}
	// The stored link no longer works (Graph answers 410 syncStateNotFound).
	st := f.deltaState()
	link := st["link"].(string)
	st["link"] = link[:strings.Index(link, "$deltatoken=")] + "$deltatoken=expired.token"
	f.setDeltaState(st)

	rep := f.catchup("test: expired")
	if !rep.Full || !strings.Contains(rep.FullWhy, "expired") {
		t.Errorf("report %+v, want a full round because the link expired", rep)
	}
	// A new round reports no removals: the deleted event is found by its
	// absence, and on_outlook_delete (cancel_booking) applies.
	if rep.Repairs != 1 || !f.canceled(l.BookingID) {
		t.Errorf("repairs %d, booking canceled %v: want the event's deletion applied", rep.Repairs, f.canceled(l.BookingID))
	}
	if next := f.catchup("test: after"); next.Full {
		t.Errorf("round after the full one is full again: %+v", next)
	}
}

func TestCatchupWindowMovedStartsNewRound(t *testing.T) {
	f := startFixture(t)
	f.catchup("test: first round")
	st := f.deltaState()
	from, err := time.Parse(time.RFC3339Nano, st["from"].(string))
	if err != nil {
		t.Fatal(err)
	}
	// Less than a day: the round goes on.
	st["from"] = from.Add(-20 * time.Hour).Format(time.RFC3339Nano)
	f.setDeltaState(st)
	if rep := f.catchup("test: moved 20h"); rep.Full {
		t.Errorf("window moved 20h: %+v, want the round continued", rep)
	}
	st = f.deltaState()
	st["from"] = from.Add(-49 * time.Hour).Format(time.RFC3339Nano)
	oldLink := st["link"]
	f.setDeltaState(st)
	rep := f.catchup("test: moved 2d")
	if !rep.Full || !strings.Contains(rep.FullWhy, "window moved") || rep.Repairs != 0 {
		t.Errorf("window moved 2 days: %+v, want a full round without repairs", rep)
	}
	st = f.deltaState()
	if got, _ := time.Parse(time.RFC3339Nano, st["from"].(string)); got.Before(from) || st["link"] == oldLink {
		t.Errorf("state after the new round: %v, want the current window and a new link", st)
	}
}

// TestCatchupRemovedOutOfWindow: delta reports an event moved out of its
// window as removed. It is not a deletion: an appointment the technician
// moved months ahead moves its booking (O1) rather than canceling it, and a
// link whose agreed times are already outside the window is left to the
// window pass.
func TestCatchupRemovedOutOfWindow(t *testing.T) {
	f := startFixture(t)
	l, l2 := f.futureLink(), f.futureLink()
	f.catchup("test: first round")
	f.dropNotifications()
	now := f.store().Now()
	far := now.Add(f.sb.Config.Sync.WindowFuture + 30*24*time.Hour).Truncate(time.Hour)

	// Moved out of the window by the technician.
	f.moveEvent(l.EventID, far, time.Hour)
	rep := f.catchup("test: moved out")
	if rep.Removed != 1 || rep.Repairs != 1 {
		t.Errorf("report %+v, want one removal, repaired", rep)
	}
	if b := f.booking(l.BookingID); f.canceled(l.BookingID) || !b.StartTime.Equal(far) {
		t.Errorf("booking start %v, canceled %v: want it moved to %v, not canceled", b.StartTime, f.canceled(l.BookingID), far)
	}

	// A link whose agreed times are outside the window already.
	var err error
	if l2, err = f.store().GetLink(f.ctx(), f.store().DB(), l2.BookingID); err != nil {
		t.Fatal(err)
	}
	moved := l2
	moved.AgreedStart, moved.AgreedEnd = far.Add(24*time.Hour), far.Add(25*time.Hour)
	if _, err := f.store().UpdateLink(f.ctx(), f.store().DB(), moved, l2.Version); err != nil {
		t.Fatal(err)
	}
	if err := f.sb.Service.Graph.DeleteEvent(f.ctx(), f.mailbox, l2.EventID); err != nil {
		t.Fatal(err)
	}
	before, _ := f.sb.Emulator.Graph().Stats()
	rep = f.catchup("test: out-of-window link")
	after, _ := f.sb.Emulator.Graph().Stats()
	if rep.LeftToWindowPass != 1 || rep.Repairs != 0 || rep.Evaluated != 0 {
		t.Errorf("report %+v, want the removal left to the window pass", rep)
	}
	if f.canceled(l2.BookingID) {
		t.Error("booking of an out-of-window link canceled by the catch-up")
	}
	if n := after["GET /users/{id}/events/{id}"] - before["GET /users/{id}/events/{id}"]; n != 0 {
		t.Errorf("%d event reads for a removal left to the window pass", n)
	}
	if _, err := f.store().GetLink(f.ctx(), f.store().DB(), l2.BookingID); errors.Is(err, store.ErrNotFound) {
		t.Error("link of the out-of-window booking removed by the catch-up")
	}
}

// TestCatchupDue: after downtime every subscribed mailbox not heard of for
// catchup_after_downtime is caught up; periodic catch-ups wait for the
// interval (6h, plus a jitter under 1.5h).
func TestCatchupDue(t *testing.T) {
	f := startFixture(t)
	f.catchup("test: first round")
	subs, err := f.store().ListSubscriptionsByMailbox(f.ctx(), f.store().DB(), f.mailbox)
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscriptions: %v %v", subs, err)
	}
	now := f.store().Now()
	setLast := func(notified, caughtUp time.Duration) {
		t.Helper()
		// Subscribed long ago: created_at takes the old notification time
		// (in the store's own format).
		if err := f.store().TouchSubscriptions(f.ctx(), f.store().DB(), []string{subs[0].ID}, now.Add(-24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store().DB().ExecContext(f.ctx(), `UPDATE subscriptions SET created_at = last_notification_at`); err != nil {
			t.Fatal(err)
		}
		if err := f.store().TouchSubscriptions(f.ctx(), f.store().DB(), []string{subs[0].ID}, now.Add(-notified)); err != nil {
			t.Fatal(err)
		}
		if err := f.store().SetSyncState(f.ctx(), f.store().DB(), store.SyncKeyMailboxCatchup(f.mailbox),
			now.Add(-caughtUp).UTC().Format(time.RFC3339Nano)); err != nil {
			t.Fatal(err)
		}
	}
	due := func(afterStart bool) int {
		t.Helper()
		f.waitFor("no job queued", func() bool { return f.pendingWork() == 0 })
		n, err := f.sb.Service.CatchupDue(f.ctx(), afterStart)
		if err != nil {
			t.Fatal(err)
		}
		f.waitFor("the catch-ups enqueued", func() bool { return f.pendingWork() == 0 })
		return n
	}
	// Subscribed in this run, never notified or caught up: no downtime to
	// catch up on.
	if err := f.store().DeleteSyncState(f.ctx(), f.store().DB(), store.SyncKeyMailboxCatchup(f.mailbox)); err != nil {
		t.Fatal(err)
	}
	if got := due(true); got != 0 {
		t.Errorf("just subscribed: after start %d enqueued, want 0", got)
	}
	for _, tc := range []struct {
		name                 string
		notified, caughtUp   time.Duration
		afterStart, periodic int
	}{
		{"just heard of", time.Minute, time.Hour, 0, 0},
		{"notified lately, caught up long ago", time.Minute, 8 * time.Hour, 1, 1},
		{"quiet for an hour, caught up an hour ago", time.Hour, time.Hour, 1, 0},
		{"quiet, caught up 10 minutes ago", time.Hour, 10 * time.Minute, 0, 0},
	} {

		setLast(tc.notified, tc.caughtUp)
		if got := due(true); got != tc.afterStart {
			t.Errorf("%s: after start %d enqueued, want %d", tc.name, got, tc.afterStart)
		}
		setLast(tc.notified, tc.caughtUp)
		if got := due(false); got != tc.periodic {
			t.Errorf("%s: periodic %d enqueued, want %d", tc.name, got, tc.periodic)
		}
	}
}
