package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	emudv "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/httpapi"
	"github.com/bookingsync/bookingsync/internal/sandbox"
	"github.com/bookingsync/bookingsync/internal/store"
)

// ResyncTargetGraphRequests is the budget for a full resync of
// 1,000 bookings.
const ResyncTargetGraphRequests = 60

// ResyncOptions configure Resync.
type ResyncOptions struct {
	// Bookings is how many bookings the bench creates in the sync window,
	// in all (spread over the technicians); default 1000.
	Bookings int
	// Technicians is how many demo technicians opt in (default 1).
	Technicians int
	// Drift is the fraction of the bookings changed behind the service's
	// back before the drift scenario (default 0.05).
	Drift float64
	// Logger receives the sandbox's logs (default: discarded).
	Logger *slog.Logger
	// Progress receives a line per step (nil: none).
	Progress io.Writer
}

// ResyncResult is the bench's JSON line. Field names are fixed: other
// tools and docs read them.
type ResyncResult struct {
	Bookings            int            `json:"bookings"`
	Technicians         int            `json:"technicians"`
	SetupS              float64        `json:"setup_s"`
	TargetGraphRequests int            `json:"target_graph_requests"`
	InSync              ResyncScenario `json:"in_sync"`
	Drift               ResyncScenario `json:"drift"`
	DryRun              ResyncScenario `json:"dry_run"`
}

// ResyncScenario is one measured resync. Graph requests are HTTP requests
// the service sent (a $batch is one, its steps are counted apart);
// Dataverse requests likewise.
type ResyncScenario struct {
	GraphRequests      int64   `json:"graph_requests"`
	GraphBatchRequests int64   `json:"graph_batch_requests"`
	GraphBatchSteps    int64   `json:"graph_batch_steps"`
	DataverseRequests  int64   `json:"dataverse_requests"`
	DurationMs         float64 `json:"duration_ms"`
	Repairs            int     `json:"repairs"`
	Writes             int     `json:"writes"`
	// Met is whether GraphRequests is within the target (not for dry_run).
	Met *bool `json:"met,omitempty"`

	// What the resync compared and found (its report).
	ComparedBookings int `json:"compared_bookings"`
	ComparedEvents   int `json:"compared_events"`
	Evaluated        int `json:"evaluated"`
	Planned          int `json:"planned"` // report items: differences (dry run) or repairs
	Errors           int `json:"errors"`
	// GraphByRequest breaks GraphRequests down by endpoint, the batch steps
	// under "step: GET /users/{id}/events/{id}" and the like.
	GraphByRequest     map[string]int64 `json:"graph_by_request"`
	DataverseByRequest map[string]int64 `json:"dataverse_by_request"`

	// Drift only: the changes made behind the service's back, and the dry
	// run afterwards (which must plan nothing).
	Changed        map[string]int `json:"changed,omitempty"`
	AfterPlanned   *int           `json:"after_planned,omitempty"`
	AfterErrors    *int           `json:"after_errors,omitempty"`
	AfterGraphReqs *int64         `json:"after_graph_requests,omitempty"`
}

