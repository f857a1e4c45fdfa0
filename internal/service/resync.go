package service

import (
	"context"
	"fmt"
	"strings"

	"github.com/bookingsync/bookingsync/internal/engine"
	"github.com/bookingsync/bookingsync/internal/httpapi"
	"github.com/bookingsync/bookingsync/internal/store"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
)

// Resync is `bookingsync resync` behind the admin API.
func (a *adminBackend) Resync(ctx context.Context, req httpapi.ResyncRequest) (httpapi.ResyncReport, error) {
	var rs []store.Resource
	if req.All {
		if !req.DryRun {
			// Enrolment first: a resource opted in whose webhook was lost
			// is resynced now, not after the next opt-in poll.
			if err := a.s.PollResources(ctx); err != nil {
				a.s.log.Warn("resync: reconcile opted-in resources", "err", err)
			}
		}
		var err error
		rs, err = a.s.Store.ListResources(ctx, a.s.Store.DB(), store.ResourceFilter{OptIn: store.OptInAllowed, ActiveOnly: true})
		if err != nil {
			return httpapi.ResyncReport{}, err
		}
	} else {
		r, err := a.resolve(ctx, req.Resource)
		if err != nil {
			return httpapi.ResyncReport{}, err
		}
		rs = []store.Resource{r}
	}
	return a.s.Resync(ctx, rs, req.DryRun)
}

// Resync is a three-way comparison of the resources' bookings in the sync
// window (Dataverse), the events in their mailboxes' window (Graph
// calendarView; ours known by the link table or, for the rest, by a $batch
// read of our property) and the links, that puts every difference through
// the decision core:
//
//   - a linked event in the window: compared with its booking by
//     SyncListed, the listed copy standing for the engine's read (no Graph
//     call unless a write is due, or a write of ours raced the listing);
//   - a linked event not in the window: read ($batch) and compared the same
//     way — gone (deleted behind our back), moved out, or still there;
//   - an event of ours without a link, and an appointment created in
//     Outlook: SyncEvent (unlinked appointments only if the decision core
//     would do something with them);
//   - a booking not covered by the above (no link yet, pending create):
//     SyncBooking.
//
// With dryRun the same comparisons go through PlanEvent / PlanBooking and
// nothing is written; the report lists each difference with its rule and
// the actions it would take.
func (s *Service) Resync(ctx context.Context, resources []store.Resource, dryRun bool) (httpapi.ResyncReport, error) {
	rep := httpapi.ResyncReport{DryRun: dryRun, Counts: map[string]int{}, Rules: map[string]int{}, Items: []httpapi.ResyncItem{}}
	st := s.Store
	now := st.Now()
	from, to := now.Add(-s.cfg.Sync.WindowPast), now.Add(s.cfg.Sync.WindowFuture)
	ids := make([]string, 0, len(resources))
	resourceSet, mailboxSet := map[string]bool{}, map[string]bool{}
	var mailboxes []string
	for _, r := range resources {
		ids = append(ids, r.ID)
		rep.Resources = append(rep.Resources, r.ID)
		resourceSet[strings.ToLower(r.ID)] = true
		if r.Mailbox != "" && !mailboxSet[r.Mailbox] {
			mailboxSet[r.Mailbox] = true
			mailboxes = append(mailboxes, r.Mailbox)
		}
	}
	if len(ids) == 0 {
		return rep, nil
	}
	bookings, err := s.bookings.BookingsInWindow(ctx, ids, from, to)
	if err != nil {
		return rep, fmt.Errorf("list bookings in window: %w", err)
	}
	rep.Bookings = len(bookings)
	all, err := st.ListLinks(ctx, st.DB())
	if err != nil {
		return rep, err
	}
	type evKey struct{ mailbox, id string }
	linkOf := map[evKey]*store.Link{}
	var links []*store.Link
	for i := range all {
		l := &all[i]
		if !resourceSet[strings.ToLower(l.ResourceID)] && !mailboxSet[l.Mailbox] {
			continue
		}
		links = append(links, l)
		linkOf[evKey{l.Mailbox, l.EventID}] = l
	}
	rep.Links = len(links)

	r := &resyncRun{s: s, rep: &rep, dryRun: dryRun, done: map[string]bool{}}
	cal := s.calendar()
	inView := map[evKey]bool{}
	for _, mb := range mailboxes {
		view, err := cal.View(ctx, mb, from, to)
		if err != nil {
			return rep, fmt.Errorf("calendar view of %s: %w", mb, err)
		}
		rep.Events += len(view)
		var unknown []string
		masters := map[string]bool{}
		for i := range view {
			ev := &view[i]
			inView[evKey{mb, ev.ID}] = true
			if ev.Type == bsync.EventOccurrence || ev.Type == bsync.EventException {
				// Only a linked series matters (our event became one, R2);
				// its master is read below with the links out of view.
				if ev.SeriesMasterID != "" {
					masters[ev.SeriesMasterID] = true
				}
				continue
			}
			if l := linkOf[evKey{mb, ev.ID}]; l != nil {
				r.linkedEvent(ctx, l, ev)
				continue
			}
			unknown = append(unknown, ev.ID)
		}
		// Linked events not in the window (deleted, moved out, a series).
		var missing []string
		for _, l := range links {
			if l.Mailbox == mb && !l.Detached && !l.Pending() && !inView[evKey{mb, l.EventID}] {
				missing = append(missing, l.EventID)
			}
		}
		read, err := cal.GetMany(ctx, mb, append(missing, unknown...))
		if err != nil {
			return rep, err
		}
		for _, id := range missing {
			l := linkOf[evKey{mb, id}]
			if ev := read[id]; ev != nil {
				r.linkedEvent(ctx, l, ev)
				continue
			}
			r.goneEvent(ctx, l)
		}
		for _, id := range unknown {
			if ev := read[id]; ev != nil {
				r.unlinkedEvent(ctx, ev)
			}
		}
	}
	// Bookings not settled through an event, and links of these resources
	// in other mailboxes (reassigned) or pending.
	for _, b := range bookings {
		r.booking(ctx, b.ID)
	}
	for _, l := range links {
		if !l.Detached {
			r.booking(ctx, l.BookingID)
		}
	}
	return rep, nil
}

