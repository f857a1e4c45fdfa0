package graph

import (
	"net/url"
	"strings"
	"testing"
)

func TestUsers(t *testing.T) {
	h := newHarness(t, Options{}, false)
	list := h.mustStatus(h.do("GET", "/users", nil), 200).json(t)
	if n := len(list["value"].([]any)); n != 6 {
		t.Fatalf("demo seed has %d users, want 6", n)
	}
	for _, key := range []string{adele, "Adele.Vance@contoso-fs.example"} {
		u := h.mustStatus(h.do("GET", "/users/"+key, nil), 200).json(t)
		if u["id"] != adele || u["displayName"] != "Adele Vance" {
			t.Errorf("GET /users/%s = %v", key, u)
		}
	}
	r := h.do("GET", "/users/nobody@contoso-fs.example", nil)
	if r.status != 404 || r.errorCode(t) != codeDirNotFound {
		t.Errorf("unknown user: %d %s", r.status, r.body)
	}
	paged := h.mustStatus(h.do("GET", "/users?$top=4&$select=displayName", nil), 200).json(t)
	if len(paged["value"].([]any)) != 4 || paged["@odata.nextLink"] == nil {
		t.Fatalf("paging: %v", paged)
	}
	if first := paged["value"].([]any)[0].(map[string]any); len(first) != 2 {
		t.Errorf("$select=displayName gave %v", first)
	}
	rest := h.mustStatus(h.do("GET", paged["@odata.nextLink"].(string), nil), 200).json(t)
	if len(rest["value"].([]any)) != 2 || rest["@odata.nextLink"] != nil {
		t.Errorf("second page: %v", rest)
	}
}

func TestAuthAndUnknownRoutes(t *testing.T) {
	h := newHarness(t, Options{}, false)
	tests := []struct {
		name, token, path string
		status            int
		code, msg         string
	}{
		{"no token", "", "/users", 401, codeInvalidAuthToken, "Access token is empty."},
		{"garbage", "garbage", "/users", 401, codeInvalidAuthToken, "Access token validation failure."},
		{"me", h.token, "/me/events", 400, codeBadRequest, "/me request is only valid with delegated authentication flow."},
		{"unknown segment", h.token, "/widgets", 400, codeBadRequest, "Resource not found for the segment 'widgets'."},
		{"unknown mailbox", h.token, "/users/nobody@x.example/events", 404, codeInvalidUser, "The requested user 'nobody@x.example' is invalid."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			saved := h.token
			h.token = tc.token
			r := h.do("GET", tc.path, nil)
			h.token = saved
			if r.status != tc.status || r.errorCode(t) != tc.code || r.errorMessage(t) != tc.msg {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			inner := r.json(t)["error"].(map[string]any)["innerError"].(map[string]any)
			if inner["request-id"] == "" || inner["date"] == "" {
				t.Errorf("innerError incomplete: %v", inner)
			}
		})
	}
}

