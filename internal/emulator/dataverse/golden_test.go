package dataverse

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the emulator's answers")

// shape reduces a JSON value to its structure: objects keep their keys,
// scalars become their type name, arrays keep the shapes of their
// distinct elements. key/value lists (the DataContract form) become
// objects keyed by "key" so that element names compare, not positions.
func shape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, vv := range x {
			m[k] = shape(vv)
		}
		return m
	case []any:
		if isKVList(x) {
			m := map[string]any{}
			for _, el := range x {
				kv := el.(map[string]any)
				m["kv:"+kv["key"].(string)] = shape(kv["value"])
			}
			return m
		}
		var out []any
		seen := map[string]bool{}
		for _, el := range x {
			s := shape(el)
			b, _ := json.Marshal(s)
			if !seen[string(b)] {
				seen[string(b)] = true
				out = append(out, s)
			}
		}
		sort.Slice(out, func(i, j int) bool {
			a, _ := json.Marshal(out[i])
			b, _ := json.Marshal(out[j])
			return string(a) < string(b)
		})
		if out == nil {
			out = []any{}
		}
		return out
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	}
	return "?"
}

func isKVList(x []any) bool {
	if len(x) == 0 {
		return false
	}
	for _, el := range x {
		m, ok := el.(map[string]any)
		if !ok || len(m) != 2 {
			return false
		}
		if _, ok := m["key"].(string); !ok {
			return false
		}
		if _, ok := m["value"]; !ok {
			return false
		}
	}
	return true
}

// compareShapes reports where got's structure differs from the doc's.
// Entries of key/value lists present in only one side are not compared
// (the doc's contact columns are not our booking columns), but every
// common entry must match.
func compareShapes(path string, doc, got any) []string {
	dm, dok := doc.(map[string]any)
	gm, gok := got.(map[string]any)
	if dok && gok {
		var diffs []string
		for k, dv := range dm {
			gv, ok := gm[k]
			if !ok {
				if !strings.HasPrefix(k, "kv:") {
					diffs = append(diffs, path+"/"+k+": missing")
				}
				continue
			}
			diffs = append(diffs, compareShapes(path+"/"+k, dv, gv)...)
		}
		for k := range gm {
			if _, ok := dm[k]; !ok && !strings.HasPrefix(k, "kv:") {
				diffs = append(diffs, path+"/"+k+": not in the documentation")
			}
		}
		return diffs
	}
	da, dok := doc.([]any)
	ga, gok := got.([]any)
	if dok && gok {
		if len(da) == 0 || len(ga) == 0 {
			return nil // an empty list has no element shape to compare
		}
		var diffs []string
		for i, d := range da {
			if i < len(ga) {
				diffs = append(diffs, compareShapes(path+"[]", d, ga[i])...)
			}
		}
		return diffs
	}
	if !cmp.Equal(doc, got) {
		return []string{path + ": documentation has " + jsonString(doc) + ", emulator " + jsonString(got)}
	}
	return nil
}

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