// resyncRun is one resync's state: the bookings already evaluated.
type resyncRun struct {
	s      *Service
	rep    *httpapi.ResyncReport
	dryRun bool
	done   map[string]bool // booking ids (lower case)
}

func (r *resyncRun) seen(bookingID string) bool {
	k := strings.ToLower(bookingID)
	if r.done[k] {
		return true
	}
	r.done[k] = true
	return false
}

// linkedEvent compares a linked event, as the view listed it or the batch
// read it, with its booking.
func (r *resyncRun) linkedEvent(ctx context.Context, l *store.Link, ev *bsync.Event) {
	if l.Detached || r.seen(l.BookingID) {
		return
	}
	item := httpapi.ResyncItem{BookingID: l.BookingID, Mailbox: l.Mailbox, EventID: l.EventID}
	if r.dryRun {
		plan, err := r.s.Engine.PlanEvent(ctx, *ev)
		r.planned(item, plan, err)
		return
	}
	// The copy just read stands for the engine's read (the links were
	// listed before the view: see SyncListed).
	out, err := r.s.Engine.SyncListed(ctx, *l, ev)
	r.done1(item, out, err)
}

// goneEvent handles a linked event Graph no longer has.
func (r *resyncRun) goneEvent(ctx context.Context, l *store.Link) {
	if r.seen(l.BookingID) {
		return
	}
	item := httpapi.ResyncItem{BookingID: l.BookingID, Mailbox: l.Mailbox, EventID: l.EventID}
	if r.dryRun {
		plan, err := r.s.Engine.PlanBooking(ctx, l.BookingID) // reads the event again: 404
		r.planned(item, plan, err)
		return
	}
	// The $batch read just answered 404: handled as a deletion notice, so
	// the engine does not read the event once more (one GET per event).
	out, err := r.s.Engine.SyncEvent(ctx, l.Mailbox, l.EventID, "", "deleted")
	r.done1(item, out, err)
}

