package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	emudv "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	emugraph "github.com/bookingsync/bookingsync/internal/emulator/graph"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/sync/outlook"
)

// tech is one demo technician as both sides know them.
type tech struct{ resource, mailbox, name string }

func technicians() []tech {
	var out []tech
	for _, u := range tenant.Technicians() {
		out = append(out, tech{resource: strings.ToLower(emudv.ResourceID(u.ID)), mailbox: strings.ToLower(u.ID), name: u.DisplayName})
	}
	return out
}

// liveEvent is an event as the emulator's observer last reported it.
type liveEvent struct {
	mailbox, id, booking string // booking: our property's value ("" if none)
	start, end           time.Time
}

// liveBooking is a booking row as the observer last reported it.
type liveBooking struct {
	id, resource string
	start, end   time.Time
}

// opRecord is one operation the run performed (or tried).
type opRecord struct {
	seq        int
	at         time.Time
	kind       string
	booking    string // the booking it touched (for event ops: our property's value)
	resource   string // the resource it touched (opt-in/out, reassign target)
	mailbox    string
	event      string
	start, end time.Time // the times it set, if any
	err        error
}

func (o opRecord) String() string {
	s := fmt.Sprintf("#%d %s %s", o.seq, o.at.Format("15:04:05.000"), o.kind)
	if o.booking != "" {
		s += " booking=" + o.booking
	}
	if o.mailbox != "" {
		s += " mailbox=" + short(o.mailbox)
	}
	if o.event != "" {
		s += " event=" + short(o.event)
	}
	if o.resource != "" {
		s += " resource=" + short(o.resource)
	}
	if !o.start.IsZero() {
		s += " " + o.start.UTC().Format("01-02T15:04") + "–" + o.end.UTC().Format("01-02T15:04")
	}
	if o.err != nil {
		s += " ERR " + o.err.Error()
	}
	return s
}

func short(id string) string {
	if len(id) > 14 {
		return id[:6] + "…" + id[len(id)-6:]
	}
	return id
}

// world is what the run knows of both sides: the observers' view (no API
// calls) and the log of its own operations.
type world struct {
	mu        sync.Mutex
	events    map[string]*liveEvent   // mailbox/id → event
	bookings  map[string]*liveBooking // id → booking (technicians' and others)
	lastWrite time.Time
	writes    int64
	// doubles are creates of an event for a booking that already had a
	// live event in that mailbox (the cluster run's "done twice").
	doubles []string

	ops     []opRecord
	optedIn map[string]bool // resource → Allowed (as the run last wrote it)
}

func newWorld() *world {
	return &world{events: map[string]*liveEvent{}, bookings: map[string]*liveBooking{}, optedIn: map[string]bool{}}
}

func ourProperty(ext map[string]string) string {
	for k, v := range ext {
		if strings.EqualFold(k, outlook.PropertyID) {
			return strings.ToLower(v)
		}
	}
	return ""
}

// observe installs the emulator observers. They run with the emulator's
// locks held: only bookkeeping here.
func (w *world) observe(h *harness) {
	h.emu.Graph().Observe(emugraph.Observer{OnWrite: func(wr emugraph.Write) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.lastWrite, w.writes = time.Now(), w.writes+1
		k := strings.ToLower(wr.Mailbox) + "/" + wr.EventID
		if wr.ChangeType == "deleted" {
			delete(w.events, k)
			return
		}
		ev := &liveEvent{mailbox: strings.ToLower(wr.Mailbox), id: wr.EventID, booking: ourProperty(wr.Extended),
			start: wr.Start, end: wr.End}
		if wr.ChangeType == "created" && ev.booking != "" {
			for _, o := range w.events {
				if o.booking == ev.booking && o.mailbox == ev.mailbox {
					w.doubles = append(w.doubles, fmt.Sprintf("%s: event %s created in %s while event %s of the booking was live",
						wr.At.Format("15:04:05.000"), short(ev.id), short(ev.mailbox), short(o.id)))
				}
			}
		}
		w.events[k] = ev
	}})
	h.emu.Dataverse().Observe(emudv.Observer{OnWrite: func(wr emudv.Write) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.lastWrite, w.writes = time.Now(), w.writes+1
		if wr.Table != "bookableresourcebooking" {
			return
		}
		id := strings.ToLower(wr.ID)
		if wr.Message == "Delete" {
			delete(w.bookings, id)
			return
		}
		b := &liveBooking{id: id}
		// Values are keyed by logical column name ("resource", not the Web
		// API's _resource_value).
		if v, ok := wr.Values["resource"].(string); ok {
			b.resource = strings.ToLower(v)
		}
		b.start, _ = wr.Values["starttime"].(time.Time)
		b.end, _ = wr.Values["endtime"].(time.Time)
		w.bookings[id] = b
	}})
}

