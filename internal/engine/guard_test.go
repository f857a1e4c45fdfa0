package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/store"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
)

// seed creates n synced bookings for resource (mailbox) and returns their ids.
func (h *harness) seed(prefix, resource string, n int) []string {
	h.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%02d", prefix, i)
		h.booking(ids[i], resource, now.Add(time.Duration(24+i)*time.Hour))
		h.syncBooking(ids[i])
	}
	return ids
}

func (h *harness) dropBooking(id string) {
	h.dv.mu.Lock()
	defer h.dv.mu.Unlock()
	delete(h.dv.rows, id)
}

// bookingPass plans a pass over ids as the change-tracking poll does for
// deleted bookings (version 0).
func (h *harness) bookingPass(ids ...string) *Pass {
	h.t.Helper()
	p := h.eng.NewPass(PassPoll)
	for _, id := range ids {
		var v int64
		if b := h.dv.get(id); b != nil {
			v = b.Version
		}
		if err := p.AddBooking(context.Background(), id, v); err != nil {
			h.t.Fatalf("plan %s: %v", id, err)
		}
	}
	return p
}

func (h *harness) heldPasses() []store.GuardPass {
	h.t.Helper()
	ps, err := h.st.ListGuardPasses(context.Background(), h.st.DB(), store.GuardPassFilter{Status: store.GuardHeld})
	if err != nil {
		h.t.Fatal(err)
	}
	return ps
}

func TestGuardExceedsNeedsBoth(t *testing.T) {
	g := NewGuard(nil, GuardConfig{}) // the defaults: 20 items, 10 %
	tests := []struct {
		count, linked int
		want          bool
	}{
		{21, 100, true},   // 21 > 20 and 21 % > 10 %
		{20, 100, false},  // not more than 20
		{21, 210, false},  // 10 % exactly is not more
		{21, 209, true},   // just over 10 %
		{25, 1000, false}, // many items, small fraction
		{5, 5, false},     // the whole mailbox, but few items
		{21, 0, true},     // nothing linked (yet)
	}
	for _, tt := range tests {
		if got := g.Exceeds(tt.count, tt.linked); got != tt.want {
			t.Errorf("Exceeds(%d, %d) = %v, want %v", tt.count, tt.linked, got, tt.want)
		}
	}
}

// The guard holds a mailbox's deletions only when they are more than
// max_items and more than max_fraction of its linked items.
func TestGuardThresholds(t *testing.T) {
	tests := []struct {
		name          string
		linked, drop  int
		maxItems      int
		maxFraction   float64
		wantHeld      bool
		wantRemaining int
	}{
		{"both exceeded", 10, 6, 4, 0.5, true, 10},
		{"items only", 10, 5, 4, 0.5, false, 5},     // 5 > 4 but 50 % is not more than 50 %
		{"fraction only", 10, 4, 4, 0.25, false, 6}, // 40 % > 25 % but 4 is not more than 4
		{"neither", 10, 2, 4, 0.5, false, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			ids := h.seed("b", "res-1", tt.linked)
			for _, id := range ids[:tt.drop] {
				h.dropBooking(id)
			}
			g := NewGuard(h.eng, GuardConfig{MaxItems: tt.maxItems, MaxFraction: tt.maxFraction})
			res, err := g.Run(context.Background(), h.bookingPass(ids...))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(h.cal.inMailbox("mbx-1")); got != tt.wantRemaining {
				t.Errorf("events left = %d, want %d", got, tt.wantRemaining)
			}
			held := h.heldPasses()
			if tt.wantHeld != (len(held) == 1) || len(held) > 1 {
				t.Fatalf("held passes = %+v, want held %v", held, tt.wantHeld)
			}
			if !tt.wantHeld {
				if res.Held != 0 || res.Applied != tt.drop {
					t.Errorf("result = %+v, want %d applied", res, tt.drop)
				}
				return
			}
			p := held[0]
			if p.Scope != "mbx-1" || p.Side != store.SideOutlook || p.Deletes != tt.drop || p.Linked != tt.linked ||
				!strings.HasPrefix(p.ID, "P-") || res.Held != tt.drop || len(res.Passes) != 1 {
				t.Errorf("held pass = %+v, result %+v", p, res)
			}
			items, err := DecodePlan(p.Plan)
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != tt.drop || items[0].Rule == "" || items[0].Reason == "" ||
				len(items[0].Actions) != 1 || items[0].Actions[0].Kind != string(bsync.DeleteEvent) {
				t.Errorf("held plan = %s", p.Plan)
			}
			// Nothing of the held part was written: links and events stay.
			for _, id := range ids[:tt.drop] {
				if h.link(id) == nil {
					t.Errorf("link of held %s was deleted", id)
				}
			}
		})
	}
}