func readJSON(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

var reGUIDs = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// normalise replaces the org URI and GUIDs so URLs compare as text.
func normalise(s string) string {
	s = strings.ReplaceAll(s, testBase+OrgPath, "[Organization URI]")
	return reGUIDs.ReplaceAllString(s, "<guid>")
}

func TestGoldenDocumentationExamples(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, h *harness, doc map[string]any) any
	}{
		{"create_bind", func(t *testing.T, h *harness, doc map[string]any) any {
			h.do("PATCH", "/contacts(00000000-0000-0000-0000-000000000001)", `{"fullname":"Sample Contact"}`)
			req := doc["request"].(map[string]any) // the documented request, replayed verbatim
			rec := h.do(req["method"].(string), req["path"].(string), req["body"])
			id := h.idOf(rec)
			row := h.json(h.do("GET", "/accounts("+id+")?$select=_primarycontactid_value", nil), 200)
			if row["_primarycontactid_value"] != "00000000-0000-0000-0000-000000000001" {
				t.Errorf("bind not stored: %v", row)
			}
			return map[string]any{"response": map[string]any{"status": float64(rec.Code), "headers": map[string]any{
				"OData-Version": rec.Header().Get("OData-Version"), "OData-EntityId": rec.Header().Get("OData-EntityId")}}}
		}},
		{"etag_conflict", func(t *testing.T, h *harness, doc map[string]any) any {
			h.do("PATCH", "/accounts(00000000-0000-0000-0000-000000000003)", `{"name":"Contoso"}`)
			rec := h.do("PATCH", "/accounts(00000000-0000-0000-0000-000000000003)", `{"telephone1":"555-0000"}`, `If-Match: W/"470867"`)
			var body any
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			return map[string]any{"response": map[string]any{"status": float64(rec.Code), "body": body}}
		}},
		{"update_return", func(t *testing.T, h *harness, doc map[string]any) any {
			h.do("PATCH", "/accounts(00000000-0000-0000-0000-000000000001)", map[string]any{
				"name": "Sample Account", "description": "This is the description of the sample account",
				"address1_latitude": 47.63958, "creditonhold": false, "accountcategorycode": 1,
			})
			req := doc["request"].(map[string]any) // the documented request, replayed verbatim
			var hdrs []string
			for _, hv := range req["headers"].([]any) {
				hdrs = append(hdrs, hv.(string))
			}
			rec := h.do(req["method"].(string), req["path"].(string), req["body"], hdrs...)
			body := h.json(rec, 200)
			row := h.json(h.do("GET", "/accounts(00000000-0000-0000-0000-000000000001)?$select=name", nil), 200)
			if body["name"] != "Updated Sample Account" || body["@odata.etag"] != row["@odata.etag"] {
				t.Errorf("representation %v is not the row as written (%v)", body, row)
			}
			return map[string]any{"response": map[string]any{"status": float64(rec.Code), "headers": map[string]any{
				"OData-Version": rec.Header().Get("OData-Version"), "Preference-Applied": rec.Header().Get("Preference-Applied")},
				"body": body}}
		}},
		{"change_tracking", func(t *testing.T, h *harness, doc map[string]any) any {
			keep := h.idOf(h.do("POST", "/accounts", map[string]any{"name": "Monte Orton", "telephone1": "555000", "fax": "10101"}))
			gone := h.idOf(h.do("POST", "/accounts", map[string]any{"name": "Gone"}))
			first := h.json(h.do("GET", "/accounts?$select=name,telephone1,fax", nil, "Prefer: odata.track-changes"), 200)
			h.do("PATCH", "/accounts("+keep+")", `{"fax":"10101"}`)
			h.do("DELETE", "/accounts("+gone+")", nil)
			return h.json(h.do("GET", first["@odata.deltaLink"].(string), nil), 200)
		}},
		{"webhook_update_contact", func(t *testing.T, h *harness, doc map[string]any) any {
			url, ch := receiver(t)
			h.register(url, 4, "c", "Update", "bookableresourcebooking", "starttime", image{1, "AsynchronousStepPrimaryName", "name"})
			id := h.createBooking("Golden")
			h.do("PATCH", "/bookableresourcebookings("+id+")", `{"starttime":"2026-03-02T08:30:00Z"}`)
			var body any
			b, _ := json.Marshal(wait(t, ch).body)
			_ = json.Unmarshal(b, &body)
			return body
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "demo", Options{})
			doc := readJSON(t, filepath.Join("testdata", "docs", tc.name+".json"))
			docMap := doc.(map[string]any)
			got := tc.run(t, h, docMap)
			delete(docMap, "request")
			if diffs := compareShapes("", shape(doc), shape(got)); len(diffs) > 0 {
				t.Errorf("shape differs from the documentation:\n%s", strings.Join(diffs, "\n"))
			}
			// URLs and error texts compare as normalised text where the doc has them.
			switch tc.name {
			case "create_bind":
				want := normalise(doc.(map[string]any)["response"].(map[string]any)["headers"].(map[string]any)["OData-EntityId"].(string))
				gotURL := normalise(got.(map[string]any)["response"].(map[string]any)["headers"].(map[string]any)["OData-EntityId"].(string))
				if want != gotURL {
					t.Errorf("OData-EntityId %q, want %q", gotURL, want)
				}
			case "etag_conflict":
				if !cmp.Equal(doc, got) {
					t.Errorf("412 body: %s", cmp.Diff(doc, got))
				}
			case "update_return":
				resp := func(v any) map[string]any { return v.(map[string]any)["response"].(map[string]any) }
				// The doc's example is from the v9.0 days; the emulator serves v9.2.
				want := strings.Replace(resp(doc)["body"].(map[string]any)["@odata.context"].(string), "/v9.0/", "/v9.2/", 1)
				if gotCtx := normalise(resp(got)["body"].(map[string]any)["@odata.context"].(string)); gotCtx != want {
					t.Errorf("@odata.context %q, want %q", gotCtx, want)
				}
				if !cmp.Equal(resp(doc)["headers"], resp(got)["headers"]) || resp(got)["status"] != float64(200) {
					t.Errorf("status/headers: %s", cmp.Diff(resp(doc), resp(got)))
				}
			case "change_tracking":
				gm := got.(map[string]any)
				for _, v := range values(gm) {
					if v["reason"] == "deleted" && normalise(v["@odata.context"].(string)) != "[Organization URI]/api/data/v9.2/$metadata#accounts/$deletedEntity" {
						t.Errorf("deleted context %q", v["@odata.context"])
					}
				}
				if d := normalise(gm["@odata.deltaLink"].(string)); !regexp.MustCompile(`^\[Organization URI\]/api/data/v9\.2/accounts\?\$select=name,telephone1,fax&\$deltatoken=\d+%21\d\d%2f\d\d%2f\d{4}%20\d\d%3a\d\d%3a\d\d$`).MatchString(d) {
					t.Errorf("deltaLink %q does not have the documented form", d)
				}
			}
			golden := filepath.Join("testdata", "golden", tc.name+".json")
			gotShape, _ := json.MarshalIndent(shape(got), "", "  ")
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
		})
	}
}
