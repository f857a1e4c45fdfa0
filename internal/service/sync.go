package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/bookingsync/bookingsync/internal/engine"
	"github.com/bookingsync/bookingsync/internal/jobs"
	"github.com/bookingsync/bookingsync/internal/store"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
	"github.com/bookingsync/bookingsync/internal/sync/d365"
	"github.com/bookingsync/bookingsync/internal/sync/outlook"
)

// syncStateBookingsToken is the sync_state key of the Dataverse change
// tracking token for bookableresourcebookings.
const syncStateBookingsToken = "dataverse.bookings.delta_token"

// newEngine builds the sync engine on the service's clients and store.
func (s *Service) newEngine() (*engine.Engine, error) {
	policy := bsync.PolicyFromConfig(s.cfg.Sync)
	r, err := bsync.NewRenderer(s.cfg.Sync.Templates, s.cfg.Dataverse.OrgURL)
	if err != nil {
		return nil, fmt.Errorf("sync templates: %w", err)
	}
	canceled := s.cfg.Sync.CanceledBookingStatus
	if canceled == "" {
		canceled = "canceled"
	}
	created := s.cfg.Sync.OutlookCreatedBookingStatus
	if created == "" {
		created = "committed"
	}
	calOpts := outlook.Options{PropertyID: s.cfg.Graph.ExtendedPropertyID}
	if s.cfg.Sync.EventTimeZone == "resource" {
		// The resource's time zone as Dynamics 365 keeps it (its timezone
		// code through timezonedefinition): no Graph permission beyond
		// Calendars.ReadWrite is needed, unlike mailboxSettings. Cached per
		// mailbox for a day; a failed lookup writes the last known zone or UTC.
		tzs := d365.NewTimeZones(s.Dataverse)
		calOpts.TimeZone = outlook.NewZoneCache(func(ctx context.Context, mailbox string) (string, error) {
			// The enrolled resource whose user owns the mailbox; none known: UTC.
			st := s.Store
			rs, err := st.ListResources(ctx, st.DB(), store.ResourceFilter{Mailbox: mailbox, OptIn: store.OptInAllowed, ActiveOnly: true})
			if err == nil && len(rs) == 0 {
				rs, err = st.ListResources(ctx, st.DB(), store.ResourceFilter{Mailbox: mailbox})
			}
			if err != nil || len(rs) == 0 {
				return "", err
			}
			return tzs.ResourceTimeZone(ctx, rs[0].ID)
		}, outlook.ZoneCacheOptions{Logger: s.log.With("component", "timezones")}).TimeZone
	}
	return engine.New(engine.Config{
		Store:                s.Store,
		Bookings:             s.bookings,
		Calendars:            outlook.New(s.Graph, calOpts),
		Renderer:             r,
		Policy:               policy,
		CanceledStatus:       canceled,
		OutlookCreatedStatus: created,
		DisableDeletes:       s.cfg.Sync.MassDelete.DisableDeletes,
		Logger:               s.log.With("component", "engine"),
		Now:                  s.Store.Now,
	})
}

// syncChanges runs the engine for the booking and event changes of one
// process_notifications job. Bursts are coalesced first: Outlook sends
// created then updated (and duplicates) for one event, and a dispatcher's
// edits come as several webhooks; only the latest state matters, because
// the engine reads the current state anyway.
func (s *Service) syncChanges(ctx context.Context, ns []store.Notification) map[int64]error {
	type eventKey struct{ mailbox, id string }
	bookings := map[string]int64{} // booking id → highest version seen (0 unknown)
	events := map[eventKey]store.Notification{}
	var workOrders []string
	owner := map[int64]string{} // notification id → coalescing key, for errors
	for _, n := range ns {
		switch {
		case n.Source == store.SourceDataverse && strings.HasSuffix(n.ChangeType, ":msdyn_workorder"):
			workOrders = append(workOrders, n.ItemID)
			owner[n.ID] = "w:"

		case n.Source == store.SourceDataverse && strings.HasSuffix(n.ChangeType, ":bookableresourcebooking"):
			v, _ := strconv.ParseInt(n.ETag, 10, 64)
			if strings.HasPrefix(n.ChangeType, "Delete:") {
				v = 0 // a delete has no newer version; always evaluate
			}
			if old, ok := bookings[n.ItemID]; !ok || (old != 0 && v > old) || v == 0 {
				bookings[n.ItemID] = v
			}
			owner[n.ID] = "b:" + n.ItemID
		case n.Source == store.SourceGraph:
			k := eventKey{n.Mailbox, n.ItemID}
			// A deleted notification wins over the others: the event is gone.
			old, seen := events[k]
			if !seen || n.ChangeType == "deleted" || old.ChangeType != "deleted" {
				if seen && old.ETag != n.ETag {
					// Several versions in one batch, in no reliable order:
					// the etag of whichever is kept may be our echo while
					// another was a real edit. Without an etag the engine
					// reads the event and sees the newest state.
					n.ETag = ""
				}
				events[k] = n
			}
			owner[n.ID] = "e:" + n.Mailbox + "/" + n.ItemID
		}
	}
	failed := map[string]error{}
	if len(workOrders) > 0 {
		if err := s.refreshWorkOrders(ctx, workOrders); err != nil {
			failed["w:"] = err
		}
	}
	for id, v := range bookings {
		if _, err := s.Engine.SyncBooking(ctx, id, v); err != nil {
			failed["b:"+id] = err
		}
	}
	for k, n := range events {
		if _, err := s.Engine.SyncEvent(ctx, k.mailbox, k.id, n.ETag, n.ChangeType); err != nil {
			failed["e:"+k.mailbox+"/"+k.id] = err
		}
	}
	out := map[int64]error{}
	for id, key := range owner {
		if err := failed[key]; err != nil {
			out[id] = err
		}
	}
	return out
}