func TestEventLifecycle(t *testing.T) {
	h := newHarness(t, Options{}, false)
	ev := h.createEvent(adele, map[string]any{
		"body":        map[string]any{"contentType": "text", "content": "Replace valve"},
		"location":    map[string]any{"displayName": "Site 4", "address": map[string]any{"city": "Leeds"}},
		"categories":  []string{"Booking"},
		"sensitivity": "Private",
		"showAs":      "tentative",
		"attendees":   []any{map[string]any{"emailAddress": map[string]any{"address": "x@example.com", "name": "X"}, "type": "optional"}},
	})
	id := ev["id"].(string)
	if !strings.HasPrefix(id, restIDPrefix) {
		t.Errorf("id %q is not a REST id", id)
	}
	if ev["@odata.etag"] != `W/"`+ev["changeKey"].(string)+`"` {
		t.Errorf("etag %v vs changeKey %v", ev["@odata.etag"], ev["changeKey"])
	}
	for k, want := range map[string]any{"type": "singleInstance", "sensitivity": "private", "showAs": "tentative", "subject": "Boiler service", "isCancelled": false, "isAllDay": false} {
		if ev[k] != want {
			t.Errorf("%s = %v, want %v", k, ev[k], want)
		}
	}
	if str(ev, "start", "dateTime") != "2030-03-04T09:00:00.0000000" || str(ev, "start", "timeZone") != "UTC" {
		t.Errorf("start = %v", ev["start"])
	}
	if str(ev, "body", "contentType") != "html" || !strings.Contains(str(ev, "body", "content"), "Replace valve") {
		t.Errorf("body = %v", ev["body"])
	}
	if _, ok := ev["transactionId"]; ok {
		t.Errorf("transactionId returned though never set")
	}

	for _, path := range []string{"/users/" + adele + "/events/" + id, "/users/" + adele + "/calendar/events/" + id, "/users/adele.vance@contoso-fs.example/events/" + id} {
		got := h.mustStatus(h.do("GET", path, nil), 200).json(t)
		if got["id"] != id {
			t.Errorf("GET %s id = %v", path, got["id"])
		}
	}
	text := h.mustStatus(h.do("GET", "/users/"+adele+"/events/"+id, nil, "Prefer", `outlook.body-content-type="text"`), 200).json(t)
	if str(text, "body", "content") != "Replace valve" {
		t.Errorf("text body = %v", text["body"])
	}

	patched := h.mustStatus(h.do("PATCH", "/users/"+adele+"/events/"+id, map[string]any{"subject": "Boiler repair"}), 200).json(t)
	if patched["subject"] != "Boiler repair" || patched["changeKey"] == ev["changeKey"] || patched["@odata.etag"] == ev["@odata.etag"] {
		t.Errorf("PATCH did not change subject/changeKey/etag: %v", patched)
	}
	if patched["lastModifiedDateTime"].(string) < ev["lastModifiedDateTime"].(string) {
		t.Errorf("lastModifiedDateTime went back")
	}
	if patched["location"].(map[string]any)["displayName"] != "Site 4" {
		t.Errorf("PATCH lost location: %v", patched["location"])
	}

	bad := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"unknown property", map[string]any{"colour": "red"}, 400, codeRequestBodyRead},
		{"bad enum", map[string]any{"showAs": "sleeping"}, 400, codeRequestBodyRead},
		{"bad zone", map[string]any{"start": map[string]any{"dateTime": "2030-03-04T09:00:00", "timeZone": "Mars/Olympus"}}, 400, codeTimeZone},
		{"end before start", map[string]any{"end": map[string]any{"dateTime": "2030-03-04T08:00:00", "timeZone": "UTC"}}, 400, codeInvalidRequest},
		{"empty body", "", 400, codeBadRequest},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("PATCH", "/users/"+adele+"/events/"+id, tc.body)
			if r.status != tc.status || r.errorCode(t) != tc.code {
				t.Fatalf("got %d %s", r.status, r.body)
			}
		})
	}

	h.mustStatus(h.do("DELETE", "/users/"+adele+"/events/"+id, nil), 204)
	r := h.do("GET", "/users/"+adele+"/events/"+id, nil)
	if r.status != 404 || r.errorCode(t) != codeItemNotFound {
		t.Errorf("after delete: %d %s", r.status, r.body)
	}
	r = h.do("GET", "/users/"+adele+"/events/AAMkAnotAnId", nil)
	if r.status != 400 || r.errorCode(t) != codeInvalidIDMalform {
		t.Errorf("malformed id: %d %s", r.status, r.body)
	}
	// Another mailbox's id is not found in this one.
	other := h.createEvent(lee, nil)
	r = h.do("GET", "/users/"+adele+"/events/"+other["id"].(string), nil)
	if r.status != 404 {
		t.Errorf("cross-mailbox id: %d", r.status)
	}
}

func TestImmutableIDs(t *testing.T) {
	h := newHarness(t, Options{}, false)
	imm := h.createEvent(adele, nil, "Prefer", `IdType="ImmutableId"`)
	id := imm["id"].(string)
	if !strings.HasPrefix(id, immutableIDPrefix) {
		t.Fatalf("id %q is not immutable", id)
	}
	rest := h.mustStatus(h.do("GET", "/users/"+adele+"/events/"+id, nil), 200).json(t)
	if !strings.HasPrefix(rest["id"].(string), restIDPrefix) {
		t.Errorf("without the header the id should be a REST id: %v", rest["id"])
	}
	back := h.mustStatus(h.do("GET", "/users/"+adele+"/events/"+rest["id"].(string), nil, "Prefer", `IdType="ImmutableId"`), 200)
	if back.json(t)["id"] != id {
		t.Errorf("REST id did not map back to the immutable id")
	}
	if !strings.Contains(back.header.Get("Preference-Applied"), `IdType="ImmutableId"`) {
		t.Errorf("Preference-Applied = %q", back.header.Get("Preference-Applied"))
	}
	for _, c := range id {
		if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", c) {
			t.Fatalf("id %q has %q, outside the URL-safe base64 set", id, c)
		}
	}
}

