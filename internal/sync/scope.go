package sync

import "time"

// Scope says whether a booking should have an event, and if not, why.
type Scope struct {
	In     bool
	Reason string // why not ("" when In)
	// Removed: the booking itself is gone from the schedule (deleted,
	// inactive, canceled), as opposed to outside the window or no longer
	// enrolled. Only a removal competes with an Outlook edit (rules D3, D4).
	Removed bool
	// Unenrolled: the only reason is that the resource does not sync (opted
	// out, no mailbox). Its existing events are left alone (rule D6).
	Unenrolled bool
}

// InWindow reports whether the booking overlaps the sync window at now.
func InWindow(b Booking, now time.Time, p Policy) bool {
	return overlaps(b.Start, b.End, now, p)
}

func overlaps(start, end, now time.Time, p Policy) bool {
	from, to := p.Window(now)
	return end.After(from) && start.Before(to)
}

// BookingScope decides whether booking b of resource r belongs in r's
// calendar. linked: b already has an event in r's mailbox; a canceled
// booking is kept (marked) under on_cancel: mark only then, because a
// "Canceled:" event for a booking never shown would be noise.
func BookingScope(b *Booking, r *Resource, linked bool, now time.Time, p Policy) Scope {
	switch {
	case b == nil:
		return Scope{Reason: "booking deleted", Removed: true}
	case !b.Active:
		return Scope{Reason: "booking inactive", Removed: true}
	case b.Status == StatusCanceled && p.OnCancel != OnCancelMark:
		return Scope{Reason: "booking canceled", Removed: true}
	case b.Status == StatusCanceled && !linked:
		return Scope{Reason: "booking canceled and has no event to mark", Removed: true}
	case p.RequireWorkOrder && b.WorkOrder == nil:
		return Scope{Reason: "not a work-order booking (require_work_order)"}
	case r == nil || !r.OptedIn:
		return Scope{Reason: "resource not enrolled", Unenrolled: true}
	case r.Mailbox == "":
		return Scope{Reason: "resource has no mailbox", Unenrolled: true}
	case !InWindow(*b, now, p):
		return Scope{Reason: "outside the sync window"}
	}
	return Scope{In: true}
}
