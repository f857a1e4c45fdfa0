package sandbox

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator"
	emudv "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/store"
)

// startWith starts a sandbox with extra BOOKINGSYNC_* settings.
func startWith(t *testing.T, env ...string) *Sandbox {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := Start(ctx, Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Env: env,
		Emulator: emulator.Options{Addr: "127.0.0.1:0", Seed: "demo"}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Stop(); cancel() })
	t.Cleanup(func() { dumpOnFailure(t, sb) }) // runs first, while the store is open
	return sb
}

// dumpOnFailure logs what the service did, so a failed end-to-end test says
// why: the audit log, notifications not processed, failed jobs.
func dumpOnFailure(t *testing.T, sb *Sandbox) {
	if !t.Failed() {
		return
	}
	ctx := context.Background()
	st := sb.Service.Store
	ents, _ := st.QueryAudit(ctx, st.DB(), store.AuditFilter{Limit: 50})
	for i := len(ents) - 1; i >= 0; i-- {
		e := ents[i]
		t.Logf("audit %s %s booking=%s event=%.12s… %s → %s %s", e.At.Format("15:04:05.000"), e.Action, e.BookingID, e.EventID, e.Reason, e.Outcome, e.Error)
	}
	ns, _ := st.ListUnprocessedNotifications(ctx, st.InboxReadDB(), 50)
	for _, n := range ns {
		t.Logf("unprocessed %s %s %s %.12s…", n.ReceivedAt.Format("15:04:05.000"), n.Source, n.ChangeType, n.ItemID)
	}
}

func getBooking(t *testing.T, sb *Sandbox, id string) (*dataverse.Booking, bool) {
	t.Helper()
	b, err := sb.Service.Dataverse.GetBooking(context.Background(), id)
	if err != nil {
		if strings.Contains(err.Error(), "404") || strings.Contains(strings.ToLower(err.Error()), "not found") {
			return nil, false
		}
		t.Fatal(err)
	}
	return b, true
}

// linkedBooking creates a booking for tc tomorrow and waits for its event.
func linkedBooking(t *testing.T, sb *Sandbox, tc tech, name string) (bookingID, eventID string) {
	t.Helper()
	start := sb.Service.Store.Now().Truncate(time.Hour).Add(30 * time.Hour)
	id := createBooking(t, sb, tc.resource, name, start, 2*time.Hour, "")
	waitFor(t, "event of "+name, func() (bool, error) {
		ev, ok := eventOf(t, sb, tc.mailbox, id)
		eventID = ev.ID
		return ok, nil
	})
	return id, eventID
}

func moveEvent(t *testing.T, sb *Sandbox, mailbox, eventID string, start, end time.Time) {
	t.Helper()
	s, e := graph.NewDateTimeTimeZone(start), graph.NewDateTimeTimeZone(end)
	if _, err := sb.Service.Graph.UpdateEvent(context.Background(), mailbox, eventID, graph.EventPatch{Start: &s, End: &e}, ""); err != nil {
		t.Fatal(err)
	}
}

func bookingStatusIs(t *testing.T, sb *Sandbox, id, status string) bool {
	b, ok := getBooking(t, sb, id)
	return ok && strings.EqualFold(b.BookingStatusID, emudv.BookingStatusID(status))
}

// TestOutlookToBookings is Part III end to end with the default policies:
// a move or resize in Outlook changes the booking; an edit of a field
// Dynamics 365 owns is put back; a deletion cancels the booking; an
// appointment created in Outlook is left alone.
func TestOutlookToBookings(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sb := startWith(t)
	ctx := context.Background()
	a := technicians(t, sb)[0]
	optIn(t, sb, a)
	id, evID := linkedBooking(t, sb, a, "Outlook move")

	// Move and resize.
	ev, _ := eventOf(t, sb, a.mailbox, id)
	start, end := ev.Content.Start.Add(90*time.Minute), ev.Content.End.Add(150*time.Minute)
	moveEvent(t, sb, a.mailbox, evID, start, end)
	waitFor(t, "booking follows the event", func() (bool, error) {
		b, ok := getBooking(t, sb, id)
		return ok && b.StartTime.Equal(start) && b.EndTime.Equal(end) && b.Duration == int(end.Sub(start).Minutes()), nil
	})

	// An owned field edited in Outlook is put back.
	subject := ev.Content.Subject
	hacked := "my own title"
	if _, err := sb.Service.Graph.UpdateEvent(ctx, a.mailbox, evID, graph.EventPatch{Subject: &hacked}, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "subject put back", func() (bool, error) {
		ev, ok := eventOf(t, sb, a.mailbox, id)
		return ok && ev.Content.Subject == subject, nil
	})

	// Deleted in Outlook: the booking is canceled (on_outlook_delete default).
	if err := sb.Service.Graph.DeleteEvent(ctx, a.mailbox, evID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "booking canceled", func() (bool, error) { return bookingStatusIs(t, sb, id, "Canceled"), nil })

	// Created in Outlook: ignored by default.
	s, e := graph.NewDateTimeTimeZone(start.Add(48*time.Hour)), graph.NewDateTimeTimeZone(start.Add(49*time.Hour))
	personal, err := sb.Service.Graph.CreateEvent(ctx, a.mailbox, graph.Event{Subject: "Dentist", Start: &s, End: &e}, "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if got := countBookings(t, sb, a.resource, "Dentist"); got != 0 {
		t.Errorf("ignored Outlook appointment made %d bookings", got)
	}
	_ = personal
}

