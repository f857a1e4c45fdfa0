package webui

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/bookingsync/bookingsync/internal/config"
	"github.com/bookingsync/bookingsync/internal/httpapi"
	"github.com/bookingsync/bookingsync/internal/store"
)

// ---- Overview

type check struct {
	Name string
	OK   bool
}

type overviewData struct {
	Checks        []check
	QueueDepth    string
	Dead          string
	NotifRate     string
	NotifTotal    string
	NearestExpiry *time.Time
	NearestWho    string
	Approvals     string
	Conflicts     string
	Resources     int
	OptedIn       int
	Links         string
	// SyncLag is the age of the oldest notification not yet processed.
	SyncLag string
	// ErrorRate is the share of the last hour's sync actions that failed.
	ErrorRate, ErrorDetail string
	Warnings               []string
}

func (u *UI) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st := u.d.Store
	var d overviewData
	names := make([]string, 0, len(u.d.Ready))
	for n := range u.d.Ready {
		names = append(names, n)
	}
	sort.Strings(names)
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	for _, n := range names {
		d.Checks = append(d.Checks, check{Name: n, OK: u.d.Ready[n](cctx) == nil})
	}
	cancel()
	d.QueueDepth = count(st.CountUnprocessedNotifications(ctx, st.DB()))
	d.Dead = count(st.CountDeadNotifications(ctx, st.DB()))
	d.NotifRate, d.NotifTotal = u.notificationRate()
	if subs, err := st.ListSubscriptions(ctx, st.DB()); err == nil {
		for _, s := range subs {
			if d.NearestExpiry == nil || s.ExpiresAt.Before(*d.NearestExpiry) {
				e := s.ExpiresAt
				d.NearestExpiry, d.NearestWho = &e, s.Mailbox
			}
		}
	}
	// Tables of migration 3; the operations on them are being built, so a
	// failure to read shows "—" rather than an error page.
	d.Approvals = count(countRows(ctx, st.ReadDB(), `SELECT COUNT(*) FROM guard_passes WHERE status = 'held'`))
	d.Conflicts = count(countRows(ctx, st.ReadDB(), `SELECT COUNT(*) FROM conflicts WHERE resolved_at IS NULL`))
	if res, err := st.ListResources(ctx, st.DB(), store.ResourceFilter{}); err == nil {
		d.Resources = len(res)
		for _, x := range res {
			if x.OptIn == store.OptInAllowed && x.Active {
				d.OptedIn++
			}
		}
	}
	d.Links = count(countRows(ctx, st.ReadDB(), `SELECT COUNT(*) FROM links`))
	d.SyncLag = "—"
	if ns, err := st.ListUnprocessedNotifications(ctx, st.DB(), 1); err == nil {
		d.SyncLag = "none waiting"
		if len(ns) == 1 {
			d.SyncLag = st.Now().Sub(ns[0].ReceivedAt).Round(time.Second).String()
		}
	}
	d.ErrorRate, d.ErrorDetail = "—", ""
	if ents, err := st.QueryAudit(ctx, st.DB(), store.AuditFilter{Since: st.Now().Add(-time.Hour), Limit: 10000}); err == nil {
		failed := 0
		for _, e := range ents {
			if e.Outcome == "failed" {
				failed++
			}
		}
		d.ErrorRate = "0 %"
		if len(ents) > 0 {
			d.ErrorRate = fmt.Sprintf("%.1f %%", 100*float64(failed)/float64(len(ents)))
		}
		d.ErrorDetail = fmt.Sprintf("%d of %d actions in the last hour failed", failed, len(ents))
	}
	d.Warnings = overviewWarnings(d)
	u.render(w, r, "overview", "Overview", d)
}

// overviewWarnings lists what needs a person now.
func overviewWarnings(d overviewData) []string {
	var out []string
	if d.Dead != "0" && d.Dead != "—" {
		out = append(out, d.Dead+" notification(s) ran out of attempts: bookingsync dead, then reprocess")
	}
	if d.Approvals != "0" && d.Approvals != "—" {
		out = append(out, "the mass-delete guard holds "+d.Approvals+" pass(es): bookingsync approve")
	}
	if d.Conflicts != "0" && d.Conflicts != "—" {
		out = append(out, d.Conflicts+" conflict(s) wait for a decision")
	}
	if d.NearestExpiry != nil && time.Until(*d.NearestExpiry) < time.Hour {
		out = append(out, "a subscription expires within the hour (mailbox "+d.NearestWho+"): check renewal")
	}
	for _, c := range d.Checks {
		if !c.OK {
			out = append(out, c.Name+" is unavailable")
		}
	}
	// Coexistence with Microsoft's built-in booking sync needs Dataverse
	// reads; `bookingsync check` reports it.
	return out
}

