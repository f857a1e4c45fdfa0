package dataverse

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

func TestAuthorization(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	graphTok, _ := h.tn.Issue("https://graph.microsoft.com")
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"org audience", h.token, http.StatusOK},
		{"no token", "", http.StatusUnauthorized},
		{"other audience", graphTok, http.StatusUnauthorized},
		{"garbage", "abc.def.ghi", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.token = tc.token
			rec := h.do("GET", "/WhoAmI", nil)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
			if tc.want == http.StatusUnauthorized {
				if rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				errorOf(t, rec) // Dataverse error shape
			}
		})
	}
}

func TestWhoAmIAndInfo(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	m := h.json(h.do("GET", "/WhoAmI", nil), 200)
	if m["UserId"] != h.e.AppUserID() || m["OrganizationId"] == "" || m["BusinessUnitId"] == "" {
		t.Fatalf("WhoAmI = %v", m)
	}
	info := h.e.Info()
	if info["dataverse_org_url"] != testBase+"/dataverse" ||
		info["dataverse_base_url"] != testBase+"/dataverse/api/data/v9.2" ||
		info["dataverse_scope"] != testBase+"/dataverse/.default" {
		t.Fatalf("info = %v", info)
	}
	// The app user is a systemuser whose object id is the service principal.
	u := h.json(h.do("GET", "/systemusers("+h.e.AppUserID()+")?$select=azureactivedirectoryobjectid", nil), 200)
	if u["azureactivedirectoryobjectid"] != tenant.ServicePrincipalID {
		t.Fatalf("app user = %v", u)
	}
}

func TestQueryOptions(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	tech := tenant.Technicians()[0]
	res := ResourceID(tech.ID)
	tests := []struct {
		name  string
		path  string
		check func(t *testing.T, rows []map[string]any)
	}{
		{"lookup filter and select", "/bookableresourcebookings?$select=name,starttime,_resource_value&$filter=_resource_value eq " + res,
			func(t *testing.T, rows []map[string]any) {
				if len(rows) != 10 {
					t.Fatalf("%d rows, want 10 (5 days × 2)", len(rows))
				}
				for _, r := range rows {
					if r["_resource_value"] != res {
						t.Fatalf("row %v", r)
					}
					if _, ok := r["endtime"]; ok {
						t.Fatalf("unselected column returned: %v", r)
					}
					if r["@odata.etag"] == nil || r["bookableresourcebookingid"] == nil {
						t.Fatalf("missing etag or key: %v", r)
					}
				}
			}},
		{"orderby desc and top", "/bookableresourcebookings?$select=starttime&$orderby=starttime desc&$top=3",
			func(t *testing.T, rows []map[string]any) {
				if len(rows) != 3 || rows[0]["starttime"].(string) < rows[1]["starttime"].(string) {
					t.Fatalf("rows %v", rows)
				}
			}},
		{"string functions and not", "/accounts?$select=name&$filter=startswith(name,'north') or (contains(name,'coffee') and not endswith(name,'x'))",
			func(t *testing.T, rows []map[string]any) {
				if len(rows) != 2 {
					t.Fatalf("rows %v", rows)
				}
			}},
		{"null and choice", "/bookingstatuses?$select=name&$filter=msdyn_fieldservicestatus eq null and status ne 3",
			func(t *testing.T, rows []map[string]any) {
				if len(rows) != 2 {
					t.Fatalf("rows %v (want Proposed, Committed)", rows)
				}
			}},
		{"navigation path", "/bookableresourcebookings?$select=name&$filter=BookingStatus/status eq 3",
			func(t *testing.T, rows []map[string]any) {
				if len(rows) != 1 {
					t.Fatalf("rows %v (want the one canceled booking)", rows)
				}
			}},
		{"date comparison", "/bookableresourcebookings?$select=name&$filter=starttime ge 2000-01-01T00:00:00Z and endtime lt 2999-01-01",
			func(t *testing.T, rows []map[string]any) {
				if len(rows) != 50 {
					t.Fatalf("%d rows, want 50", len(rows))
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, values(h.json(h.do("GET", tc.path, nil), 200)))
		})
	}
}

