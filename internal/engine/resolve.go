package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/bookingsync/bookingsync/internal/store"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
)

// Winners of a manual conflict resolution: which side's state is kept.
const (
	WinnerD365    = "d365"
	WinnerOutlook = "outlook"
)

// Errors of ResolveConflict callers branch on.
var (
	// ErrNoOpenConflict: the booking has no conflict waiting for a person.
	ErrNoOpenConflict = errors.New("no open conflict for this booking")
	// ErrBadWinner: the winner is neither WinnerD365 nor WinnerOutlook.
	ErrBadWinner = errors.New(`winner must be "d365" or "outlook"`)
)

// Resolutions recorded on the conflict row.
const (
	ResolutionGone = "no longer in conflict"
)

// recordConflict stores the conflict a plan left for a person (one open
// row per booking; a repeat updates it). Failing to record it fails the
// evaluation, so the trigger is retried and the conflict never goes unseen.
func (x *execution) recordConflict(ctx context.Context, plan bsync.Plan) error {
	c := store.Conflict{BookingID: x.bookingID, ResourceID: x.resourceID(), EventID: x.eventID(), Rule: plan.Rule, Reason: plan.Reason}
	switch {
	case x.link != nil:
		c.Mailbox = x.link.Mailbox
	case x.event != nil:
		c.Mailbox = x.event.Mailbox
	}
	st := x.e.cfg.Store
	if _, err := st.OpenConflict(ctx, st.DB(), c); err != nil {
		return fmt.Errorf("record conflict of booking %s: %w", x.bookingID, err)
	}
	return nil
}

// ResolveConflict settles the open conflict of bookingID the way a person
// chose: winner WinnerD365 keeps the booking's state, WinnerOutlook the
// event's. Under the booking's lock it reads both sides and lets the
// decision core decide once, with the conflict policy overridden to
// d365_wins or outlook_wins for this booking only, so each choice writes
// exactly what that policy would have (C1/C2, C6/C7, D1/D3). If the two
// sides no longer conflict (someone already made them agree, or only one
// side still differs from the last agreed state), the evaluation is an
// ordinary sync and the conflict is closed as "no longer in conflict".
func (e *Engine) ResolveConflict(ctx context.Context, bookingID, winner string) (Outcome, error) {
	var policy, resolution string
	switch winner {
	case WinnerD365:
		policy, resolution = bsync.ConflictD365Wins, "d365 kept by admin"
	case WinnerOutlook:
		policy, resolution = bsync.ConflictOutlookWins, "outlook kept by admin"
	default:
		return Outcome{}, fmt.Errorf("%w, got %q", ErrBadWinner, winner)
	}
	unlock, err := e.lock(ctx, "booking:"+bookingID)
	if err != nil {
		return Outcome{}, err
	}
	defer unlock()
	st := e.cfg.Store
	open, err := st.ListConflicts(ctx, st.DB(), store.ConflictFilter{Open: true, BookingID: bookingID})
	if err != nil {
		return Outcome{}, err
	}
	if len(open) == 0 {
		return Outcome{}, fmt.Errorf("booking %s: %w", bookingID, ErrNoOpenConflict)
	}
	for attempt := 1; ; attempt++ {
		out, still, err := e.resolveOnce(ctx, bookingID, policy)
		if raced(err) && attempt < maxAttempts {
			continue
		}
		if err != nil {
			return out, err
		}
		if !still {
			resolution = ResolutionGone
		}
		c, err := st.ResolveConflict(ctx, st.DB(), bookingID, resolution)
		if err != nil {
			return out, err
		}
		e.audit(ctx, c.ResourceID, bookingID, c.EventID, "", "conflict_resolved", c.Rule+": "+resolution+" ("+out.Rule+": "+out.Reason+")", nil, "ok", nil)
		out.Reason = resolution + ": " + out.Reason
		return out, nil
	}
}

// resolveOnce reads both sides, decides with the conflict policy
// overridden and applies the plan. still reports whether the sides were
// still in conflict (what the manual policy would have left alone).
func (e *Engine) resolveOnce(ctx context.Context, bookingID, policy string) (out Outcome, still bool, err error) {
	link, err := e.link(ctx, bookingID)
	if err != nil {
		return Outcome{}, false, err
	}
	var ev *bsync.Event
	fetched := false
	if link != nil && !link.Pending() && !link.Detached {
		if ev, err = e.getEvent(ctx, link.Mailbox, link.EventID); err != nil {
			return Outcome{}, false, err
		}
		fetched = true
	}
	in, _, err := e.load(ctx, bookingID, link, ev, fetched, true, false)
	if err != nil {
		return Outcome{}, false, err
	}
	probe := in
	probe.Policy.Conflict = bsync.ConflictManual
	still = bsync.Decide(probe).Conflict
	in.Policy.Conflict = policy
	plan := bsync.Decide(in)
	out = Outcome{Rule: plan.Rule, Reason: plan.Reason}
	x := &execution{e: e, in: in, link: link, bookingID: bookingID, booking: in.Booking, event: in.Event}
	err = x.run(ctx, plan)
	out.Writes = x.writes
	return out, still, err
}