// Resync runs the sandbox in-process with a technician (or several) whose
// bookings are all in Outlook, and measures full resyncs: nothing changed,
// the same as a dry run, and after changes on both sides the service was
// not told about.
func Resync(ctx context.Context, o ResyncOptions) (ResyncResult, error) {
	if o.Bookings <= 0 {
		o.Bookings = 1000
	}
	if o.Technicians <= 0 {
		o.Technicians = 1
	}
	if o.Drift <= 0 {
		o.Drift = 0.05
	}
	techs, err := demoTechnicians(o.Technicians)
	if err != nil {
		return ResyncResult{}, err
	}
	progress := progressTo(o.Progress)
	t0 := time.Now()
	// The change-tracking poll would repair the Dataverse side of the drift
	// on its own if it ran in between: the resync is what is measured.
	sb, rec, stop, err := startRecordedSandbox(ctx, "resync", o.Logger, []string{"BOOKINGSYNC_DATAVERSE_POLL_INTERVAL=24h"})
	if err != nil {
		return ResyncResult{}, err
	}
	defer stop()

	b := &resyncBench{o: o, sb: sb, rec: rec, techs: techs, progress: progress}
	if err := b.setup(ctx); err != nil {
		return ResyncResult{}, err
	}
	res := ResyncResult{Bookings: o.Bookings, Technicians: o.Technicians, TargetGraphRequests: ResyncTargetGraphRequests,
		SetupS: float64(time.Since(t0).Milliseconds()) / 1000}
	progress("bench resync: setup took %.1f s", res.SetupS)

	if res.InSync, err = b.measure(ctx, false); err != nil {
		return res, fmt.Errorf("in_sync: %w", err)
	}
	res.InSync.Met = resyncMet(res.InSync)
	progress("bench resync: in_sync: %d Graph requests (%d $batch, %d steps), %d Dataverse, %.0f ms, %d writes",
		res.InSync.GraphRequests, res.InSync.GraphBatchRequests, res.InSync.GraphBatchSteps, res.InSync.DataverseRequests, res.InSync.DurationMs, res.InSync.Writes)
	progress("bench resync: in_sync Graph: %s", resyncBreakdown(res.InSync.GraphByRequest))

	if res.DryRun, err = b.measure(ctx, true); err != nil {
		return res, fmt.Errorf("dry_run: %w", err)
	}
	progress("bench resync: dry_run: %d Graph requests (%d $batch, %d steps), %d Dataverse, %.0f ms, %d planned",
		res.DryRun.GraphRequests, res.DryRun.GraphBatchRequests, res.DryRun.GraphBatchSteps, res.DryRun.DataverseRequests, res.DryRun.DurationMs, res.DryRun.Planned)
	progress("bench resync: dry_run Graph: %s", resyncBreakdown(res.DryRun.GraphByRequest))

	if res.Drift, err = b.drift(ctx); err != nil {
		return res, fmt.Errorf("drift: %w", err)
	}
	res.Drift.Met = resyncMet(res.Drift)
	progress("bench resync: drift: %d Graph requests (%d $batch, %d steps), %d Dataverse, %.0f ms, %d repairs, %d writes; dry run after: %d planned",
		res.Drift.GraphRequests, res.Drift.GraphBatchRequests, res.Drift.GraphBatchSteps, res.Drift.DataverseRequests, res.Drift.DurationMs,
		res.Drift.Repairs, res.Drift.Writes, *res.Drift.AfterPlanned)
	progress("bench resync: drift Graph: %s", resyncBreakdown(res.Drift.GraphByRequest))
	return res, nil
}

func resyncMet(s ResyncScenario) *bool {
	ok := s.GraphRequests <= ResyncTargetGraphRequests
	return &ok
}

// resyncQuiet is how long nothing may reach the emulator before a resync
// is measured: its counts must not include the tail of earlier work.
const resyncQuiet = 500 * time.Millisecond

// resyncBench is one run.
type resyncBench struct {
	o         ResyncOptions
	sb        *sandbox.Sandbox
	rec       *e2eRecorder
	techs     []tenant.User
	progress  func(string, ...any)
	bookings  []string // the bench's bookings, lower case
	resources []store.Resource
}