func TestQueryErrors(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	tests := []struct{ path, msg string }{
		{"/bookableresourcebookings?$select=nope", "Could not find a property named 'nope'"},
		{"/bookableresourcebookings?$select=resource", "Could not find a property named 'resource'"},
		{"/bookableresourcebookings?$filter=_resource_value eq 'abc'", "incompatible types"},
		{"/bookableresourcebookings?$filter=name eq 'unterminated", "unterminated string"},
		{"/bookableresourcebookings?$skip=5", "$skip is not supported"},
		{"/bookableresourcebookings?$expand=bookingstatus", "Could not find a property named 'bookingstatus'"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			rec := h.do("GET", tc.path, nil)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
			if _, msg := errorOf(t, rec); !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q, want %q", msg, tc.msg)
			}
		})
	}
}

func TestExpandAndAnnotations(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	rec := h.do("GET", "/bookableresourcebookings?$select=name,bookingtype,_bookingstatus_value&$top=1&$expand=BookingStatus($select=name,status),msdyn_workorder($select=msdyn_name,msdyn_city,_msdyn_serviceaccount_value)",
		nil, `Prefer: odata.include-annotations="*"`)
	row := values(h.json(rec, 200))[0]
	bs, ok := row["BookingStatus"].(map[string]any)
	if !ok || bs["name"] == nil || bs["status"] == nil {
		t.Fatalf("BookingStatus not expanded: %v", row)
	}
	for k, want := range map[string]string{
		"_bookingstatus_value@Microsoft.Dynamics.CRM.lookuplogicalname":            "bookingstatus",
		"_bookingstatus_value@Microsoft.Dynamics.CRM.associatednavigationproperty": "BookingStatus",
		"bookingtype@OData.Community.Display.V1.FormattedValue":                    "Solid",
	} {
		if row[k] != want {
			t.Errorf("%s = %v, want %q", k, row[k], want)
		}
	}
	wo := row["msdyn_workorder"].(map[string]any)
	if wo["_msdyn_serviceaccount_value@OData.Community.Display.V1.FormattedValue"] == nil {
		t.Errorf("service account name not reachable: %v", wo)
	}
	if got := rec.Header().Get("Preference-Applied"); !strings.Contains(got, "odata.include-annotations") {
		t.Errorf("Preference-Applied = %q", got)
	}
	// Without the Prefer header there are no annotations.
	row = values(h.json(h.do("GET", "/bookableresourcebookings?$select=bookingtype&$top=1", nil), 200))[0]
	for k := range row {
		if strings.Contains(k, "@OData.Community") {
			t.Fatalf("unrequested annotation %s", k)
		}
	}
}

func TestPaging(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	seen := map[string]bool{}
	next := "/bookableresourcebookings?$select=name&$filter=bookingtype eq 1"
	pages := 0
	for next != "" {
		rec := h.do("GET", next, nil, "Prefer: odata.maxpagesize=7")
		m := h.json(rec, 200)
		if rec.Header().Get("Preference-Applied") != "odata.maxpagesize=7" {
			t.Fatalf("Preference-Applied = %q", rec.Header().Get("Preference-Applied"))
		}
		for _, r := range values(m) {
			id := r["bookableresourcebookingid"].(string)
			if seen[id] {
				t.Fatalf("row %s returned twice", id)
			}
			seen[id] = true
		}
		next, _ = m["@odata.nextLink"].(string)
		if next != "" && !strings.Contains(next, "$skiptoken=%3ccookie") {
			t.Fatalf("nextLink %q", next)
		}
		pages++
	}
	if len(seen) != 50 || pages != 8 {
		t.Fatalf("%d rows in %d pages, want 50 in 8", len(seen), pages)
	}
}