// PollBookings is the change-tracking safety net: it feeds every booking
// Dataverse reports changed since the stored token to the engine, so the
// calendar converges even when no webhook arrived. An expired token starts
// over with a full comparison of the window.
func (s *Service) PollBookings(ctx context.Context) error {
	st := s.Store
	token, _, err := st.GetSyncState(ctx, st.DB(), syncStateBookingsToken)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	changes, next, err := s.bookings.Changes(ctx, token)
	if errors.Is(err, d365.ErrTokenExpired) {
		s.log.Warn("booking change-tracking token expired; comparing the whole window")
		if err := st.DeleteSyncState(ctx, st.DB(), syncStateBookingsToken); err != nil {
			return err
		}
		token = ""
		changes, next, err = s.bookings.Changes(ctx, "")
	}
	if err != nil {
		return fmt.Errorf("poll booking changes: %w", err)
	}
	if token == "" {
		// A new round (first poll, expired token) reports every booking:
		// not changes. Evaluating each of them here, in one job, is the
		// window pass's work done again — with 100,000 bookings it outlasted
		// the job timeout and was retried from the start. The token was
		// taken first, so a change before it is seen by the pass and one
		// after it is reported by the next poll.
		if err := s.WindowPass(ctx, ""); err != nil {
			return err
		}
		changes = nil
	}
	// The batch is one pass of the mass-delete guard: planned first, then
	// applied except for a mailbox whose deletions are held. Held items
	// are durable in guard_passes (approve re-runs them), so they do not
	// keep the token back.
	pass := s.Engine.NewPass(engine.PassPoll)
	for _, c := range changes {
		v := c.Version
		if c.Deleted {
			v = 0
		}
		_ = pass.AddBooking(ctx, c.BookingID, v) // a planning error is reported by Run
	}
	if _, err := s.runPass(ctx, pass); err != nil {
		// Keep the old token: the next poll reports these again.
		return err
	}
	if err := st.SetSyncState(ctx, st.DB(), syncStateBookingsToken, next); err != nil {
		return err
	}
	return s.pollWorkOrders(ctx)
}

// syncStateWorkOrdersToken is the change-tracking token of msdyn_workorders.
const syncStateWorkOrdersToken = "dataverse.workorders.delta_token"

// pollWorkOrders refreshes the events of bookings whose work order changed:
// the booking rows themselves did not. A new round (first poll, expired
// token) reports every work order; that is not a change, so it only stores
// the token, and after an expiry the linked bookings are compared once.
func (s *Service) pollWorkOrders(ctx context.Context) error {
	st := s.Store
	token, _, err := st.GetSyncState(ctx, st.DB(), syncStateWorkOrdersToken)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	expired := false
	changes, next, err := s.bookings.WorkOrderChanges(ctx, token)
	if errors.Is(err, d365.ErrTokenExpired) {
		expired = true
		changes, next, err = s.bookings.WorkOrderChanges(ctx, "")
	}
	if err != nil {
		return fmt.Errorf("poll work order changes: %w", err)
	}
	switch {
	case expired:
		if err := s.refreshLinked(ctx); err != nil {
			return err
		}
	case token != "":
		ids := make([]string, 0, len(changes))
		for _, c := range changes {
			ids = append(ids, c.WorkOrderID)
		}
		if err := s.refreshWorkOrders(ctx, ids); err != nil {
			return err
		}
	}
	return st.SetSyncState(ctx, st.DB(), syncStateWorkOrdersToken, next)
}

