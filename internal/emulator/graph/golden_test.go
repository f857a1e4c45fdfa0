package graph

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the emulator's output")

// shape reduces a JSON value to its structure: objects keep their keys,
// arrays the shapes of their distinct elements, scalars their JSON type.
func shape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = shape(e)
		}
		return out
	case []any:
		seen := map[string]bool{}
		out := []any{}
		for _, e := range x {
			s := shape(e)
			key := fmt.Sprint(s)
			if !seen[key] {
				seen[key] = true
				out = append(out, s)
			}
		}
		sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
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
	return fmt.Sprintf("%T", v)
}

// shapeDiff lists where ours differs from doc. With exact, keys must match
// both ways; otherwise ours may have more (the doc example is truncated).
func shapeDiff(path string, doc, ours any, exact bool) []string {
	switch d := doc.(type) {
	case map[string]any:
		o, ok := ours.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: doc has an object, emulator %v", path, ours)}
		}
		var diffs []string
		for k, dv := range d {
			ov, ok := o[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing in emulator output", path, k))
				continue
			}
			diffs = append(diffs, shapeDiff(path+"."+k, dv, ov, exact)...)
		}
		if exact {
			for k := range o {
				if _, ok := d[k]; !ok {
					diffs = append(diffs, fmt.Sprintf("%s.%s: not in the documented example", path, k))
				}
			}
		}
		return diffs
	case []any:
		o, ok := ours.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: doc has an array, emulator %v", path, ours)}
		}
		var diffs []string
		for i, de := range d {
			matched := false
			var best []string
			for _, oe := range o {
				sub := shapeDiff(fmt.Sprintf("%s[%d]", path, i), de, oe, exact)
				if len(sub) == 0 {
					matched = true
					break
				}
				if best == nil || len(sub) < len(best) {
					best = sub
				}
			}
			if !matched {
				if best == nil {
					best = []string{fmt.Sprintf("%s[%d]: no element in emulator output", path, i)}
				}
				diffs = append(diffs, best...)
			}
		}
		return diffs
	default:
		if doc != ours {
			return []string{fmt.Sprintf("%s: doc %v, emulator %v", path, doc, ours)}
		}
		return nil
	}
}

func readJSON(t *testing.T, path string) any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// checkGolden compares ours with the documented example and with our own
// recorded shape (testdata/golden, rewritten by -update).
func checkGolden(t *testing.T, name string, exact bool, ours any) {
	t.Helper()
	doc := readJSON(t, filepath.Join("testdata", "docs", name+".json"))
	for _, d := range shapeDiff("$", shape(doc), shape(ours), exact) {
		t.Errorf("%s: %s", name, d)
	}
	golden := filepath.Join("testdata", "golden", name+".shape.json")
	got, _ := json.MarshalIndent(shape(ours), "", "  ")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if strings.TrimSpace(string(want)) != strings.TrimSpace(string(got)) {
		t.Errorf("%s: output shape changed; diff testdata/golden/%s.shape.json against:\n%s", name, name, got)
	}
}

func asAny(t *testing.T, v any) any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	_ = json.Unmarshal(raw, &out)
	return out
}

func TestGoldenShapes(t *testing.T) {
	h := newHarness(t, Options{ExtraUpdateDelay: time.Hour}, false)
	rv, lc := newReceiver(), newReceiver()
	srv, lsrv := httptest.NewServer(rv), httptest.NewServer(lc)
	defer srv.Close()
	defer lsrv.Close()

	t.Run("subscription", func(t *testing.T) {
		r := h.mustStatus(h.subscribe(adele, srv.URL, "", map[string]any{"changeType": "created"}), 201)
		checkGolden(t, "subscription-response", true, r.json(t))
	})
	sub := h.mustStatus(h.subscribe(lee, srv.URL, lsrv.URL, nil), 201).json(t)

	t.Run("create-event", func(t *testing.T) {
		// The documented request, sent as is.
		body := `{
		  "subject": "Let's go for lunch",
		  "body": {"contentType": "HTML", "content": "Does late morning work for you?"},
		  "start": {"dateTime": "2017-04-15T12:00:00", "timeZone": "Pacific Standard Time"},
		  "end": {"dateTime": "2017-04-15T14:00:00", "timeZone": "Pacific Standard Time"},
		  "location": {"displayName": "Harry's Bar"},
		  "attendees": [{"emailAddress": {"address": "samanthab@contoso.onmicrosoft.com", "name": "Samantha Booth"}, "type": "required"}]
		}`
		r := h.mustStatus(h.do("POST", "/users/"+lee+"/events", body, "Prefer", `outlook.timezone="Pacific Standard Time"`), 201)
		checkGolden(t, "create-event-response", false, r.json(t))
	})

	t.Run("change-notification", func(t *testing.T) {
		rv.wait(t, 1)
		n := rv.notifications()[0]
		checkGolden(t, "change-notification", true, asAny(t, changeNotificationCollection{Value: []changeNotification{n}}))
	})

	t.Run("lifecycle-notification", func(t *testing.T) {
		h.mustStatus(h.control("POST", "/_emulator/lifecycle", map[string]any{"subscription_id": sub["id"], "event": "missed"}), 202)
		lc.wait(t, 1)
		checkGolden(t, "lifecycle-notification", true, asAny(t, changeNotificationCollection{Value: lc.notifications()}))
	})

	t.Run("delta", func(t *testing.T) {
		window := "/users/" + lee + "/calendarView/delta?startDateTime=2017-04-01T00:00:00Z&endDateTime=2017-05-01T00:00:00Z"
		_, link, _ := h.deltaRound(window)
		gone := h.createEvent(lee, map[string]any{"start": map[string]any{"dateTime": "2017-04-20T10:00:00", "timeZone": "UTC"}, "end": map[string]any{"dateTime": "2017-04-20T11:00:00", "timeZone": "UTC"}})
		h.mustStatus(h.do("DELETE", "/users/"+lee+"/events/"+gone["id"].(string), nil), 204)
		h.createEvent(lee, map[string]any{
			"location": map[string]any{"displayName": "Chapel", "address": map[string]any{"street": "900 Broadway", "city": "Seattle", "state": "WA", "countryOrRegion": "United States", "postalCode": "98122"}, "coordinates": map[string]any{"latitude": 47.6105, "longitude": -122.321}},
			"start":    map[string]any{"dateTime": "2017-04-25T06:00:00", "timeZone": "UTC"},
			"end":      map[string]any{"dateTime": "2017-04-25T07:30:00", "timeZone": "UTC"},
		})
		page := h.mustStatus(h.do("GET", link, nil), 200).json(t)
		checkGolden(t, "delta-next-round", false, page)
	})
}
