package engine

// The mass-delete guard (sync.mass_delete; issue 7).
//
// A pass is any run that evaluates many items at once: the window pass, a
// change-tracking poll's batch, a mailbox catch-up, a resync. A pass first
// plans every item, writing nothing, then lets the guard decide what it may
// apply:
//
//	pass := eng.NewPass(engine.PassCatchup)
//	for _, c := range changes {
//		pass.AddEvent(ctx, mailbox, c.ID, c.ETag, c.ChangeType, c.Event) // or AddBooking / AddBookingRefresh / AddPlanned
//	}
//	res, err := guard.Run(ctx, pass) // Check, then apply every item that is not held
//
// Check counts, per mailbox, the event deletions the items plan
// (DeleteEvent, in the action's mailbox) and the booking cancellations
// (CancelBooking, in the mailbox of the booking's link). When a mailbox's
// count on one side is more than MaxItems AND more than MaxFraction of the
// mailbox's linked items, the items that would delete (or cancel) there are
// not applied: they are stored as a held pass (store.GuardPass, "P-…", one
// per mailbox and side, with every item's rule and reason), an error is
// logged and bookingsync_mass_delete_guard_trips_total counts it;
// bookingsync_guard_held_passes shows how many wait. Everything else of the
// pass (other mailboxes, and this mailbox's creates and updates) proceeds.
// While a held pass waits, later passes' deletions in the same mailbox and
// side join it instead of being applied, so a mass deletion that arrives in
// several batches cannot slip through one batch at a time.
//
// `bookingsync approve PASS-ID` (Guard.Approve) re-runs the held items
// through the engine with no guard: each is decided again from the current
// state (a booking that came back is not deleted). Guard.Discard drops a
// held pass without applying it.
//
// With sync.mass_delete.disable_deletes the executor deletes nothing, so
// the guard holds nothing.
//
// Callers that plan themselves (resync, which prints PlanBooking/PlanEvent
// for --dry-run) hand their plans in with Pass.AddPlanned, so each item is
// read once.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/bookingsync/bookingsync/internal/metrics"
	"github.com/bookingsync/bookingsync/internal/store"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
)

// Pass kinds (PassItem and log labels only).
const (
	PassWindow  = "window"
	PassPoll    = "poll"
	PassCatchup = "catchup"
	PassResync  = "resync"
)

// Item kinds: what ApplyItem runs.
const (
	ItemBooking = "booking" // SyncBooking(BookingID, Version), or RefreshBooking when Refresh
	ItemEvent   = "event"   // SyncEvent(Mailbox, EventID, ETag, ChangeType)
)

// Guard defaults (config.Default's sync.mass_delete).
const (
	DefaultGuardMaxItems    = 20
	DefaultGuardMaxFraction = 0.10
)

