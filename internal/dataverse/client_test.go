package dataverse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"

	"github.com/bookingsync/bookingsync/internal/httpx"
)

const bookingID = "7a9c3b1e-2f4d-4e5a-8b6c-1d2e3f405162"

func TestNewOptions(t *testing.T) {
	doer := &http.Client{}
	tests := []struct {
		name      string
		opts      Options
		wantBase  string
		wantScope string
		wantErr   bool
	}{
		{"derived", Options{OrgURL: "https://contoso.crm.dynamics.com/", Doer: doer},
			"https://contoso.crm.dynamics.com/api/data/v9.2", "https://contoso.crm.dynamics.com/.default", false},
		{"override base", Options{OrgURL: "https://contoso.crm4.dynamics.com", APIBase: "http://127.0.0.1:8080/api/data/v9.2/", Doer: doer},
			"http://127.0.0.1:8080/api/data/v9.2", "https://contoso.crm4.dynamics.com/.default", false},
		{"no url", Options{Doer: doer}, "", "", true},
		{"no auth", Options{OrgURL: "https://contoso.crm.dynamics.com"}, "", "", true},
		{"bad scheme", Options{APIBase: "ftp://x/api", Doer: doer}, "", "", true},
		{"page too big", Options{OrgURL: "https://contoso.crm.dynamics.com", Doer: doer, PageSize: 5001}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			if c.BaseURL() != tt.wantBase || c.Scope() != tt.wantScope {
				t.Fatalf("base %q scope %q", c.BaseURL(), c.Scope())
			}
		})
	}
}

func TestStandardHeadersAndWhoAmI(t *testing.T) {
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, 200, map[string]string{"BusinessUnitId": gid, "UserId": bookingID, "OrganizationId": gid})
	})
	got, err := c.WhoAmI(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != bookingID {
		t.Fatalf("UserID = %q", got.UserID)
	}
	r := f.requests()[0]
	if r.URL != testBase+"/WhoAmI" {
		t.Errorf("URL = %s", r.URL)
	}
	for k, v := range map[string]string{"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"} {
		if r.Header.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, r.Header.Get(k), v)
		}
	}
}

func TestGetBooking(t *testing.T) {
	const row = `{"@odata.context":"…","@odata.etag":"W/\"9007199254740993\"","bookableresourcebookingid":"` + bookingID + `",
		"name":"Boiler service","starttime":"2026-12-01T09:00:00Z","endtime":"2026-12-01T11:00:00Z","duration":120,
		"bookingtype":1,"statecode":0,"statuscode":1,"_resource_value":"` + gid + `","_bookingstatus_value":"` + gid + `",
		"_header_value":null,"_msdyn_workorder_value":"` + gid + `","_msdyn_resourcerequirement_value":null,
		"versionnumber":9007199254740993,"modifiedon":"2026-11-27T08:00:00Z",
		"BookingStatus":{"name":"Scheduled","status":2,"msdyn_fieldservicestatus":690970000}}`
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(row))
	})
	var b Booking
	q := Query{Select: []string{"name", "starttime"}, Expand: []Expand{{Nav: NavBookingStatus, Select: []string{"name", "status"}}}}
	if err := c.Get(context.Background(), SetBookings, strings.ToUpper(bookingID), q, &b); err != nil {
		t.Fatal(err)
	}
	r := f.requests()[0]
	if want := testBase + "/bookableresourcebookings(" + bookingID + ")?$select=name,starttime&$expand=BookingStatus($select%3Dname,status)"; r.URL != want {
		t.Errorf("URL = %s\nwant  %s", r.URL, want)
	}
	want := Booking{
		ID: bookingID, Name: "Boiler service",
		StartTime: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), EndTime: time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC),
		Duration: 120, BookingType: BookingTypeSolid, StateCode: StateActive, StatusCode: StatusCodeActive,
		ResourceID: gid, BookingStatusID: gid, WorkOrderID: gid,
		VersionNumber: 9007199254740993, // above 2^53: must not go through float64
		ModifiedOn:    time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC),
		ETag:          `W/"9007199254740993"`,
	}
	if diff := cmp.Diff(want, b, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Raw" }, cmp.Ignore())); diff != "" {
		t.Errorf("Booking (-want +got):\n%s", diff)
	}
	var st BookingStatus
	if ok, err := b.Expanded(NavBookingStatus, &st); !ok || err != nil || st.Status != BookingStatusCommitted || *st.FieldServiceStatus != FieldServiceStatusScheduled {
		t.Errorf("Expanded = %v, %v, %+v", ok, err, st)
	}
	if ok, _ := b.Expanded("msdyn_workorder", &struct{}{}); ok {
		t.Error("Expanded(absent) = true")
	}
}