func TestCreateBindAndRepresentation(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	id := h.createBooking("Created")
	row := h.json(h.do("GET", "/bookableresourcebookings("+id+")?$select=name,duration,_resource_value,statecode,statuscode,bookingtype", nil), 200)
	if row["duration"] != float64(90) || row["statecode"] != float64(0) || row["statuscode"] != float64(1) || row["bookingtype"] != float64(1) {
		t.Fatalf("defaults/derived values wrong: %v", row)
	}
	// Navigation property names are case-sensitive.
	rec := h.do("POST", "/bookableresourcebookings", map[string]any{
		"name": "x", "starttime": "2026-03-02T09:00:00Z", "endtime": "2026-03-02T10:00:00Z",
		"resource@odata.bind": "/bookableresources(" + ResourceID(tenant.Technicians()[0].ID) + ")",
	})
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("lower-case nav: %d", rec.Code)
	}
	if _, msg := errorOf(t, rec); !strings.Contains(msg, "An undeclared property 'resource' which only has property annotations") {
		t.Fatalf("message %q", msg)
	}
	// return=representation: 201, body, no OData-EntityId.
	rec = h.do("POST", "/accounts?$select=name", map[string]any{"name": "Rep"}, "Prefer: return=representation")
	m := h.json(rec, http.StatusCreated)
	if m["name"] != "Rep" || rec.Header().Get("OData-EntityId") != "" || m["@odata.etag"] == nil {
		t.Fatalf("representation %v, headers %v", m, rec.Header())
	}
	// Validation errors.
	for body, want := range map[string]string{
		`{"name":"` + strings.Repeat("n", 101) + `","starttime":"2026-03-02T09:00:00Z"}`: "exceeded the maximum allowed length of '100'",
		`{"bookingtype":7}`: "outside the valid range",
		`{"nosuch":1}`:      "The property 'nosuch' does not exist",
	} {
		rec := h.do("PATCH", "/bookableresourcebookings("+id+")", body)
		if _, msg := errorOf(t, rec); rec.Code != 400 || !strings.Contains(msg, want) {
			t.Errorf("%s: %d %q, want %q", body, rec.Code, msg, want)
		}
	}
}

func TestConcurrencyAndUpsert(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	id := h.createBooking("Etag")
	get := func() map[string]any {
		return h.json(h.do("GET", "/bookableresourcebookings("+id+")?$select=name,versionnumber,modifiedon", nil), 200)
	}
	before := get()
	h.tn.Advance(time.Minute)
	rec := h.do("PATCH", "/bookableresourcebookings("+id+")", `{"name":"Etag"}`, "If-Match: "+before["@odata.etag"].(string))
	if rec.Code != http.StatusNoContent {
		t.Fatalf("matching If-Match: %d %s", rec.Code, rec.Body.String())
	}
	after := get()
	if after["versionnumber"].(float64) <= before["versionnumber"].(float64) || after["modifiedon"] == before["modifiedon"] || after["@odata.etag"] == before["@odata.etag"] {
		t.Fatalf("unchanged write did not advance version/modifiedon: %v → %v", before, after)
	}
	tests := []struct {
		name    string
		path    string
		headers []string
		want    int
		msg     string
	}{
		{"stale etag", "/bookableresourcebookings(" + id + ")", []string{"If-Match: " + before["@odata.etag"].(string)}, 412, "doesn't match the RowVersion"},
		{"if-match star on missing", "/accounts(00000000-0000-0000-0000-0000000000aa)", []string{"If-Match: *"}, 404, "Does Not Exist"},
		{"if-none-match star on existing", "/bookableresourcebookings(" + id + ")", []string{"If-None-Match: *"}, 412, "matching key values already exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := h.do("PATCH", tc.path, `{"name":"n"}`, tc.headers...)
			if _, msg := errorOf(t, rec); rec.Code != tc.want || !strings.Contains(msg, tc.msg) {
				t.Fatalf("%d %q, want %d %q", rec.Code, msg, tc.want, tc.msg)
			}
		})
	}
	// Upsert creates with the client's id; If-None-Match: * allows that.
	rec = h.do("PATCH", "/accounts(00000000-0000-0000-0000-0000000000ab)", `{"name":"Upserted"}`, "If-None-Match: *")
	if rec.Code != http.StatusNoContent || !strings.HasSuffix(rec.Header().Get("OData-EntityId"), "/accounts(00000000-0000-0000-0000-0000000000ab)") {
		t.Fatalf("upsert create: %d %v", rec.Code, rec.Header())
	}
	// Delete with a stale etag fails, then succeeds.
	if rec := h.do("DELETE", "/bookableresourcebookings("+id+")", nil, "If-Match: "+before["@odata.etag"].(string)); rec.Code != 412 {
		t.Fatalf("stale delete: %d", rec.Code)
	}
	if rec := h.do("DELETE", "/bookableresourcebookings("+id+")", nil); rec.Code != 204 {
		t.Fatalf("delete: %d", rec.Code)
	}
	if rec := h.do("GET", "/bookableresourcebookings("+id+")", nil); rec.Code != 404 {
		t.Fatalf("get deleted: %d", rec.Code)
	}
}

