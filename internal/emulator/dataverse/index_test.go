package dataverse

import (
	"net/url"
	"slices"
	"testing"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

func TestFilterHints(t *testing.T) {
	const a, b = "aaaaaaaa-0000-0000-0000-000000000001", "BBBBBBBB-0000-0000-0000-000000000002"
	lb := "bbbbbbbb-0000-0000-0000-000000000002"
	tests := []struct {
		expr string
		key  string // "" = no hint
		vals []string
	}{
		{"MetadataId eq " + a, "MetadataId", []string{a}},
		{a + " eq MetadataId", "MetadataId", []string{a}},
		{"MetadataId eq " + b, "MetadataId", []string{lb}},
		{"n gt 1 and MetadataId eq " + a, "MetadataId", []string{a}},
		{"(MetadataId eq " + a + " or MetadataId eq " + b + ") and n gt 1", "MetadataId", []string{a, lb}},
		{"MetadataId eq " + a + " or n gt 1", "", nil},
		{"not (MetadataId eq " + a + ")", "", nil},
		{"MetadataId ne " + a, "", nil},
		{"MetadataId eq null", "", nil},
		{"name eq 'x'", "", nil},
	}
	for _, tc := range tests {
		_, h, err := parseFilterHint(tc.expr, testBinder)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		switch {
		case tc.key == "" && h != nil:
			t.Errorf("%s: hint %+v, want none", tc.expr, h)
		case tc.key != "" && (h == nil || h.key != tc.key || !slices.Equal(h.values, tc.vals)):
			t.Errorf("%s: hint %+v, want %s in %v", tc.expr, h, tc.key, tc.vals)
		}
	}
}

// TestIndexedQueriesMatchScan: a query narrowed by a GUID index returns
// exactly what the full scan returns, also after rows are reassigned,
// created and deleted.
func TestIndexedQueriesMatchScan(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	techs := tenant.Technicians()
	r0, r1 := ResourceID(techs[0].ID), ResourceID(techs[1].ID)
	filters := []string{
		"_resource_value eq " + r0,
		"_resource_value eq " + r1 + " and starttime gt 2000-01-01T00:00:00Z",
		"(_resource_value eq " + r0 + " or _resource_value eq " + r1 + ") and endtime gt 2000-01-01T00:00:00Z",
		"_resource_value eq " + r0 + " or name eq 'x'",
		"not (_resource_value eq " + r0 + ")",
		"bookableresourcebookingid eq " + r0, // a GUID column that matches nothing
	}
	check := func(when string) {
		t.Helper()
		h.e.mu.Lock()
		defer h.e.mu.Unlock()
		tb := h.e.tables["bookableresourcebooking"]
		for _, f := range filters {
			o, aerr := h.e.parseQuery(tb, url.Values{"$filter": {f}})
			if aerr != nil {
				t.Fatalf("%s: %v", f, aerr)
			}
			got := ids(h.e.selectRows(tb, o))
			scan := *o
			scan.hint = nil
			want := ids(h.e.selectRows(tb, &scan))
			if !slices.Equal(got, want) {
				t.Errorf("%s, %s: indexed %d rows %v, scan %d rows %v", when, f, len(got), got, len(want), want)
			}
		}
	}
	check("seeded")
	id := h.createBooking("index test")
	check("after a create")
	if rec := h.do("PATCH", "/bookableresourcebookings("+id+")", map[string]any{"Resource@odata.bind": "/bookableresources(" + r1 + ")"}); rec.Code != 204 {
		t.Fatalf("reassign: %d %s", rec.Code, rec.Body.String())
	}
	check("after a reassignment")
	if rec := h.do("DELETE", "/bookableresourcebookings("+id+")", nil); rec.Code != 204 {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body.String())
	}
	check("after a delete")
	if err := h.e.Reset("demo"); err != nil {
		t.Fatal(err)
	}
	check("after a reset")
}

func ids(rs []*row) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.id
	}
	return out
}
