// Package engine runs the sync for one booking or one event: it loads the
// link, the booking and (when needed) the event, asks the decision core
// (internal/sync.Decide, pure) what to do, performs the writes and records
// the versions they produced, so the notifications our own writes cause are
// recognised as echoes without an API call.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bookingsync/bookingsync/internal/keylock"
	"github.com/bookingsync/bookingsync/internal/metrics"
	"github.com/bookingsync/bookingsync/internal/store"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
	"github.com/bookingsync/bookingsync/internal/sync/d365"
	"github.com/bookingsync/bookingsync/internal/sync/outlook"
)

// Bookings is the Dataverse side (implemented by *d365.Source).
type Bookings interface {
	Booking(ctx context.Context, id string) (*bsync.Booking, error)
	UpdateBookingTimes(ctx context.Context, id, etag string, start, end time.Time) (*bsync.Booking, error)
	SetBookingStatus(ctx context.Context, id, etag, statusID string) (*bsync.Booking, error)
	// CreateBookingWithID creates under an id we derive from the event, so
	// a retry after a crash finds the first booking (d365.ErrAlreadyExists)
	// instead of making a second.
	CreateBookingWithID(ctx context.Context, id, resourceID, statusID, name string, start, end time.Time) (*bsync.Booking, error)
	StatusID(ctx context.Context, nameOrID string) (string, error)
}

// Calendars is the Outlook side (implemented by *outlook.Calendar).
type Calendars interface {
	Get(ctx context.Context, mailbox, eventID string) (*bsync.Event, error)
	FindByBooking(ctx context.Context, mailbox, bookingID string) ([]bsync.Event, error)
	Create(ctx context.Context, mailbox, bookingID, transactionID string, c bsync.Content) (*bsync.Event, error)
	Update(ctx context.Context, mailbox, eventID string, c bsync.Content, fields bsync.FieldSet) (*bsync.Event, error)
	Delete(ctx context.Context, mailbox, eventID string) error
}

// Config wires an Engine.
type Config struct {
	Store     *store.Store
	Bookings  Bookings
	Calendars Calendars
	Renderer  *bsync.Renderer
	Policy    bsync.Policy
	// CanceledStatus and OutlookCreatedStatus name booking statuses (id,
	// name, or proposed/committed/canceled) for the Outlook-side policies.
	CanceledStatus       string
	OutlookCreatedStatus string
	// DisableDeletes (sync.mass_delete.disable_deletes): the executor never
	// deletes an event or cancels a booking; it audits "delete_suppressed"
	// with what it would have done and keeps the link (execute.go).
	DisableDeletes bool
	Logger         *slog.Logger
	Now            func() time.Time
}

// Engine evaluates and applies changes. Work on one booking is serialised
// in this process by a lock and across processes by the link row's
// compare-and-swap: a lost race re-reads and decides again.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	locks keylock.Map
	owner string // this engine's name in the store's leases
}

// leaseTTL bounds how long a crashed instance blocks a booking; a holder
// renews its lease every leaseTTL/3 while it works. leasePoll is how often a
// waiter retries, and leaseWait how long before it gives up: the work is then
// retried later rather than holding up everything queued behind it.
const (
	leaseTTL  = 30 * time.Second
	leasePoll = 20 * time.Millisecond
	leaseWait = 10 * time.Second
)

// ErrBusy means another worker holds the item; try again later.
var ErrBusy = errors.New("engine: item is being synced by another worker")

