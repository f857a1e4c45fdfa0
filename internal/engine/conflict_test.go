package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/store"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
)

func manualPolicy(p *bsync.Policy) { p.Conflict = bsync.ConflictManual }

// bothMoved links b1, then moves the booking by 1 h and the event by 3 h
// without telling the engine; it returns the event and both new starts.
func bothMoved(t *testing.T, h *harness) (ev bsync.Event, bookingStart, eventStart time.Time) {
	t.Helper()
	h.booking("b1", "res-1", now.Add(24*time.Hour))
	h.syncBooking("b1")
	ev = h.cal.inMailbox("mbx-1")[0]
	b := *h.dv.get("b1")
	b.Start, b.End = b.Start.Add(time.Hour), b.End.Add(time.Hour)
	h.dv.put(b)
	moved := h.cal.userEdit(ev.ID, func(e *bsync.Event) {
		e.Content.Start, e.Content.End = e.Content.Start.Add(3*time.Hour), e.Content.End.Add(3*time.Hour)
	})
	return *moved, b.Start, moved.Content.Start
}

func (h *harness) openConflicts() []store.Conflict {
	h.t.Helper()
	cs, err := h.st.ListConflicts(context.Background(), h.st.DB(), store.ConflictFilter{Open: true})
	if err != nil {
		h.t.Fatal(err)
	}
	return cs
}

func (h *harness) writes() int {
	_, w, _ := h.cal.counts()
	h.dv.mu.Lock()
	defer h.dv.mu.Unlock()
	return w + h.dv.writes
}

// A manual conflict writes nothing and is recorded once, whichever side's
// trigger comes first and however often it is evaluated again; resolving it
// writes the chosen side's state and closes it.
func TestManualConflictRecordedAndResolved(t *testing.T) {
	for _, winner := range []string{WinnerD365, WinnerOutlook} {
		for _, first := range []string{"event", "booking"} {
			t.Run(winner+"/"+first+" trigger first", func(t *testing.T) {
				h := newHarness(t, manualPolicy)
				ctx := context.Background()
				ev, bStart, eStart := bothMoved(t, h)
				w0 := h.writes()
				triggers := []func() (Outcome, error){
					func() (Outcome, error) { return h.eng.SyncEvent(ctx, "mbx-1", ev.ID, ev.ETag, "updated") },
					func() (Outcome, error) { return h.eng.SyncBooking(ctx, "b1", h.dv.get("b1").Version) },
				}
				if first == "booking" {
					triggers[0], triggers[1] = triggers[1], triggers[0]
				}
				for i, trig := range append(triggers, triggers...) {
					out, err := trig()
					if err != nil {
						t.Fatalf("trigger %d: %v", i, err)
					}
					if out.Writes != 0 {
						t.Errorf("trigger %d wrote %d times (%s: %s), want nothing written", i, out.Writes, out.Rule, out.Reason)
					}
				}
				if n := (h.writes() - w0); n != 0 {
					t.Errorf("%d writes, want none while the conflict is open", n)
				}
				cs := h.openConflicts()
				if len(cs) != 1 || cs[0].BookingID != "b1" || cs[0].Rule != "C5" || cs[0].Mailbox != "mbx-1" || cs[0].EventID != ev.ID {
					t.Fatalf("open conflicts = %+v, want one C5 for b1", cs)
				}

				out, err := h.eng.ResolveConflict(ctx, "b1", winner)
				if err != nil {
					t.Fatal(err)
				}
				want, rule := bStart, "C1"
				if winner == WinnerOutlook {
					want, rule = eStart, "C2"
				}
				b, e := h.dv.get("b1"), h.cal.inMailbox("mbx-1")[0]
				if !b.Start.Equal(want) || !e.Content.Start.Equal(want) {
					t.Errorf("after keeping %s: booking starts %v, event %v; want both %v", winner, b.Start, e.Content.Start, want)
				}
				if out.Rule != rule || out.Writes != 1 {
					t.Errorf("ResolveConflict = %+v, want rule %s and one write", out, rule)
				}
				if cs := h.openConflicts(); len(cs) != 0 {
					t.Errorf("still open after resolving: %+v", cs)
				}
				all, _ := h.st.ListConflicts(ctx, h.st.DB(), store.ConflictFilter{BookingID: "b1"})
				if len(all) != 1 || all[0].Resolution != winner+" kept by admin" {
					t.Errorf("conflict history = %+v", all)
				}
				// Settled: the echoes of the resolution's write change nothing.
				w1 := h.writes()
				h.syncBooking("b1")
				e = h.cal.inMailbox("mbx-1")[0]
				if _, err := h.eng.SyncEvent(ctx, "mbx-1", e.ID, e.ETag, "updated"); err != nil {
					t.Fatal(err)
				}
				if n := (h.writes() - w1); n != 0 || len(h.openConflicts()) != 0 {
					t.Errorf("after resolving: %d more writes, %d open conflicts", n, len(h.openConflicts()))
				}
				if _, err := h.eng.ResolveConflict(ctx, "b1", winner); !errors.Is(err, ErrNoOpenConflict) {
					t.Errorf("resolving again: err = %v, want ErrNoOpenConflict", err)
				}
			})
		}
	}
}

