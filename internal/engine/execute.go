package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bookingsync/bookingsync/internal/store"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
	"github.com/bookingsync/bookingsync/internal/sync/d365"
	"github.com/bookingsync/bookingsync/internal/sync/outlook"
)

// execution applies one plan, tracking the state each write produced so
// the link records exactly what both sides hold afterwards.
type execution struct {
	e         *Engine
	in        bsync.Input
	link      *store.Link // as stored (nil: none); replaced as the link row changes
	bookingID string
	booking   *bsync.Booking // current booking (after our writes)
	event     *bsync.Event   // current event (after our writes); nil: none/unknown
	origin    string         // link origin for a new link (bsync.OriginOutlook after CreateBooking)
	writes    int
	// linkCurrent: the link row already records the state after the last
	// action (a create saves it at once), so LinkSave has nothing to add.
	linkCurrent bool
	// suppressed: sync.mass_delete.disable_deletes kept a delete or cancel
	// of this plan from happening, so its link is kept, not deleted.
	suppressed bool
}

func (x *execution) run(ctx context.Context, plan bsync.Plan) error {
	for _, a := range plan.Actions {
		if err := x.apply(ctx, plan, a); err != nil {
			return err
		}
	}
	if plan.Conflict {
		x.e.audit(ctx, x.resourceID(), x.bookingID, x.eventID(), "", "conflict", plan.Rule+": "+plan.Reason, nil, "left for a person", nil)
		if err := x.recordConflict(ctx, plan); err != nil {
			return err
		}
	}
	switch plan.Link {
	case bsync.LinkSave:
		if x.linkCurrent {
			return nil
		}
		return x.saveLink(ctx)
	case bsync.LinkDetach:
		if x.link == nil {
			return nil
		}
		l := *x.link
		l.Detached = true
		saved, err := x.e.cfg.Store.UpdateLink(ctx, x.e.cfg.Store.DB(), l, l.Version)
		if err != nil {
			return fmt.Errorf("detach link of booking %s: %w", l.BookingID, err)
		}
		x.link = &saved
	case bsync.LinkDelete:
		if x.link == nil || x.suppressed {
			return nil
		}
		err := x.e.cfg.Store.DeleteLink(ctx, x.e.cfg.Store.DB(), x.link.BookingID, x.link.Version)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	return nil
}

func (x *execution) apply(ctx context.Context, plan bsync.Plan, a bsync.Action) error {
	x.linkCurrent = false
	reason := plan.Rule + ": " + a.Reason
	if a.Reason == "" {
		reason = plan.Rule + ": " + plan.Reason
	}
	cal, dv := x.e.cfg.Calendars, x.e.cfg.Bookings
	switch a.Kind {
	case bsync.CreateEvent:
		txid, err := x.intendCreate(ctx, a.Mailbox)
		if err != nil {
			return err
		}
		ev, err := cal.Create(ctx, a.Mailbox, x.bookingID, txid, a.Content)
		if err != nil {
			x.auditChange(ctx, store.SideOutlook, "create_event", reason, "", nil, nil, err)
			return fmt.Errorf("create event for booking %s: %w", x.bookingID, err)
		}
		after := eventFields(ev.Content, bsync.AllFields)
		after["mailbox"] = a.Mailbox
		x.auditChange(ctx, store.SideOutlook, "create_event", reason, ev.ID, nil, after, nil)
		x.writes++
		ev.Mailbox = a.Mailbox
		x.event = ev
		// Record the outcome at once: a crash after this point must not
		// leave the link pending (which would cost a lookup, not a duplicate).
		if err := x.saveLink(ctx); err != nil {
			return err
		}
		x.linkCurrent = true
		return nil
	case bsync.UpdateEvent:
		before := x.eventBefore(a.EventID, a.Fields)
		ev, err := cal.Update(ctx, a.Mailbox, a.EventID, a.Content, a.Fields)
		var after any
		if ev != nil {
			after = eventFields(ev.Content, a.Fields)
		}
		x.auditChange(ctx, store.SideOutlook, "update_event", reason, a.EventID, before, after, err)
		if errors.Is(err, outlook.ErrNotFound) {
			// Deleted meanwhile: the notification about it decides next.
			return fmt.Errorf("update event %s: %w", a.EventID, err)
		}
		if err != nil {
			return fmt.Errorf("update event %s: %w", a.EventID, err)
		}
		x.writes++
		ev.Mailbox = a.Mailbox
		x.event = ev
	case bsync.DeleteEvent:
		before := x.eventBefore(a.EventID, bsync.AllFields)
		if x.e.cfg.DisableDeletes {
			// The event stays, and so does its link.
			x.suppress(ctx, store.SideOutlook, "delete_event in "+a.Mailbox, reason, a.EventID, before)
			return nil
		}
		err := cal.Delete(ctx, a.Mailbox, a.EventID)
		x.auditChange(ctx, store.SideOutlook, "delete_event", reason, a.EventID, before, map[string]any{"deleted": true}, err)
		if err != nil {
			return fmt.Errorf("delete event %s: %w", a.EventID, err)
		}
		x.writes++
		if x.event != nil && x.event.ID == a.EventID {
			x.event = nil
		}
	case bsync.UpdateBookingTimes:
		b, err := dv.UpdateBookingTimes(ctx, x.bookingID, x.bookingETag(), a.Start, a.End)
		x.auditChange(ctx, store.SideDataverse, "update_booking_times", reason, x.eventID(), bookingTimes(x.booking), bookingTimes(b), err)
		if err != nil {
			return fmt.Errorf("update booking %s times: %w", x.bookingID, err)
		}
		x.writes++
		x.booking = b
	case bsync.CancelBooking:
		if x.e.cfg.DisableDeletes {
			// The booking stays as it is, and so does its link.
			x.suppress(ctx, store.SideDataverse, "cancel_booking", reason, x.eventID(), bookingStatus(x.booking))
			return nil
		}
		status, err := dv.StatusID(ctx, x.e.cfg.CanceledStatus)
		if err != nil {
			return fmt.Errorf("resolve canceled booking status %q: %w", x.e.cfg.CanceledStatus, err)
		}
		b, err := dv.SetBookingStatus(ctx, x.bookingID, x.bookingETag(), status)
		x.auditChange(ctx, store.SideDataverse, "cancel_booking", reason, x.eventID(), bookingStatus(x.booking), bookingStatus(b), err)
		if err != nil {
			return fmt.Errorf("cancel booking %s: %w", x.bookingID, err)
		}
		x.writes++
		x.booking = b
	case bsync.CreateBooking:
		status, err := dv.StatusID(ctx, x.e.cfg.OutlookCreatedStatus)
		if err != nil {
			return fmt.Errorf("resolve booking status %q for Outlook-created events: %w", x.e.cfg.OutlookCreatedStatus, err)
		}
		if x.in.Resource == nil {
			return fmt.Errorf("create booking for event %s: no resource", x.eventID())
		}
		id := d365.BookingIDForEvent(x.event.Mailbox, x.event.ID)
		b, err := dv.CreateBookingWithID(ctx, id, x.in.Resource.ID, status, a.Content.Subject, a.Start, a.End)
		if errors.Is(err, d365.ErrAlreadyExists) && b != nil {
			// Made by an attempt whose link we never recorded. Link it with
			// no agreed booking version, so its current state is compared
			// rather than taken for our own write.
			x.auditChange(ctx, store.SideDataverse, "create_booking", reason+" (found from an earlier attempt)", x.eventID(), nil, createdBooking(b), nil)
			b.Version = 0
			err = nil
		} else {
			var after any
			if b != nil {
				after = createdBooking(b)
			}
			x.auditChange(ctx, store.SideDataverse, "create_booking", reason, x.eventID(), nil, after, err)
			if err != nil {
				return fmt.Errorf("create booking for event %s: %w", x.eventID(), err)
			}
			x.writes++
		}
		x.booking, x.bookingID, x.origin = b, b.ID, bsync.OriginOutlook
	case bsync.Warn:
		x.audit(ctx, "", "warn", reason, x.eventID(), nil, nil)
	default:
		return fmt.Errorf("engine: unknown action kind %v", a.Kind)
	}
	return nil
}

// intendCreate durably records that a create is about to happen, with the
// transactionId it will carry, before the POST: after a crash the retry
// finds the pending link, looks the event up by our property, and reuses
// the transactionId, so the booking never gets two events.
func (x *execution) intendCreate(ctx context.Context, mailbox string) (string, error) {
	st := x.e.cfg.Store
	// A fresh generation per intent: a retry reuses the stored id below; a
	// later re-create (the event was deleted) must not be deduplicated.
	txid := outlook.TransactionID(x.bookingID, mailbox, time.Now().UnixNano())
	l := store.Link{BookingID: x.bookingID, Mailbox: mailbox, EventID: store.PendingEventID(x.bookingID), CreateTxID: txid}
	if x.booking != nil {
		l.ResourceID = x.booking.ResourceID
	}
	var (
		saved store.Link
		err   error
	)
	if x.link == nil {
		saved, err = st.InsertLink(ctx, st.DB(), l)
	} else {
		if x.link.Pending() && x.link.CreateTxID != "" && x.link.Mailbox == mailbox {
			l.CreateTxID = x.link.CreateTxID // a retry of the same create
		}
		saved, err = st.UpdateLink(ctx, st.DB(), l, x.link.Version)
	}
	if err != nil {
		return "", fmt.Errorf("record create intent for booking %s: %w", x.bookingID, err)
	}
	x.link = &saved
	return saved.CreateTxID, nil
}

// saveLink records the state both sides now agree on.
func (x *execution) saveLink(ctx context.Context) error {
	if x.booking == nil {
		return fmt.Errorf("engine: rule wants the link saved for booking %s but the booking is unknown", x.bookingID)
	}
	desired, err := x.e.cfg.Renderer.Render(*x.booking, resourceOrEmpty(x.in.Resource), x.e.cfg.Policy)
	if err != nil {
		return fmt.Errorf("render booking %s: %w", x.bookingID, err)
	}
	l := store.Link{
		BookingID: x.booking.ID, ResourceID: x.booking.ResourceID,
		BookingVersion: x.booking.Version, BookingHash: bsync.ContentHash(desired),
		AgreedStart: desired.Start, AgreedEnd: desired.End, Origin: x.origin,
	}
	if x.link != nil {
		l.Origin = x.link.Origin
	}
	switch {
	case x.event != nil:
		l.Mailbox, l.EventID, l.EventChangeKey, l.EventETag = x.event.Mailbox, x.event.ID, x.event.ChangeKey, x.event.ETag
		l.EventHash = bsync.ContentHash(x.event.Content)
	case x.link != nil && !x.link.Pending() && !x.in.EventFetched:
		// The event was neither read nor written: it is as last recorded.
		l.Mailbox, l.EventID, l.EventChangeKey, l.EventETag = x.link.Mailbox, x.link.EventID, x.link.EventChangeKey, x.link.EventETag
		l.EventHash = x.link.EventHash
	default:
		return fmt.Errorf("engine: rule wants the link saved for booking %s but there is no event", x.bookingID)
	}
	st := x.e.cfg.Store
	var saved store.Link
	if x.link == nil {
		saved, err = st.InsertLink(ctx, st.DB(), l)
	} else {
		saved, err = st.UpdateLink(ctx, st.DB(), l, x.link.Version)
	}
	if err != nil {
		return fmt.Errorf("record link for booking %s: %w", x.booking.ID, err)
	}
	x.link = &saved
	return nil
}

func (x *execution) bookingETag() string {
	if x.booking == nil {
		return ""
	}
	return x.booking.ETag
}

func (x *execution) eventID() string {
	switch {
	case x.event != nil:
		return x.event.ID
	case x.link != nil && !x.link.Pending():
		return x.link.EventID
	}
	return ""
}

func (x *execution) resourceID() string {
	switch {
	case x.booking != nil:
		return x.booking.ResourceID
	case x.link != nil:
		return x.link.ResourceID
	}
	return ""
}

func (x *execution) audit(ctx context.Context, side store.Side, action, reason, eventID string, before any, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	x.e.audit(ctx, x.resourceID(), x.bookingID, eventID, side, action, reason, before, outcome, err)
}