// PassItem is one item of a pass: the trigger ApplyItem re-runs and what
// planning it decided. It is stored (as JSON) in a held pass.
type PassItem struct {
	Kind      string `json:"kind"`
	BookingID string `json:"booking_id,omitempty"`
	// Version is the booking version the trigger carried (0: evaluate).
	Version int64 `json:"version,omitempty"`
	// Refresh compares the booking with its event even if its version is
	// the recorded one (RefreshBooking): for a link whose times left the
	// window, or a re-run after approval.
	Refresh bool `json:"refresh,omitempty"`
	// Mailbox is the event's mailbox, or for a booking the mailbox of its
	// link; a cancellation counts there.
	Mailbox    string `json:"mailbox,omitempty"`
	EventID    string `json:"event_id,omitempty"`
	ETag       string `json:"etag,omitempty"`
	ChangeType string `json:"change_type,omitempty"` // of an event trigger: created, updated, deleted

	Rule     string          `json:"rule,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	Actions  []PlannedAction `json:"actions,omitempty"`
	Link     string          `json:"link,omitempty"` // the plan's link operation
	Conflict bool            `json:"conflict,omitempty"`
	// Echo: planning found the trigger already applied; nothing to run.
	Echo bool `json:"echo,omitempty"`
	// Deferred: not planned because it cannot delete (a booking without a
	// link only ever creates): decided when applied, at no extra read.
	Deferred bool `json:"deferred,omitempty"`

	planErr error // planning failed: not applied, reported by Run
}

// PlannedAction is one planned write, as shown in a held pass.
type PlannedAction struct {
	Kind      string `json:"kind"` // bsync.ActionKind
	Mailbox   string `json:"mailbox,omitempty"`
	EventID   string `json:"event_id,omitempty"`
	BookingID string `json:"booking_id,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// Key identifies the item's trigger: one entry per booking or event.
func (it PassItem) Key() string {
	if it.Kind == ItemEvent {
		return "event:" + it.Mailbox + "/" + it.EventID
	}
	return "booking:" + it.BookingID
}

func (it PassItem) String() string {
	if it.Kind == ItemEvent {
		return "event " + it.EventID + " in " + it.Mailbox
	}
	return "booking " + it.BookingID
}

// Err is the planning error of the item (nil if it was planned).
func (it PassItem) Err() error { return it.planErr }

// noop: applying the item would do nothing (for bookings; an event with no
// link is still run, since SyncEvent waits for creates in flight).
func (it PassItem) noop() bool {
	return it.Echo || (it.Kind == ItemBooking && !it.Deferred && len(it.Actions) == 0 && !it.Conflict &&
		(it.Link == "" || it.Link == string(bsync.LinkKeep)))
}

func (it *PassItem) setPlan(p bsync.Plan) {
	it.Rule, it.Reason, it.Link, it.Conflict = p.Rule, p.Reason, string(p.Link), p.Conflict
	it.Actions = nil
	for _, a := range p.Actions {
		reason := a.Reason
		if reason == "" {
			reason = p.Reason
		}
		it.Actions = append(it.Actions, PlannedAction{Kind: string(a.Kind), Mailbox: a.Mailbox, EventID: a.EventID,
			BookingID: a.BookingID, Reason: reason})
	}
}

// Pass collects the planned items of one pass.
type Pass struct {
	Kind  string
	Items []PassItem
	e     *Engine
}

// NewPass starts an empty pass of kind (PassWindow, …).
func (e *Engine) NewPass(kind string) *Pass { return &Pass{Kind: kind, e: e} }

// AddBooking plans what SyncBooking(bookingID, version) would do, writing
// nothing (the linked event is read only when the engine would read it).
// A planning error is returned and kept on the item: Run does not apply it.
func (p *Pass) AddBooking(ctx context.Context, bookingID string, version int64) error {
	return p.addBooking(ctx, bookingID, version, false)
}

// AddBookingRefresh plans what RefreshBooking(bookingID) would do: the
// booking is compared with its event even if its version is recorded.
func (p *Pass) AddBookingRefresh(ctx context.Context, bookingID string) error {
	return p.addBooking(ctx, bookingID, 0, true)
}

func (p *Pass) addBooking(ctx context.Context, bookingID string, version int64, refresh bool) error {
	it := PassItem{Kind: ItemBooking, BookingID: bookingID, Version: version, Refresh: refresh}
	it.planErr = p.e.planBooking(ctx, &it)
	p.Items = append(p.Items, it)
	return it.planErr
}

// AddEvent plans what SyncEvent(mailbox, eventID, etag, changeType) would
// do. ev is the event as the caller read it (a delta page), nil to have it
// read (or for a deletion).
func (p *Pass) AddEvent(ctx context.Context, mailbox, eventID, etag, changeType string, ev *bsync.Event) error {
	it := PassItem{Kind: ItemEvent, Mailbox: mailbox, EventID: eventID, ETag: etag, ChangeType: changeType}
	it.planErr = p.e.planEvent(ctx, &it, ev)
	p.Items = append(p.Items, it)
	return it.planErr
}

// AddPlanned adds an item the caller planned itself (PlanBooking or
// PlanEvent). item names the trigger ApplyItem will run (Kind, BookingID
// or Mailbox/EventID, …) and must carry the Mailbox of the booking's link
// for a booking item, so cancellations are counted in the right mailbox.
func (p *Pass) AddPlanned(item PassItem, plan bsync.Plan) {
	item.setPlan(plan)
	p.Items = append(p.Items, item)
}

// planBooking mirrors syncBooking's decision without its lock or writes.
func (e *Engine) planBooking(ctx context.Context, it *PassItem) error {
	link, err := e.link(ctx, it.BookingID)
	if err != nil {
		return err
	}
	if link != nil {
		it.Mailbox = link.Mailbox
		if !link.Pending() {
			it.EventID = link.EventID
		}
		if !it.Refresh && it.Version != 0 && link.BookingVersion >= it.Version {
			it.Echo, it.Reason = true, "booking version already recorded"
			return nil
		}
	} else {
		// No link: Decide can only create an event (or do nothing), so
		// reading the booking twice would buy the guard nothing.
		it.Deferred, it.Reason = true, "not linked: can only create"
		return nil
	}
	in, echo, err := e.load(ctx, it.BookingID, link, nil, false, it.Refresh, true)
	if err != nil {
		return err
	}
	if echo {
		it.Echo, it.Reason = true, "booking version already recorded"
		return nil
	}
	plan := bsync.Decide(in)
	if readEventFirst(in, plan) {
		ev, err := e.getEvent(ctx, in.Link.Mailbox, in.Link.EventID)
		if err != nil {
			return err
		}
		in.Event, in.EventFetched = ev, true
		plan = bsync.Decide(in)
	}
	it.setPlan(plan)
	return nil
}

// planEvent mirrors SyncEvent's decision without its lock or writes.
func (e *Engine) planEvent(ctx context.Context, it *PassItem, ev *bsync.Event) error {
	deleted := it.ChangeType == "deleted"
	if deleted {
		ev = nil
	}
	if ev != nil && ev.Mailbox == "" {
		c := *ev
		c.Mailbox = it.Mailbox
		ev = &c
	}
	link, err := e.linkByEvent(ctx, it.Mailbox, it.EventID)
	if err != nil {
		return err
	}
	if link == nil {
		if deleted {
			it.Rule, it.Reason = "-", "unlinked event deleted"
			return nil
		}
		if ev == nil {
			if ev, err = e.getEvent(ctx, it.Mailbox, it.EventID); err != nil {
				return err
			}
			if ev == nil {
				it.Rule, it.Reason = "-", "unlinked event gone"
				return nil
			}
		}
		it.BookingID = ev.BookingID
		plan, err := e.PlanEvent(ctx, *ev)
		if err != nil {
			return err
		}
		it.setPlan(plan)
		return nil
	}
	it.BookingID = link.BookingID
	if !deleted && it.ETag != "" && it.ETag == link.EventETag {
		it.Echo, it.Reason = true, "event etag already recorded"
		return nil
	}
	if !deleted && ev == nil {
		if ev, err = e.getEvent(ctx, it.Mailbox, it.EventID); err != nil {
			return err
		}
	}
	in, _, err := e.load(ctx, link.BookingID, link, ev, true, false, true)
	if err != nil {
		return err
	}
	it.setPlan(bsync.Decide(in))
	return nil
}

// ApplyItem runs the item's trigger through the engine, which decides
// again from the current state. It does not consult the guard.
func (e *Engine) ApplyItem(ctx context.Context, it PassItem) (Outcome, error) {
	switch it.Kind {
	case ItemBooking:
		if it.Refresh {
			return e.RefreshBooking(ctx, it.BookingID)
		}
		return e.SyncBooking(ctx, it.BookingID, it.Version)
	case ItemEvent:
		return e.SyncEvent(ctx, it.Mailbox, it.EventID, it.ETag, it.ChangeType)
	}
	return Outcome{}, fmt.Errorf("engine: unknown pass item kind %q", it.Kind)
}

// GuardConfig configures a Guard (sync.mass_delete).
type GuardConfig struct {
	// MaxItems and MaxFraction: a mailbox's part of a pass is held when
	// it would delete (or cancel) more than MaxItems items AND more than
	// MaxFraction of the mailbox's linked items. Zero: the defaults.
	MaxItems    int
	MaxFraction float64
	// OnHold, if set, is called after a pass was stored (created) or grew
	// (!created): for alerts beyond the log line and the metrics.
	OnHold func(ctx context.Context, p store.GuardPass, created bool)
}

// Guard is the mass-delete guard; its state is in the store (guard_passes),
// so any instance may check, approve or discard.
type Guard struct {
	e   *Engine
	cfg GuardConfig
}

// NewGuard returns a Guard for e's store.
func NewGuard(e *Engine, cfg GuardConfig) *Guard {
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = DefaultGuardMaxItems
	}
	if cfg.MaxFraction <= 0 {
		cfg.MaxFraction = DefaultGuardMaxFraction
	}
	return &Guard{e: e, cfg: cfg}
}