// Counting is per mailbox: one mailbox's mass deletion is held while
// another mailbox's few deletions, and the first one's creates, proceed.
func TestGuardIsPerMailbox(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	a := h.seed("a", "res-1", 8)
	b := h.seed("b", "res-2", 8)
	for _, id := range a[:6] {
		h.dropBooking(id)
	}
	h.dropBooking(b[0])
	h.booking("a-new", "res-1", now.Add(48*time.Hour)) // not synced yet: a create in the held mailbox

	g := NewGuard(h.eng, GuardConfig{MaxItems: 3, MaxFraction: 0.5})
	res, err := g.Run(ctx, h.bookingPass(append(append(append([]string{}, a...), b...), "a-new")...))
	if err != nil {
		t.Fatal(err)
	}
	held := h.heldPasses()
	if len(held) != 1 || held[0].Scope != "mbx-1" || held[0].Deletes != 6 {
		t.Fatalf("held = %+v", held)
	}
	if res.Held != 6 || res.Applied != 2 {
		t.Errorf("result = %+v, want 6 held, 2 applied (b's delete and a-new's create)", res)
	}
	if got := len(h.cal.inMailbox("mbx-1")); got != 9 {
		t.Errorf("mbx-1 events = %d, want 8 kept + 1 created", got)
	}
	if got := len(h.cal.inMailbox("mbx-2")); got != 7 {
		t.Errorf("mbx-2 events = %d, want 7 (its one deletion applied)", got)
	}
}

// Approving re-runs the held items with no guard, each decided again: a
// booking that came back meanwhile keeps its event.
func TestGuardApproveRerunsHeldItems(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	ids := h.seed("b", "res-1", 8)
	saved := map[string]bsync.Booking{}
	for _, id := range ids[:6] {
		saved[id] = *h.dv.get(id)
		h.dropBooking(id)
	}
	g := NewGuard(h.eng, GuardConfig{MaxItems: 3, MaxFraction: 0.5})
	if _, err := g.Run(ctx, h.bookingPass(ids...)); err != nil {
		t.Fatal(err)
	}
	held := h.heldPasses()
	if len(held) != 1 {
		t.Fatalf("held = %+v", held)
	}
	// A later pass's deletion in the same mailbox joins the held pass,
	// even though it alone is under the thresholds.
	h.dropBooking(ids[6])
	res, err := g.Run(ctx, h.bookingPass(ids[6]))
	if err != nil {
		t.Fatal(err)
	}
	if res.Held != 1 || len(res.Passes) != 1 || res.Passes[0].ID != held[0].ID || res.Passes[0].Deletes != 7 {
		t.Fatalf("second pass: %+v, want its deletion added to %s", res, held[0].ID)
	}
	if got := len(h.cal.inMailbox("mbx-1")); got != 8 {
		t.Fatalf("events before approval = %d, want 8", got)
	}

	// The dispatcher restores one booking before the admin approves.
	restored := saved[ids[0]]
	h.dv.put(restored)

	out, err := g.Approve(ctx, held[0].ID, "admin@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if out.Items != 7 || out.Applied != 7 || len(out.Errors) != 0 || out.Pass.Status != store.GuardApplied || out.Pass.ApprovedBy != "admin@example.test" {
		t.Errorf("approve = %+v", out)
	}
	evs := h.cal.inMailbox("mbx-1")
	if len(evs) != 2 {
		t.Errorf("events after approval = %d, want 2 (the restored booking's and the untouched one's)", len(evs))
	}
	if h.link(ids[0]) == nil || h.link(ids[1]) != nil || h.link(ids[7]) == nil {
		t.Errorf("links after approval: restored %v, deleted %v, untouched %v", h.link(ids[0]), h.link(ids[1]), h.link(ids[7]))
	}
	if len(h.heldPasses()) != 0 {
		t.Error("pass still held after approval")
	}
	if _, err := g.Approve(ctx, held[0].ID, "again"); !errors.Is(err, ErrPassClosed) {
		t.Errorf("second approval: %v, want ErrPassClosed", err)
	}
	if _, err := g.Approve(ctx, "P-UNKNOWN", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown pass: %v, want ErrNotFound", err)
	}
}

