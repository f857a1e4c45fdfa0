package d365

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	dvemu "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	"github.com/bookingsync/bookingsync/internal/sync"
)

// demoWorkOrder finds a seeded work order by number (WO-00101 … WO-00110).
func (e *env) demoWorkOrder(number string) string {
	e.t.Helper()
	got, err := dataverse.ListAll[dataverse.WorkOrder](e.ctx, e.c, dataverse.SetWorkOrders,
		dataverse.Query{Select: []string{"msdyn_workorderid"}, Filter: dataverse.Eq("msdyn_name", dataverse.String(number))})
	if err != nil || len(got) != 1 {
		e.t.Fatalf("work order %s: %d rows, %v", number, len(got), err)
	}
	return got[0].ID
}

func (e *env) workOrderIDs() []string {
	e.t.Helper()
	got, err := dataverse.ListAll[dataverse.WorkOrder](e.ctx, e.c, dataverse.SetWorkOrders, dataverse.Query{Select: []string{"msdyn_workorderid"}})
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, w := range got {
		ids = append(ids, w.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestWorkOrderChanges(t *testing.T) {
	e := newEnv(t, 0)
	edited := e.demoWorkOrder("WO-00101")
	deleted := e.workOrder("WO-09001") // no bookings: the emulator would leave their links dangling
	demoBooking, err := e.src.BookingsOfWorkOrders(e.ctx, []string{edited}, e.tn.Now().AddDate(0, 0, -8), e.tn.Now().AddDate(0, 0, 8))
	if err != nil || len(demoBooking) == 0 {
		t.Fatalf("demo bookings of WO-00101: %d, %v", len(demoBooking), err)
	}

	first, token, err := e.src.WorkOrderChanges(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, dataverse.SetWorkOrders+"?") {
		t.Fatalf("token %q: want a work-order link relative to the API base", token)
	}
	var firstIDs []string
	for _, c := range first {
		if c.Deleted {
			t.Errorf("first round reports a deletion: %+v", c)
		}
		firstIDs = append(firstIDs, c.WorkOrderID)
	}
	slices.Sort(firstIDs)
	if diff := cmp.Diff(e.workOrderIDs(), firstIDs); diff != "" {
		t.Errorf("first round: want every work order (-want +got):\n%s", diff)
	}

	var created string
	rounds := []struct {
		name  string
		write func()
		want  func() []WorkOrderChange
	}{
		{"instructions edited", func() {
			e.update(dataverse.SetWorkOrders, edited, dataverse.Body{"msdyn_instructions": "Use the back door."})
		}, func() []WorkOrderChange { return []WorkOrderChange{{WorkOrderID: edited}} }},
		{"deleted", func() {
			if err := e.c.Delete(e.ctx, dataverse.SetWorkOrders, deleted, ""); err != nil {
				t.Fatal(err)
			}
		}, func() []WorkOrderChange { return []WorkOrderChange{{WorkOrderID: deleted, Deleted: true}} }},
		{"created, then edited twice", func() {
			created = e.workOrder("WO-09002")
			e.update(dataverse.SetWorkOrders, created, dataverse.Body{"msdyn_city": "Shelbyville"})
			e.update(dataverse.SetWorkOrders, created, dataverse.Body{"msdyn_latitude": 39.4})
		}, func() []WorkOrderChange { return []WorkOrderChange{{WorkOrderID: created}} }},
		{"only a booking edited", func() {
			e.update(dataverse.SetBookings, demoBooking[0].ID, dataverse.Body{"name": "renamed"})
		}, func() []WorkOrderChange { return []WorkOrderChange{} }},
		{"nothing changed", func() {}, func() []WorkOrderChange { return []WorkOrderChange{} }},
	}
	for _, tt := range rounds {
		t.Run(tt.name, func(t *testing.T) {
			tt.write()
			got, next, err := e.src.WorkOrderChanges(e.ctx, token)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want(), got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(next, dataverse.SetWorkOrders+"?") {
				t.Fatalf("next token %q", next)
			}
			token = next
		})
	}

	_, bookingToken, err := e.src.Changes(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, token string }{
		{"booking token", bookingToken},
		{"other table", "systemusers?$deltatoken=1"},
		{"no query", dataverse.SetWorkOrders},
	} {
		t.Run("invalid token: "+tt.name, func(t *testing.T) {
			if _, _, err := e.src.WorkOrderChanges(e.ctx, tt.token); err == nil || errors.Is(err, ErrTokenExpired) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	t.Run("work-order token refused by Changes", func(t *testing.T) {
		if _, _, err := e.src.Changes(e.ctx, token); err == nil {
			t.Fatal("Changes accepted a work-order token")
		}
	})
	t.Run("expired token", func(t *testing.T) {
		e.settings(map[string]any{"expire_change_tracking_days": 1})
		e.tn.Advance(49 * time.Hour)
		_, _, err := e.src.WorkOrderChanges(e.ctx, token)
		if !errors.Is(err, ErrTokenExpired) || !errors.Is(err, dataverse.ErrChangeTrackingExpired) {
			t.Fatalf("err = %v, want ErrTokenExpired", err)
		}
		if _, next, err := e.src.WorkOrderChanges(e.ctx, ""); err != nil || next == "" {
			t.Fatalf("new round: %q, %v", next, err)
		}
	})
}

func TestBookingsOfWorkOrders(t *testing.T) {
	e := newEnv(t, 0)
	wo1, wo4 := e.demoWorkOrder("WO-00101"), e.demoWorkOrder("WO-00104")
	now := e.tn.Now()
	weekFrom, weekTo := now.AddDate(0, 0, -8), now.AddDate(0, 0, 8)
	// A booking of WO-00101 far outside the demo week.
	later := e.booking(technician(0), statusID("Scheduled"), "later", at("2031-03-03T08:00:00Z"), at("2031-03-03T09:00:00Z"), wo1)

	// The oracle: every booking of the week, as BookingsInWindow gives it.
	all, err := e.src.BookingsInWindow(e.ctx, nil, weekFrom, weekTo)
	if err != nil {
		t.Fatal(err)
	}
	of := func(from, to time.Time, ids ...string) []sync.Booking {
		var out []sync.Booking
		for _, b := range all {
			if b.WorkOrder != nil && slices.Contains(ids, b.WorkOrder.ID) && b.Start.Before(to) && b.End.After(from) {
				out = append(out, b)
			}
		}
		return out
	}
	// The seed books each work order once per technician, named after it.
	demo1 := of(weekFrom, weekTo, wo1)
	if len(demo1) != len(tenant.Technicians()) {
		t.Fatalf("%d demo bookings of WO-00101, want one per technician (%d)", len(demo1), len(tenant.Technicians()))
	}
	firstStart, lastEnd := demo1[0].Start, demo1[0].End
	for _, b := range demo1 {
		if b.Name != "WO-00101" || b.WorkOrder.Number != "WO-00101" || b.WorkOrder.Customer == "" {
			t.Fatalf("demo booking %s: name %q, work order %+v", b.ID, b.Name, b.WorkOrder)
		}
		if b.Start.Before(firstStart) {
			firstStart = b.Start
		}
		if b.End.After(lastEnd) {
			lastEnd = b.End
		}
	}
	fresh := e.workOrder("WO-09003") // no bookings

	many := []string{wo1}
	for i := range 149 {
		many = append(many, fmt.Sprintf("0b7d6c3e-2222-4a2b-9c3d-%012d", i))
	}
	tests := []struct {
		name     string
		ids      []string
		from, to time.Time
		want     []sync.Booking
		nonEmpty bool
	}{
		{"one work order, demo week", []string{wo1}, weekFrom, weekTo, demo1, true},
		{"two work orders, duplicated, upper case", []string{wo4, wo1, strings.ToUpper(wo1)}, weekFrom, weekTo, of(weekFrom, weekTo, wo1, wo4), true},
		{"window ends where the first begins", []string{wo1}, firstStart.Add(-time.Hour), firstStart, nil, false},
		{"window begins where the last ends", []string{wo1}, lastEnd, lastEnd.Add(time.Hour), nil, false},
		{"window on the first booking's first second", []string{wo1}, firstStart, firstStart.Add(time.Second), of(firstStart, firstStart.Add(time.Second), wo1), true},
		{"other work order's window", []string{wo4}, firstStart, lastEnd, of(firstStart, lastEnd, wo4), false},
		{"work order without bookings", []string{fresh}, weekFrom, weekTo, nil, false},
		{"missing work order", []string{missingID}, weekFrom, weekTo, nil, false},
		{"no work orders", nil, weekFrom, weekTo, nil, false},
		{"empty list", []string{}, weekFrom, weekTo, nil, false},
		{"150 ids in two chunks", many, weekFrom, weekTo, demo1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []sync.Booking
			var err error
			d := e.delta(func() { got, err = e.src.BookingsOfWorkOrders(e.ctx, tt.ids, tt.from, tt.to) })
			if err != nil {
				t.Fatal(err)
			}
			if tt.nonEmpty && len(tt.want) == 0 {
				t.Fatal("test expects bookings but the oracle has none")
			}
			if diff := cmp.Diff(tt.want, got, cmpEmpty); diff != "" {
				t.Errorf("bookings (-want +got):\n%s", diff)
			}
			for _, b := range got {
				if b.ID == later {
					t.Errorf("booking outside the window listed")
				}
			}
			wantPages := int64((len(tt.ids) + resourceChunk - 1) / resourceChunk)
			if n := d["GET /bookableresourcebookings"]; n != wantPages {
				t.Errorf("%d booking requests for %d ids, want %d", n, len(tt.ids), wantPages)
			}
		})
	}

	t.Run("outside the demo week", func(t *testing.T) {
		got, err := e.src.BookingsOfWorkOrders(e.ctx, []string{wo1}, at("2031-03-03T00:00:00Z"), at("2031-03-04T00:00:00Z"))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != later || got[0].WorkOrder == nil || got[0].WorkOrder.ID != wo1 {
			t.Fatalf("got %+v, want only %s", got, later)
		}
	})
	for _, tt := range []struct {
		name     string
		ids      []string
		from, to time.Time
	}{
		{"invalid id", []string{"WO-00101"}, weekFrom, weekTo},
		{"empty window", []string{wo1}, weekTo, weekFrom},
	} {
		t.Run("error: "+tt.name, func(t *testing.T) {
			if _, err := e.src.BookingsOfWorkOrders(e.ctx, tt.ids, tt.from, tt.to); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.Comparer(func(a, b []sync.Booking) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	return cmp.Equal(a, b)
})

// attribute is the logical attribute name of a $select column
// (_msdyn_serviceaccount_value → msdyn_serviceaccount).
func attribute(col string) string {
	if a, ok := strings.CutPrefix(col, "_"); ok {
		return strings.TrimSuffix(a, "_value")
	}
	return col
}

func TestWorkOrderColumns(t *testing.T) {
	cols := WorkOrderColumns()
	t.Run("read by the converter, once each", func(t *testing.T) {
		read := map[string]bool{}
		for _, c := range dataverse.WorkOrderSelect {
			read[attribute(c)] = true
		}
		seen := map[string]bool{}
		for _, c := range cols {
			if !read[c] || seen[c] {
				t.Errorf("column %q: read %v, listed twice %v", c, read[c], seen[c])
			}
			seen[c] = true
		}
		cols[0] = "changed"
		if WorkOrderColumns()[0] == "changed" {
			t.Error("WorkOrderColumns returns shared storage")
		}
		cols = WorkOrderColumns()
	})

	// Every column the converter selects, edited on its own: the converted
	// work order changes exactly when the column is in WorkOrderColumns.
	e := newEnv(t, 0)
	otherAccount := e.create("accounts", dataverse.Body{"name": "Fabrikam"})
	otherIncident := e.create("msdyn_incidenttypes", dataverse.Body{"msdyn_name": "Inspection"})
	edits := map[string]dataverse.Body{
		"msdyn_name":                       {"msdyn_name": "WO-08888"},
		"_msdyn_serviceaccount_value":      e.bind(dataverse.Body{}, "msdyn_serviceaccount", "accounts", otherAccount),
		"_msdyn_primaryincidenttype_value": e.bind(dataverse.Body{}, "msdyn_primaryincidenttype", "msdyn_incidenttypes", otherIncident),
		"msdyn_addressname":                {"msdyn_addressname": "Warehouse"},
		"msdyn_address1":                   {"msdyn_address1": "2 Side St"},
		"msdyn_address2":                   {"msdyn_address2": "Gate 3"},
		"msdyn_address3":                   {"msdyn_address3": "Suite 5"},
		"msdyn_city":                       {"msdyn_city": "Shelbyville"},
		"msdyn_stateorprovince":            {"msdyn_stateorprovince": "IN"},
		"msdyn_postalcode":                 {"msdyn_postalcode": "46176"},
		"msdyn_country":                    {"msdyn_country": "CA"},
		"msdyn_latitude":                   {"msdyn_latitude": 39.52},
		"msdyn_longitude":                  {"msdyn_longitude": -85.77},
		"msdyn_instructions":               {"msdyn_instructions": "Call first."},
		"msdyn_primaryincidentdescription": {"msdyn_primaryincidentdescription": "Pressure drops overnight"},
		"msdyn_workordersummary":           {"msdyn_workordersummary": "Boiler replaced"},
		"msdyn_systemstatus":               {"msdyn_systemstatus": 690970002},
	}
	wo := e.workOrder("WO-07777")
	for _, col := range dataverse.WorkOrderSelect {
		if col == "msdyn_workorderid" {
			continue
		}
		t.Run(col, func(t *testing.T) {
			body, ok := edits[col]
			if !ok {
				t.Fatalf("no edit for selected column %s: add one", col)
			}
			read := func() sync.WorkOrder {
				m, err := e.src.workOrders(e.ctx, []string{wo})
				if err != nil || m[wo] == nil {
					t.Fatalf("read work order: %v", err)
				}
				return *m[wo]
			}
			before := read()
			e.update(dataverse.SetWorkOrders, wo, body)
			after := read()
			changed := !cmp.Equal(before, after)
			if want := slices.Contains(cols, attribute(col)); changed != want {
				t.Errorf("editing %s changes the work order: %v; in WorkOrderColumns: %v", col, changed, want)
			}
		})
	}
}

// TestWorkOrderWebhook registers an Update step on msdyn_workorder filtered
// on WorkOrderColumns: an edit of another column is not delivered, an edit
// of instructions is.
func TestWorkOrderWebhook(t *testing.T) {
	got := make(chan *http.Request, 16)
	client := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		got <- r
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})}
	e := newEnvWith(t, 0, dvemu.Options{WebhookClient: client})
	reg, err := e.c.EnsureWebhook(e.ctx, dataverse.WebhookSpec{
		Name: "bookingsync work orders", URL: "https://hooks.example.test/dataverse", Auth: dataverse.AuthWebhookKey, AuthValue: "k",
		Entity: "msdyn_workorder", Steps: []dataverse.StepSpec{{Message: "Update", FilteringAttributes: WorkOrderColumns()}},
	})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if reg.StepIDs["Update"] == "" {
		t.Fatalf("no step: %+v", reg)
	}
	quiet, edited := e.demoWorkOrder("WO-00102"), e.demoWorkOrder("WO-00103")
	e.update(dataverse.SetWorkOrders, quiet, dataverse.Body{"msdyn_latitude": 50.1, "msdyn_systemstatus": 690970002})
	e.update(dataverse.SetWorkOrders, edited, dataverse.Body{"msdyn_instructions": "Dog on site."})
	// Deliveries are posted in order: the first one must be the edit.
	select {
	case r := <-got:
		var body struct {
			PrimaryEntityID   string
			PrimaryEntityName string
			MessageName       string
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if body.PrimaryEntityID != edited || body.PrimaryEntityName != "msdyn_workorder" || body.MessageName != "Update" {
			t.Errorf("delivered %+v, want the Update of %s (not %s)", body, edited, quiet)
		}
	case <-time.After(10 * time.Second): // failure guard only
		t.Fatal("no webhook delivered")
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