// Exceeds reports whether count deletions in a mailbox of linked items are
// too many: more than MaxItems and more than MaxFraction of linked.
func (g *Guard) Exceeds(count, linked int) bool {
	return count > g.cfg.MaxItems && float64(count) > g.cfg.MaxFraction*float64(linked)
}

// Verdict is what Check decided for a pass.
type Verdict struct {
	// Passes are the held passes this check created or added items to.
	Passes []store.GuardPass
	held   map[int]string // item index → held pass id
}

// HeldBy returns the id of the held pass that holds item i, if any.
func (v Verdict) HeldBy(i int) (string, bool) {
	id, ok := v.held[i]
	return id, ok
}

type guardKey struct {
	mailbox string
	side    store.Side
}

// destructive counts the item's deletions per mailbox and side.
func destructive(it PassItem) map[guardKey]int {
	var out map[guardKey]int
	for _, a := range it.Actions {
		var k guardKey
		switch bsync.ActionKind(a.Kind) {
		case bsync.DeleteEvent:
			k = guardKey{cmp.Or(a.Mailbox, it.Mailbox), store.SideOutlook}
		case bsync.CancelBooking:
			k = guardKey{it.Mailbox, store.SideDataverse}
		default:
			continue
		}
		if out == nil {
			out = map[guardKey]int{}
		}
		out[k]++
	}
	return out
}

