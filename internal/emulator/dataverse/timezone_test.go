package dataverse

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	"github.com/bookingsync/bookingsync/internal/graph"
)

// TestTimeZoneDefinitionsContract checks what the service reads to write
// events in the resource's time zone (sync.event_time_zone: resource):
// bookableresource.timezone is a time-zone code, timezonedefinition maps it
// to a Windows name. The CDM schema has no timezonedefinition, so its
// columns are checked against dataverse-api.md §1.7; the answer to the
// service's query is pinned as a shape in testdata/golden (there is no
// documentation example to replay; -update rewrites it).
func TestTimeZoneDefinitionsContract(t *testing.T) {
	_, ref := loadContracts(t)
	cc := CustomColumns{}
	cc.fill()
	tables := buildSchema(cc, true)

	sec := ref[strings.Index(ref, "### 1.7"):]
	sec = sec[:strings.Index(sec[1:], "\n#")+1]
	var bullet string
	for _, line := range strings.Split(sec, "\n") {
		if strings.HasPrefix(line, "* `timezonedefinition`") {
			bullet = line
		}
	}
	if bullet == "" {
		t.Fatal("dataverse-api.md §1.7 no longer documents timezonedefinition")
	}
	tzd := tables["timezonedefinition"]
	if tzd == nil || tzd.Set != "timezonedefinitions" {
		t.Fatalf("timezonedefinition table: %+v", tzd)
	}
	for col, kind := range map[string]struct {
		kind kind
		ref  string
	}{"timezonecode": {kInt, "`timezonecode` (Integer)"}, "standardname": {kString, "`standardname` (String"}} {
		c := tzd.col(col)
		if c == nil || c.Kind != kind.kind {
			t.Errorf("timezonedefinition.%s: %+v, want kind %s", col, c, kind.kind.attributeType())
		}
		if !strings.Contains(bullet, kind.ref) {
			t.Errorf("reference no longer says %s: %s", kind.ref, bullet)
		}
	}
	if row := referenceRow(ref, "bookableresource", "timezone"); !strings.Contains(row, "Integer") || !strings.Contains(row, "timezonedefinition") {
		t.Errorf("bookableresource.timezone in the reference: %q", row)
	}
	if c := tables["bookableresource"].col("timezone"); c == nil || c.Kind != kInt {
		t.Errorf("bookableresource.timezone: %+v", c)
	}

	h := newHarness(t, "demo", Options{})
	// The service's query: all definitions, two columns (one page in a real org, ~140 rows).
	all := h.json(h.do("GET", "/timezonedefinitions?$select=timezonecode,standardname", nil), 200)
	names := map[float64]string{}
	for _, v := range values(all) {
		names[v["timezonecode"].(float64)] = v["standardname"].(string)
		// Graph must accept every name we could write.
		if _, err := graph.LoadZone(v["standardname"].(string)); err != nil {
			t.Errorf("standardname %q is not a zone the Graph client can write: %v", v["standardname"], err)
		}
	}
	if names[110] != "W. Europe Standard Time" || names[4] != "Pacific Standard Time" {
		t.Errorf("definitions: %v", names)
	}
	// Every demo resource's code has a definition naming its user's mailbox zone.
	for _, u := range tenant.Technicians() {
		res := h.json(h.do("GET", "/bookableresources("+ResourceID(u.ID)+")?$select=timezone", nil), 200)
		if got := names[res["timezone"].(float64)]; got != u.TimeZone {
			t.Errorf("%s: resource zone %q (code %v), mailbox zone %q", u.DisplayName, got, res["timezone"], u.TimeZone)
		}
	}
	one := h.json(h.do("GET", "/timezonedefinitions?$select=timezonecode,standardname&$filter=timezonecode eq 110", nil), 200)
	if vs := values(one); len(vs) != 1 || vs[0]["standardname"] != "W. Europe Standard Time" {
		t.Errorf("filtered by code: %v", vs)
	}

	golden := filepath.Join("testdata", "golden", "timezonedefinitions.json")
	gotShape, _ := json.MarshalIndent(shape(all), "", "  ")
	if *update {
		if err := os.WriteFile(golden, append(gotShape, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readJSON(t, golden)
	var gs any
	_ = json.Unmarshal(gotShape, &gs)
	if d := cmp.Diff(want, gs); d != "" {
		t.Errorf("shape changed from %s (run with -update if intended):\n%s", golden, d)
	}
}
