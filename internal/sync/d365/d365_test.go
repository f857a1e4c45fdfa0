package d365

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/sync"
)

const missingID = "0b7d6c3e-1111-4a2b-9c3d-000000000001"

func TestBooking(t *testing.T) {
	e := newEnv(t, 0)
	res := technician(0)
	start, end := at("2031-05-06T08:00:00Z"), at("2031-05-06T10:30:00Z")
	wo := e.workOrder("WO-00123")
	withWO := e.booking(res, statusID("Scheduled"), "Boiler", start, end, wo)
	plain := e.booking(res, statusID("Proposed"), "Plain", start, end, "")
	goneWO := e.booking(res, statusID("Committed"), "Gone WO", start, end, e.workOrder("WO-00999"))
	// The emulator leaves the lookup dangling; Dataverse would clear it.
	if err := e.c.Delete(e.ctx, dataverse.SetWorkOrders, e.raw(goneWO).WorkOrderID, ""); err != nil {
		t.Fatal(err)
	}

	want := func(id, name string, status int, statusName string, w *sync.WorkOrder) *sync.Booking {
		r := e.raw(id)
		return &sync.Booking{
			ID: id, Version: int64(r.VersionNumber), ETag: r.ETag, Name: name, Start: start, End: end,
			Status: status, StatusID: r.BookingStatusID, StatusName: statusName, Active: true,
			ResourceID: res, ModifiedOn: r.ModifiedOn, WorkOrder: w,
		}
	}
	woWant := &sync.WorkOrder{
		ID: wo, Number: "WO-00123", Customer: "Contoso Ltd", IncidentType: "Repair boiler",
		Summary: "Boiler leaks", Instructions: "Ring twice <b>loud</b>", AddressName: "Head office",
		Street1: "1 Main St", Street2: "Floor 2", City: "Springfield", StateOrProvince: "IL",
		PostalCode: "62701", Country: "US",
	}
	tests := []struct {
		name     string
		id       string
		want     *sync.Booking
		requests int64
		wantErr  error
	}{
		{"with work order", withWO, want(withWO, "Boiler", sync.StatusCommitted, "Scheduled", woWant), 2, nil},
		{"without work order", plain, want(plain, "Plain", sync.StatusProposed, "Proposed", nil), 1, nil},
		{"work order deleted", goneWO, want(goneWO, "Gone WO", sync.StatusCommitted, "Committed", nil), 2, nil},
		{"missing booking", missingID, nil, 1, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *sync.Booking
			var err error
			d := e.delta(func() { got, err = e.src.Booking(e.ctx, tt.id) })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("booking (-want +got):\n%s", diff)
			}
			var n int64
			for _, v := range d {
				n += v
			}
			if n != tt.requests {
				t.Errorf("%d requests (%v), want %d", n, d, tt.requests)
			}
		})
	}
}