// lock serialises work on key: in this process by a mutex, across
// instances sharing the database by an expiring lease, renewed while held.
func (e *Engine) lock(ctx context.Context, key string) (func(), error) {
	unlock := e.locks.Lock(key)
	st := e.cfg.Store
	deadline := time.Now().Add(leaseWait)
	for {
		ok, err := st.TryLease(ctx, st.DB(), key, e.owner, leaseTTL)
		if err != nil {
			unlock()
			return nil, err
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			unlock()
			return nil, fmt.Errorf("%s: %w", key, ErrBusy)
		}
		select {
		case <-ctx.Done():
			unlock()
			return nil, ctx.Err()
		case <-time.After(leasePoll):
		}
	}
	stop, renewed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(leaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if _, err := st.TryLease(context.WithoutCancel(ctx), st.DB(), key, e.owner, leaseTTL); err != nil {
					e.log.Warn("renew lease", "key", key, "err", err)
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-renewed
		if err := st.ReleaseLease(context.WithoutCancel(ctx), st.DB(), key, e.owner); err != nil {
			e.log.Warn("release lease", "key", key, "err", err)
		}
		unlock()
	}, nil
}

// New returns an Engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Bookings == nil || cfg.Calendars == nil || cfg.Renderer == nil {
		return nil, errors.New("engine: Store, Bookings, Calendars and Renderer are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Engine{cfg: cfg, log: cfg.Logger, owner: "engine-" + rand.Text()}, nil
}

// Outcome says what one evaluation did.
type Outcome struct {
	// Echo is set when the trigger was recognised as our own write (or a
	// repeat) from the recorded version alone: no API call was made.
	Echo   bool
	Rule   string
	Reason string
	Writes int // Graph and Dataverse writes performed
}

// maxAttempts bounds re-evaluation after losing a race.
const maxAttempts = 4

// raced reports an error that means "someone else changed it meanwhile":
// another worker updated the link, or Dataverse answered 412 to our
// If-Match. Both are answered by reading again and deciding again.
func raced(err error) bool {
	return errors.Is(err, store.ErrConflict) || errors.Is(err, d365.ErrPreconditionFailed)
}

// SyncBooking brings the calendar in line with one booking. version is the
// versionnumber the trigger carried (0 if unknown): when the link already
// records it, the trigger is the echo of our own write or a repeat, and
// nothing is read or written.
func (e *Engine) SyncBooking(ctx context.Context, bookingID string, version int64) (Outcome, error) {
	return e.syncBooking(ctx, bookingID, version, false, nil, nil)
}

// RefreshBooking re-renders a booking whose related rows changed (its work
// order): its own version says nothing about them, so the content is
// compared even when the version is the recorded one. Unchanged content
// still costs no Graph call.
func (e *Engine) RefreshBooking(ctx context.Context, bookingID string) (Outcome, error) {
	return e.syncBooking(ctx, bookingID, 0, true, nil, nil)
}

// syncBooking evaluates bookingID under its lock. listed and ev, if set,
// are a link and its event as a resync listed them (SyncListed): the event
// stands for a read on the first attempt while the link is unchanged.
func (e *Engine) syncBooking(ctx context.Context, bookingID string, version int64, refresh bool, listed *store.Link, ev *bsync.Event) (Outcome, error) {
	unlock, err := e.lock(ctx, "booking:"+bookingID)
	if err != nil {
		return Outcome{}, err
	}
	defer unlock()
	for attempt := 1; ; attempt++ {
		link, err := e.link(ctx, bookingID)
		if err != nil {
			return Outcome{}, err
		}
		if link != nil && version != 0 && link.BookingVersion >= version {
			return Outcome{Echo: true, Reason: "booking version already recorded"}, nil
		}
		var read *bsync.Event
		if attempt == 1 && listed != nil && listedStillValid(link, *listed) {
			read = ev
		}
		out, err := e.evaluate(ctx, bookingID, link, read, read != nil, refresh)
		if raced(err) && attempt < maxAttempts {
			continue
		}
		return out, err
	}
}

// SyncEvent brings one event's booking (or the event itself) in line after
// a Graph notification. etag is the notification's resourceData.@odata.etag
// ("" if absent); changeType "deleted" needs no read.
func (e *Engine) SyncEvent(ctx context.Context, mailbox, eventID, etag, changeType string) (Outcome, error) {
	// A deletion may carry the deleted item's last etag, which is the one we
	// recorded: never an echo (deleting an event ourselves drops its link).
	deleted := changeType == "deleted"
	if deleted {
		etag = ""
	}
	link, err := e.linkByEvent(ctx, mailbox, eventID)
	if err != nil {
		return Outcome{}, err
	}
	if link == nil {
		// Graph may tell us about our own create (or its deletion by the
		// user) before we recorded its event id: let creates in flight in
		// this mailbox finish, then look again, rather than paying a GET
		// to learn it was ours, or dropping the deletion of an event of ours.
		if link, err = e.afterPendingCreates(ctx, mailbox, eventID); err != nil {
			return Outcome{}, err
		}
	}
	if link != nil {
		return e.syncLinkedEvent(ctx, link.BookingID, mailbox, eventID, etag, deleted, nil, 0)
	}
	if deleted {
		return Outcome{Rule: "-", Reason: "unlinked event deleted"}, nil
	}
	ev, err := e.getEvent(ctx, mailbox, eventID)
	if err != nil || ev == nil {
		return Outcome{Rule: "-", Reason: "unlinked event gone"}, err
	}
	if ev.BookingID != "" {
		// Our event whose link was lost: recover it through the booking.
		return e.syncLinkedEvent(ctx, ev.BookingID, mailbox, eventID, etag, false, ev, 0)
	}
	// Not ours and not linked: an appointment created in Outlook.
	unlock, err := e.lock(ctx, "event:"+mailbox+"/"+eventID)
	if err != nil {
		return Outcome{}, err
	}
	defer unlock()
	// A booking made from this event by an attempt that crashed before
	// recording its link is found by CreateBookingWithID's derived id.
	res, err := e.resourceByMailbox(ctx, mailbox)
	if err != nil {
		return Outcome{}, err
	}
	return e.evaluateOutlookCreated(ctx, res, ev)
}

// afterPendingCreates waits for the creates in flight in mailbox (their
// booking locks), then looks the event's link up again — also when none is
// pending any more: the create that made the event may have recorded its
// link between the caller's lookup and this list, and a deletion dropped
// as "unlinked" would then be lost.
func (e *Engine) afterPendingCreates(ctx context.Context, mailbox, eventID string) (*store.Link, error) {
	if testHookAfterLinkLookup != nil {
		testHookAfterLinkLookup()
	}
	pending, err := e.cfg.Store.ListPendingLinks(ctx, e.cfg.Store.DB(), mailbox)
	if err != nil {
		return nil, err
	}
	for _, p := range pending {
		unlock, err := e.lock(ctx, "booking:"+p.BookingID)
		if err != nil {
			return nil, err
		}
		unlock()
	}
	return e.linkByEvent(ctx, mailbox, eventID)
}

// SyncListed settles a linked event a resync has just listed with the
// calendar view, and its booking, taking the listed copy as the event's
// read: a resync reads no event twice. The links were listed before the
// view, so a link still at listed.Version under the booking's lock means
// no write of ours was recorded since, and the copy is as recent as a read
// would be; otherwise (and when an attempt is retried) the event is read
// again, as a stale copy would make our own write look like an Outlook edit.
func (e *Engine) SyncListed(ctx context.Context, listed store.Link, ev *bsync.Event) (Outcome, error) {
	if ev.ETag != listed.EventETag {
		return e.syncLinkedEvent(ctx, listed.BookingID, listed.Mailbox, listed.EventID, "", false, ev, listed.Version)
	}
	// As the link recorded it in Outlook: only the booking can differ.
	return e.syncBooking(ctx, listed.BookingID, 0, true, &listed, ev)
}

// listedStillValid reports whether an event listed alongside link listed
// may stand for a read of it under the booking's lock.
func listedStillValid(link *store.Link, listed store.Link) bool {
	return link != nil && link.Version == listed.Version && link.Mailbox == listed.Mailbox && link.EventID == listed.EventID
}

// testHookAfterLinkLookup, set by a test, runs after SyncEvent's first
// link lookup found nothing, before the pending creates are listed.
var testHookAfterLinkLookup func()

// syncLinkedEvent evaluates a change of an event that belongs to bookingID.
// The lock is taken before the event is read, so the notification of our
// own write, arriving while that write is being recorded, is recognised by
// its etag without a read. ev, if set, was read by the caller; with
// listedVersion set (SyncListed), only while the link is at that version.
func (e *Engine) syncLinkedEvent(ctx context.Context, bookingID, mailbox, eventID, etag string, deleted bool, ev *bsync.Event, listedVersion int64) (Outcome, error) {
	unlock, err := e.lock(ctx, "booking:"+bookingID)
	if err != nil {
		return Outcome{}, err
	}
	defer unlock()
	for attempt := 1; ; attempt++ {
		link, err := e.link(ctx, bookingID)
		if err != nil {
			return Outcome{}, err
		}
		if link != nil && etag != "" && etag == link.EventETag {
			return Outcome{Echo: true, Reason: "event etag already recorded"}, nil
		}
		if link != nil && (link.Mailbox != mailbox || link.EventID != eventID) {
			// The booking is linked to another event (recreated, or a copy
			// of ours): this one says nothing about the link.
			if deleted {
				return Outcome{Rule: "-", Reason: "a former event of the booking was deleted"}, nil
			}
			return e.evaluate(ctx, bookingID, link, nil, false, false)
		}
		if listedVersion != 0 && (link == nil || link.Version != listedVersion) {
			ev = nil // a write of ours since the listing: read the event
		}
		if !deleted && (ev == nil || attempt > 1) {
			if ev, err = e.getEvent(ctx, mailbox, eventID); err != nil {
				return Outcome{}, err
			}
		}
		if out, ok, err := e.recordOutlookTouch(ctx, link, ev); ok || err != nil {
			if raced(err) && attempt < maxAttempts {
				continue
			}
			return out, err
		}
		out, err := e.evaluate(ctx, bookingID, link, ev, true, false)
		if raced(err) && attempt < maxAttempts {
			continue
		}
		return out, err
	}
}

// recordOutlookTouch handles a new version of a linked event whose synced
// content is what the link recorded (Outlook's own update right after our
// create, a category or reminder change): the new etag is recorded, and
// nothing else is read or written. Decide would reach the same verdict
// (rule K3) but only after reading the booking.
func (e *Engine) recordOutlookTouch(ctx context.Context, link *store.Link, ev *bsync.Event) (Outcome, bool, error) {
	if link == nil || ev == nil || link.Pending() || link.Detached || ev.ID != link.EventID ||
		bsync.ContentHash(ev.Content) != link.EventHash {
		return Outcome{}, false, nil
	}
	l := *link
	l.EventETag, l.EventChangeKey = ev.ETag, ev.ChangeKey
	if _, err := e.cfg.Store.UpdateLink(ctx, e.cfg.Store.DB(), l, link.Version); err != nil {
		return Outcome{}, true, err
	}
	return Outcome{Rule: "K3", Reason: "event version changed, synced fields did not: new version recorded"}, true, nil
}

// evaluateOutlookCreated decides about an event we did not create and
// have no link for; res is the resource whose mailbox holds it.
func (e *Engine) evaluateOutlookCreated(ctx context.Context, res *bsync.Resource, ev *bsync.Event) (Outcome, error) {
	in := bsync.Input{Now: e.cfg.Now(), Policy: e.cfg.Policy, Resource: res, Event: ev, EventFetched: true}
	plan := bsync.Decide(in)
	x := &execution{e: e, in: in, event: ev}
	err := x.run(ctx, plan)
	return Outcome{Rule: plan.Rule, Reason: plan.Reason, Writes: x.writes}, err
}

// evaluate loads what is missing, decides and applies. The caller holds
// the booking's lock. ev/fetched describe the event when the caller read it;
// refresh compares the content even if the booking's version is recorded.
func (e *Engine) evaluate(ctx context.Context, bookingID string, link *store.Link, ev *bsync.Event, fetched, refresh bool) (Outcome, error) {
	in, echo, err := e.load(ctx, bookingID, link, ev, fetched, refresh, false)
	if err != nil || echo {
		return Outcome{Echo: echo, Reason: "booking version already recorded"}, err
	}
	plan := bsync.Decide(in)
	if readEventFirst(in, plan) {
		// A booking-side trigger is about to write the linked event as the
		// link recorded it. Outlook may have changed it since (a move whose
		// notification is not here yet): writing blind would overwrite that
		// edit, or record it as agreed, and hide a conflict. Read it and
		// decide again, knowing both sides.
		ev, err := e.getEvent(ctx, in.Link.Mailbox, in.Link.EventID)
		if err != nil {
			return Outcome{}, err
		}
		in.Event, in.EventFetched = ev, true
		plan = bsync.Decide(in)
	}
	out := Outcome{Rule: plan.Rule, Reason: plan.Reason}
	x := &execution{e: e, in: in, link: link, bookingID: bookingID, booking: in.Booking, event: in.Event}
	err = x.run(ctx, plan)
	out.Writes = x.writes
	if err != nil {
		return out, err
	}
	e.log.Debug("sync evaluated", "booking", bookingID, "rule", plan.Rule, "writes", x.writes)
	return out, nil
}

// readEventFirst reports a plan decided without reading the event that
// would write to the linked event: an update always (the event may show an
// Outlook edit the link does not know), a deletion when the conflict policy
// may keep an edited event (outlook_wins, newest_wins, manual). Reads cost
// no write; a booking change that writes nothing still costs no read.
func readEventFirst(in bsync.Input, plan bsync.Plan) bool {
	l := in.Link
	if in.EventFetched || l == nil || l.EventID == "" || l.Detached {
		return false
	}
	for _, a := range plan.Actions {
		if a.EventID != l.EventID {
			continue
		}
		switch {
		case a.Kind == bsync.UpdateEvent,
			a.Kind == bsync.DeleteEvent && in.Policy.Conflict != bsync.ConflictD365Wins:
			return true
		}
	}
	return false
}

// PlanBooking decides what syncing bookingID would do now, reading both
// sides (the linked event too) and writing nothing: for resync --dry-run and
// the mass-delete guard, which count a pass's deletions before any happens.
func (e *Engine) PlanBooking(ctx context.Context, bookingID string) (bsync.Plan, error) {
	link, err := e.link(ctx, bookingID)
	if err != nil {
		return bsync.Plan{}, err
	}
	var ev *bsync.Event
	fetched := false
	if link != nil && !link.Pending() && !link.Detached {
		if ev, err = e.getEvent(ctx, link.Mailbox, link.EventID); err != nil {
			return bsync.Plan{}, err
		}
		fetched = true
	}
	in, _, err := e.load(ctx, bookingID, link, ev, fetched, true, true)
	if err != nil {
		return bsync.Plan{}, err
	}
	return bsync.Decide(in), nil
}

// PlanEvent decides what an event of ours or an unlinked appointment found
// by a catch-up would cause, writing nothing (resync --dry-run).
func (e *Engine) PlanEvent(ctx context.Context, ev bsync.Event) (bsync.Plan, error) {
	link, err := e.linkByEvent(ctx, ev.Mailbox, ev.ID)
	if err != nil {
		return bsync.Plan{}, err
	}
	bookingID := ev.BookingID
	if link != nil {
		bookingID = link.BookingID
	}
	if bookingID == "" {
		res, err := e.resourceByMailbox(ctx, ev.Mailbox)
		if err != nil {
			return bsync.Plan{}, err
		}
		return bsync.Decide(bsync.Input{Now: e.cfg.Now(), Policy: e.cfg.Policy, Resource: res, Event: &ev, EventFetched: true}), nil
	}
	if link == nil {
		if link, err = e.link(ctx, bookingID); err != nil {
			return bsync.Plan{}, err
		}
	}
	in, _, err := e.load(ctx, bookingID, link, &ev, true, true, true)
	if err != nil {
		return bsync.Plan{}, err
	}
	return bsync.Decide(in), nil
}

// load fills Decide's input: the booking (nil if deleted), its resource and
// rendered content, and for a pending create the event found by our
// property. echo reports a booking version the link already records (no
// decision needed). dryRun writes nothing (duplicates found are left).
func (e *Engine) load(ctx context.Context, bookingID string, link *store.Link, ev *bsync.Event, fetched, refresh, dryRun bool) (in bsync.Input, echo bool, err error) {
	in = bsync.Input{Now: e.cfg.Now(), Policy: e.cfg.Policy, Event: ev, EventFetched: fetched}
	if link != nil {
		in.Link = toSyncLink(*link)
	}
	if bookingID != "" {
		b, err := e.cfg.Bookings.Booking(ctx, bookingID)
		switch {
		case errors.Is(err, d365.ErrNotFound):
		case err != nil:
			return in, false, fmt.Errorf("sync booking %s: %w", bookingID, err)
		default:
			in.Booking = b
		}
	}
	if in.Booking != nil {
		if link != nil && !refresh && !in.EventFetched && in.Booking.Version == link.BookingVersion && !link.Pending() {
			// Change tracking or a webhook without a version re-reported a
			// state we already applied.
			return in, true, nil
		}
		res, err := e.resource(ctx, in.Booking.ResourceID)
		if err != nil {
			return in, false, err
		}
		in.Resource = res
		desired, err := e.cfg.Renderer.Render(*in.Booking, resourceOrEmpty(res), e.cfg.Policy)
		if err != nil {
			return in, false, fmt.Errorf("render booking %s: %w", bookingID, err)
		}
		in.Desired = &desired
	}
	if link != nil && link.Pending() && !in.EventFetched {
		// A create whose outcome we never recorded: look before creating again.
		found, err := e.cfg.Calendars.FindByBooking(ctx, link.Mailbox, bookingID)
		if err != nil {
			return in, false, fmt.Errorf("look up event of booking %s: %w", bookingID, err)
		}
		in.EventFetched = true
		if len(found) > 0 {
			in.Event = &found[0]
		}
		for _, dup := range found[min(1, len(found)):] {
			if dryRun {
				break
			}
			if e.cfg.DisableDeletes {
				e.audit(ctx, link.ResourceID, bookingID, dup.ID, store.SideOutlook, "delete_suppressed",
					"would delete_event: duplicate of a recovered create (sync.mass_delete.disable_deletes)", nil, "suppressed", nil)
				continue
			}
			// More than one means an earlier crash slipped past the
			// transactionId: keep the first, delete the rest.
			if err := e.cfg.Calendars.Delete(ctx, dup.Mailbox, dup.ID); err != nil {
				return in, false, fmt.Errorf("delete duplicate event %s: %w", dup.ID, err)
			}
			e.audit(ctx, link.ResourceID, bookingID, dup.ID, store.SideOutlook, "delete_event", "duplicate of a recovered create", nil, "ok", nil)
		}
	}
	return in, false, nil
}

func (e *Engine) link(ctx context.Context, bookingID string) (*store.Link, error) {
	return optionalLink(e.cfg.Store.GetLink(ctx, e.cfg.Store.DB(), bookingID))
}

func (e *Engine) linkByEvent(ctx context.Context, mailbox, eventID string) (*store.Link, error) {
	return optionalLink(e.cfg.Store.GetLinkByEvent(ctx, e.cfg.Store.DB(), mailbox, eventID))
}

// optionalLink turns "no such link" into nil.
func optionalLink(l store.Link, err error) (*store.Link, error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

func (e *Engine) getEvent(ctx context.Context, mailbox, eventID string) (*bsync.Event, error) {
	ev, err := e.cfg.Calendars.Get(ctx, mailbox, eventID)
	if errors.Is(err, outlook.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read event %s: %w", eventID, err)
	}
	return ev, nil
}

// resource maps our stored resource to the engine's view; nil if we do not
// know it (never enrolled).
func (e *Engine) resource(ctx context.Context, id string) (*bsync.Resource, error) {
	if id == "" {
		return nil, nil
	}
	r, err := e.cfg.Store.GetResource(ctx, e.cfg.Store.DB(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read resource %s: %w", id, err)
	}
	return &bsync.Resource{ID: r.ID, Name: r.Name, Mailbox: r.Mailbox,
		OptedIn: r.OptIn == store.OptInAllowed && r.Active && r.Mailbox != ""}, nil
}

// resourceByMailbox is the enrolled resource whose user owns mailbox (nil
// if none): the owner of an appointment created in Outlook.
func (e *Engine) resourceByMailbox(ctx context.Context, mailbox string) (*bsync.Resource, error) {
	rs, err := e.cfg.Store.ListResources(ctx, e.cfg.Store.DB(), store.ResourceFilter{Mailbox: mailbox, OptIn: store.OptInAllowed, ActiveOnly: true})
	if err != nil {
		return nil, fmt.Errorf("find resource of mailbox %s: %w", mailbox, err)
	}
	if len(rs) == 0 {
		return nil, nil
	}
	return e.resource(ctx, rs[0].ID)
}

func resourceOrEmpty(r *bsync.Resource) bsync.Resource {
	if r == nil {
		return bsync.Resource{}
	}
	return *r
}

func toSyncLink(l store.Link) *bsync.Link {
	out := &bsync.Link{
		BookingID: l.BookingID, ResourceID: l.ResourceID, Mailbox: l.Mailbox, EventID: l.EventID,
		BookingVersion: l.BookingVersion, BookingHash: l.BookingHash,
		EventChangeKey: l.EventChangeKey, EventETag: l.EventETag, EventHash: l.EventHash,
		AgreedStart: l.AgreedStart, AgreedEnd: l.AgreedEnd, Origin: l.Origin, Detached: l.Detached, Version: l.Version,
	}
	if l.Pending() {
		out.EventID = ""
	}
	return out
}

// audit records one action; a failure to audit is logged, not fatal: the
// write it describes already happened.
func (e *Engine) audit(ctx context.Context, resourceID, bookingID, eventID string, side store.Side, action, reason string, before any, outcome string, opErr error) {
	entry := store.AuditEntry{ResourceID: resourceID, BookingID: bookingID, EventID: eventID, Side: side,
		Action: action, Reason: reason, Outcome: outcome}
	if before != nil {
		entry.Before, _ = json.Marshal(before)
	}
	if opErr != nil {
		entry.Error = opErr.Error()
	}
	metrics.CountSyncAction(action, string(side), outcome)
	if _, err := e.cfg.Store.InsertAudit(ctx, e.cfg.Store.DB(), entry); err != nil {
		e.log.Warn("audit write failed", "action", action, "booking", bookingID, "err", err)
	}
}