func TestTimeZones(t *testing.T) {
	h := newHarness(t, Options{}, false)
	tests := []struct {
		name      string
		start     map[string]any
		prefer    string
		wantStart string
		wantZone  string
	}{
		{"pacific to utc", map[string]any{"dateTime": "2017-04-15T12:00:00", "timeZone": "Pacific Standard Time"}, "", "2017-04-15T19:00:00.0000000", "UTC"},
		{"berlin summer", map[string]any{"dateTime": "2030-07-01T09:00:00", "timeZone": "W. Europe Standard Time"}, "", "2030-07-01T07:00:00.0000000", "UTC"},
		{"berlin winter", map[string]any{"dateTime": "2030-01-07T09:00:00", "timeZone": "W. Europe Standard Time"}, "", "2030-01-07T08:00:00.0000000", "UTC"},
		{"iana tokyo", map[string]any{"dateTime": "2030-01-07T09:00:00", "timeZone": "Asia/Tokyo"}, "", "2030-01-07T00:00:00.0000000", "UTC"},
		{"prefer eastern", map[string]any{"dateTime": "2030-01-07T15:00:00", "timeZone": "UTC"}, `outlook.timezone="Eastern Standard Time"`, "2030-01-07T10:00:00.0000000", "Eastern Standard Time"},
		{"prefer iana", map[string]any{"dateTime": "2030-07-07T15:00:00", "timeZone": "UTC"}, `outlook.timezone="Europe/London"`, "2030-07-07T16:00:00.0000000", "Europe/London"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			end := map[string]any{"dateTime": "2035-01-01T00:00:00", "timeZone": "UTC"}
			var hdr []string
			if tc.prefer != "" {
				hdr = []string{"Prefer", tc.prefer}
			}
			r := h.mustStatus(h.do("POST", "/users/"+adele+"/events", map[string]any{"subject": tc.name, "start": tc.start, "end": end}, hdr...), 201)
			ev := r.json(t)
			if str(ev, "start", "dateTime") != tc.wantStart || str(ev, "start", "timeZone") != tc.wantZone {
				t.Errorf("start = %v, want %s %s", ev["start"], tc.wantStart, tc.wantZone)
			}
			if ev["originalStartTimeZone"] != tc.start["timeZone"] {
				t.Errorf("originalStartTimeZone = %v", ev["originalStartTimeZone"])
			}
			if tc.prefer != "" && !strings.Contains(r.header.Get("Preference-Applied"), "outlook.timezone") {
				t.Errorf("Preference-Applied = %q", r.header.Get("Preference-Applied"))
			}
		})
	}
}

func TestTransactionIDDeduplicates(t *testing.T) {
	h := newHarness(t, Options{}, false)
	first := h.createEvent(adele, map[string]any{"transactionId": "7E163156-7762-4BEB-A1C6-729EA81755A7"})
	second := h.createEvent(adele, map[string]any{"transactionId": "7E163156-7762-4BEB-A1C6-729EA81755A7", "subject": "retry"})
	if first["id"] != second["id"] || second["subject"] != "Boiler service" {
		t.Fatalf("retry created a new event: %v vs %v", first["id"], second["id"])
	}
	if first["transactionId"] != "7E163156-7762-4BEB-A1C6-729EA81755A7" {
		t.Errorf("transactionId not returned: %v", first["transactionId"])
	}
	list := h.mustStatus(h.do("GET", "/users/"+adele+"/events", nil), 200).json(t)
	if n := len(list["value"].([]any)); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
	r := h.do("PATCH", "/users/"+adele+"/events/"+first["id"].(string), map[string]any{"transactionId": "other"})
	if r.status != 400 {
		t.Errorf("changing transactionId: %d", r.status)
	}
}

const extID = "String {66f5a359-4659-4830-9070-00040ec6ac6e} Name D365BookingId"