func (w *world) quietSince() (time.Time, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastWrite, w.writes
}

func (w *world) record(o opRecord) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o.seq = len(w.ops) + 1
	w.ops = append(w.ops, o)
}

// chaos drives the random operations.
type chaos struct {
	h          *harness
	w          *world
	rng        *rand.Rand
	techs      []tech
	workOrders []string
	now        func() time.Time
	// pending counts the inbox's unprocessed rows (nil: the service's
	// bookingsync_inbox_pending gauge).
	pending func(ctx context.Context) (float64, error)
}

// seedBookings loads the demo bookings into the world (the observer only
// sees writes from now on).
func (c *chaos) seedBookings(ctx context.Context) error {
	rows, err := dataverse.ListAll[dataverse.Booking](ctx, c.h.dv, dataverse.SetBookings, dataverse.Query{Select: dataverse.BookingSelect})
	if err != nil {
		return err
	}
	c.w.mu.Lock()
	for _, r := range rows {
		id := strings.ToLower(r.ID)
		c.w.bookings[id] = &liveBooking{id: id, resource: strings.ToLower(r.ResourceID), start: r.StartTime, end: r.EndTime}
	}
	c.w.mu.Unlock()
	c.workOrders, err = workOrderIDs(ctx, c.h.dv)
	return err
}

// pickBooking returns a random live booking of a technician.
func (c *chaos) pickBooking() (*liveBooking, bool) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	res := map[string]bool{}
	for _, t := range c.techs {
		res[t.resource] = true
	}
	var ids []string
	for id, b := range c.w.bookings {
		if res[b.resource] {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, false
	}
	sort.Strings(ids) // map order is random; the RNG decides
	b := *c.w.bookings[ids[c.rng.IntN(len(ids))]]
	return &b, true
}

// pickEvent returns a random live event carrying our property.
func (c *chaos) pickEvent() (*liveEvent, bool) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	var keys []string
	for k, e := range c.w.events {
		if e.booking != "" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, false
	}
	sort.Strings(keys)
	e := *c.w.events[keys[c.rng.IntN(len(keys))]]
	return &e, true
}

// slot is a random time for a booking or event: from a day and a half ago
// to a month ahead (well inside the sync window), on the quarter hour.
func (c *chaos) slot() (time.Time, time.Time) {
	base := c.now().UTC().Truncate(time.Hour)
	start := base.Add(time.Duration(c.rng.IntN(31*24*4)-36*4) * 15 * time.Minute)
	d := time.Duration(1+c.rng.IntN(8)) * 30 * time.Minute
	return start, start.Add(d)
}

// inRange keeps a moved event inside [now-1d, now+60d].
func (c *chaos) inRange(start time.Time) bool {
	now := c.now()
	return start.After(now.Add(-24*time.Hour)) && start.Before(now.Add(60*24*time.Hour))
}

func bind(set, id string) string { return "/" + set + "(" + id + ")" }

// ops are the operations and their weights.
func (c *chaos) ops() []struct {
	name   string
	weight int
	run    func(ctx context.Context) opRecord
} {
	type op = struct {
		name   string
		weight int
		run    func(ctx context.Context) opRecord
	}
	return []op{
		{"create_booking", 16, c.createBooking},
		{"reschedule_booking", 12, c.rescheduleBooking},
		{"reassign_booking", 8, c.reassignBooking},
		{"cancel_booking", 6, c.cancelBooking},
		{"delete_booking", 5, c.deleteBooking},
		{"edit_work_order", 3, c.editWorkOrder},
		{"move_event", 14, c.moveEvent},
		{"resize_event", 8, c.resizeEvent},
		{"delete_event", 5, c.deleteEvent},
		{"retitle_event", 3, c.retitleEvent},
		{"outlook_create_event", 6, c.outlookCreate},
		{"opt_toggle", 4, c.optToggle},
	}
}

func (c *chaos) createBooking(ctx context.Context) opRecord {
	t := c.techs[c.rng.IntN(len(c.techs))]
	start, end := c.slot()
	status := "Scheduled"
	if c.rng.IntN(5) == 0 {
		status = "Proposed"
	}
	body := map[string]any{
		"name": fmt.Sprintf("Chaos job %04d", c.rng.IntN(10000)), "starttime": start.Format(time.RFC3339), "endtime": end.Format(time.RFC3339),
		"duration": int(end.Sub(start).Minutes()), "bookingtype": 1,
		dataverse.NavBookingResource + "@odata.bind": bind(dataverse.SetResources, t.resource),
		dataverse.NavBookingStatus + "@odata.bind":   bind(dataverse.SetBookingStatuses, emudv.BookingStatusID(status)),
	}
	if len(c.workOrders) > 0 && c.rng.IntN(2) == 0 {
		body[dataverse.NavBookingWorkOrder+"@odata.bind"] = bind(dataverse.SetWorkOrders, c.workOrders[c.rng.IntN(len(c.workOrders))])
	}
	id, err := c.h.dv.Create(ctx, dataverse.SetBookings, body)
	return opRecord{kind: "create_booking", booking: strings.ToLower(id), resource: t.resource, start: start, end: end, err: err}
}