// Check decides which items of p are held, storing (or growing) a held
// pass per mailbox and side over the thresholds. Items that failed to plan
// are not counted. An error means nothing was decided: apply nothing.
func (g *Guard) Check(ctx context.Context, p *Pass) (Verdict, error) {
	v := Verdict{held: map[int]string{}}
	if g.e.cfg.DisableDeletes {
		return v, nil // nothing is deleted, nothing to hold
	}
	byKey := map[guardKey][]int{}
	for i, it := range p.Items {
		if it.planErr != nil {
			continue
		}
		for k := range destructive(it) {
			byKey[k] = append(byKey[k], i)
		}
	}
	keys := slices.SortedFunc(maps.Keys(byKey), func(a, b guardKey) int {
		return cmp.Or(cmp.Compare(a.mailbox, b.mailbox), cmp.Compare(a.side, b.side))
	})
	for _, k := range keys {
		idx := byKey[k]
		held, ok, err := g.hold(ctx, p, k, idx)
		if err != nil {
			return Verdict{}, err
		}
		if !ok {
			continue
		}
		for _, i := range idx {
			v.held[i] = held.ID
		}
		v.Passes = append(v.Passes, held)
	}
	g.updateGauge(ctx) // also after a restart, or another instance's approval
	return v, nil
}