// The technician moved the event back meanwhile: only the booking differs
// from the last agreed state, so resolving is an ordinary sync (B6), whoever
// was chosen, and the conflict closes as "no longer in conflict".
func TestResolvedConflictNoLongerInConflict(t *testing.T) {
	h := newHarness(t, manualPolicy)
	ctx := context.Background()
	ev, bStart, _ := bothMoved(t, h)
	if _, err := h.eng.SyncEvent(ctx, "mbx-1", ev.ID, ev.ETag, "updated"); err != nil {
		t.Fatal(err)
	}
	if len(h.openConflicts()) != 1 {
		t.Fatal("no conflict recorded")
	}
	h.cal.userEdit(ev.ID, func(e *bsync.Event) {
		e.Content.Start, e.Content.End = e.Content.Start.Add(-3*time.Hour), e.Content.End.Add(-3*time.Hour)
	})
	out, err := h.eng.ResolveConflict(ctx, "b1", WinnerOutlook)
	if err != nil {
		t.Fatal(err)
	}
	if e := h.cal.inMailbox("mbx-1")[0]; !e.Content.Start.Equal(bStart) || out.Rule != "B6" {
		t.Errorf("resolve = %+v, event starts %v; want B6 and the booking's %v", out, e.Content.Start, bStart)
	}
	all, _ := h.st.ListConflicts(ctx, h.st.DB(), store.ConflictFilter{BookingID: "b1"})
	if len(all) != 1 || all[0].Resolution != ResolutionGone {
		t.Errorf("conflict = %+v, want resolved as %q", all, ResolutionGone)
	}
}

// Change versus delete under manual (C8): nothing written; keeping D365
// creates the event again (C6), keeping Outlook applies on_outlook_delete
// (C7, by default the booking is canceled).
func TestManualChangeVersusDelete(t *testing.T) {
	for _, winner := range []string{WinnerD365, WinnerOutlook} {
		t.Run(winner, func(t *testing.T) {
			h := newHarness(t, manualPolicy)
			ctx := context.Background()
			h.booking("b1", "res-1", now.Add(24*time.Hour))
			h.syncBooking("b1")
			ev := h.cal.inMailbox("mbx-1")[0]
			b := *h.dv.get("b1")
			b.Name = "Renamed"
			h.dv.put(b)
			if err := h.cal.Delete(ctx, "mbx-1", ev.ID); err != nil {
				t.Fatal(err)
			}
			w0 := h.writes()
			out, err := h.eng.SyncEvent(ctx, "mbx-1", ev.ID, "", "deleted")
			if err != nil {
				t.Fatal(err)
			}
			if out.Rule != "C8" || (h.writes()-w0) != 0 || len(h.openConflicts()) != 1 {
				t.Fatalf("deleted vs changed under manual: %+v, %d writes, %d open conflicts", out, (h.writes() - w0), len(h.openConflicts()))
			}
			out, err = h.eng.ResolveConflict(ctx, "b1", winner)
			if err != nil {
				t.Fatal(err)
			}
			switch winner {
			case WinnerD365:
				if evs := h.cal.inMailbox("mbx-1"); out.Rule != "C6" || len(evs) != 1 {
					t.Errorf("keep d365: %+v, %d events", out, len(evs))
				}
			case WinnerOutlook:
				if b := h.dv.get("b1"); out.Rule != "C7" || b.StatusID != "st-canceled" {
					t.Errorf("keep outlook: %+v, booking status %s", out, b.StatusID)
				}
			}
			if len(h.openConflicts()) != 0 {
				t.Error("conflict still open")
			}
		})
	}
}

func TestResolveConflictRefusesBadInput(t *testing.T) {
	h := newHarness(t, manualPolicy)
	if _, err := h.eng.ResolveConflict(context.Background(), "b1", "dispatcher"); !errors.Is(err, ErrBadWinner) {
		t.Errorf("bad winner: err = %v", err)
	}
	if _, err := h.eng.ResolveConflict(context.Background(), "b1", WinnerD365); !errors.Is(err, ErrNoOpenConflict) {
		t.Errorf("no conflict: err = %v", err)
	}
}

// Under the default policy: a dispatcher renames the booking while the
// technician moves the event, and the booking's webhook arrives first. The
// engine reads the event before writing it, so the move is applied to the
// booking (M1) instead of being absorbed into the link as agreed while the
// booking kept its old times.
func TestBookingTriggerSeesUnnotifiedOutlookMove(t *testing.T) {
	h := newHarness(t)
	h.booking("b1", "res-1", now.Add(24*time.Hour))
	h.syncBooking("b1")
	ev := h.cal.inMailbox("mbx-1")[0]
	b := *h.dv.get("b1")
	b.Name = "Renamed by the dispatcher"
	h.dv.put(b)
	moved := h.cal.userEdit(ev.ID, func(e *bsync.Event) {
		e.Content.Start, e.Content.End = e.Content.Start.Add(2*time.Hour), e.Content.End.Add(2*time.Hour)
	})
	if out := h.syncBooking("b1"); out.Rule != "M1" {
		t.Errorf("booking trigger = %+v, want M1 (move and rename both applied)", out)
	}
	if got := h.dv.get("b1"); !got.Start.Equal(moved.Content.Start) {
		t.Errorf("booking starts %v, want the event's %v", got.Start, moved.Content.Start)
	}
	// The move's own notification then finds nothing left to do.
	w0 := h.writes()
	if _, err := h.eng.SyncEvent(context.Background(), "mbx-1", ev.ID, moved.ETag, "updated"); err != nil {
		t.Fatal(err)
	}
	if n := h.writes() - w0; n != 0 {
		t.Errorf("the move's notification caused %d writes", n)
	}
}