func (c *chaos) rescheduleBooking(ctx context.Context) opRecord {
	b, ok := c.pickBooking()
	if !ok {
		return opRecord{kind: "reschedule_booking", err: errNoTarget}
	}
	start, end := c.slot()
	if c.rng.IntN(2) == 0 && !b.start.IsZero() { // a nudge rather than a new day
		shift := time.Duration(c.rng.IntN(16)-8) * 30 * time.Minute
		if shift == 0 {
			shift = time.Hour
		}
		start, end = b.start.Add(shift), b.end.Add(shift)
	}
	err := c.h.dv.Update(ctx, dataverse.SetBookings, b.id, map[string]any{"starttime": start.Format(time.RFC3339), "endtime": end.Format(time.RFC3339)}, "*")
	return opRecord{kind: "reschedule_booking", booking: b.id, start: start, end: end, err: err}
}

func (c *chaos) reassignBooking(ctx context.Context) opRecord {
	b, ok := c.pickBooking()
	if !ok {
		return opRecord{kind: "reassign_booking", err: errNoTarget}
	}
	var to tech
	for {
		to = c.techs[c.rng.IntN(len(c.techs))]
		if to.resource != b.resource {
			break
		}
	}
	err := c.h.dv.Update(ctx, dataverse.SetBookings, b.id, map[string]any{dataverse.NavBookingResource + "@odata.bind": bind(dataverse.SetResources, to.resource)}, "*")
	return opRecord{kind: "reassign_booking", booking: b.id, resource: to.resource, err: err}
}

func (c *chaos) cancelBooking(ctx context.Context) opRecord {
	b, ok := c.pickBooking()
	if !ok {
		return opRecord{kind: "cancel_booking", err: errNoTarget}
	}
	err := c.h.dv.Update(ctx, dataverse.SetBookings, b.id, map[string]any{dataverse.NavBookingStatus + "@odata.bind": bind(dataverse.SetBookingStatuses, emudv.BookingStatusID("Canceled"))}, "*")
	return opRecord{kind: "cancel_booking", booking: b.id, err: err}
}

func (c *chaos) deleteBooking(ctx context.Context) opRecord {
	b, ok := c.pickBooking()
	if !ok {
		return opRecord{kind: "delete_booking", err: errNoTarget}
	}
	err := c.h.dv.Delete(ctx, dataverse.SetBookings, b.id, "*")
	return opRecord{kind: "delete_booking", booking: b.id, err: err}
}

func (c *chaos) editWorkOrder(ctx context.Context) opRecord {
	if len(c.workOrders) == 0 {
		return opRecord{kind: "edit_work_order", err: errNoTarget}
	}
	wo := c.workOrders[c.rng.IntN(len(c.workOrders))]
	err := c.h.dv.Update(ctx, dataverse.SetWorkOrders, wo, map[string]any{"msdyn_instructions": fmt.Sprintf("Gate code %04d", c.rng.IntN(10000))}, "*")
	return opRecord{kind: "edit_work_order", event: wo, err: err}
}

func (c *chaos) patchEvent(ctx context.Context, kind string, e *liveEvent, start, end time.Time, subject *string) opRecord {
	p := graph.EventPatch{Subject: subject}
	rec := opRecord{kind: kind, booking: e.booking, mailbox: e.mailbox, event: e.id}
	if !start.IsZero() {
		s, en := graph.NewDateTimeTimeZone(start), graph.NewDateTimeTimeZone(end)
		p.Start, p.End = &s, &en
		rec.start, rec.end = start, end
	}
	_, rec.err = c.h.gc.UpdateEvent(ctx, e.mailbox, e.id, p, "")
	return rec
}

func (c *chaos) moveEvent(ctx context.Context) opRecord {
	e, ok := c.pickEvent()
	if !ok {
		return opRecord{kind: "move_event", err: errNoTarget}
	}
	shift := time.Duration(c.rng.IntN(96)+1) * 30 * time.Minute
	if c.rng.IntN(2) == 0 || !c.inRange(e.start.Add(shift)) {
		shift = -shift
	}
	if !c.inRange(e.start.Add(shift)) {
		shift = -shift
	}
	return c.patchEvent(ctx, "move_event", e, e.start.Add(shift), e.end.Add(shift), nil)
}