// refreshWorkOrders re-renders the in-window bookings of these work orders.
func (s *Service) refreshWorkOrders(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	now := s.Store.Now()
	bs, err := s.bookings.BookingsOfWorkOrders(ctx, ids, now.Add(-s.cfg.Sync.WindowPast), now.Add(s.cfg.Sync.WindowFuture))
	if err != nil {
		return fmt.Errorf("bookings of changed work orders: %w", err)
	}
	var errs []error
	for _, b := range bs {
		if _, err := s.Engine.RefreshBooking(ctx, b.ID); err != nil {
			errs = append(errs, fmt.Errorf("booking %s: %w", b.ID, err))
		}
	}
	return errors.Join(errs...)
}

// refreshLinked re-renders every linked booking (after a lost work-order
// token): reads only, unless content really changed.
func (s *Service) refreshLinked(ctx context.Context) error {
	links, err := s.Store.ListLinks(ctx, s.Store.DB())
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		if l.Detached {
			continue
		}
		if _, err := s.Engine.RefreshBooking(ctx, l.BookingID); err != nil {
			errs = append(errs, fmt.Errorf("booking %s: %w", l.BookingID, err))
		}
	}
	return errors.Join(errs...)
}

// WindowPass compares the sync window with the links: bookings of opted-in
// resources that entered the window get their events (unchanged bookings
// cost nothing: the engine skips versions it recorded), and links whose
// agreed times left the window are re-evaluated, which removes their events.
// With resourceID set (just opted in) only that resource's bookings are
// brought in.
func (s *Service) WindowPass(ctx context.Context, resourceID string) error {
	st := s.Store
	now := st.Now()
	from, to := now.Add(-s.cfg.Sync.WindowPast), now.Add(s.cfg.Sync.WindowFuture)
	var ids []string
	if resourceID != "" {
		ids = []string{resourceID}
	} else {
		res, err := st.ListResources(ctx, st.DB(), store.ResourceFilter{OptIn: store.OptInAllowed, ActiveOnly: true})
		if err != nil {
			return err
		}
		for _, r := range res {
			ids = append(ids, r.ID)
		}
	}
	// Everything is planned first and applied through the mass-delete
	// guard: a mailbox whose part would delete too much is held.
	pass := s.Engine.NewPass(engine.PassWindow)
	planned := map[string]bool{}
	if len(ids) > 0 {
		bs, err := s.bookings.BookingsInWindow(ctx, ids, from, to)
		if err != nil {
			return fmt.Errorf("list bookings in window: %w", err)
		}
		for _, b := range bs {
			planned[b.ID] = true
			_ = pass.AddBooking(ctx, b.ID, b.Version) // a planning error is reported by Run
		}
	}
	if resourceID == "" {
		links, err := st.ListLinks(ctx, st.DB())
		if err != nil {
			return err
		}
		for _, l := range links {
			inWindow := l.AgreedEnd.After(from) && l.AgreedStart.Before(to)
			if (inWindow && !l.Pending()) || planned[l.BookingID] {
				continue
			}
			// Its booking's version may be the recorded one (nothing
			// changed but the clock): compare anyway, so the event of a
			// booking that left the window is removed.
			_ = pass.AddBookingRefresh(ctx, l.BookingID)
		}
	}
	_, err := s.runPass(ctx, pass)
	return err
}

// massDeleteGuard is the guard of sync.mass_delete (its state is in the
// store, so a fresh value per pass is fine).
//
// For the passes built elsewhere (mailbox catch-up, resync): plan every
// item into a pass, then run it here instead of calling the engine item by
// item:
//
//	pass := s.Engine.NewPass(engine.PassCatchup) // or engine.PassResync
//	pass.AddEvent(ctx, mailbox, id, etag, changeType, ev) // delta: ev as read, or changeType "deleted"
//	pass.AddBooking(ctx, bookingID, version)              // or AddBookingRefresh(ctx, bookingID)
//	pass.AddPlanned(engine.PassItem{Kind: engine.ItemBooking, BookingID: id, Refresh: true, Mailbox: linkMailbox}, plan)
//	res, err := s.runPass(ctx, pass) // res.Held > 0: a mailbox's deletions wait for `bookingsync approve`
//
// A --dry-run prints the plans and does not call runPass.
func (s *Service) massDeleteGuard() *engine.Guard {
	md := s.cfg.Sync.MassDelete
	return engine.NewGuard(s.Engine, engine.GuardConfig{MaxItems: md.MaxItems, MaxFraction: md.MaxFraction})
}