func TestExtendedProperties(t *testing.T) {
	h := newHarness(t, Options{}, false)
	ev := h.createEvent(adele, map[string]any{"singleValueExtendedProperties": []any{map[string]any{"id": extID, "value": "BK-0042"}}})
	h.createEvent(adele, map[string]any{"singleValueExtendedProperties": []any{map[string]any{"id": extID, "value": "BK-0043"}}})
	h.createEvent(adele, nil)
	if _, ok := ev["singleValueExtendedProperties"]; ok {
		t.Errorf("create response includes the extended property")
	}
	id := ev["id"].(string)
	patched := h.mustStatus(h.do("PATCH", "/users/"+adele+"/events/"+id, map[string]any{"subject": "x"}), 200).json(t)
	if _, ok := patched["singleValueExtendedProperties"]; ok {
		t.Errorf("PATCH response includes the extended property")
	}
	expand := "$expand=" + url.QueryEscape("singleValueExtendedProperties($filter=id eq '"+extID+"')")
	got := h.mustStatus(h.do("GET", "/users/"+adele+"/events/"+id+"?"+expand, nil), 200).json(t)
	props, _ := got["singleValueExtendedProperties"].([]any)
	if len(props) != 1 || props[0].(map[string]any)["value"] != "BK-0042" {
		t.Fatalf("expanded = %v", got["singleValueExtendedProperties"])
	}
	r := h.do("GET", "/users/"+adele+"/events/"+id+"?$expand=singleValueExtendedProperties", nil)
	if r.status != 400 {
		t.Errorf("unfiltered expand: %d", r.status)
	}

	filter := func(f string) []any {
		t.Helper()
		res := h.mustStatus(h.do("GET", "/users/"+adele+"/events?$filter="+url.QueryEscape(f), nil), 200).json(t)
		return res["value"].([]any)
	}
	tests := []struct {
		name, filter string
		want         int
	}{
		{"match", "singleValueExtendedProperties/Any(ep: ep/id eq '" + extID + "' and ep/value eq 'BK-0042')", 1},
		{"value case-insensitive", "singleValueExtendedProperties/any(ep: ep/id eq '" + extID + "' and ep/value eq 'bk-0042')", 1},
		{"guid case-insensitive", "singleValueExtendedProperties/Any(ep: ep/id eq '" + strings.ToUpper(extID[:45]) + extID[45:] + "' and ep/value eq 'BK-0042')", 1},
		{"name case-sensitive", "singleValueExtendedProperties/Any(ep: ep/id eq '" + strings.ToLower(extID) + "' and ep/value eq 'BK-0042')", 0},
		{"presence", "singleValueExtendedProperties/Any(ep: ep/id eq '" + extID + "')", 2},
		{"startswith", "singleValueExtendedProperties/Any(ep: ep/id eq '" + extID + "' and startswith(ep/value, 'BK-004'))", 2},
		{"subject", "subject eq 'boiler service'", 2},
		{"start range", "start/dateTime ge '2030-03-04T00:00:00' and end/dateTime le '2030-03-05T00:00:00'", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := filter(tc.filter); len(got) != tc.want {
				t.Errorf("%d results, want %d", len(got), tc.want)
			}
		})
	}
	r = h.do("GET", "/users/"+adele+"/events?$filter="+url.QueryEscape("attachments/any(a: a/name eq 'x')"), nil)
	if r.status != 400 {
		t.Errorf("unsupported filter: %d %s", r.status, r.body)
	}
}

func TestSelectAndPaging(t *testing.T) {
	h := newHarness(t, Options{}, false)
	for range 25 {
		h.createEvent(lee, nil)
	}
	seen := map[string]bool{}
	next := "/users/" + lee + "/events?$top=10&$select=subject,start"
	pages := 0
	for next != "" {
		page := h.mustStatus(h.do("GET", next, nil), 200).json(t)
		pages++
		for _, v := range page["value"].([]any) {
			item := v.(map[string]any)
			for k := range item {
				switch k {
				case "@odata.etag", "id", "subject", "start":
				default:
					t.Fatalf("$select leaked %q", k)
				}
			}
			seen[item["id"].(string)] = true
		}
		next, _ = page["@odata.nextLink"].(string)
	}
	if len(seen) != 25 || pages != 3 {
		t.Errorf("saw %d events in %d pages, want 25 in 3", len(seen), pages)
	}
	r := h.do("GET", "/users/"+lee+"/events?$select=colour", nil)
	if r.status != 400 || !strings.Contains(r.errorMessage(t), "colour") {
		t.Errorf("bad $select: %d %s", r.status, r.body)
	}
	def := h.mustStatus(h.do("GET", "/users/"+lee+"/events", nil), 200).json(t)
	if len(def["value"].([]any)) != 10 {
		t.Errorf("default page size %d, want 10", len(def["value"].([]any)))
	}
}
