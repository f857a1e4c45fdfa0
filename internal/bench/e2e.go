package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	emudv "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	emugraph "github.com/bookingsync/bookingsync/internal/emulator/graph"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/sandbox"
	"github.com/bookingsync/bookingsync/internal/store"
	"github.com/bookingsync/bookingsync/internal/sync/outlook"
)

// E2EOptions configure E2E.
type E2EOptions struct {
	// Changes is the number of booking changes (phase 1) and of Outlook
	// changes (phase 2); default 200.
	Changes int
	// Technicians is how many demo technicians opt in (default 3, at most
	// the demo seed's).
	Technicians int
	// Rate paces the changes of each phase, per second (default 20), open
	// loop: a change is applied on schedule whether or not the previous one
	// has shown up. With Concurrency > 0 the phases run closed loop instead:
	// that many workers each apply a change and wait until it shows.
	Rate        float64
	Concurrency int
	// Timeout is how long one change may take to show before it counts as
	// missed (default 10s).
	Timeout time.Duration
	// Logger receives the sandbox's logs (default: discarded).
	Logger *slog.Logger
	// Progress receives a line per step (nil: none).
	Progress io.Writer
}

// E2EResult is the bench's JSON line. Field names are fixed: other tools
// and docs/performance.md read them.
type E2EResult struct {
	Changes     int     `json:"changes"`
	Technicians int     `json:"technicians"`
	Rate        float64 `json:"rate_per_s,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`

	// Phase 1: booking changes through Dataverse → events in Graph.
	Mix                         map[string]int `json:"mix"`
	D365ToOutlookP50Ms          float64        `json:"d365_to_outlook_p50_ms"`
	D365ToOutlookP99Ms          float64        `json:"d365_to_outlook_p99_ms"`
	D365ToOutlookMaxMs          float64        `json:"d365_to_outlook_max_ms"`
	D365ToOutlookMissed         int            `json:"d365_to_outlook_missed"`
	GraphWritesPerBookingChange float64        `json:"graph_writes_per_booking_change"`

	// Phase 2: event moves and resizes through Graph → bookings.
	OutlookChanges                  int     `json:"outlook_changes"`
	OutlookToD365P50Ms              float64 `json:"outlook_to_d365_p50_ms"`
	OutlookToD365P99Ms              float64 `json:"outlook_to_d365_p99_ms"`
	OutlookToD365MaxMs              float64 `json:"outlook_to_d365_max_ms"`
	OutlookToD365Missed             int     `json:"outlook_to_d365_missed"`
	DataverseWritesPerOutlookChange float64 `json:"dataverse_writes_per_outlook_change"`

	// Echoes: notifications (phase 1) and webhooks (phase 2) our own
	// writes caused, and the API calls and writes made about the changed
	// booking or event after the service's first write for the change.
	Echoes          int     `json:"echoes"`
	EchoCalls       int     `json:"echo_calls"`
	EchoWrites      int     `json:"echo_writes"`
	APICallsPerEcho float64 `json:"api_calls_per_echo"`
	WritesPerEcho   float64 `json:"writes_per_echo"`
	// OutlookUpdates are Outlook's own modifications right after our
	// creates (not echoes: their etag is new to us) and the calls made
	// after them about the same event (issue 5 allows one GET each).
	OutlookUpdates     int `json:"outlook_updates"`
	OutlookUpdateCalls int `json:"outlook_update_calls"`

	// The emulator's stats per phase, split into ours and the bench's.
	Phase1 PhaseCounts `json:"phase1"`
	Phase2 PhaseCounts `json:"phase2"`
}