func TestVersionJSON(t *testing.T) {
	for in, want := range map[string]Version{`1`: 1, `"9007199254740993"`: 9007199254740993, `9223372036854775807`: 9223372036854775807, `null`: 0} {
		var v Version
		if err := json.Unmarshal([]byte(in), &v); err != nil || v != want {
			t.Errorf("Unmarshal(%s) = %d, %v", in, v, err)
		}
	}
	var v Version
	if err := json.Unmarshal([]byte(`1.5`), &v); err == nil {
		t.Error("Unmarshal(1.5) succeeded")
	}
}

func TestBookableResourceConfigurableColumns(t *testing.T) {
	var r BookableResource
	in := `{"bookableresourceid":"` + gid + `","name":"Ada","resourcetype":3,"_userid_value":"` + bookingID + `","timezone":85,
		"statecode":0,"bsync_outlooksync":100000000,"bsync_outlooksyncstatus":"Subscribed until 2026-12-03 14:00 UTC","other_choice":null}`
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	if !r.IsUserResource() || r.TimeZone != 85 {
		t.Errorf("resource = %+v", r)
	}
	if v, ok, err := r.Choice("bsync_outlooksync"); v != 100000000 || !ok || err != nil {
		t.Errorf("Choice = %d %v %v", v, ok, err)
	}
	if _, ok, err := r.Choice("other_choice"); ok || err != nil {
		t.Errorf("Choice(null) ok=%v err=%v", ok, err)
	}
	if _, ok, _ := r.Choice("absent"); ok {
		t.Error("Choice(absent) ok")
	}
	if _, _, err := r.Choice("name"); err == nil {
		t.Error("Choice(text column) did not fail")
	}
	if s, ok, err := r.Text("bsync_outlooksyncstatus"); !ok || err != nil || !strings.HasPrefix(s, "Subscribed") {
		t.Errorf("Text = %q %v %v", s, ok, err)
	}
}

func TestListFollowsNextLinkVerbatim(t *testing.T) {
	// A real skiptoken is an XML cookie, percent-encoded; it must be sent back byte for byte.
	next := testBase + "/bookableresourcebookings?$select=name&$skiptoken=%3Ccookie%20pagenumber=%222%22%20pagingcookie=%22%253ccookie%2520page%253d%25221%2522%253e%22%20istracking=%22False%22%20/%3E"
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if strings.Contains(r.URL.RawQuery, "skiptoken") {
			writeJSON(w, 200, map[string]any{"value": []any{map[string]string{"name": "c"}}})
			return
		}
		writeJSON(w, 200, map[string]any{"value": []any{map[string]string{"name": "a"}, map[string]string{"name": "b"}}, "@odata.nextLink": next})
	})
	type row struct{ Name string }
	rows, err := ListAll[row](context.Background(), c, SetBookings, Query{Select: []string{"name"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]row{{"a"}, {"b"}, {"c"}}, rows); diff != "" {
		t.Error(diff)
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	if reqs[1].URL != next {
		t.Errorf("second URL\n got %s\nwant %s", reqs[1].URL, next)
	}
	for i, r := range reqs {
		if got := r.Header.Get("Prefer"); got != "odata.maxpagesize=500" {
			t.Errorf("request %d Prefer = %q", i, got)
		}
	}
}

func TestListRejectsForeignNextLink(t *testing.T) {
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, 200, map[string]any{"value": []any{}, "@odata.nextLink": "https://evil.example.com/api/data/v9.2/x?$skiptoken=1"})
	})
	err := c.List(context.Background(), SetBookings, Query{}, func(json.RawMessage) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "not on contoso") {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d requests; the foreign link must not be fetched", n)
	}
}