// Events deleted in Outlook en masse would cancel their bookings: the
// cancellations are counted on the Dataverse side of that mailbox.
func TestGuardHoldsCancellations(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	ids := h.seed("b", "res-1", 6)
	p := h.eng.NewPass(PassCatchup)
	for _, id := range ids[:5] {
		l := h.link(id)
		if err := h.cal.Delete(ctx, l.Mailbox, l.EventID); err != nil {
			t.Fatal(err)
		}
		if err := p.AddEvent(ctx, l.Mailbox, l.EventID, "", "deleted", nil); err != nil {
			t.Fatal(err)
		}
	}
	g := NewGuard(h.eng, GuardConfig{MaxItems: 3, MaxFraction: 0.5})
	res, err := g.Run(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	held := h.heldPasses()
	if len(held) != 1 || held[0].Side != store.SideDataverse || held[0].Scope != "mbx-1" || held[0].Deletes != 5 || res.Held != 5 {
		t.Fatalf("held = %+v, result %+v", held, res)
	}
	for _, id := range ids[:5] {
		if b := h.dv.get(id); b.Status == bsync.StatusCanceled {
			t.Errorf("booking %s canceled while held", id)
		}
	}
	// Discarded: nothing is canceled, and the pass no longer waits.
	if _, err := g.Discard(ctx, held[0].ID, "admin"); err != nil {
		t.Fatal(err)
	}
	if len(h.heldPasses()) != 0 {
		t.Error("pass still held after discard")
	}
	if _, err := g.Approve(ctx, held[0].ID, "admin"); !errors.Is(err, ErrPassClosed) {
		t.Errorf("approving a discarded pass: %v, want ErrPassClosed", err)
	}
}

// A link whose booking left the window is compared although the booking's
// version is the recorded one (the window pass plans it with
// AddBookingRefresh), so its event is removed.
func TestPassRefreshRemovesEventOutOfWindow(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	b := h.booking("old", "res-1", now.Add(24*time.Hour))
	h.syncBooking("old")
	h.eng.cfg.Now = func() time.Time { return now.Add(9 * 24 * time.Hour) } // the booking ended 8 days ago
	h.eng.cfg.Policy.WindowPast = 7 * 24 * time.Hour

	echo := h.eng.NewPass(PassWindow)
	if err := echo.AddBooking(ctx, "old", b.Version); err != nil {
		t.Fatal(err)
	}
	if !echo.Items[0].Echo {
		t.Errorf("AddBooking with the recorded version = %+v, want an echo", echo.Items[0])
	}
	p := h.eng.NewPass(PassWindow)
	if err := p.AddBookingRefresh(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	it := p.Items[0]
	if len(it.Actions) != 1 || it.Actions[0].Kind != string(bsync.DeleteEvent) || it.Mailbox != "mbx-1" {
		t.Fatalf("planned = %+v, want the event deleted", it)
	}
	if _, err := NewGuard(h.eng, GuardConfig{}).Run(ctx, p); err != nil {
		t.Fatal(err)
	}
	if len(h.cal.inMailbox("mbx-1")) != 0 || h.link("old") != nil {
		t.Errorf("event or link of the out-of-window booking kept")
	}
}

// disable_deletes: the executor deletes no event and cancels no booking; it
// audits what it would have done and keeps the link.
func TestDisableDeletes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.eng.cfg.DisableDeletes = true
	h.booking("gone", "res-1", now.Add(24*time.Hour))
	h.syncBooking("gone")
	h.booking("kept", "res-1", now.Add(48*time.Hour))
	h.syncBooking("kept")
	evs := h.cal.inMailbox("mbx-1")
	if len(evs) != 2 {
		t.Fatalf("events = %d", len(evs))
	}

	// The booking is deleted in D365: its event would be deleted.
	h.dropBooking("gone")
	if _, err := h.eng.SyncBooking(ctx, "gone", 0); err != nil {
		t.Fatal(err)
	}
	if len(h.cal.inMailbox("mbx-1")) != 2 {
		t.Error("an event was deleted although deletes are disabled")
	}
	if h.link("gone") == nil {
		t.Error("the link of the suppressed delete was removed")
	}

	// The event of the other booking is deleted in Outlook: the booking
	// would be canceled (on_outlook_delete: cancel_booking).
	l := h.link("kept")
	if err := h.cal.Delete(ctx, l.Mailbox, l.EventID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.SyncEvent(ctx, l.Mailbox, l.EventID, "", "deleted"); err != nil {
		t.Fatal(err)
	}
	if b := h.dv.get("kept"); b.Status == bsync.StatusCanceled {
		t.Error("the booking was canceled although deletes are disabled")
	}
	if h.link("kept") == nil {
		t.Error("the link of the suppressed cancellation was removed")
	}

	entries, err := h.st.QueryAudit(ctx, h.st.DB(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var suppressed []store.AuditEntry
	for _, e := range entries {
		if e.Action == "delete_event" || e.Action == "cancel_booking" {
			t.Errorf("audit has %s although deletes are disabled", e.Action)
		}
		if e.Action == "delete_suppressed" {
			suppressed = append(suppressed, e)
		}
	}
	if len(suppressed) != 2 {
		t.Fatalf("delete_suppressed entries = %+v, want 2", suppressed)
	}
	// Newest first: the cancellation, then the deletion.
	cancel, del := suppressed[0], suppressed[1]
	if del.BookingID != "gone" || del.Side != store.SideOutlook || del.Outcome != "suppressed" ||
		!strings.Contains(del.Reason, "would delete_event") || !strings.Contains(string(del.Before), `"start"`) {
		t.Errorf("suppressed delete = %+v (before %s)", del, del.Before)
	}
	if cancel.BookingID != "kept" || cancel.Side != store.SideDataverse || !strings.Contains(cancel.Reason, "would cancel_booking") ||
		!strings.Contains(string(cancel.Before), `"status"`) {
		t.Errorf("suppressed cancel = %+v (before %s)", cancel, cancel.Before)
	}

	// The guard has nothing to hold when nothing is deleted.
	ids := h.seed("m", "res-1", 6)
	for _, id := range ids {
		h.dropBooking(id)
	}
	res, err := NewGuard(h.eng, GuardConfig{MaxItems: 1, MaxFraction: 0.01}).Run(ctx, h.bookingPass(ids...))
	if err != nil || res.Held != 0 || len(h.heldPasses()) != 0 {
		t.Errorf("guard with deletes disabled: %+v, %v", res, err)
	}
}

// Every write's audit entry says what changed: before and after.
func TestAuditRecordsBeforeAndAfter(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	start := now.Add(24 * time.Hour)
	h.booking("b1", "res-1", start)
	h.syncBooking("b1")
	// Outlook moves the event an hour later: the booking's times follow.
	l := h.link("b1")
	ev := h.cal.userEdit(l.EventID, func(e *bsync.Event) {
		e.Content.Start, e.Content.End = e.Content.Start.Add(time.Hour), e.Content.End.Add(time.Hour)
	})
	if _, err := h.eng.SyncEvent(ctx, "mbx-1", ev.ID, ev.ETag, "updated"); err != nil {
		t.Fatal(err)
	}
	// The dispatcher renames the booking: the event's subject follows.
	b := *h.dv.get("b1")
	b.Name, b.WorkOrder = "Inspect heat pump", nil
	h.dv.put(b)
	h.syncBooking("b1")

	entries, err := h.st.QueryAudit(ctx, h.st.DB(), store.AuditFilter{BookingID: "b1"})
	if err != nil {
		t.Fatal(err)
	}
	byAction := map[string]store.AuditEntry{}
	for _, e := range entries {
		if _, ok := byAction[e.Action]; !ok {
			byAction[e.Action] = e
		}
	}
	fields := func(raw json.RawMessage) map[string]any {
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return m
	}
	create := byAction["create_event"]
	if a := fields(create.After); a["subject"] == nil || a["start"] != start.Format(time.RFC3339) || a["mailbox"] != "mbx-1" {
		t.Errorf("create_event after = %s", create.After)
	}
	move := byAction["update_booking_times"]
	if bf, af := fields(move.Before), fields(move.After); bf["start"] != start.Format(time.RFC3339) ||
		af["start"] != start.Add(time.Hour).Format(time.RFC3339) || move.Side != store.SideDataverse {
		t.Errorf("update_booking_times before %s after %s", move.Before, move.After)
	}
	upd := byAction["update_event"]
	if bf, af := fields(upd.Before), fields(upd.After); af["subject"] != "Inspect heat pump" || bf["subject"] == af["subject"] ||
		upd.Side != store.SideOutlook || upd.Outcome != "ok" {
		t.Errorf("update_event before %s after %s (%+v)", upd.Before, upd.After, upd)
	}
}