func count(n int64, err error) string {
	if err != nil {
		return "—"
	}
	return fmt.Sprint(n)
}

func countRows(ctx context.Context, db *sql.DB, q string) (int64, error) {
	var n int64
	err := db.QueryRowContext(ctx, q).Scan(&n)
	return n, err
}

type rateSample struct {
	at    time.Time
	total float64
}

// notificationRate is notifications received per minute, from the
// counter's change between page views (up to 10 minutes apart); "—" until
// two views are at least 10 s apart.
func (u *UI) notificationRate() (rate, total string) {
	fams, err := u.d.Metrics.Registry.Gather()
	if err != nil {
		return "—", "—"
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != "bookingsync_notifications_received_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	now := time.Now()
	u.rateMu.Lock()
	defer u.rateMu.Unlock()
	keep := u.samples[:0]
	for _, s := range u.samples {
		if now.Sub(s.at) <= 10*time.Minute {
			keep = append(keep, s)
		}
	}
	u.samples = append(keep, rateSample{now, sum})
	rate = "—"
	if first := u.samples[0]; now.Sub(first.at) >= 10*time.Second {
		rate = fmt.Sprintf("%.1f / min", (sum-first.total)/now.Sub(first.at).Minutes())
	}
	return rate, fmt.Sprintf("%.0f", sum)
}

// ---- Resources

type resourceRow struct {
	httpapi.ResourceStatus
	Links int
}

func (u *UI) resources(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rows, err := u.d.Status(ctx)
	if err != nil {
		http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	links := map[string]int{}
	if ls, err := u.d.Store.ListLinks(ctx, u.d.Store.DB()); err == nil {
		for _, l := range ls {
			links[strings.ToLower(l.ResourceID)]++
		}
	}
	out := make([]resourceRow, 0, len(rows))
	for _, s := range rows {
		out = append(out, resourceRow{ResourceStatus: s, Links: links[strings.ToLower(s.ResourceID)]})
	}
	u.render(w, r, "resources", "Resources", out)
}

// resultData is the page after an action forwarded to the admin API.
type resultData struct {
	What, Back string
	Status     int
	Body       string
	Missing    bool
}

// forward calls the admin API in process with the admin token, as the CLI
// would over HTTP, and shows its answer.
func (u *UI) forward(w http.ResponseWriter, r *http.Request, what, back, path string, q url.Values) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, path+"?"+q.Encode(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req.RemoteAddr, req.RequestURI = r.RemoteAddr, req.URL.RequestURI()
	req.Header.Set("Authorization", "Bearer "+u.token())
	rec := &recorder{h: http.Header{}, Code: http.StatusOK}
	u.admin.ServeHTTP(rec, req)
	body := rec.Body.Bytes()
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "", "  ") == nil {
		body = pretty.Bytes()
	}
	d := resultData{What: what, Back: back, Status: rec.Code, Body: string(body),
		Missing: rec.Code == http.StatusNotFound && !json.Valid(rec.Body.Bytes()) || rec.Code == http.StatusMethodNotAllowed}
	u.render(w, r, "result", what, d)
}

// recorder is the response of an in-process admin API call.
type recorder struct {
	h     http.Header
	Code  int
	Body  bytes.Buffer
	wrote bool
}

func (rec *recorder) Header() http.Header { return rec.h }
func (rec *recorder) WriteHeader(code int) {
	if !rec.wrote {
		rec.Code, rec.wrote = code, true
	}
}
func (rec *recorder) Write(b []byte) (int, error) {
	rec.wrote = true
	if rec.Body.Len() > 1<<20 {
		return len(b), nil
	}
	return rec.Body.Write(b)
}

func (u *UI) resync(w http.ResponseWriter, r *http.Request) {
	res := r.PostFormValue("resource")
	q := url.Values{"resource": {res}}
	what := "Resync " + res
	if r.PostFormValue("dry_run") != "" {
		q.Set("dry_run", "true")
		what = "Dry-run resync " + res
	}
	u.forward(w, r, what, Prefix+"resources", "/api/v1/resync", q)
}

// ---- Activity

type activityData struct {
	Resource, Booking, Side, Outcome string
	Entries                          []store.AuditEntry
	Sides, Outcomes                  []string
	Error                            string
}

func (u *UI) activity(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := activityData{Resource: strings.TrimSpace(q.Get("resource")), Booking: strings.TrimSpace(q.Get("booking")),
		Side: q.Get("side"), Outcome: q.Get("outcome"),
		Sides: []string{string(store.SideDataverse), string(store.SideOutlook)}}
	st := u.d.Store
	ents, err := st.QueryAudit(r.Context(), st.DB(), store.AuditFilter{ResourceID: d.Resource, BookingID: d.Booking, Limit: 1000})
	if err != nil {
		d.Error = err.Error()
	}
	seen := map[string]bool{}
	for _, e := range ents {
		if e.Outcome != "" && !seen[e.Outcome] {
			seen[e.Outcome] = true
			d.Outcomes = append(d.Outcomes, e.Outcome)
		}
		if (d.Side == "" || string(e.Side) == d.Side) && (d.Outcome == "" || e.Outcome == d.Outcome) && len(d.Entries) < 300 {
			d.Entries = append(d.Entries, e)
		}
	}
	sort.Strings(d.Outcomes)
	u.render(w, r, "activity", "Activity", d)
}

// ---- Conflicts

type version struct {
	Title, Start, End, Extra, Error string
}

type conflictRow struct {
	ID                              int64
	BookingID, ResourceID, Mailbox  string
	EventID, Rule, Reason, Detected string
	D365, Outlook                   version
}

type conflictsData struct {
	Rows  []conflictRow
	Error string
}

func (u *UI) conflicts(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var d conflictsData
	rows, err := u.d.Store.ReadDB().QueryContext(ctx, `SELECT id, booking_id, resource_id, mailbox, event_id, rule, reason, detected_at
		FROM conflicts WHERE resolved_at IS NULL ORDER BY detected_at, id LIMIT 200`)
	if err != nil {
		d.Error = "conflicts are not available: " + err.Error()
		u.render(w, r, "conflicts", "Conflicts", d)
		return
	}
	for rows.Next() {
		var c conflictRow
		var det any
		if err := rows.Scan(&c.ID, &c.BookingID, &c.ResourceID, &c.Mailbox, &c.EventID, &c.Rule, &c.Reason, &det); err != nil {
			d.Error = err.Error()
			break
		}
		c.Detected = anyTime(det)
		d.Rows = append(d.Rows, c)
	}
	rows.Close()
	for i := range d.Rows {
		c := &d.Rows[i]
		c.D365, c.Outlook = u.bothVersions(ctx, c.BookingID, c.Mailbox, c.EventID)
	}
	u.render(w, r, "conflicts", "Conflicts", d)
}

func anyTime(v any) string {
	switch t := v.(type) {
	case time.Time:
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	case []byte:
		return anyTime(string(t))
	case string:
		if p, err := time.Parse(time.RFC3339Nano, t); err == nil {
			return p.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return t
	}
	return "—"
}

// bothVersions reads the booking and the event as they are now.
func (u *UI) bothVersions(ctx context.Context, bookingID, mailbox, eventID string) (d365, outlook version) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if b, err := u.d.Dataverse.GetBooking(ctx, bookingID); err != nil {
		d365.Error = err.Error()
	} else {
		d365 = version{Title: b.Name, Start: hm(b.StartTime), End: hm(b.EndTime), Extra: fmt.Sprintf("version %d", b.VersionNumber)}
	}
	if mailbox == "" || eventID == "" {
		outlook.Error = "no event linked"
		return
	}
	if ev, err := u.d.Graph.GetEvent(ctx, mailbox, eventID, u.d.Config.Graph.ExtendedPropertyID); err != nil {
		outlook.Error = err.Error()
	} else {
		outlook = version{Title: ev.Subject, Extra: "changeKey " + ev.ChangeKey}
		if ev.Start != nil {
			if t, err := ev.Start.Time(); err == nil {
				outlook.Start = hm(t)
			}
		}
		if ev.End != nil {
			if t, err := ev.End.Time(); err == nil {
				outlook.End = hm(t)
			}
		}
	}
	return
}

func hm(t time.Time) string { return t.UTC().Format("Mon 2006-01-02 15:04 UTC") }

func (u *UI) resolve(w http.ResponseWriter, r *http.Request) {
	b, keep := r.PostFormValue("booking"), r.PostFormValue("keep")
	if keep != "d365" && keep != "outlook" {
		http.Error(w, "keep must be d365 or outlook", http.StatusBadRequest)
		return
	}
	u.forward(w, r, "Resolve conflict of booking "+b+" (keep "+keep+")", Prefix+"conflicts", "/api/v1/conflicts/resolve",
		url.Values{"booking": {b}, "keep": {keep}})
}

// ---- Settings

func (u *UI) settings(w http.ResponseWriter, r *http.Request) {
	var d struct {
		Settings []config.Setting
	}
	d.Settings = u.d.Config.Settings()
	u.render(w, r, "settings", "Settings", d)
}
