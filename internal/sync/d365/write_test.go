package d365

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/sync"
)

// TestWritesReturnTheirOwnVersion: a dispatcher who writes the booking
// right after our PATCH (before we see its answer) must not have their
// version recorded as ours. Each write is one request to the booking — no
// re-read — and returns exactly the version its own PATCH produced; the
// dispatcher's newer version stays foreign, so their change is not lost as
// an "echo".
func TestWritesReturnTheirOwnVersion(t *testing.T) {
	e := newEnv(t, 0)
	res := technician(0)
	start, end := at("2032-01-05T08:00:00Z"), at("2032-01-05T09:00:00Z")
	newStart, newEnd := at("2032-01-05T13:00:00Z"), at("2032-01-05T14:30:00Z")
	wo := e.workOrder("WO-04711")
	// Warm the status cache: the representation of an update has no
	// $expand, so the status comes from the cache (one read per Source).
	if _, err := e.src.StatusID(e.ctx, "Scheduled"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		workOrder string
		write     func(id, etag string) (*sync.Booking, error)
		check     func(t *testing.T, got *sync.Booking)
		// requests after the one PATCH of the booking ("METHOD set")
		wantOther []string
	}{
		{"update times", "", func(id, etag string) (*sync.Booking, error) {
			return e.src.UpdateBookingTimes(e.ctx, id, etag, newStart, newEnd)
		}, func(t *testing.T, got *sync.Booking) {
			if !got.Start.Equal(newStart) || !got.End.Equal(newEnd) {
				t.Errorf("times %s–%s, want ours %s–%s", got.Start, got.End, newStart, newEnd)
			}
		}, nil},
		{"update times of a work-order booking", wo, func(id, etag string) (*sync.Booking, error) {
			return e.src.UpdateBookingTimes(e.ctx, id, etag, newStart, newEnd)
		}, func(t *testing.T, got *sync.Booking) {
			if got.WorkOrder == nil || got.WorkOrder.Number != "WO-04711" || got.WorkOrder.Customer != "Contoso Ltd" {
				t.Errorf("work order %+v", got.WorkOrder)
			}
		}, []string{"GET msdyn_workorders"}},
		{"set status", "", func(id, etag string) (*sync.Booking, error) {
			return e.src.SetBookingStatus(e.ctx, id, etag, statusID("Canceled"))
		}, func(t *testing.T, got *sync.Booking) {
			if got.StatusID != statusID("Canceled") || got.Status != sync.StatusCanceled || got.StatusName != "Canceled" {
				t.Errorf("status %s %d %q", got.StatusID, got.Status, got.StatusName)
			}
		}, nil},
		{"unconditional write", "", func(id, _ string) (*sync.Booking, error) {
			return e.src.UpdateBookingTimes(e.ctx, id, "", newStart, newEnd)
		}, func(*testing.T, *sync.Booking) {}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := e.booking(res, statusID("Scheduled"), "ours", start, end, tt.workOrder)
			before := e.raw(id)
			bookingPath := dataverse.SetBookings + "(" + id + ")"
			var ours *dataverse.Booking // the row right after our PATCH
			interloper := func(r *http.Request) {
				if r.Method != http.MethodPatch || !strings.Contains(r.URL.Path, bookingPath) || ours != nil {
					return
				}
				ours = e.raw(id)
				e.update(dataverse.SetBookings, id, dataverse.Body{"name": "dispatcher", "starttime": "2032-01-06T08:00:00Z", "endtime": "2032-01-06T09:00:00Z"})
			}
			var got *sync.Booking
			var err error
			reqs := e.record(interloper, func() { got, err = tt.write(id, before.ETag) })
			if err != nil {
				t.Fatal(err)
			}

			want := append([]string{"PATCH bookableresourcebookings"}, tt.wantOther...)
			if diff := cmp.Diff(want, sets(reqs)); diff != "" || !strings.Contains(reqs[0], bookingPath) {
				t.Errorf("requests %q (-want +got):\n%s", reqs, diff)
			}

			now := e.raw(id)
			if got.Version != int64(ours.VersionNumber) || got.ETag != ours.ETag {
				t.Errorf("returned version %d %s, want our write's %d %s", got.Version, got.ETag, ours.VersionNumber, ours.ETag)
			}
			if now.VersionNumber <= ours.VersionNumber || got.Version == int64(now.VersionNumber) || got.Name != "ours" {
				t.Errorf("the dispatcher's write (version %d, name %q) was returned as ours: %+v", now.VersionNumber, now.Name, got)
			}
			if got.Version <= int64(before.VersionNumber) {
				t.Errorf("version %d not after %d", got.Version, before.VersionNumber)
			}
			tt.check(t, got)
		})
	}
}