func TestCreateBookingGolden(t *testing.T) {
	newID := "0b5f1c2d-3e4f-4a5b-8c6d-7e8f90a1b2c3"
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("OData-EntityId", testBase+"/bookableresourcebookings("+newID+")")
		w.WriteHeader(http.StatusNoContent)
	})
	b := Body{
		"name":        "Boiler service",
		"starttime":   "2026-12-01T09:00:00Z",
		"endtime":     "2026-12-01T11:00:00Z",
		"duration":    120,
		"bookingtype": BookingTypeSolid,
	}
	for _, bind := range []struct{ nav, set, id string }{
		{NavBookingResource, SetResources, gid},
		{NavBookingStatus, SetBookingStatuses, "0adbf4e6-86cc-4db0-9dbb-51b7d1ed4020"},
		{NavBookingWorkOrder, SetWorkOrders, "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f"},
	} {
		if err := b.Bind(bind.nav, bind.set, bind.id); err != nil {
			t.Fatal(err)
		}
	}
	id, err := c.Create(context.Background(), SetBookings, b)
	if err != nil || id != newID {
		t.Fatalf("Create = %q, %v", id, err)
	}
	r := f.requests()[0]
	if r.Method != http.MethodPost || r.URL != testBase+"/bookableresourcebookings" {
		t.Errorf("%s %s", r.Method, r.URL)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	golden(t, "create_booking", r.Body)
}

func TestCreateMissingEntityID(t *testing.T) {
	c, _ := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { w.WriteHeader(http.StatusNoContent) })
	if _, err := c.Create(context.Background(), SetBookings, Body{"name": "x"}); err == nil {
		t.Fatal("Create without OData-EntityId succeeded")
	}
}

func TestCreateReturn(t *testing.T) {
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, http.StatusCreated, map[string]any{"bookableresourcebookingid": bookingID, "name": "x", "versionnumber": 42})
	})
	var b Booking
	if err := c.CreateReturn(context.Background(), SetBookings, Body{"name": "x"}, Query{Select: []string{"bookableresourcebookingid", "name", "versionnumber"}}, &b); err != nil {
		t.Fatal(err)
	}
	if b.ID != bookingID || b.VersionNumber != 42 {
		t.Errorf("got %+v", b)
	}
	if p := f.requests()[0].Header.Get("Prefer"); p != "return=representation" {
		t.Errorf("Prefer = %q", p)
	}
}

func TestUpdateIfMatch(t *testing.T) {
	tests := []struct {
		name      string
		ifMatch   string
		status    int
		wantMatch string
		wantErr   error
	}{
		{"etag", `W/"468026"`, 204, `W/"468026"`, nil},
		{"default star prevents upsert-create", "", 204, "*", nil},
		{"stale etag", `W/"1"`, 412, `W/"1"`, ErrPreconditionFailed},
		{"missing row with star", "", 404, "*", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				switch tt.status {
				case 412:
					writeError(w, 412, "", "The version of the existing record doesn't match the RowVersion property provided.")
				case 404:
					writeError(w, 404, "0x80040217", "bookableresourcebooking With Id = "+bookingID+" Does Not Exist")
				default:
					w.WriteHeader(tt.status)
				}
			})
			b := Body{"starttime": "2026-12-01T10:00:00Z", "endtime": "2026-12-01T12:00:00Z"}
			err := c.Update(context.Background(), SetBookings, bookingID, b, tt.ifMatch)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			r := f.requests()[0]
			if r.Method != http.MethodPatch || r.URL != testBase+"/bookableresourcebookings("+bookingID+")" {
				t.Errorf("%s %s", r.Method, r.URL)
			}
			if got := r.Header.Get("If-Match"); got != tt.wantMatch {
				t.Errorf("If-Match = %q, want %q", got, tt.wantMatch)
			}
			if tt.name == "etag" {
				golden(t, "update_booking", r.Body)
			}
		})
	}
}