// hold stores the items idx of p (which delete on k's side in k's mailbox)
// as a held pass when they are too many or a held pass already waits
// there; ok reports whether they are held.
func (g *Guard) hold(ctx context.Context, p *Pass, k guardKey, idx []int) (store.GuardPass, bool, error) {
	st := g.e.cfg.Store
	// One holder at a time per mailbox and side (across instances), so two
	// passes never open two held passes for the same deletions.
	unlock, err := g.e.lock(ctx, "guard:"+k.mailbox+"/"+string(k.side))
	if err != nil {
		return store.GuardPass{}, false, err
	}
	defer unlock()
	links, err := st.ListLinksByMailbox(ctx, st.DB(), k.mailbox)
	if err != nil {
		return store.GuardPass{}, false, err
	}
	linked := 0
	for _, l := range links {
		if !l.Detached {
			linked++
		}
	}
	items := make([]PassItem, 0, len(idx))
	for _, i := range idx {
		items = append(items, p.Items[i])
	}
	for range 3 { // a held pass approved meanwhile: look again
		open, err := st.HeldGuardPass(ctx, st.DB(), k.mailbox, k.side)
		switch {
		case errors.Is(err, store.ErrNotFound):
			count := countOn(k, items)
			if !g.Exceeds(count, linked) {
				return store.GuardPass{}, false, nil
			}
			plan, err := json.Marshal(items)
			if err != nil {
				return store.GuardPass{}, false, err
			}
			gp, err := st.InsertGuardPass(ctx, st.DB(), store.GuardPass{Scope: k.mailbox, Side: k.side,
				Deletes: count, Linked: linked, Plan: plan})
			if err != nil {
				return store.GuardPass{}, false, err
			}
			metrics.MassDeleteGuardTrips.Inc()
			g.e.log.Error("mass-delete guard: pass held for approval",
				"pass", gp.ID, "kind", p.Kind, "mailbox", k.mailbox, "side", k.side, "deletes", count, "linked", linked,
				"max_items", g.cfg.MaxItems, "max_fraction", g.cfg.MaxFraction, "approve", "bookingsync approve "+gp.ID)
			if g.cfg.OnHold != nil {
				g.cfg.OnHold(ctx, gp, true)
			}
			return gp, true, nil
		case err != nil:
			return store.GuardPass{}, false, err
		}
		merged, err := DecodePlan(open.Plan)
		if err != nil {
			return store.GuardPass{}, false, fmt.Errorf("held pass %s: %w", open.ID, err)
		}
		merged = mergeItems(merged, items)
		plan, err := json.Marshal(merged)
		if err != nil {
			return store.GuardPass{}, false, err
		}
		count := countOn(k, merged)
		gp, err := st.UpdateHeldGuardPass(ctx, st.DB(), open.ID, count, linked, plan)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return store.GuardPass{}, false, err
		}
		g.e.log.Error("mass-delete guard: deletions added to a held pass",
			"pass", gp.ID, "kind", p.Kind, "mailbox", k.mailbox, "side", k.side, "added", len(items), "deletes", count,
			"approve", "bookingsync approve "+gp.ID)
		if g.cfg.OnHold != nil {
			g.cfg.OnHold(ctx, gp, false)
		}
		return gp, true, nil
	}
	return store.GuardPass{}, false, fmt.Errorf("mass-delete guard: held pass of %s/%s keeps changing", k.mailbox, k.side)
}

// countOn counts the deletions of items on k's side in k's mailbox.
func countOn(k guardKey, items []PassItem) int {
	n := 0
	for _, it := range items {
		n += destructive(it)[k]
	}
	return n
}

// mergeItems adds items to held, the newer plan of a trigger replacing the
// older one.
func mergeItems(held, items []PassItem) []PassItem {
	pos := make(map[string]int, len(held))
	for i, it := range held {
		pos[it.Key()] = i
	}
	for _, it := range items {
		if i, ok := pos[it.Key()]; ok {
			held[i] = it
			continue
		}
		pos[it.Key()] = len(held)
		held = append(held, it)
	}
	return held
}

// DecodePlan reads a held pass's plan_json.
func DecodePlan(raw json.RawMessage) ([]PassItem, error) {
	var items []PassItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("decode held pass plan: %w", err)
	}
	return items, nil
}

// PassResult sums up Run.
type PassResult struct {
	Planned int // items in the pass
	Applied int // run through the engine without error
	Skipped int // nothing to do (already applied, or a no-op plan)
	Held    int // held by the guard
	Failed  int // failed to plan or to apply (in Run's error)
	// Passes are the held passes this run created or added to.
	Passes []store.GuardPass
}

// Run checks p and applies every item that is not held. The error joins
// the items' errors (planning or applying); a failed Check applies nothing.
func (g *Guard) Run(ctx context.Context, p *Pass) (PassResult, error) {
	res := PassResult{Planned: len(p.Items)}
	v, err := g.Check(ctx, p)
	if err != nil {
		return res, fmt.Errorf("mass-delete guard: %w", err)
	}
	res.Passes = v.Passes
	var errs []error
	for i, it := range p.Items {
		if _, held := v.HeldBy(i); held {
			res.Held++
			continue
		}
		if it.planErr != nil {
			res.Failed++
			errs = append(errs, fmt.Errorf("%s: %w", it, it.planErr))
			continue
		}
		if it.noop() {
			res.Skipped++
			continue
		}
		if _, err := g.e.ApplyItem(ctx, it); err != nil {
			res.Failed++
			errs = append(errs, fmt.Errorf("%s: %w", it, err))
			continue
		}
		res.Applied++
	}
	return res, errors.Join(errs...)
}