// TestCreateBookingWithID: the id is the caller's, so creating twice
// (a retry after a crash) leaves one booking; the retry writes nothing
// and returns the existing booking with ErrAlreadyExists. The steps run in
// order on the same id.
func TestCreateBookingWithID(t *testing.T) {
	e := newEnv(t, 0)
	res := technician(2)
	from, to := at("2032-02-01T00:00:00Z"), at("2032-02-02T00:00:00Z")
	start, end := at("2032-02-01T08:00:00Z"), at("2032-02-01T09:15:00Z")
	id := BookingIDForEvent("Tech2@Contoso.example", "AAMkAGI2-event-1")
	st := statusID("Committed")
	if _, err := e.src.StatusID(e.ctx, "Committed"); err != nil { // warm the status cache
		t.Fatal(err)
	}

	var first *sync.Booking
	tests := []struct {
		name       string
		id         string
		resource   string
		bookName   string
		start, end time.Time
		wantErr    error
		anyErr     bool
		want       func() *sync.Booking // nil: as read back
		requests   []string             // "METHOD set", in order
	}{
		{"create", id, res, "Dentist", start, end, nil, false, nil,
			[]string{"PATCH bookableresourcebookings"}},
		{"same id again", id, res, "Dentist", start, end, ErrAlreadyExists, false, func() *sync.Booking { return first },
			[]string{"PATCH bookableresourcebookings", "GET bookableresourcebookings"}},
		{"same id, event moved meanwhile: no write", id, res, "Dentist (moved)", start.Add(time.Hour), end.Add(time.Hour), ErrAlreadyExists, false, func() *sync.Booking { return first },
			[]string{"PATCH bookableresourcebookings", "GET bookableresourcebookings"}},
		{"upper-case id", strings.ToUpper(id), res, "Dentist", start, end, ErrAlreadyExists, false, func() *sync.Booking { return first },
			[]string{"PATCH bookableresourcebookings", "GET bookableresourcebookings"}},
		{"missing resource", BookingIDForEvent("tech2@contoso.example", "other"), missingID, "x", start, end, nil, true, nil,
			[]string{"PATCH bookableresourcebookings"}},
		{"not a GUID", "event-1", res, "x", start, end, dataverse.ErrInvalidID, false, nil, nil},
		{"zero length", BookingIDForEvent("tech2@contoso.example", "zero"), res, "x", start, start, nil, true, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *sync.Booking
			var err error
			reqs := e.record(nil, func() {
				got, err = e.src.CreateBookingWithID(e.ctx, tt.id, tt.resource, st, tt.bookName, tt.start, tt.end)
			})
			if diff := cmp.Diff(tt.requests, sets(reqs)); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if (err != nil) != (tt.wantErr != nil || tt.anyErr) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if errors.Is(err, ErrAlreadyExists) && !errors.Is(err, dataverse.ErrAlreadyExists) {
				t.Errorf("err %v does not carry the dataverse sentinel", err)
			}
			if err != nil && !errors.Is(err, ErrAlreadyExists) {
				if got != nil {
					t.Errorf("booking %+v returned with %v", got, err)
				}
				if errors.Is(err, ErrNotFound) {
					t.Errorf("a missing resource must not read as a missing booking: %v", err)
				}
				return
			}
			read, rerr := e.src.Booking(e.ctx, id)
			if rerr != nil {
				t.Fatal(rerr)
			}
			want := read
			if tt.want != nil {
				want = tt.want()
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("booking (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(read, got); diff != "" {
				t.Errorf("returned booking differs from a read (-read +got):\n%s", diff)
			}
			if first == nil {
				first = got
				if got.ID != id || got.Name != "Dentist" || got.ResourceID != res || got.StatusID != st || !got.Start.Equal(start) || !got.End.Equal(end) {
					t.Errorf("created %+v", got)
				}
			}
			all, lerr := e.src.BookingsInWindow(e.ctx, []string{res}, from, to)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if len(all) != 1 || all[0].ID != id {
				t.Errorf("%d bookings for the resource, want exactly the one with id %s: %+v", len(all), id, all)
			}
		})
	}
}

// sets reduces logged requests to "METHOD set".
func sets(reqs []string) []string {
	var out []string
	for _, r := range reqs {
		method, rest, _ := strings.Cut(r, " ")
		set := strings.TrimPrefix(rest, "/dataverse"+dataverse.APIVersionPath+"/")
		set, _, _ = strings.Cut(set, "?")
		set, _, _ = strings.Cut(set, "(")
		out = append(out, method+" "+set)
	}
	return out
}

func TestBookingIDForEvent(t *testing.T) {
	base := BookingIDForEvent("tech@contoso.example", "AAMkAGI2")
	tests := []struct {
		name             string
		mailbox, eventID string
		same             bool // same id as base
	}{
		{"same inputs", "tech@contoso.example", "AAMkAGI2", true},
		{"mailbox case and spaces", " Tech@Contoso.EXAMPLE ", "AAMkAGI2", true},
		{"event id is case-sensitive", "tech@contoso.example", "aamkagi2", false},
		{"other event", "tech@contoso.example", "AAMkAGI3", false},
		{"other mailbox", "other@contoso.example", "AAMkAGI2", false},
		{"boundary moved", "tech@contoso.exampleA", "AMkAGI2", false},
		{"empty event id", "tech@contoso.example", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := BookingIDForEvent(tt.mailbox, tt.eventID)
			if (got == base) != tt.same {
				t.Errorf("BookingIDForEvent(%q, %q) = %s; base %s; want same=%v", tt.mailbox, tt.eventID, got, base, tt.same)
			}
			if gid, err := dataverse.ParseID(got); err != nil || gid != got {
				t.Errorf("%s is not a canonical GUID: %v", got, err)
			}
			if got[14] != '8' || !strings.ContainsRune("89ab", rune(got[19])) {
				t.Errorf("%s: version %c variant %c, want 8 and 10xx", got, got[14], got[19])
			}
		})
	}
	// The derivation is part of the stored state (ids of created bookings):
	// changing it would make a retry create a second booking.
	if want := "6737eade-49cf-850f-bf3a-38a957afb26f"; base != want {
		t.Errorf("BookingIDForEvent changed: %s, want %s", base, want)
	}
}