// TestUpdateWithDataReturned: PATCH with Prefer: return=representation
// answers 200 with the row as written (its $select, its new etag), ignores
// $expand, and keeps every If-Match / If-None-Match rule; without the
// preference it is 204 as before.
func TestUpdateWithDataReturned(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	id := h.createBooking("Returned")
	path := "/bookableresourcebookings(" + id + ")"
	const rep = "Prefer: return=representation"
	current := func() map[string]any {
		return h.json(h.do("GET", path+"?$select=name,versionnumber", nil), 200)
	}
	tests := []struct {
		name     string
		path     string
		body     string
		headers  []string
		want     int
		wantCode string // error code, for errors
		check    func(t *testing.T, rec *httptest.ResponseRecorder, before map[string]any)
	}{
		{"no preference: 204", path, `{"name":"a"}`, []string{"If-Match: *"}, 204, "", func(t *testing.T, rec *httptest.ResponseRecorder, _ map[string]any) {
			if rec.Body.Len() != 0 || rec.Header().Get("Preference-Applied") != "" || !strings.HasSuffix(rec.Header().Get("OData-EntityId"), "("+id+")") {
				t.Errorf("body %q headers %v", rec.Body.String(), rec.Header())
			}
		}},
		{"select", path + "?$select=name,starttime,versionnumber", `{"name":"b","starttime":"2026-03-02T08:00:00Z"}`, []string{rep, "If-Match: *"}, 200, "", func(t *testing.T, rec *httptest.ResponseRecorder, before map[string]any) {
			m := h.json(rec, 200)
			after := current()
			if m["name"] != "b" || m["starttime"] != "2026-03-02T08:00:00Z" || m["bookableresourcebookingid"] != id {
				t.Errorf("representation %v", m)
			}
			if m["@odata.etag"] != after["@odata.etag"] || m["versionnumber"] != after["versionnumber"] || m["versionnumber"].(float64) <= before["versionnumber"].(float64) {
				t.Errorf("version %v %v, row now %v, before %v", m["versionnumber"], m["@odata.etag"], after, before)
			}
			if _, ok := m["endtime"]; ok {
				t.Errorf("unselected column returned: %v", m)
			}
			if rec.Header().Get("Preference-Applied") != "return=representation" || rec.Header().Get("OData-EntityId") != "" {
				t.Errorf("headers %v", rec.Header())
			}
			if ctx := m["@odata.context"].(string); !strings.HasSuffix(ctx, "/$metadata#bookableresourcebookings/$entity") {
				t.Errorf("@odata.context %q", ctx)
			}
		}},
		{"matching etag, expand ignored", path + "?$select=name&$expand=BookingStatus($select=name)", `{"name":"c"}`, nil, 200, "", func(t *testing.T, rec *httptest.ResponseRecorder, _ map[string]any) {
			m := h.json(rec, 200)
			if _, ok := m["BookingStatus"]; ok || m["name"] != "c" {
				t.Errorf("representation %v: $expand must be ignored", m)
			}
		}},
		{"stale etag", path + "?$select=name", `{"name":"d"}`, []string{rep, `If-Match: W/"1"`}, 412, "", nil},
		{"missing row with If-Match *", "/bookableresourcebookings(00000000-0000-0000-0000-0000000000cc)?$select=name", `{"name":"e"}`, []string{rep, "If-Match: *"}, 404, codeObjectNotExist, nil},
		{"If-None-Match * on existing row", path + "?$select=name", `{"name":"f"}`, []string{rep, "If-None-Match: *"}, 412, codeDuplicateRecord, nil},
		{"If-None-Match * on missing row creates: 201", "/accounts(00000000-0000-0000-0000-0000000000cd)?$select=name", `{"name":"g"}`, []string{rep, "If-None-Match: *"}, 201, "", func(t *testing.T, rec *httptest.ResponseRecorder, _ map[string]any) {
			if m := h.json(rec, 201); m["name"] != "g" || m["accountid"] != "00000000-0000-0000-0000-0000000000cd" || m["@odata.etag"] == nil {
				t.Errorf("representation %v", m)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := current()
			hdrs := tc.headers
			if tc.name == "matching etag, expand ignored" {
				hdrs = []string{rep, "If-Match: " + before["@odata.etag"].(string)}
			}
			rec := h.do("PATCH", tc.path, tc.body, hdrs...)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body.String())
			}
			if tc.want >= 400 {
				if code, _ := errorOf(t, rec); code != tc.wantCode {
					t.Errorf("code %q, want %q", code, tc.wantCode)
				}
				if after := current(); after["versionnumber"] != before["versionnumber"] {
					t.Errorf("failed write changed the row: %v → %v", before, after)
				}
				return
			}
			tc.check(t, rec, before)
		})
	}
}

