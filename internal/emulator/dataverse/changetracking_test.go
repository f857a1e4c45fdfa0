package dataverse

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestChangeTracking(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	rec := h.do("GET", "/bookableresourcebookings?$select=name,starttime", nil, "Prefer: odata.track-changes")
	m := h.json(rec, 200)
	if !strings.Contains(rec.Header().Get("Preference-Applied"), "odata.track-changes") {
		t.Fatalf("Preference-Applied = %q", rec.Header().Get("Preference-Applied"))
	}
	if n := len(values(m)); n != 50 {
		t.Fatalf("initial load %d rows, want 50", n)
	}
	delta, _ := m["@odata.deltaLink"].(string)
	if !strings.Contains(delta, "$select=name,starttime&$deltatoken=") || !strings.HasSuffix(m["@odata.context"].(string), "/$delta") {
		t.Fatalf("deltaLink %q context %q", delta, m["@odata.context"])
	}

	created := h.createBooking("New one")
	updated := values(m)[0]["bookableresourcebookingid"].(string)
	deleted := values(m)[1]["bookableresourcebookingid"].(string)
	if rec := h.do("PATCH", "/bookableresourcebookings("+updated+")", `{"name":"Moved"}`); rec.Code != 204 {
		t.Fatal(rec.Body.String())
	}
	if rec := h.do("DELETE", "/bookableresourcebookings("+deleted+")", nil); rec.Code != 204 {
		t.Fatal(rec.Body.String())
	}
	// Created and deleted inside the window: reported as a deletion.
	gone := h.createBooking("Short-lived")
	h.do("DELETE", "/bookableresourcebookings("+gone+")", nil)

	m = h.json(h.do("GET", delta, nil, "Prefer: odata.track-changes"), 200)
	var changed, removed []string
	for _, v := range values(m) {
		if v["reason"] == "deleted" {
			if !strings.HasSuffix(v["@odata.context"].(string), "#bookableresourcebookings/$deletedEntity") {
				t.Errorf("deleted entity context %v", v["@odata.context"])
			}
			removed = append(removed, v["id"].(string))
		} else {
			if len(removed) > 0 {
				t.Fatal("changed rows must come before deletions")
			}
			changed = append(changed, v["bookableresourcebookingid"].(string))
		}
	}
	if strings.Join(changed, ",") != created+","+updated || strings.Join(removed, ",") != deleted+","+gone {
		t.Fatalf("changed %v removed %v; want [%s %s] [%s %s]", changed, removed, created, updated, deleted, gone)
	}
	// Nothing new: empty value and a fresh delta link.
	next := m["@odata.deltaLink"].(string)
	m = h.json(h.do("GET", next, nil), 200)
	if len(values(m)) != 0 || m["@odata.deltaLink"] == "" {
		t.Fatalf("quiet delta %v", m)
	}
	if rec := h.do("GET", "/bookableresourcebookings/$count?"+next[strings.Index(next, "$deltatoken"):], nil); rec.Body.String() != "0" {
		t.Fatalf("$count with delta token = %q", rec.Body.String())
	}
}

func TestChangeTrackingRejectsOptions(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	for _, opt := range []string{"$filter=name eq 'x'", "$orderby=name", "$expand=Resource", "$top=3"} {
		rec := h.do("GET", "/bookableresourcebookings?"+opt, nil, "Prefer: odata.track-changes")
		name, _, _ := strings.Cut(opt, "=")
		want := `The "` + name + `" query parameter isn't supported when Change Tracking is enabled.`
		if _, msg := errorOf(t, rec); rec.Code != 400 || msg != want {
			t.Errorf("%s: %d %q", opt, rec.Code, msg)
		}
	}
}

func TestChangeTrackingPaging(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	next := "/bookableresourcebookings?$select=name"
	seen := 0
	var delta string
	for next != "" {
		m := h.json(h.do("GET", next, nil, "Prefer: odata.track-changes, odata.maxpagesize=20"), 200)
		seen += len(values(m))
		next, _ = m["@odata.nextLink"].(string)
		delta, _ = m["@odata.deltaLink"].(string)
		if next != "" && delta != "" {
			t.Fatal("a page has both nextLink and deltaLink")
		}
	}
	if seen != 50 || delta == "" {
		t.Fatalf("%d rows, delta %q", seen, delta)
	}
}

func TestChangeTrackingExpiry(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		advance  time.Duration
		expired  bool
	}{
		{"within 7 days", `{}`, 6 * 24 * time.Hour, false},
		{"after 7 days", `{}`, 8 * 24 * time.Hour, true},
		{"org set to 30 days", `{"expire_change_tracking_days":30}`, 8 * 24 * time.Hour, false},
		{"compressed days", `{"change_tracking_day_s":60}`, 8 * time.Minute, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "demo", Options{})
			if tc.settings != "{}" {
				if err := h.e.SetSettings(json.RawMessage(tc.settings)); err != nil {
					t.Fatal(err)
				}
			}
			m := h.json(h.do("GET", "/bookableresourcebookings?$select=name", nil, "Prefer: odata.track-changes"), 200)
			h.tn.Advance(tc.advance)
			h.token, _ = h.tn.Issue(h.e.OrgURL()) // the old token expired with the clock
			rec := h.do("GET", m["@odata.deltaLink"].(string), nil)
			if !tc.expired {
				h.json(rec, 200)
				return
			}
			code, msg := errorOf(t, rec)
			if rec.Code != http.StatusBadRequest || code != codeExpiredVersion || msg != "Version stamp associated with the client has expired. Please perform a full sync." {
				t.Fatalf("%d %s %q", rec.Code, code, msg)
			}
		})
	}
}

func TestEnableChangeTrackingThroughMetadata(t *testing.T) {
	h := newHarness(t, "demo", Options{FreshOrg: true})
	m := h.json(h.do("GET", "/EntityDefinitions?$select=LogicalName&$filter=ChangeTrackingEnabled eq true and LogicalName eq 'bookableresourcebooking'", nil), 200)
	if len(values(m)) != 0 {
		t.Fatalf("fresh org already tracks bookings: %v", m)
	}
	rec := h.do("GET", "/bookableresourcebookings?$select=name", nil, "Prefer: odata.track-changes")
	if m := h.json(rec, 200); m["@odata.deltaLink"] != nil || rec.Header().Get("Preference-Applied") != "" {
		t.Fatalf("untracked table answered with change tracking: %v", rec.Header())
	}
	// The documented way: GET the definition, PUT it back with ChangeTrackingEnabled.
	def := h.json(h.do("GET", "/EntityDefinitions(LogicalName='bookableresourcebooking')", nil), 200)
	def["ChangeTrackingEnabled"] = true
	if rec := h.do("PATCH", "/EntityDefinitions(LogicalName='bookableresourcebooking')", def); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("PATCH of a definition: %d", rec.Code)
	}
	if rec := h.do("PUT", "/EntityDefinitions(LogicalName='bookableresourcebooking')", def, "MSCRM.MergeLabels: true"); rec.Code != 204 {
		t.Fatalf("PUT: %d %s", rec.Code, rec.Body.String())
	}
	m = h.json(h.do("GET", "/bookableresourcebookings?$select=name", nil, "Prefer: odata.track-changes"), 200)
	if m["@odata.deltaLink"] == nil {
		t.Fatal("no deltaLink after enabling change tracking")
	}
}
