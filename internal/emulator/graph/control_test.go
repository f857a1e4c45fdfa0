package graph

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestBatch(t *testing.T) {
	h := newHarness(t, Options{}, false)
	ev := h.createEvent(adele, nil)
	id := ev["id"].(string)
	body := map[string]any{"requests": []any{
		map[string]any{"id": "2", "dependsOn": []string{"1"}, "method": "GET", "url": "/users/" + adele + "/events/" + id + "?$select=subject"},
		map[string]any{"id": "1", "method": "PATCH", "url": "/users/" + adele + "/events/" + id, "headers": map[string]string{"Content-Type": "application/json"}, "body": map[string]any{"subject": "batched"}},
		map[string]any{"id": "3", "method": "GET", "url": "/users/" + adele + "/events/AAMkAbogus"},
		map[string]any{"id": "4", "dependsOn": []string{"3"}, "method": "DELETE", "url": "/users/" + adele + "/events/" + id},
	}}
	res := h.mustStatus(h.do("POST", "/$batch", body), 200).json(t)
	byID := map[string]map[string]any{}
	for _, r := range res["responses"].([]any) {
		m := r.(map[string]any)
		byID[m["id"].(string)] = m
	}
	want := map[string]float64{"1": 200, "2": 200, "3": 400, "4": 424}
	for id, status := range want {
		if byID[id]["status"] != status {
			t.Errorf("step %s status %v, want %v: %v", id, byID[id]["status"], status, byID[id])
		}
	}
	if b := byID["2"]["body"].(map[string]any); b["subject"] != "batched" {
		t.Errorf("dependent GET saw %v", b)
	}
	routes, _ := h.em.Stats()
	for key, n := range map[string]int64{"POST /$batch": 1, "PATCH /users/{id}/events/{id}": 1, "GET /users/{id}/events/{id}": 2, "POST /users/{id}/events": 1} {
		if routes[key] != n {
			t.Errorf("stats[%q] = %d, want %d (all: %v)", key, routes[key], n, routes)
		}
	}

	var many []any
	for i := range 21 {
		many = append(many, map[string]any{"id": string(rune('a' + i)), "method": "GET", "url": "/users"})
	}
	bad := []struct {
		name string
		body any
	}{
		{"too many", map[string]any{"requests": many}},
		{"duplicate ids", map[string]any{"requests": []any{map[string]any{"id": "1", "method": "GET", "url": "/users"}, map[string]any{"id": "1", "method": "GET", "url": "/users"}}}},
		{"unknown dependency", map[string]any{"requests": []any{map[string]any{"id": "1", "dependsOn": []string{"9"}, "method": "GET", "url": "/users"}}}},
		{"body without content type", map[string]any{"requests": []any{map[string]any{"id": "1", "method": "POST", "url": "/users/" + adele + "/events", "body": map[string]any{}}}}},
		{"absolute url", map[string]any{"requests": []any{map[string]any{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"}}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if r := h.do("POST", "/$batch", tc.body); r.status != 400 {
				t.Errorf("status %d: %s", r.status, r.body)
			}
		})
	}
}

func TestFaultsAndSettings(t *testing.T) {
	h := newHarness(t, Options{}, false)
	if err := h.em.SetFaults([]byte(`{"throttle_rate": 1}`)); err != nil {
		t.Fatal(err)
	}
	r := h.do("GET", "/users/"+lee+"/events", nil)
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Errorf("throttle fault: %d %q", r.status, r.header.Get("Retry-After"))
	}
	if err := h.em.SetFaults([]byte(`{"throttle_rate": 0, "error_rate": 1}`)); err != nil {
		t.Fatal(err)
	}
	if r := h.do("GET", "/users/"+lee, nil); r.status < 500 {
		t.Errorf("error fault: %d", r.status)
	}
	if err := h.em.SetFaults([]byte(`{"latency_ms": 5}`)); err != nil {
		t.Fatal(err)
	}
	if f := h.em.Faults().(Faults); f.ErrorRate != 1 || f.LatencyMS != 5 {
		t.Errorf("omitted fields changed: %+v", f)
	}
	if err := h.em.SetFaults([]byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if f := h.em.Faults().(Faults); f != (Faults{}) {
		t.Errorf("{} did not clear: %+v", f)
	}
	for _, bad := range []string{`{"throttle_rate": 1.5}`, `{"throttle": 1}`, `{"latency_ms": -1}`} {
		if err := h.em.SetFaults([]byte(bad)); err == nil {
			t.Errorf("SetFaults(%s) accepted", bad)
		}
	}

	if err := h.em.SetSettings([]byte(`{"notification_retry_window_s": 60, "notification_backoff_ms": 250, "extra_update_after_create": false}`)); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(h.em.Settings())
	var s map[string]any
	_ = json.Unmarshal(raw, &s)
	if s["notification_retry_window_s"] != 60.0 || s["notification_backoff_ms"] != 250.0 || s["extra_update_after_create"] != false || s["max_subscription_minutes"] != 10070.0 {
		t.Errorf("settings = %v", s)
	}
	for _, bad := range []string{`{"retry_window": 1}`, `{"mailbox_concurrency": 0}`, `{"page_size": 5000}`} {
		if err := h.em.SetSettings([]byte(bad)); err == nil {
			t.Errorf("SetSettings(%s) accepted", bad)
		}
	}
	info := h.em.Info()
	if info["graph_base_url"] != h.base+"/graph/v1.0" || info["graph_scope"] != "https://graph.microsoft.com/.default" {
		t.Errorf("info = %v", info)
	}
}

func TestControlCreateUsers(t *testing.T) {
	h := newHarness(t, Options{}, false)
	if err := h.em.Reset("empty"); err != nil {
		t.Fatal(err)
	}
	if n := len(h.mustStatus(h.do("GET", "/users", nil), 200).json(t)["value"].([]any)); n != 0 {
		t.Fatalf("empty seed has %d users", n)
	}
	r := h.control("POST", "/_emulator/graph/users", map[string]any{
		"users":    []any{map[string]any{"userPrincipalName": "solo@contoso-fs.example", "displayName": "Solo", "timeZone": "Pacific Standard Time"}},
		"generate": map[string]any{"count": 2000, "prefix": "load"},
	})
	if r.status != 201 {
		t.Fatalf("create users: %d %s", r.status, r.body)
	}
	out := r.json(t)
	if out["created"] != 2001.0 {
		t.Errorf("created = %v", out["created"])
	}
	again := h.control("POST", "/_emulator/graph/users", map[string]any{"generate": map[string]any{"count": 1, "prefix": "load"}})
	if again.status != 409 {
		t.Errorf("generated ids must be stable, so a repeat conflicts: %d", again.status)
	}
	h.mustStatus(h.do("GET", "/users/load-2000@contoso-fs.example", nil), 200)
	h.createEvent("load-1999@contoso-fs.example", nil)
	if r := h.control("POST", "/_emulator/graph/users", map[string]any{"users": []any{map[string]any{"userPrincipalName": "x@y", "timeZone": "Nowhere"}}}); r.status != 400 || !strings.Contains(string(r.body), "Nowhere") {
		t.Errorf("bad zone: %d %s", r.status, r.body)
	}
}

// TestMailboxFootprint keeps idle mailboxes small for the 10,000-mailbox
// scale test.
func TestMailboxFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("measures heap")
	}
	h := newHarness(t, Options{}, false)
	if err := h.em.Reset("empty"); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h.mustStatus(h.control("POST", "/_emulator/graph/users", map[string]any{"generate": map[string]any{"count": 10000, "prefix": "scale"}}), 201)
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / 10000
	t.Logf("%d bytes per idle mailbox", per)
	if per > 2048 {
		t.Errorf("%d bytes per idle mailbox, want at most 2 KiB", per)
	}
}