func TestBookingsInWindow(t *testing.T) {
	e := newEnv(t, 2) // small pages: the listing must follow nextLink
	a, b := technician(0), technician(1)
	from, to := at("2031-06-02T00:00:00Z"), at("2031-06-03T00:00:00Z")
	wo := e.workOrder("WO-00777")
	st := statusID("Scheduled")
	ids := map[string]string{
		"a1":       e.booking(a, st, "a1", at("2031-06-02T08:00:00Z"), at("2031-06-02T09:00:00Z"), wo),
		"a2":       e.booking(a, st, "a2", at("2031-06-02T10:00:00Z"), at("2031-06-02T11:00:00Z"), ""),
		"a3":       e.booking(a, st, "a3", at("2031-06-02T12:00:00Z"), at("2031-06-02T13:00:00Z"), ""),
		"straddle": e.booking(a, st, "straddle", at("2031-06-01T22:00:00Z"), at("2031-06-02T01:00:00Z"), ""),
		"inactive": e.booking(a, st, "inactive", at("2031-06-02T14:00:00Z"), at("2031-06-02T15:00:00Z"), ""),
		"b1":       e.booking(b, st, "b1", at("2031-06-02T09:00:00Z"), at("2031-06-02T10:00:00Z"), ""),
		"b2":       e.booking(b, st, "b2", at("2031-06-02T23:00:00Z"), at("2031-06-03T01:00:00Z"), ""),
	}
	// Touching the window's edges is not overlapping it.
	e.booking(a, st, "ends at from", at("2031-06-01T20:00:00Z"), from, "")
	e.booking(b, st, "starts at to", to, at("2031-06-03T02:00:00Z"), "")
	e.update(dataverse.SetBookings, ids["inactive"], dataverse.Body{"statecode": 1})

	all := []string{"straddle", "a1", "b1", "a2", "a3", "inactive", "b2"}
	tests := []struct {
		name      string
		resources []string
		want      []string // names in start order
	}{
		{"all resources", nil, all},
		{"one resource", []string{a}, []string{"straddle", "a1", "a2", "a3", "inactive"}},
		{"two resources, duplicated, upper case", []string{b, a, strings.ToUpper(b)}, all},
		{"no resources", []string{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.src.BookingsInWindow(e.ctx, tt.resources, from, to)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, bk := range got {
				names = append(names, bk.Name)
				if bk.ID != ids[bk.Name] {
					t.Errorf("%s: id %s, want %s", bk.Name, bk.ID, ids[bk.Name])
				}
				if bk.Active != (bk.Name != "inactive") {
					t.Errorf("%s: Active = %v", bk.Name, bk.Active)
				}
				if (bk.WorkOrder != nil) != (bk.Name == "a1") {
					t.Errorf("%s: WorkOrder = %+v", bk.Name, bk.WorkOrder)
				}
				if bk.Name == "a1" && (bk.WorkOrder.Customer != "Contoso Ltd" || bk.WorkOrder.Number != "WO-00777") {
					t.Errorf("a1: WorkOrder = %+v", bk.WorkOrder)
				}
				if bk.StatusName != "Scheduled" || bk.Status != sync.StatusCommitted || bk.ETag == "" || bk.Version == 0 {
					t.Errorf("%s: status/version fields %+v", bk.Name, bk)
				}
			}
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("bookings (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("pages followed", func(t *testing.T) {
		var n int
		d := e.delta(func() {
			got, err := e.src.BookingsInWindow(e.ctx, nil, from, to)
			if err != nil {
				t.Fatal(err)
			}
			n = len(got)
		})
		if pages := d["GET /bookableresourcebookings"]; pages < int64((n+1)/2) {
			t.Errorf("%d booking pages for %d rows at page size 2", pages, n)
		}
	})
	t.Run("empty window", func(t *testing.T) {
		if _, err := e.src.BookingsInWindow(e.ctx, nil, to, from); err == nil {
			t.Fatal("no error for to before from")
		}
	})
}

func TestChanges(t *testing.T) {
	e := newEnv(t, 0)
	res, st := technician(0), statusID("Scheduled")
	keep := e.booking(res, st, "keep", at("2031-07-01T08:00:00Z"), at("2031-07-01T09:00:00Z"), "")
	move := e.booking(res, st, "move", at("2031-07-01T10:00:00Z"), at("2031-07-01T11:00:00Z"), "")
	del := e.booking(res, st, "delete", at("2031-07-01T12:00:00Z"), at("2031-07-01T13:00:00Z"), "")

	first, token, err := e.src.Changes(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if token == "" || strings.HasPrefix(token, "http") {
		t.Fatalf("token %q: want a link relative to the API base", token)
	}
	byID := map[string]Change{}
	for _, c := range first {
		byID[c.BookingID] = c
	}
	for _, id := range []string{keep, move, del} {
		if c := byID[id]; c.Deleted || c.Version != int64(e.raw(id).VersionNumber) {
			t.Errorf("first round: %s = %+v, want version %d", id, c, e.raw(id).VersionNumber)
		}
	}
	if len(first) < 3 {
		t.Errorf("first round has %d rows", len(first))
	}

	e.update(dataverse.SetBookings, move, dataverse.Body{"starttime": "2031-07-01T10:30:00Z", "endtime": "2031-07-01T11:30:00Z"})
	if err := e.c.Delete(e.ctx, dataverse.SetBookings, del, ""); err != nil {
		t.Fatal(err)
	}
	added := e.booking(res, st, "new", at("2031-07-02T08:00:00Z"), at("2031-07-02T09:00:00Z"), "")

	tests := []struct {
		name string
		want func() []Change
	}{
		{"update, create and delete", func() []Change {
			return []Change{
				{BookingID: move, Version: int64(e.raw(move).VersionNumber)},
				{BookingID: added, Version: int64(e.raw(added).VersionNumber)},
				{BookingID: del, Deleted: true},
			}
		}},
		{"nothing changed", func() []Change { return []Change{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next, err := e.src.Changes(e.ctx, token)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want(), got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if next == "" {
				t.Fatal("no next token")
			}
			token = next
		})
	}

	t.Run("invalid token", func(t *testing.T) {
		if _, _, err := e.src.Changes(e.ctx, "systemusers?$deltatoken=1"); err == nil || errors.Is(err, ErrTokenExpired) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		e.settings(map[string]any{"expire_change_tracking_days": 1})
		e.tn.Advance(49 * time.Hour)
		_, _, err := e.src.Changes(e.ctx, token)
		if !errors.Is(err, ErrTokenExpired) || !errors.Is(err, dataverse.ErrChangeTrackingExpired) {
			t.Fatalf("err = %v, want ErrTokenExpired", err)
		}
		// A new round works again.
		if _, next, err := e.src.Changes(e.ctx, ""); err != nil || next == "" {
			t.Fatalf("new round: %q, %v", next, err)
		}
	})
}

func TestUpdateBookingTimes(t *testing.T) {
	e := newEnv(t, 0)
	res, st := technician(0), statusID("Scheduled")
	wo := e.workOrder("WO-00555")
	id := e.booking(res, st, "move me", at("2031-08-04T08:00:00Z"), at("2031-08-04T09:00:00Z"), wo)
	orig, err := e.src.Booking(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	gone := e.booking(res, st, "gone", at("2031-08-04T08:00:00Z"), at("2031-08-04T09:00:00Z"), "")
	if err := e.c.Delete(e.ctx, dataverse.SetBookings, gone, ""); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		id         string
		etag       func() string
		start, end time.Time
		wantErr    error
		anyErr     bool
	}{
		{"current etag", id, func() string { return orig.ETag }, at("2031-08-04T10:00:00Z"), at("2031-08-04T12:30:00Z"), nil, false},
		{"stale etag", id, func() string { return orig.ETag }, at("2031-08-04T11:00:00Z"), at("2031-08-04T12:00:00Z"), ErrPreconditionFailed, true},
		{"unconditional", id, func() string { return "" }, at("2031-08-05T07:00:00+02:00"), at("2031-08-05T08:15:00+02:00"), nil, false},
		{"deleted booking", gone, func() string { return "" }, at("2031-08-04T10:00:00Z"), at("2031-08-04T11:00:00Z"), ErrNotFound, true},
		{"deleted booking with etag", gone, func() string { return `W/"1"` }, at("2031-08-04T10:00:00Z"), at("2031-08-04T11:00:00Z"), ErrNotFound, true},
		{"end before start", id, func() string { return "" }, at("2031-08-04T11:00:00Z"), at("2031-08-04T10:00:00Z"), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.raw(id)
			got, err := e.src.UpdateBookingTimes(e.ctx, tt.id, tt.etag(), tt.start, tt.end)
			if (err != nil) != tt.anyErr || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if after := e.raw(id); after.VersionNumber != before.VersionNumber {
					t.Errorf("failed update changed the booking: version %d → %d", before.VersionNumber, after.VersionNumber)
				}
				return
			}
			r := e.raw(id)
			if !got.Start.Equal(tt.start) || !got.End.Equal(tt.end) || got.Start.Location() != time.UTC {
				t.Errorf("times %s–%s, want %s–%s in UTC", got.Start, got.End, tt.start, tt.end)
			}
			if want := int(tt.end.Sub(tt.start) / time.Minute); r.Duration != want {
				t.Errorf("duration %d, want %d", r.Duration, want)
			}
			if got.Version != int64(r.VersionNumber) || got.ETag != r.ETag || got.Version <= orig.Version {
				t.Errorf("version %d etag %s, row has %d %s", got.Version, got.ETag, r.VersionNumber, r.ETag)
			}
			if got.WorkOrder == nil || got.WorkOrder.Number != "WO-00555" || got.StatusName != "Scheduled" {
				t.Errorf("read back incompletely: %+v", got)
			}
		})
	}
}

func TestSetBookingStatus(t *testing.T) {
	e := newEnv(t, 0)
	id := e.booking(technician(0), statusID("Scheduled"), "cancel me", at("2031-09-01T08:00:00Z"), at("2031-09-01T09:00:00Z"), "")
	orig, err := e.src.Booking(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		etag     string
		status   string
		want     int
		wantName string
		wantErr  error
	}{
		{"canceled", orig.ETag, statusID("Canceled"), sync.StatusCanceled, "Canceled", nil},
		{"stale etag", orig.ETag, statusID("Proposed"), 0, "", ErrPreconditionFailed},
		{"unknown status", "", missingID, 0, "", ErrUnknownStatus},
		{"proposed unconditionally", "", statusID("Proposed"), sync.StatusProposed, "Proposed", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.src.SetBookingStatus(e.ctx, id, tt.etag, tt.status)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.Status != tt.want || got.StatusName != tt.wantName || got.StatusID != tt.status {
				t.Errorf("status %d %q %s, want %d %q %s", got.Status, got.StatusName, got.StatusID, tt.want, tt.wantName, tt.status)
			}
			if got.Version != int64(e.raw(id).VersionNumber) {
				t.Errorf("version %d, row has %d", got.Version, e.raw(id).VersionNumber)
			}
		})
	}
}

func TestCreateBooking(t *testing.T) {
	e := newEnv(t, 0)
	res := technician(1)
	long := strings.Repeat("é", 120)
	tests := []struct {
		name       string
		resource   string
		status     string
		bookName   string
		start, end time.Time
		wantName   string
		wantErr    bool
	}{
		{"plain", res, statusID("Committed"), "Dentist", at("2031-10-01T08:00:00Z"), at("2031-10-01T09:45:00Z"), "Dentist", false},
		{"long name cut to 100 characters", res, statusID("Proposed"), long, at("2031-10-02T08:00:00Z"), at("2031-10-02T09:00:00Z"), strings.Repeat("é", 100), false},
		{"missing resource", missingID, statusID("Proposed"), "x", at("2031-10-02T08:00:00Z"), at("2031-10-02T09:00:00Z"), "", true},
		{"zero length", res, statusID("Proposed"), "x", at("2031-10-02T08:00:00Z"), at("2031-10-02T08:00:00Z"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *sync.Booking
			var err error
			d := e.delta(func() { got, err = e.src.CreateBooking(e.ctx, tt.resource, tt.status, tt.bookName, tt.start, tt.end) })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if errors.Is(err, ErrNotFound) {
					t.Errorf("a missing resource must not read as a missing booking: %v", err)
				}
				return
			}
			if d["POST /bookableresourcebookings"] != 1 || d["GET /bookableresourcebookings({id})"] != 0 {
				t.Errorf("requests %v: want one POST and no read-back", d)
			}
			if got.Name != tt.wantName || got.ResourceID != tt.resource || !got.Active || got.WorkOrder != nil {
				t.Errorf("created %+v", got)
			}
			// What the create returned is what a read gives.
			read, err := e.src.Booking(e.ctx, got.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(read, got); diff != "" {
				t.Errorf("create result differs from a read (-read +create):\n%s", diff)
			}
			if r := e.raw(got.ID); r.Duration != int(tt.end.Sub(tt.start)/time.Minute) {
				t.Errorf("duration %d", r.Duration)
			}
		})
	}
}

func TestStatusID(t *testing.T) {
	e := newEnv(t, 0)
	tests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{"Scheduled", statusID("Scheduled"), nil},
		{"  in progress ", statusID("In Progress"), nil},
		{"canceled", statusID("Canceled"), nil},
		{"Cancelled", statusID("Canceled"), nil},
		{"committed", statusID("Committed"), nil},
		{"proposed", statusID("Proposed"), nil},
		{statusID("Traveling"), statusID("Traveling"), nil},
		{strings.ToUpper(statusID("On Break")), statusID("On Break"), nil},
		{"No such status", "", ErrUnknownStatus},
		{missingID, "", ErrUnknownStatus},
		{"", "", ErrUnknownStatus},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := e.src.StatusID(e.ctx, tt.in)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("StatusID(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}

	t.Run("cached", func(t *testing.T) {
		d := e.delta(func() {
			if _, err := e.src.StatusID(e.ctx, "Scheduled"); err != nil {
				t.Fatal(err)
			}
		})
		if len(d) != 0 {
			t.Errorf("requests %v for a cached status", d)
		}
	})
	t.Run("created later, by value without a matching name", func(t *testing.T) {
		// A fresh Source on an org whose only Proposed status is renamed
		// and which gains a new status: found after a reload.
		e.update(dataverse.SetBookingStatuses, statusID("Proposed"), dataverse.Body{"name": "Tentative"})
		src := New(e.c, Options{})
		if got, err := src.StatusID(e.ctx, "proposed"); err != nil || got != statusID("Proposed") {
			t.Fatalf("proposed = %q, %v", got, err)
		}
		id := e.create(dataverse.SetBookingStatuses, dataverse.Body{"name": "Waiting for parts", "status": 1})
		if got, err := src.StatusID(e.ctx, "waiting for parts"); err != nil || got != id {
			t.Fatalf("new status = %q, %v; want %s", got, err, id)
		}
	})
	t.Run("ambiguous name", func(t *testing.T) {
		e.create(dataverse.SetBookingStatuses, dataverse.Body{"name": "Scheduled", "status": 2})
		src := New(e.c, Options{})
		if got, err := src.StatusID(e.ctx, "Scheduled"); err == nil {
			t.Fatalf("ambiguous name resolved to %s", got)
		}
	})
	t.Run("inactive", func(t *testing.T) {
		e.update(dataverse.SetBookingStatuses, statusID("On Break"), dataverse.Body{"statecode": 1})
		src := New(e.c, Options{})
		if got, err := src.StatusID(e.ctx, statusID("On Break")); err == nil {
			t.Fatalf("inactive status resolved to %s", got)
		}
		if _, err := src.StatusID(e.ctx, "On Break"); !errors.Is(err, ErrUnknownStatus) {
			t.Fatalf("inactive by name: %v", err)
		}
	})
}

func TestRecordURL(t *testing.T) {
	e := newEnv(t, 0)
	tests := []struct {
		name string
		src  *Source
		want string
	}{
		{"derived", e.src, testBase + "/dataverse/main.aspx?etn=bookableresourcebooking&id=" + missingID + "&pagetype=entityrecord"},
		{"configured", New(e.c, Options{OrgURL: "https://contoso.crm4.dynamics.com/"}),
			"https://contoso.crm4.dynamics.com/main.aspx?etn=bookableresourcebooking&id=" + missingID + "&pagetype=entityrecord"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.src.RecordURL(missingID); got != tt.want {
				t.Errorf("got %s", got)
			}
		})
	}
}