// writeCase is one response the fake gives to a write with data returned.
type writeCase struct {
	name    string
	status  int
	body    string
	wantErr error // nil: success
	anyErr  bool  // an error without a sentinel
}

func (wc writeCase) serve(w http.ResponseWriter) {
	if wc.body == "" {
		w.WriteHeader(wc.status)
		return
	}
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal")
	w.Header().Set("Preference-Applied", "return=representation")
	w.WriteHeader(wc.status)
	_, _ = w.Write([]byte(wc.body))
}

func (wc writeCase) check(t *testing.T, err error) bool {
	t.Helper()
	if (err != nil) != (wc.wantErr != nil || wc.anyErr) || (wc.wantErr != nil && !errors.Is(err, wc.wantErr)) {
		t.Fatalf("err = %v, want %v", err, wc.wantErr)
	}
	return err == nil
}

const bookingRep = `{"@odata.context":"https://contoso.crm.dynamics.com/api/data/v9.2/$metadata#bookableresourcebookings/$entity",` +
	`"@odata.etag":"W/\"468027\"","bookableresourcebookingid":"` + bookingID + `","name":"Moved","versionnumber":468027}`

func TestUpdateReturn(t *testing.T) {
	tests := []struct {
		writeCase
		ifMatch, wantMatch string
	}{
		{writeCase{"200 with the row", 200, bookingRep, nil, false}, `W/"468026"`, `W/"468026"`},
		{writeCase{"default star", 200, bookingRep, nil, false}, "", "*"},
		{writeCase{"stale etag", 412, `{"error":{"code":"","message":"The version of the existing record doesn't match the RowVersion property provided."}}`, ErrPreconditionFailed, false}, `W/"1"`, `W/"1"`},
		{writeCase{"missing row", 404, `{"error":{"code":"0x80040217","message":"bookableresourcebooking With Id = ` + bookingID + ` Does Not Exist"}}`, ErrNotFound, false}, "", "*"},
		{writeCase{"204: preference not applied", 204, "", nil, true}, "", "*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { tt.serve(w) })
			var b Booking
			err := c.UpdateReturn(context.Background(), SetBookings, bookingID, Body{"name": "Moved"}, tt.ifMatch,
				Query{Select: []string{"bookableresourcebookingid", "name", "versionnumber"}}, &b)
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPatch || r.Path != "/api/data/v9.2/bookableresourcebookings("+bookingID+")" ||
				r.Query != "$select=bookableresourcebookingid,name,versionnumber" {
				t.Errorf("%s %s", r.Method, r.URL)
			}
			if r.Header.Get("Prefer") != "return=representation" || r.Header.Get("If-Match") != tt.wantMatch || r.Header.Get("If-None-Match") != "" {
				t.Errorf("headers %v", r.Header)
			}
			if !tt.check(t, err) {
				return
			}
			if b.ID != bookingID || b.Name != "Moved" || b.VersionNumber != 468027 || b.ETag != `W/"468027"` {
				t.Errorf("decoded %+v", b)
			}
		})
	}
	t.Run("expand refused before sending", func(t *testing.T) {
		c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { w.WriteHeader(200) })
		q := Query{Select: []string{"name"}, Expand: []Expand{{Nav: NavBookingStatus, Select: []string{"name"}}}}
		if err := c.UpdateReturn(context.Background(), SetBookings, bookingID, Body{}, "", q, &Booking{}); err == nil {
			t.Fatal("no error for $expand")
		}
		if n := len(f.requests()); n != 0 {
			t.Fatalf("%d requests sent", n)
		}
	})
}

