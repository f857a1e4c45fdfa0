package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/graph"
)

// The live demo (sandbox only): per technician, the bookings in Dataverse
// and the events in their Outlook calendar for this week, side by side, and
// buttons that act as the dispatcher or the technician would, writing
// through the same Web API and Graph calls a person's client makes. The
// service then syncs the change to the other side like any other; the page
// polls /ui/demo/state and shows it.

type demoBooking struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Status   string    `json:"status"`
	Canceled bool      `json:"canceled"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
}

type demoEvent struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject"`
	BookingID string    `json:"booking_id,omitempty"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
}

type demoTech struct {
	Resource    string        `json:"resource"`
	Name        string        `json:"name"`
	Mailbox     string        `json:"mailbox"`
	OptedIn     bool          `json:"opted_in"`
	Status      string        `json:"status,omitempty"`
	Bookings    []demoBooking `json:"bookings"`
	Events      []demoEvent   `json:"events"`
	EventsError string        `json:"events_error,omitempty"`
}

type demoState struct {
	From        time.Time  `json:"from"`
	To          time.Time  `json:"to"`
	Technicians []demoTech `json:"technicians"`
	Error       string     `json:"error,omitempty"`
}

// tech finds a technician by bookable resource id.
func (s *demoState) tech(resource string) (int, *demoTech) {
	for i := range s.Technicians {
		if strings.EqualFold(s.Technicians[i].Resource, resource) {
			return i, &s.Technicians[i]
		}
	}
	return -1, nil
}

// has reports whether the technician, and the booking and event if given,
// are on the board.
func (s *demoState) has(res, bookingID, eventID string) bool {
	_, t := s.tech(res)
	if t == nil {
		return false
	}
	found := func(n int, id func(int) string, want string) bool {
		if want == "" {
			return true
		}
		for k := 0; k < n; k++ {
			if id(k) == want {
				return true
			}
		}
		return false
	}
	return found(len(t.Bookings), func(k int) string { return t.Bookings[k].ID }, bookingID) &&
		found(len(t.Events), func(k int) string { return t.Events[k].ID }, eventID)
}

// demoWeek is this week (Monday 00:00 UTC on), stretched by a week when
// fewer than two days of it are left, so new bookings stay in view.
func demoWeek(now time.Time) (from, to time.Time) {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	from = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	to = from.AddDate(0, 0, 7)
	if to.Sub(now) < 48*time.Hour {
		to = to.AddDate(0, 0, 7)
	}
	return from, to
}

// state reads both sides, at most every 500 ms whatever the number of
// open pages.
func (u *UI) state(ctx context.Context, fresh bool) *demoState {
	u.demoMu.Lock()
	defer u.demoMu.Unlock()
	if !fresh && u.demoCache != nil && time.Since(u.demoAt) < 500*time.Millisecond {
		return u.demoCache
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s := u.loadState(ctx)
	u.demoCache, u.demoAt = s, time.Now()
	return s
}

func (u *UI) loadState(ctx context.Context) *demoState {
	cfg := u.d.Config
	dv := u.d.Dataverse
	s := &demoState{}
	s.From, s.To = demoWeek(time.Now())
	optCol, statusCol := cfg.Dataverse.OptInColumn, cfg.Dataverse.StatusColumn
	resources, err := dataverse.ListAll[dataverse.BookableResource](ctx, dv, dataverse.SetResources,
		dataverse.Query{Select: append(append([]string{}, dataverse.BookableResourceSelect...), optCol, statusCol),
			OrderBy: []dataverse.OrderBy{{Prop: "name"}}})
	if err != nil {
		s.Error = "read bookable resources: " + err.Error()
		return s
	}
	for _, r := range resources {
		if r.UserID == "" {
			continue
		}
		mb, err := u.mailboxOf(ctx, r.UserID)
		if err != nil || mb == "" {
			continue
		}
		t := demoTech{Resource: strings.ToLower(r.ID), Name: r.Name, Mailbox: mb, Bookings: []demoBooking{}, Events: []demoEvent{}}
		if v, ok, _ := r.Choice(optCol); ok && v == cfg.Dataverse.OptInAllowed {
			t.OptedIn = true
		}
		t.Status, _, _ = r.Text(statusCol)
		s.Technicians = append(s.Technicians, t)
	}
	statuses, err := u.bookingStatuses(ctx)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	bookings, err := dataverse.ListAll[dataverse.Booking](ctx, dv, dataverse.SetBookings, dataverse.Query{
		Select:  dataverse.BookingSelect,
		Filter:  dataverse.And(dataverse.Eq("statecode", dataverse.Int(0)), dataverse.Lt("starttime", dataverse.Time(s.To)), dataverse.Gt("endtime", dataverse.Time(s.From))),
		OrderBy: []dataverse.OrderBy{{Prop: "starttime"}},
	})
	if err != nil {
		s.Error = "read bookings: " + err.Error()
		return s
	}
	for _, b := range bookings {
		_, t := s.tech(b.ResourceID)
		if t == nil {
			continue
		}
		db := demoBooking{ID: strings.ToLower(b.ID), Name: b.Name, Start: b.StartTime.UTC(), End: b.EndTime.UTC()}
		for _, st := range statuses {
			if strings.EqualFold(st.ID, b.BookingStatusID) {
				db.Status, db.Canceled = st.Name, st.Status == 3
			}
		}
		t.Bookings = append(t.Bookings, db)
	}
	u.loadEvents(ctx, s)
	return s
}

// loadEvents reads every technician's calendar view in one $batch, with
// our booking-id property expanded.
func (u *UI) loadEvents(ctx context.Context, s *demoState) {
	prop := u.d.Config.Graph.ExtendedPropertyID
	q := url.Values{
		"startDateTime": {s.From.Format("2006-01-02T15:04:05Z")},
		"endDateTime":   {s.To.Format("2006-01-02T15:04:05Z")},
		"$top":          {"200"},
		"$expand":       {"singleValueExtendedProperties($filter=id eq '" + prop + "')"},
	}
	for start := 0; start < len(s.Technicians); start += graph.MaxBatchRequests {
		end := min(start+graph.MaxBatchRequests, len(s.Technicians))
		var reqs []graph.BatchRequest
		for i := start; i < end; i++ {
			reqs = append(reqs, graph.BatchRequest{ID: fmt.Sprint(i), Method: http.MethodGet,
				URL: "/users/" + url.PathEscape(s.Technicians[i].Mailbox) + "/calendarView?" + q.Encode()})
		}
		resps, err := u.d.Graph.Batch(ctx, reqs)
		for i := start; i < end; i++ {
			t := &s.Technicians[i]
			if err != nil {
				t.EventsError = err.Error()
				continue
			}
			r := resps[i-start]
			if err := r.Err(); err != nil {
				t.EventsError = err.Error()
				continue
			}
			var page struct {
				Value []graph.Event `json:"value"`
			}
			if err := r.Decode(&page); err != nil {
				t.EventsError = err.Error()
				continue
			}
			for _, ev := range page.Value {
				de := demoEvent{ID: ev.ID, Subject: ev.Subject}
				de.BookingID, _ = ev.ExtendedProperty(prop)
				de.BookingID = strings.ToLower(de.BookingID)
				if ev.Start != nil {
					de.Start, _ = ev.Start.Time()
				}
				if ev.End != nil {
					de.End, _ = ev.End.Time()
				}
				de.Start, de.End = de.Start.UTC(), de.End.UTC()
				t.Events = append(t.Events, de)
			}
			sort.SliceStable(t.Events, func(a, b int) bool { return t.Events[a].Start.Before(t.Events[b].Start) })
		}
	}
}

func (u *UI) mailboxOf(ctx context.Context, userID string) (string, error) {
	key := strings.ToLower(userID)
	if mb, ok := u.users[key]; ok {
		return mb, nil
	}
	su, err := u.d.Dataverse.GetSystemUser(ctx, userID)
	if err != nil {
		return "", err
	}
	u.users[key] = su.AADObjectID
	return su.AADObjectID, nil
}

func (u *UI) bookingStatuses(ctx context.Context) ([]dataverse.BookingStatus, error) {
	if u.statuses != nil {
		return u.statuses, nil
	}
	st, err := u.d.Dataverse.ListBookingStatuses(ctx)
	if err != nil {
		return nil, fmt.Errorf("read booking statuses: %w", err)
	}
	u.statuses = st
	return st, nil
}

// statusID finds the booking status a dispatcher would pick: Scheduled
// (or any committed one) to create, Canceled to cancel.
func (u *UI) statusID(ctx context.Context, canceled bool) (string, error) {
	u.demoMu.Lock()
	sts, err := u.bookingStatuses(ctx)
	u.demoMu.Unlock()
	if err != nil {
		return "", err
	}
	want, name := 2, "scheduled"
	if canceled {
		want, name = 3, "canceled"
	}
	id := ""
	for _, s := range sts {
		if s.Status == want && (id == "" || strings.EqualFold(s.Name, name)) {
			id = s.ID
		}
	}
	if id == "" {
		return "", fmt.Errorf("no %s booking status", name)
	}
	return id, nil
}

// ---- handlers

type demoPageData struct {
	State       *demoState
	Board       template.HTML
	Done, Error string
}

func (u *UI) demoPage(w http.ResponseWriter, r *http.Request) {
	s := u.state(r.Context(), false)
	csrf := u.csrfToken(w, r)
	board, err := u.renderBoard(s, csrf)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	q := r.URL.Query()
	u.render(w, r, "demo", "Live demo", demoPageData{State: s, Board: template.HTML(board), Done: q.Get("done"), Error: q.Get("error")})
}

type boardData struct {
	S    *demoState
	CSRF string
}

func (u *UI) renderBoard(s *demoState, csrf string) (string, error) {
	var b bytes.Buffer
	if err := u.pages["demo"].ExecuteTemplate(&b, "board", boardData{S: s, CSRF: csrf}); err != nil {
		return "", err
	}
	return b.String(), nil
}

// demoStateJSON is what the page polls: the data and the board rendered
// by the same template as the page.
func (u *UI) demoStateJSON(w http.ResponseWriter, r *http.Request) {
	s := u.state(r.Context(), false)
	board, err := u.renderBoard(s, u.csrfToken(w, r))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(struct {
		*demoState
		Board string `json:"board"`
	}{s, board})
}

func (u *UI) demoAction(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	res := strings.ToLower(r.PostFormValue("resource"))
	msg, err := u.act(ctx, r.PostFormValue("action"), res, strings.ToLower(r.PostFormValue("booking")), r.PostFormValue("event"))
	q := url.Values{}
	if err != nil {
		q.Set("error", err.Error())
	} else {
		q.Set("done", msg)
	}
	// The next poll reads both sides afresh.
	u.demoMu.Lock()
	u.demoCache = nil
	u.demoMu.Unlock()
	http.Redirect(w, r, Prefix+"demo?"+q.Encode()+"#tech-"+url.PathEscape(res), http.StatusSeeOther)
}

var errUnknown = errors.New("not on this week's board (reload the page)")

// act performs one demo action on the item the page showed. The board the
// page last read is usually still cached; it is read afresh only when the
// item is not on it.
func (u *UI) act(ctx context.Context, action, res, bookingID, eventID string) (string, error) {
	s := u.state(ctx, false)
	if !s.has(res, bookingID, eventID) {
		s = u.state(ctx, true)
	}
	i, t := s.tech(res)
	if t == nil {
		return "", fmt.Errorf("technician %s: %w", res, errUnknown)
	}
	dv, gc, cfg := u.d.Dataverse, u.d.Graph, u.d.Config
	var b *demoBooking
	for k := range t.Bookings {
		if t.Bookings[k].ID == bookingID {
			b = &t.Bookings[k]
		}
	}
	var ev *demoEvent
	for k := range t.Events {
		if t.Events[k].ID == eventID {
			ev = &t.Events[k]
		}
	}
	needBooking := func() error {
		if b == nil {
			return fmt.Errorf("booking %s: %w", bookingID, errUnknown)
		}
		return nil
	}
	needEvent := func() error {
		if ev == nil {
			return fmt.Errorf("event: %w", errUnknown)
		}
		return nil
	}
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	nextSlot := time.Now().UTC().Truncate(time.Hour).Add(2 * time.Hour)
	switch action {
	case "opt_in", "opt_out":
		v := cfg.Dataverse.OptInAllowed
		if action == "opt_out" {
			v = cfg.Dataverse.OptInNotAllowed
		}
		if err := dv.Update(ctx, dataverse.SetResources, t.Resource, map[string]any{cfg.Dataverse.OptInColumn: v}, "*"); err != nil {
			return "", err
		}
		return fmt.Sprintf("Admin set %s's Outlook sync to %s", t.Name, map[bool]string{true: "Allowed", false: "Not allowed"}[action == "opt_in"]), nil
	case "create":
		status, err := u.statusID(ctx, false)
		if err != nil {
			return "", err
		}
		name := "Demo job " + nextSlot.Format("Mon 15:04")
		_, err = dv.Create(ctx, dataverse.SetBookings, map[string]any{
			"name": name, "starttime": rfc(nextSlot), "endtime": rfc(nextSlot.Add(time.Hour)), "duration": 60, "bookingtype": 1,
			dataverse.NavBookingResource + "@odata.bind": "/" + dataverse.SetResources + "(" + t.Resource + ")",
			dataverse.NavBookingStatus + "@odata.bind":   "/" + dataverse.SetBookingStatuses + "(" + status + ")",
		})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Dispatcher booked %q for %s", name, t.Name), nil
	case "reschedule":
		if err := needBooking(); err != nil {
			return "", err
		}
		if err := dv.Update(ctx, dataverse.SetBookings, b.ID, map[string]any{"starttime": rfc(b.Start.Add(time.Hour)), "endtime": rfc(b.End.Add(time.Hour))}, "*"); err != nil {
			return "", err
		}
		return fmt.Sprintf("Dispatcher moved %q one hour later", b.Name), nil
	case "reassign":
		if err := needBooking(); err != nil {
			return "", err
		}
		next := s.Technicians[(i+1)%len(s.Technicians)]
		if err := dv.Update(ctx, dataverse.SetBookings, b.ID, map[string]any{
			dataverse.NavBookingResource + "@odata.bind": "/" + dataverse.SetResources + "(" + next.Resource + ")"}, "*"); err != nil {
			return "", err
		}
		return fmt.Sprintf("Dispatcher reassigned %q to %s", b.Name, next.Name), nil
	case "cancel":
		if err := needBooking(); err != nil {
			return "", err
		}
		status, err := u.statusID(ctx, true)
		if err != nil {
			return "", err
		}
		if err := dv.Update(ctx, dataverse.SetBookings, b.ID, map[string]any{
			dataverse.NavBookingStatus + "@odata.bind": "/" + dataverse.SetBookingStatuses + "(" + status + ")"}, "*"); err != nil {
			return "", err
		}
		return fmt.Sprintf("Dispatcher canceled %q", b.Name), nil
	case "move":
		if err := needEvent(); err != nil {
			return "", err
		}
		st, en := graph.NewDateTimeTimeZone(ev.Start.Add(30*time.Minute)), graph.NewDateTimeTimeZone(ev.End.Add(30*time.Minute))
		if _, err := gc.UpdateEvent(ctx, t.Mailbox, ev.ID, graph.EventPatch{Start: &st, End: &en}, ""); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s moved %q 30 minutes later in Outlook", t.Name, ev.Subject), nil
	case "delete":
		if err := needEvent(); err != nil {
			return "", err
		}
		if err := gc.DeleteEvent(ctx, t.Mailbox, ev.ID); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s deleted %q in Outlook", t.Name, ev.Subject), nil
	case "personal":
		st, en := graph.NewDateTimeTimeZone(nextSlot.Add(time.Hour)), graph.NewDateTimeTimeZone(nextSlot.Add(90*time.Minute))
		if _, err := gc.CreateEvent(ctx, t.Mailbox, graph.Event{Subject: "Personal appointment", Start: &st, End: &en}, ""); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s added a personal appointment in Outlook", t.Name), nil
	}
	return "", fmt.Errorf("unknown action %q", action)
}