func TestActingUsers(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	id := h.createBooking("Who")
	dispatcher := tenant.DemoUsers()[5]
	tests := []struct {
		header         string
		wantModifiedBy string
	}{
		{"", h.e.AppUserID()},
		{"X-Emulator-User: " + dispatcher.ID, SystemUserID(dispatcher.ID)},
		{"CallerObjectId: " + dispatcher.ID, SystemUserID(dispatcher.ID)},
	}
	for _, tc := range tests {
		var hdr []string
		if tc.header != "" {
			hdr = append(hdr, tc.header)
		}
		if rec := h.do("PATCH", "/bookableresourcebookings("+id+")", `{"name":"x"}`, hdr...); rec.Code != 204 {
			t.Fatalf("%s: %d %s", tc.header, rec.Code, rec.Body.String())
		}
		row := h.json(h.do("GET", "/bookableresourcebookings("+id+")?$select=_modifiedby_value,_modifiedonbehalfby_value", nil), 200)
		if row["_modifiedby_value"] != tc.wantModifiedBy {
			t.Errorf("%q: modifiedby %v, want %v", tc.header, row["_modifiedby_value"], tc.wantModifiedBy)
		}
		if strings.HasPrefix(tc.header, "CallerObjectId") && row["_modifiedonbehalfby_value"] != h.e.AppUserID() {
			t.Errorf("impersonation without modifiedonbehalfby: %v", row)
		}
	}
}

func TestPrivilegeDenied(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	id := h.createBooking("Priv")
	if err := h.e.SetSettings(json.RawMessage(`{"deny":{"bookableresourcebookings":["write"],"bookingstatuses":["appendto"]}}`)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		body         any
		want         int
		priv         string
	}{
		{"PATCH", "/bookableresourcebookings(" + id + ")", `{"name":"n"}`, 403, "prvWritebookableresourcebooking"},
		{"GET", "/bookableresourcebookings(" + id + ")", nil, 200, ""},
		{"PATCH", "/bookableresources(" + ResourceID(tenant.Technicians()[0].ID) + ")", `{"name":"n"}`, 204, ""},
	}
	for _, tc := range tests {
		rec := h.do(tc.method, tc.path, tc.body)
		if rec.Code != tc.want {
			t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.want)
		}
		if tc.priv != "" {
			code, msg := errorOf(t, rec)
			if code != codePrivilegeDenied || !strings.Contains(msg, tc.priv) {
				t.Fatalf("error %s %q", code, msg)
			}
		}
	}
	// Denials apply to the application user, not to a dispatcher in the UI.
	if rec := h.do("PATCH", "/bookableresourcebookings("+id+")", `{"name":"n"}`, "X-Emulator-User: "+tenant.DemoUsers()[5].ID); rec.Code != 204 {
		t.Fatalf("dispatcher write: %d", rec.Code)
	}
	if err := h.e.SetSettings(json.RawMessage(`{"deny":{}}`)); err != nil {
		t.Fatal(err)
	}
	if rec := h.do("PATCH", "/bookableresourcebookings("+id+")", `{"name":"n"}`); rec.Code != 204 {
		t.Fatalf("after clearing denials: %d", rec.Code)
	}
}