// setup creates the bookings before the opt-in (the opt-in's window pass
// then puts them all in Outlook), opts the technicians in and waits until
// every booking has its event and the service is idle.
func (b *resyncBench) setup(ctx context.Context) error {
	now := b.sb.Service.Store.Now().UTC()
	cfg := b.sb.Config.Sync
	// Spread over the window, clear of its edges: a booking sliding out
	// while the bench runs would be a difference of its own.
	from := now.Add(-cfg.WindowPast).Add(24 * time.Hour).Truncate(time.Hour)
	to := now.Add(cfg.WindowFuture).Add(-48 * time.Hour)
	step := to.Sub(from) / time.Duration(b.o.Bookings)
	dur := min(time.Hour, step/2).Truncate(time.Minute)
	if dur < 5*time.Minute {
		return fmt.Errorf("--bookings %d: too many to fit the sync window apart", b.o.Bookings)
	}
	b.progress("bench resync: creating %d bookings for %d technicians between %s and %s", b.o.Bookings, len(b.techs),
		from.Format(time.DateOnly), to.Format(time.DateOnly))
	ids := make([]string, b.o.Bookings)
	errs := make([]error, b.o.Bookings)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range ids {
		res := emudv.ResourceID(b.techs[i%len(b.techs)].ID)
		start := from.Add(time.Duration(i) * step).Truncate(time.Minute)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ids[i], errs[i] = b.createBooking(ctx, res, fmt.Sprintf("Resync bench job %d", i), start, dur)
		}()
		if (i+1)%250 == 0 {
			b.progress("bench resync: %d of %d bookings created", i+1, len(ids))
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	b.bookings = ids

	dv := b.sb.Service.Dataverse
	for _, u := range b.techs {
		if err := dv.Update(ctx, dataverse.SetResources, emudv.ResourceID(u.ID),
			map[string]any{b.sb.Config.Dataverse.OptInColumn: 100000000}, "*"); err != nil {
			return fmt.Errorf("opt in %s: %w", u.UserPrincipalName, err)
		}
	}
	b.progress("bench resync: %d technicians opted in; waiting for the events", len(b.techs))
	last := -1
	if err := e2eWaitUntil(ctx, 10*time.Minute, "every booking's event", func() (bool, error) {
		n, err := b.linked(ctx)
		if err != nil {
			return false, err
		}
		if n/100 != last/100 {
			b.progress("bench resync: %d of %d bookings linked", n, len(b.bookings))
		}
		last = n
		return n == len(b.bookings), nil
	}); err != nil {
		return err
	}
	if err := b.waitIdle(ctx, e2eQuiet); err != nil {
		return err
	}
	for _, u := range b.techs {
		r, err := b.sb.Service.Store.GetResource(ctx, b.sb.Service.Store.DB(), emudv.ResourceID(u.ID))
		if err != nil {
			// The store may key resources in another case.
			rs, lerr := b.sb.Service.Store.ListResources(ctx, b.sb.Service.Store.DB(), store.ResourceFilter{Mailbox: u.ID})
			if lerr != nil || len(rs) != 1 {
				return fmt.Errorf("resource of %s: %w", u.UserPrincipalName, err)
			}
			r = rs[0]
		}
		b.resources = append(b.resources, r)
	}
	b.progress("bench resync: calendars in sync")
	return nil
}

func (b *resyncBench) createBooking(ctx context.Context, res, name string, start time.Time, d time.Duration) (string, error) {
	body := map[string]any{
		"name": name, "starttime": start.Format(time.RFC3339), "endtime": start.Add(d).Format(time.RFC3339),
		"duration": int(d.Minutes()), "bookingtype": 1,
		dataverse.NavBookingResource + "@odata.bind": "/" + dataverse.SetResources + "(" + res + ")",
		dataverse.NavBookingStatus + "@odata.bind":   "/" + dataverse.SetBookingStatuses + "(" + emudv.BookingStatusID("Scheduled") + ")",
	}
	id, err := b.sb.Service.Dataverse.Create(ctx, dataverse.SetBookings, body)
	if err != nil {
		return "", fmt.Errorf("create booking %q: %w", name, err)
	}
	return strings.ToLower(id), nil
}

// links returns the live links of the bench's bookings.
func (b *resyncBench) links(ctx context.Context) (map[string]store.Link, error) {
	all, err := b.sb.Service.Store.ListLinks(ctx, b.sb.Service.Store.DB())
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := map[string]store.Link{}
	for _, l := range all {
		if !l.Pending() && !l.Detached {
			out[strings.ToLower(l.BookingID)] = l
		}
	}
	return out, nil
}

func (b *resyncBench) linked(ctx context.Context) (int, error) {
	have, err := b.links(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range b.bookings {
		if _, ok := have[id]; ok {
			n++
		}
	}
	return n, nil
}

// waitIdle returns once no job or notification is left and nothing
// reached the emulator for quiet: e2eQuiet after the creates (Outlook's own
// update after each, and its notification), less between resyncs.
func (b *resyncBench) waitIdle(ctx context.Context, quiet time.Duration) error {
	for {
		if err := b.rec.waitQuiet(ctx, quiet, 5*time.Minute); err != nil {
			return err
		}
		qs, err := b.sb.Service.Queue.Stats(ctx)
		if err != nil {
			return fmt.Errorf("job stats: %w", err)
		}
		ns, err := b.sb.Service.Store.ListUnprocessedNotifications(ctx, b.sb.Service.Store.InboxReadDB(), 10)
		if err != nil {
			return fmt.Errorf("unprocessed notifications: %w", err)
		}
		// Scheduled jobs are periodic ones waiting for their time.
		if qs.Available+qs.Running+qs.Retryable+qs.Pending == 0 && len(ns) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// measure runs one resync of the technicians' resources and counts the
// service's requests over it.
func (b *resyncBench) measure(ctx context.Context, dryRun bool) (ResyncScenario, error) {
	if err := b.waitIdle(ctx, resyncQuiet); err != nil {
		return ResyncScenario{}, err
	}
	before := b.counts()
	emuBefore := b.sb.Emulator.Stats()
	start := time.Now()
	rep, err := b.sb.Service.Resync(ctx, b.resources, dryRun)
	d := time.Since(start)
	if err != nil {
		return ResyncScenario{}, fmt.Errorf("resync: %w", err)
	}
	sc := b.scenario(before, b.counts(), emuBefore, b.sb.Emulator.Stats(), rep)
	sc.DurationMs = float64(d.Microseconds()) / 1000
	return sc, nil
}

// drift changes a fraction of the items with notifications and webhooks
// dropped, resyncs, and checks that a dry run then plans nothing.
func (b *resyncBench) drift(ctx context.Context) (ResyncScenario, error) {
	if err := b.waitIdle(ctx, resyncQuiet); err != nil {
		return ResyncScenario{}, err
	}
	if err := b.faults(1); err != nil {
		return ResyncScenario{}, err
	}
	defer b.faults(0) //nolint:errcheck // best effort on the way out
	links, err := b.links(ctx)
	if err != nil {
		return ResyncScenario{}, err
	}
	n := max(3, int(float64(len(b.bookings))*b.o.Drift+0.5))
	n = min(n, len(b.bookings))
	// Every k-th booking, so the changes spread over the window: 40% of
	// the events moved in Outlook, 40% of the bookings rescheduled in
	// Dataverse, the rest (at least one) of the events deleted.
	k := max(1, len(b.bookings)/n)
	deletes := max(1, n/5)
	moves := (n - deletes) / 2
	changed := map[string]int{}
	g, dv := b.sb.Service.Graph, b.sb.Service.Dataverse
	for i := range n {
		id := b.bookings[(i*k)%len(b.bookings)]
		l, ok := links[id]
		if !ok {
			return ResyncScenario{}, fmt.Errorf("booking %s has no link", id)
		}
		d := l.AgreedEnd.Sub(l.AgreedStart)
		switch {
		case i < moves:
			s, e := graph.NewDateTimeTimeZone(l.AgreedStart.Add(30*time.Minute)), graph.NewDateTimeTimeZone(l.AgreedStart.Add(30*time.Minute+d))
			if _, err := g.UpdateEvent(ctx, l.Mailbox, l.EventID, graph.EventPatch{Start: &s, End: &e}, ""); err != nil {
				return ResyncScenario{}, fmt.Errorf("move event of %s: %w", id, err)
			}
			changed["event_moved"]++
		case i < n-deletes:
			s := l.AgreedStart.Add(-30 * time.Minute).UTC()
			body := map[string]any{"starttime": s.Format(time.RFC3339), "endtime": s.Add(d).Format(time.RFC3339), "duration": int(d.Minutes())}
			if err := dv.Update(ctx, dataverse.SetBookings, id, body, "*"); err != nil {
				return ResyncScenario{}, fmt.Errorf("reschedule booking %s: %w", id, err)
			}
			changed["booking_rescheduled"]++
		default:
			if err := g.DeleteEvent(ctx, l.Mailbox, l.EventID); err != nil {
				return ResyncScenario{}, fmt.Errorf("delete event of %s: %w", id, err)
			}
			changed["event_deleted"]++
		}
	}
	b.progress("bench resync: drift: changed %v behind the service's back", changed)
	sc, err := b.measure(ctx, false)
	if err != nil {
		return sc, err
	}
	sc.Changed = changed
	after, err := b.measure(ctx, true)
	if err != nil {
		return sc, fmt.Errorf("dry run after the drift: %w", err)
	}
	sc.AfterPlanned, sc.AfterErrors, sc.AfterGraphReqs = &after.Planned, &after.Errors, &after.GraphRequests
	return sc, nil
}

// faults drops (rate 1) or delivers (rate 0) Graph's notifications and
// Dataverse's webhooks.
func (b *resyncBench) faults(rate float64) error {
	if err := b.sb.Emulator.Graph().SetFaults(json.RawMessage(fmt.Sprintf(`{"drop_notifications_rate": %g}`, rate))); err != nil {
		return fmt.Errorf("graph faults: %w", err)
	}
	if err := b.sb.Emulator.Dataverse().SetFaults(json.RawMessage(fmt.Sprintf(`{"drop_webhooks_rate": %g}`, rate))); err != nil {
		return fmt.Errorf("dataverse faults: %w", err)
	}
	return nil
}

// resyncCounts are the service's outbound requests so far by API and
// endpoint ("graph", "GET /users/{id}/calendarView"), from its metrics: one
// per HTTP attempt, so a $batch is one.
type resyncCounts map[[2]string]int64

func (b *resyncBench) counts() resyncCounts {
	out := resyncCounts{}
	ch := make(chan prometheus.Metric, 64)
	go func() { b.sb.Service.Metrics.APIRequests.Collect(ch); close(ch) }()
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil || d.Counter == nil {
			continue
		}
		var api, ep string
		for _, lp := range d.Label {
			switch lp.GetName() {
			case "api":
				api = lp.GetValue()
			case "endpoint":
				ep = lp.GetValue()
			}
		}
		out[[2]string{api, ep}] += int64(d.Counter.GetValue())
	}
	return out
}

// scenario turns the counts before and after a resync into its figures.
// The emulator counts a $batch's steps as if sent alone: what it counted
// beyond the service's own requests on a route is the steps.
func (b *resyncBench) scenario(before, after resyncCounts, emuBefore, emuAfter map[string]any, rep httpapi.ResyncReport) ResyncScenario {
	sc := ResyncScenario{GraphByRequest: map[string]int64{}, DataverseByRequest: map[string]int64{},
		Repairs: rep.Repairs, Writes: rep.Writes, ComparedBookings: rep.Bookings, ComparedEvents: rep.Events,
		Evaluated: rep.Evaluated, Planned: len(rep.Items), Errors: rep.Errors}
	sent := map[string]int64{}
	for k, v := range after {
		d := v - before[k]
		if d == 0 {
			continue
		}
		switch k[0] {
		case "graph":
			sc.GraphRequests += d
			sc.GraphByRequest[k[1]] += d
			sent[k[1]] += d
			if k[1] == "POST /$batch" {
				sc.GraphBatchRequests += d
			}
		case "dataverse":
			sc.DataverseRequests += d
			sc.DataverseByRequest[k[1]] += d
		}
	}
	for route, d := range e2eRouteDelta(emuBefore, emuAfter, "graph") {
		if route == "POST /$batch" {
			continue
		}
		if steps := d - sent[route]; steps > 0 {
			sc.GraphBatchSteps += steps
			sc.GraphByRequest["step: "+route] += steps
		}
	}
	return sc
}

// resyncBreakdown renders a by-request map for the progress lines, the
// largest first.
func resyncBreakdown(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