func TestCreateWithIDReturn(t *testing.T) {
	tests := []writeCase{
		{"201 with the row", 201, bookingRep, nil, false},
		{"already exists", 412, `{"error":{"code":"0x80040237","message":"A record with matching key values already exists."}}`, ErrAlreadyExists, false},
		{"bound row missing", 404, `{"error":{"code":"0x80040217","message":"bookableresource With Id = ` + bookingID + ` Does Not Exist"}}`, ErrNotFound, false},
		{"204: preference not applied", 204, "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { tt.serve(w) })
			var b Booking
			err := c.CreateWithIDReturn(context.Background(), SetBookings, strings.ToUpper(bookingID), Body{"name": "Moved"},
				Query{Select: []string{"name", "versionnumber"}}, &b)
			r := f.requests()[0]
			if r.Method != http.MethodPatch || r.Path != "/api/data/v9.2/bookableresourcebookings("+bookingID+")" || r.Query != "$select=name,versionnumber" {
				t.Errorf("%s %s", r.Method, r.URL)
			}
			if r.Header.Get("If-None-Match") != "*" || r.Header.Get("If-Match") != "" || r.Header.Get("Prefer") != "return=representation" {
				t.Errorf("headers %v", r.Header)
			}
			if tt.check(t, err) && (b.ID != bookingID || b.VersionNumber != 468027) {
				t.Errorf("decoded %+v", b)
			}
		})
	}
}

func TestPathIDsMustBeGUIDs(t *testing.T) {
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { w.WriteHeader(204) })
	ctx := context.Background()
	bad := []string{"", "1", bookingID + ")/x", "x' or 1 eq 1", "{" + bookingID + "}"}
	for _, id := range bad {
		if err := c.Get(ctx, SetBookings, id, Query{}, &struct{}{}); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Get(%q) err = %v", id, err)
		}
		if err := c.Update(ctx, SetBookings, id, Body{}, ""); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Update(%q) err = %v", id, err)
		}
		if err := c.Delete(ctx, SetBookings, id, ""); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Delete(%q) err = %v", id, err)
		}
	}
	if err := c.Get(ctx, "bookings/../x", bookingID, Query{}, &struct{}{}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("bad entity set err = %v", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d requests sent for invalid ids", n)
	}
}

func TestDelete(t *testing.T) {
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { w.WriteHeader(204) })
	if err := c.Delete(context.Background(), SetBookings, bookingID, `W/"5"`); err != nil {
		t.Fatal(err)
	}
	r := f.requests()[0]
	if r.Method != http.MethodDelete || r.Header.Get("If-Match") != `W/"5"` || r.Body != nil && len(r.Body) > 0 {
		t.Errorf("%s If-Match=%q body=%q", r.Method, r.Header.Get("If-Match"), r.Body)
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		sentinel   error
		notSent    []error
		code       string
		retryAfter time.Duration
	}{
		{"not found", 404, nil, `{"error":{"code":"0x80040217","message":"Does Not Exist"}}`, ErrNotFound, []error{ErrThrottled}, "0x80040217", 0},
		{"privilege", 403, nil, `{"error":{"code":"0x80040220","message":"Principal user is missing prvReadbookableresourcebooking privilege"}}`, ErrPrivilegeDenied, []error{ErrNotFound}, "0x80040220", 0},
		{"throttled", 429, map[string]string{"Retry-After": "17"}, `{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit of 6000 over time window of 300 seconds."}}`, ErrThrottled, nil, "0x80072322", 17 * time.Second},
		{"concurrency code on 503", 503, nil, `{"error":{"code":"0x80072326","message":"Number of concurrent requests exceeded the limit of 52."}}`, ErrThrottled, nil, "0x80072326", 0},
		{"expired by code", 400, nil, `{"error":{"code":"0x80044352","message":"Version stamp associated with the client has expired. Please perform a full sync."}}`, ErrChangeTrackingExpired, []error{ErrNotFound}, "0x80044352", 0},
		{"expired by message only", 500, nil, `{"error":{"code":"","message":"Version stamp associated with the client has expired. Please perform a full sync."}}`, ErrChangeTrackingExpired, nil, "", 0},
		{"precondition", 412, nil, `{"error":{"code":"","message":"The version of the existing record doesn't match the RowVersion property provided."}}`, ErrPreconditionFailed, []error{ErrChangeTrackingExpired, ErrAlreadyExists}, "", 0},
		{"duplicate key", 412, nil, `{"error":{"code":"0x80040237","message":"A record with matching key values already exists."}}`, ErrAlreadyExists, []error{ErrNotFound}, "0x80040237", 0},
		{"duplicate by message only", 412, nil, `{"error":{"code":"","message":"A record with matching key values already exists."}}`, ErrAlreadyExists, nil, "", 0},
		{"non-json body", 502, nil, `<html>Bad Gateway</html>`, nil, []error{ErrNotFound, ErrThrottled}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			err := c.Get(context.Background(), SetBookings, bookingID, Query{Filter: Eq("name", String("secret"))}, &struct{}{})
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("err %v is not *Error", err)
			}
			if de.StatusCode != tt.status || de.Code != tt.code || de.RetryAfter != tt.retryAfter {
				t.Errorf("Error = %+v", de)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.sentinel)
			}
			for _, s := range tt.notSent {
				if errors.Is(err, s) {
					t.Errorf("errors.Is(%v, %v) = true", err, s)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error message leaks the query: %v", err)
			}
			if tt.name == "non-json body" && !strings.Contains(de.Message, "Bad Gateway") {
				t.Errorf("Message = %q", de.Message)
			}
		})
	}
}

