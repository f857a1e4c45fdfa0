package dataverse

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestObserver: requests and row writes are reported as they happen, with
// the row's new version, its values and the webhooks queued for the write.
func TestObserver(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	url, ch := receiver(t)
	h.register(url, 4, "key", "Update", "bookableresourcebooking", "")
	id := h.createBooking("Boiler")

	var (
		mu     sync.Mutex
		reqs   []Request
		writes []Write
	)
	h.e.Observe(Observer{
		OnRequest: func(r Request) { mu.Lock(); reqs = append(reqs, r); mu.Unlock() },
		OnWrite:   func(w Write) { mu.Lock(); writes = append(writes, w); mu.Unlock() },
	})
	if rec := h.do("PATCH", "/bookableresourcebookings("+id+")", map[string]any{"starttime": "2026-03-02T11:00:00Z", "endtime": "2026-03-02T12:00:00Z"}); rec.Code != 204 {
		t.Fatalf("update: %d %s", rec.Code, rec.Body.String())
	}
	wait(t, ch)
	if rec := h.do("DELETE", "/bookableresourcebookings("+id+")", nil); rec.Code != 204 {
		t.Fatalf("delete: %d", rec.Code)
	}
	h.e.Observe(Observer{})
	h.do("GET", "/bookableresourcebookings?$top=1", nil)

	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 2 || reqs[0].Method != "PATCH" || reqs[0].Path != "/bookableresourcebookings("+id+")" ||
		reqs[0].Route != "PATCH /bookableresourcebookings({id})" || reqs[1].Method != "DELETE" {
		t.Fatalf("requests: %+v", reqs)
	}
	if len(writes) != 2 {
		t.Fatalf("writes: %+v", writes)
	}
	u, d := writes[0], writes[1]
	start, _ := u.Values["starttime"].(time.Time)
	if u.Message != "Update" || u.Table != "bookableresourcebooking" || !strings.EqualFold(u.ID, id) || u.Version == 0 ||
		u.Values["versionnumber"] != u.Version || !start.Equal(time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)) || u.Webhooks != 1 {
		t.Errorf("update seen as %+v", u)
	}
	if d.Message != "Delete" || !strings.EqualFold(d.ID, id) || d.Version != 0 || d.Values["name"] != "Boiler" || d.Webhooks != 0 {
		t.Errorf("delete seen as %+v", d)
	}
}