// runPass applies a planned pass through the mass-delete guard and logs
// what it did. The error joins the items that failed to plan or apply.
func (s *Service) runPass(ctx context.Context, pass *engine.Pass) (engine.PassResult, error) {
	res, err := s.massDeleteGuard().Run(ctx, pass)
	if len(pass.Items) > 0 {
		s.log.Debug("pass applied", "kind", pass.Kind, "planned", res.Planned, "applied", res.Applied,
			"skipped", res.Skipped, "held", res.Held, "failed", res.Failed)
	}
	return res, err
}

// PollBookingsArgs runs the booking change-tracking poll (periodic).
type PollBookingsArgs struct{}

func (PollBookingsArgs) Kind() string { return "poll_bookings" }
func (PollBookingsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, UniqueOpts: jobs.UniqueWhileQueued(false)}
}

// WindowPassArgs runs the sync-window pass: periodically for everyone, and
// for one resource right after it opted in.
type WindowPassArgs struct {
	ResourceID string `json:"resource_id,omitempty" river:"unique"`
}

func (WindowPassArgs) Kind() string { return "window_pass" }
func (WindowPassArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, UniqueOpts: jobs.UniqueWhileQueued(true)}
}

// windowPassInterval: the window's edges move a minute per minute; an hourly
// pass keeps the calendar within an hour of them, as the built-in sync can't.
const windowPassInterval = time.Hour

// syncJobs registers the engine's periodic work with the queue.
func (s *Service) syncJobs(w *river.Workers) error {
	if err := river.AddWorkerSafely(w, river.WorkFunc(func(ctx context.Context, _ *river.Job[PollBookingsArgs]) error {
		return s.PollBookings(ctx)
	})); err != nil {
		return err
	}
	return river.AddWorkerSafely(w, river.WorkFunc(func(ctx context.Context, job *river.Job[WindowPassArgs]) error {
		if id := job.Args.ResourceID; id != "" {
			return s.WindowPass(ctx, id)
		}
		return s.WindowPass(ctx, "")
	}))
}

func (s *Service) syncPeriodicJobs() []*river.PeriodicJob {
	every := s.cfg.Dataverse.PollInterval
	if every <= 0 {
		every = time.Minute
	}
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(every),
			func() (river.JobArgs, *river.InsertOpts) { return PollBookingsArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(windowPassInterval),
			func() (river.JobArgs, *river.InsertOpts) { return WindowPassArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}

// PollResources is the opt-in poll (the fallback for a lost resource
// webhook): every resource that started syncing, or syncs to another
// mailbox now, gets its window pass at once, as after the webhook's
// reconcile — not at the next hourly pass.
func (s *Service) PollResources(ctx context.Context) error {
	before, err := s.syncingResources(ctx)
	if err != nil {
		return err
	}
	pollErr := s.Enroller.ReconcileAll(ctx)
	after, err := s.syncingResources(ctx)
	if err != nil {
		return errors.Join(pollErr, err)
	}
	for id, mailbox := range after {
		if before[id] == mailbox {
			continue
		}
		if err := s.afterReconcile(ctx, id); err != nil {
			pollErr = errors.Join(pollErr, fmt.Errorf("window pass for resource %s: %w", id, err))
		}
	}
	return pollErr
}

// syncingResources maps each resource that syncs to its mailbox.
func (s *Service) syncingResources(ctx context.Context) (map[string]string, error) {
	rs, err := s.Store.ListResources(ctx, s.Store.DB(), store.ResourceFilter{OptIn: store.OptInAllowed, ActiveOnly: true})
	if err != nil {
		return nil, fmt.Errorf("list syncing resources: %w", err)
	}
	out := make(map[string]string, len(rs))
	for _, r := range rs {
		if r.Mailbox != "" {
			out[r.ID] = r.Mailbox
		}
	}
	return out, nil
}

// afterReconcile brings a resource that syncs (again) up to date at once
// rather than at the next hourly window pass.
func (s *Service) afterReconcile(ctx context.Context, resourceID string) error {
	r, err := s.Store.GetResource(ctx, s.Store.DB(), resourceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.OptIn != store.OptInAllowed || !r.Active || r.Mailbox == "" {
		return nil
	}
	_, err = s.Queue.Insert(ctx, WindowPassArgs{ResourceID: resourceID}, nil)
	return err
}
