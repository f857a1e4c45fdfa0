package graph

import (
	"fmt"
	"testing"
	"time"
)

// deltaRound follows links until a deltaLink, returning items and that link.
func (h *harness) deltaRound(first string, headers ...string) ([]map[string]any, string, int) {
	h.t.Helper()
	var items []map[string]any
	link, pages := first, 0
	for {
		page := h.mustStatus(h.do("GET", link, nil, headers...), 200).json(h.t)
		pages++
		for _, v := range page["value"].([]any) {
			items = append(items, v.(map[string]any))
		}
		if next, ok := page["@odata.nextLink"].(string); ok {
			link = next
			continue
		}
		return items, page["@odata.deltaLink"].(string), pages
	}
}

func TestDelta(t *testing.T) {
	h := newHarness(t, Options{NoExtraUpdate: true}, false)
	at := func(day int) map[string]any {
		return map[string]any{
			"start": map[string]any{"dateTime": fmt.Sprintf("2030-03-%02dT09:00:00", day), "timeZone": "UTC"},
			"end":   map[string]any{"dateTime": fmt.Sprintf("2030-03-%02dT10:00:00", day), "timeZone": "UTC"},
		}
	}
	var ids []string
	for day := 1; day <= 5; day++ {
		ids = append(ids, h.createEvent(lee, at(day))["id"].(string))
	}
	h.createEvent(lee, at(25)) // outside the window
	window := "/users/" + lee + "/calendarView/delta?startDateTime=2030-03-01T00:00:00Z&endDateTime=2030-03-10T00:00:00Z"

	items, deltaLink, pages := h.deltaRound(window, "Prefer", "odata.maxpagesize=2")
	if len(items) != 5 || pages != 3 {
		t.Fatalf("initial round: %d items in %d pages, want 5 in 3", len(items), pages)
	}
	for _, it := range items {
		if it["@odata.type"] != "#microsoft.graph.event" || it["subject"] == nil {
			t.Fatalf("initial item = %v", it)
		}
	}

	h.mustStatus(h.do("PATCH", "/users/"+lee+"/events/"+ids[0], map[string]any{"subject": "changed"}), 200)
	h.mustStatus(h.do("PATCH", "/users/"+lee+"/events/"+ids[1], at(20)), 200) // moved out
	h.mustStatus(h.do("DELETE", "/users/"+lee+"/events/"+ids[2], nil), 204)
	added := h.createEvent(lee, at(6))["id"].(string)
	addedOutside := h.createEvent(lee, at(28))["id"].(string)

	items, deltaLink2, _ := h.deltaRound(deltaLink)
	got := map[string]string{}
	for _, it := range items {
		kind := "full"
		if _, ok := it["@removed"]; ok {
			kind = "removed"
			if len(it) != 3 || it["@removed"].(map[string]any)["reason"] != "deleted" {
				t.Errorf("removed item shape: %v", it)
			}
		}
		got[it["id"].(string)] = kind
	}
	want := map[string]string{ids[0]: "full", ids[1]: "removed", ids[2]: "removed", added: "full", addedOutside: "removed"}
	if len(got) != len(want) {
		t.Errorf("second round = %v, want %v", got, want)
	}
	for id, kind := range want {
		if got[id] != kind {
			t.Errorf("item %s: %q, want %q", id[len(id)-8:], got[id], kind)
		}
	}

	items, _, _ = h.deltaRound(deltaLink2)
	if len(items) != 0 {
		t.Errorf("no changes, but delta returned %d items", len(items))
	}

	errs := []struct {
		name, path string
		status     int
		code       string
	}{
		{"select", window + "&$select=subject", 400, codeInvalidURLQuery},
		{"filter", window + "&$filter=subject%20eq%20'x'", 400, codeInvalidURLQuery},
		{"bogus token", "/users/" + lee + "/calendarView/delta?$deltatoken=R0usmcMDNGg0J1E", 410, codeSyncStateNotFound},
		{"other mailbox", "/users/" + adele + "/calendarView/delta?" + deltaLink2[len(h.base+basePath+"/users/"+lee+"/calendarView/delta?"):], 410, codeSyncStateNotFound},
		{"no window", "/users/" + lee + "/calendarView/delta", 400, codeInvalidParameter},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("GET", tc.path, nil)
			if r.status != tc.status || r.errorCode(t) != tc.code {
				t.Fatalf("got %d %s", r.status, r.body)
			}
		})
	}

	h.tn.Advance(8 * 24 * time.Hour)
	h.token, _ = h.tn.Issue(Audience)
	r := h.do("GET", deltaLink2, nil)
	if r.status != 410 || r.errorCode(t) != codeSyncStateNotFound {
		t.Errorf("expired token: %d %s", r.status, r.body)
	}
}

func TestDeltaRecurrence(t *testing.T) {
	h := newHarness(t, Options{NoExtraUpdate: true}, false)
	master := h.createEvent(adele, map[string]any{
		"start": map[string]any{"dateTime": "2030-01-07T09:00:00", "timeZone": "UTC"},
		"end":   map[string]any{"dateTime": "2030-01-07T10:00:00", "timeZone": "UTC"},
		"recurrence": map[string]any{
			"pattern": map[string]any{"type": "daily", "interval": 1},
			"range":   map[string]any{"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 3},
		},
	})
	window := "/users/" + adele + "/calendarView/delta?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z"
	items, link, _ := h.deltaRound(window)
	if len(items) != 3 {
		t.Fatalf("initial: %d items", len(items))
	}
	for _, it := range items {
		if it["type"] != "occurrence" || it["seriesMasterId"] != master["id"] {
			t.Fatalf("item = %v", it)
		}
	}
	h.mustStatus(h.do("DELETE", "/users/"+adele+"/events/"+items[1]["id"].(string), nil), 204)
	next, _, _ := h.deltaRound(link)
	removed := 0
	for _, it := range next {
		if _, ok := it["@removed"]; ok {
			removed++
			if it["id"] != items[1]["id"] {
				t.Errorf("removed %v, want the deleted occurrence", it["id"])
			}
		}
	}
	if removed != 1 || len(next) != 3 {
		t.Errorf("after deleting an occurrence: %d items, %d removed; want 3 and 1", len(next), removed)
	}
}