func TestServiceProtection(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	if err := h.e.SetFaults(json.RawMessage(`{"throttle_rate":1}`)); err != nil {
		t.Fatal(err)
	}
	rec := h.do("GET", "/WhoAmI", nil)
	code, _ := errorOf(t, rec)
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "5" || (code != codeThrottleRequests && code != codeThrottleExecTime) {
		t.Fatalf("throttle: %d %q %s", rec.Code, rec.Header().Get("Retry-After"), code)
	}
	if err := h.e.SetFaults(json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if rec := h.do("GET", "/WhoAmI", nil); rec.Code != 200 {
		t.Fatalf("after clearing faults: %d", rec.Code)
	}
	// Concurrency: with a limit of 2 the third in-flight request of the same
	// user fails at once with the documented code.
	if err := h.e.SetSettings(json.RawMessage(`{"max_concurrent_requests":2}`)); err != nil {
		t.Fatal(err)
	}
	c := &caller{key: "app:x"}
	r1, err1 := h.e.admit(c)
	r2, err2 := h.e.admit(c)
	_, err3 := h.e.admit(c)
	if err1 != nil || err2 != nil || err3 == nil || err3.Code != codeThrottleConcurrcy || !strings.Contains(err3.Message, "limit of 2") {
		t.Fatalf("admit: %v %v %v", err1, err2, err3)
	}
	r1()
	if _, err := h.e.admit(c); err != nil {
		t.Fatalf("after release: %v", err)
	}
	r2()
	if err := h.e.SetFaults(json.RawMessage(`{"error_rate":1}`)); err != nil {
		t.Fatal(err)
	}
	if rec := h.do("GET", "/WhoAmI", nil); rec.Code != 500 {
		t.Fatalf("error fault: %d", rec.Code)
	}
}

func TestControlJSON(t *testing.T) {
	h := newHarness(t, "empty", Options{})
	tests := []struct {
		name    string
		set     func(json.RawMessage) error
		raw     string
		wantErr bool
	}{
		{"faults partial", h.e.SetFaults, `{"latency_ms":5}`, false},
		{"faults bad rate", h.e.SetFaults, `{"throttle_rate":2}`, true},
		{"faults unknown", h.e.SetFaults, `{"throttle":1}`, true},
		{"settings", h.e.SetSettings, `{"expire_change_tracking_days":30,"webhook_timeout_ms":1000}`, false},
		{"settings unknown table", h.e.SetSettings, `{"deny":{"nosuch":["read"]}}`, true},
		{"settings unknown privilege", h.e.SetSettings, `{"deny":{"accounts":["fly"]}}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.set(json.RawMessage(tc.raw)); (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
	if f := h.e.Faults().(faultState); f.LatencyMS != 5 || f.ThrottleRate != 0 {
		t.Fatalf("faults %+v", f)
	}
	s := h.e.Settings().(map[string]any)
	if s["expire_change_tracking_days"] != int64(30) || s["webhook_timeout_ms"] != 1000 || s["max_concurrent_requests"] != 52 {
		t.Fatalf("settings %v", s)
	}
	org := values(h.json(h.do("GET", "/organizations?$select=expirechangetrackingindays", nil), 200))[0]
	if org["expirechangetrackingindays"] != float64(30) {
		t.Fatalf("organization %v", org)
	}
	h.do("GET", "/bookableresourcebookings?$top=1", nil)
	h.do("PATCH", "/accounts(00000000-0000-0000-0000-0000000000ac)", `{"name":"a"}`)
	routes, extra := h.e.Stats()
	for _, k := range []string{"GET /organizations", "GET /bookableresourcebookings", "PATCH /accounts({id})"} {
		if routes[k] != 1 {
			t.Errorf("stats[%q] = %d (all: %v)", k, routes[k], routes)
		}
	}
	if _, ok := extra["webhooks_sent"]; !ok {
		t.Errorf("extra stats %v", extra)
	}
}

func TestScaleCreateResources(t *testing.T) {
	h := newHarness(t, "empty", Options{})
	for i := range 200 {
		id := tenant.NewGUID()
		if rec := h.do("POST", "/systemusers", map[string]any{"systemuserid": id, "fullname": "u", "internalemailaddress": "u@x", "domainname": "u@x", "azureactivedirectoryobjectid": tenant.NewGUID()}); rec.Code != 204 {
			t.Fatalf("%d: %d %s", i, rec.Code, rec.Body.String())
		}
		if rec := h.do("POST", "/bookableresources", map[string]any{"name": "r", "UserId@odata.bind": "/systemusers(" + id + ")"}); rec.Code != 204 {
			t.Fatalf("%d: %d %s", i, rec.Code, rec.Body.String())
		}
	}
	rec := h.do("GET", "/bookableresources/$count", nil)
	if rec.Code != 200 || rec.Body.String() != "200" {
		t.Fatalf("count: %d %q", rec.Code, rec.Body.String())
	}
}