// PhaseCounts are the emulator's request counts over one phase (from the
// stats before and after it, once quiet), the bench's own requests taken
// out, plus the echo accounting of that phase.
type PhaseCounts struct {
	Seconds                float64 `json:"seconds"`
	GraphEventWrites       int64   `json:"graph_event_writes"`
	GraphReads             int64   `json:"graph_reads"`
	GraphOther             int64   `json:"graph_other"`
	DataverseBookingWrites int64   `json:"dataverse_booking_writes"`
	DataverseOtherWrites   int64   `json:"dataverse_other_writes"`
	DataverseReads         int64   `json:"dataverse_reads"`
	NotificationsSent      int64   `json:"notifications_sent"`
	WebhooksSent           int64   `json:"webhooks_sent"`
	BenchGraphWrites       int64   `json:"bench_graph_writes"`
	BenchDataverseWrites   int64   `json:"bench_dataverse_writes"`
	Echoes                 int     `json:"echoes"`
	EchoCalls              int     `json:"echo_calls"`
	EchoWrites             int     `json:"echo_writes"`
	// EchoCallsBy counts the echo calls by the change's kind and the
	// request's route ("create: GET /users/{id}/events/{id}").
	EchoCallsBy map[string]int `json:"echo_calls_by,omitempty"`
	// BackgroundCalls are the service's requests about nothing the phase
	// changed (periodic polls, status caches).
	BackgroundCalls int `json:"background_calls"`
}

// Change kinds of phase 1 and 2.
const (
	kindCreate     = "create"
	kindReschedule = "reschedule"
	kindRename     = "rename"
	kindCancel     = "cancel"
	kindDelete     = "delete"
	kindMove       = "move"
	kindResize     = "resize"
)

// e2eMix is phase 1's repeating mix of 20: 4 creates, 8 reschedules,
// 5 renames, 2 cancels, 1 delete.
var e2eMix = []string{
	kindReschedule, kindCreate, kindRename, kindReschedule, kindCancel,
	kindReschedule, kindRename, kindCreate, kindReschedule, kindRename,
	kindDelete, kindReschedule, kindCreate, kindRename, kindReschedule,
	kindCancel, kindReschedule, kindCreate, kindRename, kindReschedule,
}

// e2eQuiet is how long nothing may happen before a phase counts as settled:
// longer than Outlook's extra update after a create (500 ms) plus its
// processing.
const e2eQuiet = 1500 * time.Millisecond