func (c *chaos) resizeEvent(ctx context.Context) opRecord {
	e, ok := c.pickEvent()
	if !ok {
		return opRecord{kind: "resize_event", err: errNoTarget}
	}
	end := e.end.Add(time.Duration(c.rng.IntN(6)+1) * 15 * time.Minute)
	if c.rng.IntN(2) == 0 && e.end.Sub(e.start) > 30*time.Minute {
		end = e.end.Add(-15 * time.Minute)
	}
	return c.patchEvent(ctx, "resize_event", e, e.start, end, nil)
}

func (c *chaos) retitleEvent(ctx context.Context) opRecord {
	e, ok := c.pickEvent()
	if !ok {
		return opRecord{kind: "retitle_event", err: errNoTarget}
	}
	s := "Renamed in Outlook"
	return c.patchEvent(ctx, "retitle_event", e, time.Time{}, time.Time{}, &s)
}

func (c *chaos) deleteEvent(ctx context.Context) opRecord {
	e, ok := c.pickEvent()
	if !ok {
		return opRecord{kind: "delete_event", err: errNoTarget}
	}
	err := c.h.gc.DeleteEvent(ctx, e.mailbox, e.id)
	return opRecord{kind: "delete_event", booking: e.booking, mailbox: e.mailbox, event: e.id, err: err}
}

func (c *chaos) outlookCreate(ctx context.Context) opRecord {
	t := c.techs[c.rng.IntN(len(c.techs))]
	start, end := c.slot()
	s, e := graph.NewDateTimeTimeZone(start), graph.NewDateTimeTimeZone(end)
	ev, err := c.h.gc.CreateEvent(ctx, t.mailbox, graph.Event{Subject: "Personal appointment", Start: &s, End: &e, ShowAs: "busy"},
		fmt.Sprintf("chaos-%d-%d", c.rng.Int64(), time.Now().UnixNano()))
	rec := opRecord{kind: "outlook_create_event", mailbox: t.mailbox, start: start, end: end, err: err}
	if ev != nil {
		rec.event = ev.ID
	}
	return rec
}

// optToggle opts a technician out (never the last one) or in.
func (c *chaos) optToggle(ctx context.Context) opRecord {
	t := c.techs[c.rng.IntN(len(c.techs))]
	c.w.mu.Lock()
	in := c.w.optedIn[t.resource]
	n := 0
	for _, v := range c.w.optedIn {
		if v {
			n++
		}
	}
	c.w.mu.Unlock()
	if in && n <= 1 {
		return opRecord{kind: "opt_out", resource: t.resource, err: errNoTarget}
	}
	rec := c.setOptIn(ctx, t, !in)
	return rec
}

func (c *chaos) setOptIn(ctx context.Context, t tech, in bool) opRecord {
	v, kind := c.h.cfg.Dataverse.OptInNotAllowed, "opt_out"
	if in {
		v, kind = c.h.cfg.Dataverse.OptInAllowed, "opt_in"
	}
	err := c.h.dv.Update(ctx, dataverse.SetResources, t.resource, map[string]any{c.h.cfg.Dataverse.OptInColumn: v}, "*")
	if err == nil {
		c.w.mu.Lock()
		c.w.optedIn[t.resource] = in
		c.w.mu.Unlock()
	}
	return opRecord{kind: kind, resource: t.resource, mailbox: t.mailbox, err: err}
}

var errNoTarget = fmt.Errorf("no target")

// pick chooses an operation by weight.
func (c *chaos) pick(ops []struct {
	name   string
	weight int
	run    func(ctx context.Context) opRecord
}) int {
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	r := c.rng.IntN(total)
	for i, o := range ops {
		if r < o.weight {
			return i
		}
		r -= o.weight
	}
	return len(ops) - 1
}

// killPlan picks k distinct operation indices between 5 % and 85 % of n.
func killPlan(rng *rand.Rand, n, k int) []int {
	lo, hi := n/20, n*85/100
	if hi-lo < k {
		lo, hi = 0, n
	}
	idx := rng.Perm(hi - lo)[:min(k, hi-lo)]
	for i := range idx {
		idx[i] += lo
	}
	slices.Sort(idx)
	return idx
}

// logOps writes every operation to the test log (-v) or on failure.
func logOps(t *testing.T, ops []opRecord) {
	var b strings.Builder
	for _, o := range ops {
		b.WriteString(o.String())
		b.WriteByte('\n')
	}
	t.Logf("operations:\n%s", b.String())
}

// workOrderIDs lists the demo work orders.
func workOrderIDs(ctx context.Context, dv *dataverse.Client) ([]string, error) {
	var ids []string
	err := dv.List(ctx, dataverse.SetWorkOrders, dataverse.Query{Select: []string{"msdyn_workorderid"}}, func(raw json.RawMessage) error {
		var r struct {
			ID string `json:"msdyn_workorderid"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		ids = append(ids, strings.ToLower(r.ID))
		return nil
	})
	return ids, err
}