// ErrPassClosed: the pass was already applied or discarded.
var ErrPassClosed = errors.New("pass is not held")

// ApproveResult is what Approve did.
type ApproveResult struct {
	Pass    store.GuardPass
	Items   int
	Applied int
	Errors  []string // per item; the pass stays approved and can be approved again
}

// Approve marks a held pass approved (by names who) and re-runs its items
// with the guard bypassed, each decided again from the current state. When
// every item ran, the pass is applied; otherwise it stays approved and
// Approve may be called again for the rest. store.ErrNotFound: no such
// pass; ErrPassClosed: applied or discarded already.
func (g *Guard) Approve(ctx context.Context, id, by string) (ApproveResult, error) {
	st := g.e.cfg.Store
	p, err := st.GetGuardPass(ctx, st.DB(), id)
	if err != nil {
		return ApproveResult{}, err
	}
	if p.Status == store.GuardHeld {
		p, err = st.SetGuardPassStatus(ctx, st.DB(), id, store.GuardHeld, store.GuardApproved, by)
		if errors.Is(err, store.ErrConflict) {
			p, err = st.GetGuardPass(ctx, st.DB(), id)
		}
		if err != nil {
			return ApproveResult{Pass: p}, err
		}
		g.updateGauge(ctx)
	}
	if p.Status != store.GuardApproved {
		return ApproveResult{Pass: p}, fmt.Errorf("%w: %s is %s", ErrPassClosed, id, p.Status)
	}
	items, err := DecodePlan(p.Plan)
	if err != nil {
		return ApproveResult{Pass: p}, err
	}
	res := ApproveResult{Pass: p, Items: len(items)}
	for _, it := range items {
		// Decide again from what both sides hold now.
		switch it.Kind {
		case ItemBooking:
			it.Version, it.Refresh = 0, true
		case ItemEvent:
			it.ETag, it.ChangeType = "", "" // read the event: it may be back
		}
		out, err := g.e.ApplyItem(ctx, it)
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", it, err))
			continue
		}
		res.Applied++
		g.e.log.Info("mass-delete guard: approved item applied", "pass", id, "item", it.String(), "rule", out.Rule,
			"reason", out.Reason, "writes", out.Writes)
	}
	if len(res.Errors) > 0 {
		return res, nil
	}
	p, err = st.SetGuardPassStatus(ctx, st.DB(), id, store.GuardApproved, store.GuardApplied, "")
	if errors.Is(err, store.ErrConflict) {
		// Another approval of the same pass finished first.
		p, err = st.GetGuardPass(ctx, st.DB(), id)
	}
	res.Pass = p
	return res, err
}

// Discard drops a held pass without applying it: its deletions are not
// made (a later pass that plans them again is checked afresh).
func (g *Guard) Discard(ctx context.Context, id, by string) (store.GuardPass, error) {
	st := g.e.cfg.Store
	p, err := st.SetGuardPassStatus(ctx, st.DB(), id, store.GuardHeld, store.GuardDiscarded, by)
	if errors.Is(err, store.ErrConflict) {
		p, _ = st.GetGuardPass(ctx, st.DB(), id)
		return p, fmt.Errorf("%w: %s is %s", ErrPassClosed, id, p.Status)
	}
	if err != nil {
		return p, err
	}
	g.e.log.Warn("mass-delete guard: held pass discarded", "pass", id, "mailbox", p.Scope, "side", p.Side, "by", by)
	g.updateGauge(ctx)
	return p, nil
}

// updateGauge sets bookingsync_guard_held_passes from the store.
func (g *Guard) updateGauge(ctx context.Context) {
	st := g.e.cfg.Store
	n, err := st.CountHeldGuardPasses(ctx, st.DB())
	if err != nil {
		g.e.log.Warn("count held passes", "err", err)
		return
	}
	metrics.GuardHeldPasses.Set(float64(n))
}