// unlinkedEvent handles an event without a link: ours (lost link, orphan)
// or an appointment created in Outlook.
func (r *resyncRun) unlinkedEvent(ctx context.Context, ev *bsync.Event) {
	item := httpapi.ResyncItem{BookingID: ev.BookingID, Mailbox: ev.Mailbox, EventID: ev.ID}
	plan, err := r.s.Engine.PlanEvent(ctx, *ev) // no Graph call: the event is read
	if r.dryRun || err != nil {
		if ev.BookingID != "" {
			r.done[strings.ToLower(ev.BookingID)] = true
		}
		r.planned(item, plan, err)
		return
	}
	if len(plan.Actions) == 0 && plan.Link == bsync.LinkKeep && !plan.Conflict {
		r.rep.Evaluated++
		r.rep.InSync++
		return
	}
	if ev.BookingID != "" {
		r.done[strings.ToLower(ev.BookingID)] = true
	}
	out, err := r.s.Engine.SyncEvent(ctx, ev.Mailbox, ev.ID, "", "updated")
	r.done1(item, out, err)
}

// booking compares a booking not yet settled through its event.
func (r *resyncRun) booking(ctx context.Context, id string) {
	if r.seen(id) {
		return
	}
	item := httpapi.ResyncItem{BookingID: id}
	if r.dryRun {
		plan, err := r.s.Engine.PlanBooking(ctx, id)
		r.planned(item, plan, err)
		return
	}
	out, err := r.s.Engine.RefreshBooking(ctx, id)
	r.done1(item, out, err)
}

// planned records a dry-run plan.
func (r *resyncRun) planned(item httpapi.ResyncItem, plan bsync.Plan, err error) {
	rep := r.rep
	rep.Evaluated++
	if err != nil {
		rep.Errors++
		item.Error = err.Error()
		rep.Items = append(rep.Items, item)
		return
	}
	var acts []httpapi.ResyncAction
	for _, a := range plan.Actions {
		ra := resyncAction(a)
		if ra.BookingID == "" {
			ra.BookingID = item.BookingID
		}
		acts = append(acts, ra)
	}
	if len(acts) == 0 && !plan.Conflict && (plan.Link == bsync.LinkKeep || plan.Link == bsync.LinkSave || plan.Link == "") {
		rep.InSync++ // nothing to write (K1–K3: at most new versions recorded)
		return
	}
	item.Rule, item.Reason, item.Actions, item.Link, item.Conflict = plan.Rule, plan.Reason, acts, string(plan.Link), plan.Conflict
	for _, a := range acts {
		rep.Counts[countKey(a)]++
	}
	if plan.Conflict {
		rep.Counts["conflict"]++
	}
	if plan.Link == bsync.LinkDelete || plan.Link == bsync.LinkDetach {
		rep.Counts["link."+string(plan.Link)]++
	}
	rep.Rules[plan.Rule]++
	rep.Items = append(rep.Items, item)
}

// done1 records what one evaluation did.
func (r *resyncRun) done1(item httpapi.ResyncItem, out engine.Outcome, err error) {
	rep := r.rep
	rep.Evaluated++
	item.Rule, item.Reason, item.Writes = out.Rule, out.Reason, out.Writes
	if err != nil {
		rep.Errors++
		item.Error = err.Error()
	}
	if out.Writes > 0 {
		rep.Repairs++
		rep.Writes += out.Writes
		rep.Rules[out.Rule]++
	}
	if err == nil && out.Writes == 0 {
		rep.InSync++
		return
	}
	rep.Items = append(rep.Items, item)
}

func countKey(a httpapi.ResyncAction) string {
	if a.Side == "" {
		return a.Op
	}
	return a.Side + "." + a.Op
}

// resyncAction describes a planned action for the report.
func resyncAction(a bsync.Action) httpapi.ResyncAction {
	ra := httpapi.ResyncAction{Kind: string(a.Kind), Mailbox: a.Mailbox, EventID: a.EventID, BookingID: a.BookingID, Reason: a.Reason}
	switch a.Kind {
	case bsync.CreateEvent:
		ra.Side, ra.Op = "outlook", "create"
	case bsync.UpdateEvent:
		ra.Side, ra.Op, ra.Fields = "outlook", "update", a.Fields.String()
	case bsync.DeleteEvent:
		ra.Side, ra.Op = "outlook", "delete"
	case bsync.UpdateBookingTimes:
		ra.Side, ra.Op, ra.Fields = "dataverse", "update", "start,end"
	case bsync.CancelBooking:
		ra.Side, ra.Op = "dataverse", "cancel"
	case bsync.CreateBooking:
		ra.Side, ra.Op = "dataverse", "create"
	case bsync.Warn:
		ra.Op = "warn"
	default:
		ra.Op = string(a.Kind)
	}
	return ra
}