// TestRetryAfterThroughHTTPX runs the client over the shared httpx plumbing
// and checks that a 429 with Retry-After is waited out exactly (fake clock).
func TestRetryAfterThroughHTTPX(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		f := &fake{t: t, handler: func(w http.ResponseWriter, r *http.Request, _ []byte) {
			calls++
			if calls == 1 {
				w.Header().Set("Retry-After", "7")
				writeError(w, 429, "0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 seconds.")
				return
			}
			writeJSON(w, 200, map[string]string{"UserId": gid})
		}}
		c, err := New(Options{OrgURL: "https://contoso.crm.dynamics.com", Doer: &httpx.Client{HTTP: &http.Client{Transport: f}}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got, err := c.WhoAmI(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got.UserID != gid || calls != 2 {
			t.Fatalf("UserID %q after %d calls", got.UserID, calls)
		}
		if waited := time.Since(start); waited != 7*time.Second {
			t.Fatalf("waited %v, want 7s", waited)
		}
	})
}

func TestExpireChangeTrackingInDays(t *testing.T) {
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, 200, map[string]any{"value": []any{map[string]int{"expirechangetrackingindays": 30}}})
	})
	d, err := c.ExpireChangeTrackingInDays(context.Background())
	if err != nil || d != 30 {
		t.Fatalf("= %d, %v", d, err)
	}
	if u := f.requests()[0].URL; u != testBase+"/organizations?$select=expirechangetrackingindays" {
		t.Errorf("URL = %s", u)
	}
}

type fakeCred struct {
	scopes []string
	n      int
}

func (f *fakeCred) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.n++
	f.scopes = append(f.scopes, o.Scopes...)
	return azcore.AccessToken{Token: fmt.Sprintf("tok%d", f.n), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// TestCredentialPath checks the default plumbing: bearer token for the org's
// .default scope, and one refresh on 401.
func TestCredentialPath(t *testing.T) {
	cred := &fakeCred{}
	var auths []string
	f := &fake{t: t, handler: func(w http.ResponseWriter, r *http.Request, _ []byte) {
		auths = append(auths, r.Header.Get("Authorization"))
		if len(auths) == 1 {
			writeError(w, 401, "", "ExpiredAuthTicket")
			return
		}
		writeJSON(w, 200, map[string]string{"UserId": gid})
	}}
	c, err := New(Options{OrgURL: "https://contoso.crm.dynamics.com", Credential: cred, HTTPClient: &http.Client{Transport: f}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WhoAmI(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"Bearer tok1", "Bearer tok2"}, auths); diff != "" {
		t.Errorf("Authorization headers (-want +got):\n%s", diff)
	}
	for _, s := range cred.scopes {
		if s != "https://contoso.crm.dynamics.com/.default" {
			t.Errorf("scope = %q", s)
		}
	}
}