// E2E runs the sandbox in-process and measures both directions of the
// sync: latency from a write on one side to the change on the other, and
// the API calls and writes it costs, counted by the emulator.
func E2E(ctx context.Context, o E2EOptions) (E2EResult, error) {
	if o.Changes <= 0 {
		o.Changes = 200
	}
	if o.Technicians <= 0 {
		o.Technicians = 3
	}
	if o.Rate <= 0 {
		o.Rate = 20
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	techs, err := demoTechnicians(o.Technicians)
	if err != nil {
		return E2EResult{}, err
	}
	progress := progressTo(o.Progress)
	sb, rec, stop, err := startRecordedSandbox(ctx, "e2e", o.Logger, nil)
	if err != nil {
		return E2EResult{}, err
	}
	defer stop()

	b := &e2e{o: o, sb: sb, rec: rec, techs: techs, progress: progress}
	if err := b.setup(ctx); err != nil {
		return E2EResult{}, err
	}
	res := E2EResult{Changes: o.Changes, Technicians: o.Technicians}
	if o.Concurrency > 0 {
		res.Concurrency = o.Concurrency
	} else {
		res.Rate = o.Rate
	}
	if err := b.phase1(ctx, &res); err != nil {
		return res, err
	}
	if err := b.phase2(ctx, &res); err != nil {
		return res, err
	}
	res.Echoes = res.Phase1.Echoes + res.Phase2.Echoes
	res.EchoCalls = res.Phase1.EchoCalls + res.Phase2.EchoCalls
	res.EchoWrites = res.Phase1.EchoWrites + res.Phase2.EchoWrites
	res.APICallsPerEcho = e2eRatio(float64(res.EchoCalls), res.Echoes)
	res.WritesPerEcho = e2eRatio(float64(res.EchoWrites), res.Echoes)
	return res, nil
}

// e2e is one run.
type e2e struct {
	o        E2EOptions
	sb       *sandbox.Sandbox
	rec      *e2eRecorder
	techs    []tenant.User
	progress func(string, ...any)
	pool     []string // work-order-free bookings the bench made, in order
	next     time.Time
	resOf    map[string]string // booking → resource
}

// setup opts the technicians in, gives them work-order-free bookings (one
// per change) and waits until the calendars are in sync and quiet.
func (b *e2e) setup(ctx context.Context) error {
	dv := b.sb.Service.Dataverse
	for _, u := range b.techs {
		if err := dv.Update(ctx, dataverse.SetResources, emudv.ResourceID(u.ID),
			map[string]any{b.sb.Config.Dataverse.OptInColumn: 100000000}, "*"); err != nil {
			return fmt.Errorf("opt in %s: %w", u.UserPrincipalName, err)
		}
	}
	if err := e2eWaitUntil(ctx, 30*time.Second, "subscriptions", func() (bool, error) {
		subs, err := b.sb.Service.Graph.ListSubscriptions(ctx)
		if err != nil {
			return false, err
		}
		n := 0
		for _, u := range b.techs {
			for _, s := range subs {
				if strings.Contains(strings.ToLower(s.Resource), strings.ToLower(u.ID)) {
					n++
					break
				}
			}
		}
		return n == len(b.techs), nil
	}); err != nil {
		return err
	}
	b.progress("bench e2e: %d technicians opted in; creating %d bookings", len(b.techs), b.o.Changes)
	now := b.sb.Service.Store.Now().UTC()
	b.next = time.Date(now.Year(), now.Month(), now.Day(), 6, 0, 0, 0, time.UTC).Add(24 * time.Hour)
	b.resOf = map[string]string{}
	ids := make([]string, b.o.Changes)
	errs := make([]error, b.o.Changes)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range ids {
		res := emudv.ResourceID(b.techs[i%len(b.techs)].ID)
		start := b.slot()
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ids[i], errs[i] = b.createBooking(ctx, res, fmt.Sprintf("Bench job %d", i), start)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, id := range ids {
		b.resOf[id] = emudv.ResourceID(b.techs[i%len(b.techs)].ID)
	}
	b.pool = ids
	if err := e2eWaitUntil(ctx, 60*time.Second, "bookings in the calendars", func() (bool, error) {
		links, err := b.sb.Service.Store.ListLinks(ctx, b.sb.Service.Store.DB())
		if err != nil {
			return false, err
		}
		have := map[string]bool{}
		for _, l := range links {
			if !l.Pending() && !l.Detached {
				have[strings.ToLower(l.BookingID)] = true
			}
		}
		for _, id := range ids {
			if !have[id] {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	if err := b.rec.waitQuiet(ctx, e2eQuiet, 60*time.Second); err != nil {
		return err
	}
	b.progress("bench e2e: calendars in sync")
	return nil
}

// slot hands out distinct future hours: the bookings never overlap.
func (b *e2e) slot() time.Time {
	t := b.next
	b.next = b.next.Add(2 * time.Hour)
	if b.next.Hour() > 18 {
		b.next = time.Date(b.next.Year(), b.next.Month(), b.next.Day(), 6, 0, 0, 0, time.UTC).Add(24 * time.Hour)
	}
	return t
}

func (b *e2e) createBooking(ctx context.Context, res, name string, start time.Time) (string, error) {
	body := map[string]any{
		"name": name, "starttime": start.Format(time.RFC3339), "endtime": start.Add(time.Hour).Format(time.RFC3339),
		"duration": 60, "bookingtype": 1,
		dataverse.NavBookingResource + "@odata.bind": "/" + dataverse.SetResources + "(" + res + ")",
		dataverse.NavBookingStatus + "@odata.bind":   "/" + dataverse.SetBookingStatuses + "(" + emudv.BookingStatusID("Scheduled") + ")",
	}
	id, err := b.sb.Service.Dataverse.Create(ctx, dataverse.SetBookings, body)
	if err != nil {
		return "", fmt.Errorf("create booking: %w", err)
	}
	return strings.ToLower(id), nil
}

// change is one write the bench makes and what must show on the other side.
type e2eChange struct {
	kind    string
	booking string // "" for a create until its response
	mailbox string // phase 2
	eventID string // phase 2
	name    string
	start   time.Time
	end     time.Time
	res     string
	t0, t1  time.Time // request sent, response received
	err     error
	seenAt  time.Time // when the other side showed it
}

// phase1 applies booking changes through Dataverse as a dispatcher would
// and times them until the event in Graph shows them.
func (b *e2e) phase1(ctx context.Context, res *E2EResult) error {
	n := b.o.Changes
	changes := make([]*e2eChange, n)
	res.Mix = map[string]int{}
	targets := slices.Clone(b.pool)
	for i := range changes {
		c := &e2eChange{kind: e2eMix[i%len(e2eMix)]}
		if c.kind == kindCreate {
			c.res = emudv.ResourceID(b.techs[i%len(b.techs)].ID)
			c.name = fmt.Sprintf("Bench new job %d", i)
			c.start = b.slot()
			c.end = c.start.Add(time.Hour)
		} else {
			c.booking, targets = targets[0], targets[1:]
			switch c.kind {
			case kindReschedule:
				c.start = b.slot()
				c.end = c.start.Add(90 * time.Minute)
			case kindRename:
				c.name = fmt.Sprintf("Bench job %d, renamed", i)
			}
		}
		res.Mix[c.kind]++
		changes[i] = c
	}
	b.progress("bench e2e: phase 1, %d booking changes through Dataverse %s", n, b.pace())
	dvWrites := 0
	p, err := b.run(ctx, changes, b.applyBooking, func(c *e2eChange) func(any) bool { return b.phase1Match(c) })
	if err != nil {
		return err
	}
	for _, c := range changes {
		if c.err == nil {
			dvWrites++
		}
	}
	res.Phase1 = p.counts(0, int64(dvWrites))
	lat, missed := e2eLatencies(changes)
	res.D365ToOutlookMissed = missed
	res.D365ToOutlookP50Ms, res.D365ToOutlookP99Ms, res.D365ToOutlookMaxMs = e2ePercentile(lat, 50), e2ePercentile(lat, 99), e2ePercentile(lat, 100)
	res.GraphWritesPerBookingChange = e2eRatio(float64(res.Phase1.GraphEventWrites), n)

	// Echo accounting: after the service's first Graph write for a change,
	// nothing more should be asked about that booking or its event.
	p.echoes(changes, b.bookingOfWrite, res, &res.Phase1, false)
	for _, c := range changes {
		switch {
		case c.kind == kindCreate && c.booking != "":
			b.resOf[c.booking] = c.res
		case c.kind == kindCancel || c.kind == kindDelete:
			delete(b.resOf, c.booking)
		}
	}
	b.progress("bench e2e: phase 1 done: p50 %.1f ms, p99 %.1f ms, %d Graph event writes for %d changes, %d missed",
		res.D365ToOutlookP50Ms, res.D365ToOutlookP99Ms, res.Phase1.GraphEventWrites, n, missed)
	return nil
}

func (b *e2e) applyBooking(ctx context.Context, c *e2eChange) error {
	dv := b.sb.Service.Dataverse
	var body map[string]any
	switch c.kind {
	case kindCreate:
		c.t0 = time.Now()
		id, err := b.createBooking(ctx, c.res, c.name, c.start)
		c.t1 = time.Now()
		c.booking = id
		return err
	case kindReschedule:
		body = map[string]any{"starttime": c.start.Format(time.RFC3339), "endtime": c.end.Format(time.RFC3339), "duration": int(c.end.Sub(c.start).Minutes())}
	case kindRename:
		body = map[string]any{"name": c.name}
	case kindCancel:
		body = map[string]any{dataverse.NavBookingStatus + "@odata.bind": "/" + dataverse.SetBookingStatuses + "(" + emudv.BookingStatusID("Canceled") + ")"}
	case kindDelete:
		c.t0 = time.Now()
		err := dv.Delete(ctx, dataverse.SetBookings, c.booking, "*")
		c.t1 = time.Now()
		return err
	}
	c.t0 = time.Now()
	err := dv.Update(ctx, dataverse.SetBookings, c.booking, body, "*")
	c.t1 = time.Now()
	return err
}

// phase1Match recognises the Graph write that shows c.
func (b *e2e) phase1Match(c *e2eChange) func(any) bool {
	return func(x any) bool {
		w, ok := x.(emugraph.Write)
		if !ok || w.Source != "api" || c.booking == "" || b.bookingOfWrite(w) != c.booking {
			return false
		}
		switch c.kind {
		case kindCreate:
			return w.ChangeType == "created"
		case kindReschedule:
			return w.ChangeType != "deleted" && w.Start.Equal(c.start) && w.End.Equal(c.end)
		case kindRename:
			return w.ChangeType != "deleted" && w.Subject == c.name
		default: // cancel (on_cancel: delete, or mark) and delete
			return w.ChangeType == "deleted" || strings.HasPrefix(w.Subject, "Canceled")
		}
	}
}

func (b *e2e) bookingOfWrite(w emugraph.Write) string {
	for k, v := range w.Extended {
		if strings.EqualFold(k, outlook.PropertyID) {
			return strings.ToLower(v)
		}
	}
	return ""
}

// phase2 moves and resizes linked events through Graph as the technician
// would and times them until the booking shows the new times.
func (b *e2e) phase2(ctx context.Context, res *E2EResult) error {
	links, err := b.sb.Service.Store.ListLinks(ctx, b.sb.Service.Store.DB())
	if err != nil {
		return err
	}
	// The bench's own bookings first (work-order-free: one read each, so
	// the echo accounting sees every call), then any other linked one.
	rank := func(id string) int {
		if _, ok := b.resOf[strings.ToLower(id)]; ok {
			return 0
		}
		return 1
	}
	slices.SortFunc(links, func(x, y store.Link) int {
		if d := rank(x.BookingID) - rank(y.BookingID); d != 0 {
			return d
		}
		return x.AgreedStart.Compare(y.AgreedStart)
	})
	var changes []*e2eChange
	for _, l := range links {
		if len(changes) == b.o.Changes {
			break
		}
		if l.Pending() || l.Detached || l.AgreedStart.IsZero() {
			continue
		}
		c := &e2eChange{booking: strings.ToLower(l.BookingID), mailbox: l.Mailbox, eventID: l.EventID}
		if len(changes)%2 == 0 {
			c.kind = kindMove
			c.start, c.end = l.AgreedStart.Add(30*time.Minute), l.AgreedEnd.Add(30*time.Minute)
		} else {
			c.kind = kindResize
			c.start, c.end = l.AgreedStart, l.AgreedEnd.Add(15*time.Minute)
		}
		changes = append(changes, c)
	}
	if len(changes) < b.o.Changes {
		b.progress("bench e2e: only %d linked events to change", len(changes))
	}
	res.OutlookChanges = len(changes)
	b.progress("bench e2e: phase 2, %d event moves and resizes through Graph %s", len(changes), b.pace())
	p, err := b.run(ctx, changes, b.applyEvent, func(c *e2eChange) func(any) bool {
		return func(x any) bool {
			w, ok := x.(emudv.Write)
			if !ok || w.Message != "Update" || w.Table != "bookableresourcebooking" || strings.ToLower(w.ID) != c.booking {
				return false
			}
			s, _ := w.Values["starttime"].(time.Time)
			e, _ := w.Values["endtime"].(time.Time)
			return s.Equal(c.start) && e.Equal(c.end)
		}
	})
	if err != nil {
		return err
	}
	graphWrites := 0
	for _, c := range changes {
		if c.err == nil {
			graphWrites++
		}
	}
	res.Phase2 = p.counts(int64(graphWrites), 0)
	lat, missed := e2eLatencies(changes)
	res.OutlookToD365Missed = missed
	res.OutlookToD365P50Ms, res.OutlookToD365P99Ms, res.OutlookToD365MaxMs = e2ePercentile(lat, 50), e2ePercentile(lat, 99), e2ePercentile(lat, 100)
	res.DataverseWritesPerOutlookChange = e2eRatio(float64(res.Phase2.DataverseBookingWrites), len(changes))
	p.echoes(changes, b.bookingOfWrite, res, &res.Phase2, true)
	b.progress("bench e2e: phase 2 done: p50 %.1f ms, p99 %.1f ms, %d Dataverse booking writes for %d changes, %d missed",
		res.OutlookToD365P50Ms, res.OutlookToD365P99Ms, res.Phase2.DataverseBookingWrites, len(changes), missed)
	return nil
}

func (b *e2e) applyEvent(ctx context.Context, c *e2eChange) error {
	const layout = "2006-01-02T15:04:05.0000000"
	patch := graph.EventPatch{
		Start: &graph.DateTimeTimeZone{DateTime: c.start.UTC().Format(layout), TimeZone: "UTC"},
		End:   &graph.DateTimeTimeZone{DateTime: c.end.UTC().Format(layout), TimeZone: "UTC"},
	}
	c.t0 = time.Now()
	_, err := b.sb.Service.Graph.UpdateEvent(ctx, c.mailbox, c.eventID, patch, "")
	c.t1 = time.Now()
	return err
}

func (b *e2e) pace() string {
	if b.o.Concurrency > 0 {
		return fmt.Sprintf("(closed loop, %d workers)", b.o.Concurrency)
	}
	return fmt.Sprintf("(%g/s)", b.o.Rate)
}

// phase is the record of one phase: its stats before and after, and the
// range of observations it covers.
type e2ePhase struct {
	b          *e2e
	before     map[string]any
	after      map[string]any
	from, to   int // e2eObservation indexes
	start, end time.Time
}

// run applies changes (paced or closed loop), waits until each shows or
// times out, then until everything is quiet, and snapshots the stats.
func (b *e2e) run(ctx context.Context, changes []*e2eChange, apply func(context.Context, *e2eChange) error, match func(*e2eChange) func(any) bool) (*e2ePhase, error) {
	p := &e2ePhase{b: b, before: b.sb.Emulator.Stats(), from: b.rec.len(), start: time.Now()}
	one := func(c *e2eChange) {
		from := b.rec.len() // what the change causes is observed after this
		if c.err = apply(ctx, c); c.err != nil {
			b.progress("bench e2e: %s %s: %v", c.kind, c.booking, c.err)
			return
		}
		c.seenAt, _ = b.rec.waitFor(ctx, from, match(c), b.o.Timeout)
	}
	var wg sync.WaitGroup
	if b.o.Concurrency > 0 {
		work := make(chan *e2eChange)
		for range b.o.Concurrency {
			wg.Go(func() {
				for c := range work {
					one(c)
				}
			})
		}
		for _, c := range changes {
			work <- c
		}
		close(work)
	} else {
		interval := time.Duration(float64(time.Second) / b.o.Rate)
		next := time.Now()
		for i, c := range changes {
			if d := time.Until(next); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			next = next.Add(interval)
			wg.Go(func() { one(c) })
			if (i+1)%50 == 0 {
				b.progress("bench e2e: %d of %d applied", i+1, len(changes))
			}
		}
	}
	wg.Wait()
	if err := b.rec.waitQuiet(ctx, e2eQuiet, 60*time.Second); err != nil {
		return nil, err
	}
	p.after, p.to, p.end = b.sb.Emulator.Stats(), b.rec.len(), time.Now()
	return p, nil
}

// counts turns the stats before and after the phase into the service's
// figures: the bench's own writes (it reads nothing during a phase) are
// taken out.
func (p *e2ePhase) counts(benchGraphWrites, benchDVWrites int64) PhaseCounts {
	pc := PhaseCounts{Seconds: p.end.Sub(p.start).Seconds(), BenchGraphWrites: benchGraphWrites, BenchDataverseWrites: benchDVWrites}
	for route, d := range e2eRouteDelta(p.before, p.after, "graph") {
		method, path, _ := strings.Cut(route, " ")
		switch {
		case method == "GET":
			pc.GraphReads += d
		case e2eIsWrite(method) && strings.Contains(path, "/events"):
			pc.GraphEventWrites += d
		default:
			pc.GraphOther += d
		}
	}
	for route, d := range e2eRouteDelta(p.before, p.after, "dataverse") {
		method, path, _ := strings.Cut(route, " ")
		switch {
		case method == "GET":
			pc.DataverseReads += d
		case e2eIsWrite(method) && strings.HasPrefix(path, "/"+dataverse.SetBookings):
			pc.DataverseBookingWrites += d
		default:
			pc.DataverseOtherWrites += d
		}
	}
	pc.GraphEventWrites -= benchGraphWrites
	pc.DataverseBookingWrites -= benchDVWrites
	pc.NotificationsSent = e2eCounterDelta(p.before, p.after, "notifications_sent")
	pc.WebhooksSent = e2eCounterDelta(p.before, p.after, "webhooks_sent")
	return pc
}

// echoes attributes the phase's requests. For each change, the service's
// first write for it (on the other side from the bench's) opens its echo
// window: every later request naming the booking (Dataverse path) or its
// event (Graph path) is a call made while processing an echo — the
// notifications and webhooks the service's writes caused — except those
// after Outlook's own update of the event, which are counted apart.
// Requests naming nothing the phase changed are background. In phase 2 the
// service's first write is the booking's, and a Graph write after it is
// the service's (the bench's PATCH comes before).
func (p *e2ePhase) echoes(changes []*e2eChange, bookingOf func(emugraph.Write) string, res *E2EResult, pc *PhaseCounts, phase2 bool) {
	obs := p.b.rec.slice(p.from, p.to)
	type entity struct {
		kind           string
		booking, event string
		firstWrite     time.Time
		outlookAt      time.Time
	}
	byBooking := map[string]*entity{}
	for _, c := range changes {
		if c.booking != "" && c.err == nil {
			byBooking[c.booking] = &entity{kind: c.kind, booking: c.booking, event: c.eventID}
		}
	}
	for _, x := range obs {
		switch w := x.v.(type) {
		case emugraph.Write:
			en := byBooking[bookingOf(w)]
			if en == nil {
				continue
			}
			if en.event == "" {
				en.event = w.EventID
			}
			switch {
			case w.Source == "outlook":
				if en.outlookAt.IsZero() {
					en.outlookAt = w.At
					res.OutlookUpdates++
				}
			case !phase2:
				if en.firstWrite.IsZero() {
					en.firstWrite = w.At
				}
				pc.Echoes += w.Notifications
			case !en.firstWrite.IsZero():
				pc.Echoes += w.Notifications // the service wrote the event too
			}
		case emudv.Write:
			en := byBooking[strings.ToLower(w.ID)]
			if en == nil || !phase2 || w.Table != "bookableresourcebooking" {
				continue
			}
			if en.firstWrite.IsZero() {
				en.firstWrite = w.At
			}
			pc.Echoes += w.Webhooks
		}
	}
	byEvent := map[string]*entity{}
	for _, en := range byBooking {
		if en.event != "" {
			byEvent[en.event] = en
		}
	}
	for _, x := range obs {
		var (
			en            *entity
			at            time.Time
			method, route string
		)
		switch r := x.v.(type) {
		case emugraph.Request:
			at, method, route = r.At, r.Method, r.Route
			if id := e2eEventInPath(r.Path); id != "" {
				en = byEvent[id]
			}
		case emudv.Request:
			at, method, route = r.At, r.Method, r.Route
			if id := e2eBookingInPath(r.Path); id != "" {
				en = byBooking[id]
			}
		default:
			continue
		}
		if en == nil {
			// Creates name no id yet: the bench's bookings, the service's
			// events (counted with the writes).
			if method != "POST" || !(strings.HasSuffix(route, "/events") || strings.HasSuffix(route, "/"+dataverse.SetBookings)) {
				pc.BackgroundCalls++
			}
			continue
		}
		if en.firstWrite.IsZero() || !at.After(en.firstWrite) {
			continue // the change's own work (or the bench's write)
		}
		if !en.outlookAt.IsZero() && at.After(en.outlookAt) {
			res.OutlookUpdateCalls++
			continue
		}
		pc.EchoCalls++
		if pc.EchoCallsBy == nil {
			pc.EchoCallsBy = map[string]int{}
		}
		pc.EchoCallsBy[en.kind+": "+route]++
		if e2eIsWrite(method) {
			pc.EchoWrites++
		}
	}
}

// e2eEventInPath returns the event id of /users/{id}/events/{eid}[/…] (or
// the /calendar/events form).
func e2eEventInPath(p string) string {
	_, rest, ok := strings.Cut(p, "/events/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// e2eBookingInPath returns the key of /bookableresourcebookings({id})[/…], lower case.
func e2eBookingInPath(p string) string {
	rest, ok := strings.CutPrefix(p, "/"+dataverse.SetBookings+"(")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, ")")
	return strings.ToLower(id)
}

func e2eIsWrite(method string) bool {
	return method == "POST" || method == "PATCH" || method == "DELETE" || method == "PUT"
}

func e2eRouteDelta(before, after map[string]any, section string) map[string]int64 {
	b, _ := before[section].(map[string]int64)
	a, _ := after[section].(map[string]int64)
	out := map[string]int64{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func e2eCounterDelta(before, after map[string]any, name string) int64 {
	b, _ := before[name].(int64)
	a, _ := after[name].(int64)
	return a - b
}

// e2eLatencies returns the milliseconds from each change's response to its
// showing on the other side (never negative: the webhook can beat the
// response to the bench), sorted, and how many never showed.
func e2eLatencies(changes []*e2eChange) ([]float64, int) {
	var out []float64
	missed := 0
	for _, c := range changes {
		if c.err != nil || c.seenAt.IsZero() {
			missed++
			continue
		}
		out = append(out, max(0, float64(c.seenAt.Sub(c.t1).Microseconds())/1000))
	}
	slices.Sort(out)
	return out, missed
}

func e2eRatio(x float64, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(int(x/float64(n)*1000+0.5)) / 1000
}

func e2eFreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func e2eWaitUntil(ctx context.Context, limit time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// e2eRecorder keeps every e2eObservation of both emulator sections in arrival
// order and wakes waiters on each.
type e2eRecorder struct {
	mu      sync.Mutex
	obs     []e2eObservation
	last    time.Time
	changed chan struct{}
}

type e2eObservation struct {
	v any // emugraph.Request/Write, emudv.Request/Write
}

func newE2ERecorder() *e2eRecorder {
	return &e2eRecorder{changed: make(chan struct{}), last: time.Now()}
}

func (r *e2eRecorder) add(v any) {
	r.mu.Lock()
	r.obs = append(r.obs, e2eObservation{v: v})
	r.last = time.Now()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *e2eRecorder) graphRequest(x emugraph.Request) { r.add(x) }
func (r *e2eRecorder) graphWrite(x emugraph.Write)     { r.add(x) }
func (r *e2eRecorder) dvRequest(x emudv.Request)       { r.add(x) }
func (r *e2eRecorder) dvWrite(x emudv.Write)           { r.add(x) }

func (r *e2eRecorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.obs)
}

func (r *e2eRecorder) slice(from, to int) []e2eObservation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.obs[from:to])
}

// waitFor returns the time of the first e2eObservation from index from on
// that match accepts, waiting up to limit.
func (r *e2eRecorder) waitFor(ctx context.Context, from int, match func(any) bool, limit time.Duration) (time.Time, bool) {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	seen := from
	for {
		r.mu.Lock()
		obs, ch := r.obs, r.changed
		r.mu.Unlock()
		for ; seen < len(obs); seen++ {
			if match(obs[seen].v) {
				return e2eObsTime(obs[seen]), true
			}
		}
		select {
		case <-ch:
		case <-deadline.C:
			return time.Time{}, false
		case <-ctx.Done():
			return time.Time{}, false
		}
	}
}

// waitQuiet returns once nothing was observed for d.
func (r *e2eRecorder) waitQuiet(ctx context.Context, d, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		r.mu.Lock()
		idle := time.Since(r.last)
		r.mu.Unlock()
		if idle >= d {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the sandbox did not go e2eQuiet within %v", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d - idle):
		}
	}
}

func e2eObsTime(o e2eObservation) time.Time {
	switch v := o.v.(type) {
	case emugraph.Request:
		return v.At
	case emugraph.Write:
		return v.At
	case emudv.Request:
		return v.At
	case emudv.Write:
		return v.At
	}
	return time.Time{}
}

// e2ePercentile is the q-th percentile (nearest rank) of sorted ms values.
func e2ePercentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q/100+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(int(sorted[i]*10+0.5)) / 10
}
