package graph

import (
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestObserver: requests and event changes are reported as they happen,
// with the id, etag and notification count the client and the subscriber
// see; Outlook's own update after a create is told apart from API writes.
func TestObserver(t *testing.T) {
	h := newHarness(t, Options{ExtraUpdateDelay: 50 * time.Millisecond}, false)
	rv := newReceiver()
	srv := httptest.NewServer(rv)
	defer srv.Close()
	h.mustStatus(h.subscribe(adele, srv.URL+"/notify", "", nil), 201)

	var (
		mu     sync.Mutex
		reqs   []Request
		writes []Write
	)
	h.em.Observe(Observer{
		OnRequest: func(r Request) { mu.Lock(); reqs = append(reqs, r); mu.Unlock() },
		OnWrite:   func(w Write) { mu.Lock(); writes = append(writes, w); mu.Unlock() },
	})
	ev := h.createEvent(adele, map[string]any{"singleValueExtendedProperties": []any{map[string]any{"id": extID, "value": "BK-1"}}},
		"Prefer", `IdType="ImmutableId"`)
	id := str(ev, "id")
	patched := h.mustStatus(h.do("PATCH", "/users/"+adele+"/events/"+id, map[string]any{"subject": "Moved"}), 200).json(t)
	time.Sleep(150 * time.Millisecond) // Outlook's extra update
	h.mustStatus(h.do("DELETE", "/users/"+adele+"/events/"+id, nil), 204)
	h.em.Observe(Observer{})
	h.mustStatus(h.do("GET", "/users/"+adele+"/events", nil), 200)

	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 3 || reqs[1].Method != "PATCH" || reqs[1].Path != "/users/"+adele+"/events/"+id ||
		reqs[1].Route != "PATCH /users/{id}/events/{id}" || reqs[1].At.IsZero() {
		t.Fatalf("requests: %+v", reqs)
	}
	want := []struct{ change, source string }{{"created", "api"}, {"updated", "api"}, {"updated", "outlook"}, {"deleted", "api"}}
	if len(writes) != len(want) {
		t.Fatalf("writes: %+v", writes)
	}
	for i, w := range writes {
		if w.ChangeType != want[i].change || w.Source != want[i].source || w.EventID != id || w.Mailbox != adele ||
			w.Extended[extID] != "BK-1" || w.Notifications != 1 {
			t.Errorf("write %d: %+v, want %v", i, w, want[i])
		}
	}
	if writes[1].ETag != str(patched, "@odata.etag") || writes[1].Subject != "Moved" ||
		!writes[1].Start.Equal(time.Date(2030, 3, 4, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("PATCH seen as %+v, answered %v", writes[1], patched["@odata.etag"])
	}
	rv.wait(t, 4)
	for i, n := range rv.notifications() {
		if n.ResourceData.ODataETag != writes[i].ETag {
			t.Errorf("notification %d etag %s, observed %s", i, n.ResourceData.ODataETag, writes[i].ETag)
		}
	}
}