// countBookings counts a resource's bookings with the given name.
func countBookings(t *testing.T, sb *Sandbox, res, name string) int {
	t.Helper()
	q := dataverse.Query{Select: dataverse.BookingSelect, Filter: dataverse.And(
		dataverse.Eq("_resource_value", dataverse.GUID(res)), dataverse.Eq("name", dataverse.String(name)))}
	rows, err := dataverse.ListAll[dataverse.Booking](context.Background(), sb.Service.Dataverse, dataverse.SetBookings, q)
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

// TestOutlookPolicies covers the other policy values end to end.
func TestOutlookPolicies(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Run("on_outlook_delete recreate_event", func(t *testing.T) {
		t.Parallel()
		sb := startWith(t, "BOOKINGSYNC_SYNC_ON_OUTLOOK_DELETE=recreate_event")
		a := technicians(t, sb)[0]
		optIn(t, sb, a)
		id, evID := linkedBooking(t, sb, a, "Recreate me")
		if err := sb.Service.Graph.DeleteEvent(context.Background(), a.mailbox, evID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "event recreated", func() (bool, error) {
			ev, ok := eventOf(t, sb, a.mailbox, id)
			return ok && ev.ID != evID, nil
		})
		if !bookingStatusIs(t, sb, id, "Scheduled") {
			t.Error("booking status changed")
		}
	})
	t.Run("on_outlook_delete unlink", func(t *testing.T) {
		t.Parallel()
		sb := startWith(t, "BOOKINGSYNC_SYNC_ON_OUTLOOK_DELETE=unlink")
		a := technicians(t, sb)[0]
		optIn(t, sb, a)
		id, evID := linkedBooking(t, sb, a, "Unlink me")
		if err := sb.Service.Graph.DeleteEvent(context.Background(), a.mailbox, evID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "link detached", func() (bool, error) {
			l, err := sb.Service.Store.GetLink(context.Background(), sb.Service.Store.DB(), id)
			return err == nil && l.Detached, nil
		})
		// A later booking change no longer reaches Outlook.
		updateRow(t, sb, dataverse.SetBookings, id, map[string]any{"name": "Unlink me (renamed)"})
		time.Sleep(time.Second)
		if _, ok := eventOf(t, sb, a.mailbox, id); ok {
			t.Error("an unlinked booking got an event again")
		}
		if !bookingStatusIs(t, sb, id, "Scheduled") {
			t.Error("booking status changed")
		}
	})
	t.Run("on_outlook_create create_booking", func(t *testing.T) {
		t.Parallel()
		sb := startWith(t, "BOOKINGSYNC_SYNC_ON_OUTLOOK_CREATE=create_booking")
		a := technicians(t, sb)[0]
		optIn(t, sb, a)
		ctx := context.Background()
		start := sb.Service.Store.Now().Truncate(time.Hour).Add(50 * time.Hour)
		s, e := graph.NewDateTimeTimeZone(start), graph.NewDateTimeTimeZone(start.Add(time.Hour))
		body := &graph.ItemBody{ContentType: "text", Content: "root canal, do not share"}
		if _, err := sb.Service.Graph.CreateEvent(ctx, a.mailbox, graph.Event{Subject: "Team lunch", Start: &s, End: &e}, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := sb.Service.Graph.CreateEvent(ctx, a.mailbox, graph.Event{Subject: "Dentist", Body: body, Sensitivity: "private",
			Start: &graph.DateTimeTimeZone{DateTime: s.DateTime, TimeZone: s.TimeZone}, End: &e}, ""); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "booking from the Outlook appointment", func() (bool, error) {
			return countBookings(t, sb, a.resource, "Team lunch") == 1, nil
		})
		waitFor(t, "private appointment booked without its subject", func() (bool, error) {
			return countBookings(t, sb, a.resource, sb.Config.Sync.PrivateBookingName) == 1, nil
		})
		if n := countBookings(t, sb, a.resource, "Dentist"); n != 0 {
			t.Errorf("the private subject leaked into %d bookings", n)
		}
	})
}

// waitQuiet waits until the service has nothing left to do: no notification
// waiting or being retried, no job queued or running. Tests that drift the
// sandbox behind the service's back start from there, or a late retry of
// earlier work would repair the drift before the test looks.
func waitQuiet(t *testing.T, sb *Sandbox) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, "the service to be idle", func() (bool, error) {
		n, err := sb.Service.Store.CountUnprocessedNotifications(ctx, sb.Service.Store.InboxReadDB())
		if err != nil || n > 0 {
			return false, err
		}
		var jobs int
		err = sb.Service.Store.DB().QueryRowContext(ctx,
			`SELECT COUNT(*) FROM river_job WHERE state IN ('available', 'running', 'retryable', 'pending')`).Scan(&jobs)
		if err != nil || jobs > 0 {
			return false, err
		}
		// The leader's start-up runs (River enqueues them once elected,
		// which under load is seconds after start): a first booking poll or
		// window pass running later would repair a test's drift itself.
		var started int
		err = sb.Service.Store.DB().QueryRowContext(ctx,
			`SELECT COUNT(DISTINCT kind) FROM river_job WHERE kind IN ('poll_bookings', 'window_pass') AND state = 'completed'`).Scan(&started)
		return started == 2, err
	})
}
