package outlook

import (
	"context"
	"errors"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	emugraph "github.com/bookingsync/bookingsync/internal/emulator/graph"
)

func TestZoneCache(t *testing.T) {
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	var (
		mu    gosync.Mutex
		calls = map[string]int{}
		zones = map[string]string{"a": "W. Europe Standard Time", "b": "Pacific Standard Time", "u": "UTC", "x": "Mars Standard Time"}
		fail  atomic.Bool
	)
	z := NewZoneCache(func(_ context.Context, mailbox string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls[mailbox]++
		if fail.Load() {
			return "", errors.New("dataverse down")
		}
		return zones[mailbox], nil
	}, ZoneCacheOptions{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	count := func(m string) int { mu.Lock(); defer mu.Unlock(); return calls[m] }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	for mb, want := range map[string]string{"a": "W. Europe Standard Time", "b": "Pacific Standard Time", "u": "", "x": "", "none": ""} {
		if got := z.TimeZone(mb); got != want {
			t.Errorf("TimeZone(%s) = %q, want %q", mb, got, want)
		}
	}
	// Cached, also for concurrent callers and under another spelling.
	var wg gosync.WaitGroup
	for range 20 {
		wg.Go(func() { _ = z.TimeZone("A") })
	}
	wg.Wait()
	if n := count("a"); n != 1 {
		t.Errorf("%d lookups of a cached mailbox, want 1", n)
	}

	// A failure after the TTL keeps the last known zone and retries later.
	advance(25 * time.Hour)
	fail.Store(true)
	if got := z.TimeZone("a"); got != "W. Europe Standard Time" {
		t.Errorf("failed refresh: %q, want the last known zone", got)
	}
	_ = z.TimeZone("a")
	if n := count("a"); n != 2 {
		t.Errorf("%d lookups, want 2 (no retry within a minute)", n)
	}
	// A mailbox never looked up successfully gets UTC meanwhile.
	if got := z.TimeZone("new"); got != "" {
		t.Errorf("failed first lookup: %q, want UTC", got)
	}
	fail.Store(false)
	mu.Lock()
	zones["a"] = "GMT Standard Time"
	mu.Unlock()
	advance(2 * time.Minute)
	if got := z.TimeZone("a"); got != "GMT Standard Time" {
		t.Errorf("after retry: %q", got)
	}
}

// TestZoneCacheWritesZone: a Calendar using the cache writes the mailbox's
// zone on the wire (start.timeZone) with the right instant.
func TestZoneCacheWritesZone(t *testing.T) {
	z := NewZoneCache(func(context.Context, string) (string, error) { return "W. Europe Standard Time", nil }, ZoneCacheOptions{})
	h := newHarness(t, emugraph.Options{}, Options{TimeZone: z.TimeZone})
	ct := content("zoned")
	ev, err := h.cal.Create(context.Background(), adele, "b-zone", TransactionID("b-zone", adele, 1), ct)
	if err != nil {
		t.Fatal(err)
	}
	reqs := h.requests()
	body := string(reqs[len(reqs)-1].Body)
	for _, want := range []string{`"dateTime":"2026-12-01T10:00:00.0000000","timeZone":"W. Europe Standard Time"`} {
		if !strings.Contains(body, want) {
			t.Errorf("POST body %s lacks %s", body, want)
		}
	}
	if !ev.Content.Start.Equal(ct.Start) || !ev.Content.End.Equal(ct.End) {
		t.Errorf("instant changed: %v–%v, want %v–%v", ev.Content.Start, ev.Content.End, ct.Start, ct.End)
	}
}
