package graph

import (
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// offsets returns the receiver's POST times relative to start.
func (rv *receiver) offsets(start time.Time) []time.Duration {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	var out []time.Duration
	for _, t := range rv.times {
		out = append(out, t.Sub(start))
	}
	return out
}

func TestDeliveryRetries(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		status    func(n int) int
		hang      func(n int) bool
		wantTimes []time.Duration
		sent      int64
		retries   int64
		dropped   int64
	}{
		{
			name:      "succeeds on third attempt",
			opts:      Options{NotificationBackoff: 10 * time.Second},
			status:    func(n int) int { return map[bool]int{true: 500, false: 202}[n < 2] },
			wantTimes: []time.Duration{0, 10 * time.Second, 30 * time.Second},
			sent:      1, retries: 2,
		},
		{
			name:      "backoff capped",
			opts:      Options{NotificationBackoff: 10 * time.Second, NotificationBackoffMax: 15 * time.Second},
			status:    func(n int) int { return map[bool]int{true: 503, false: 200}[n < 3] },
			wantTimes: []time.Duration{0, 10 * time.Second, 25 * time.Second, 40 * time.Second},
			sent:      1, retries: 3,
		},
		{
			name:      "retry window closes",
			opts:      Options{NotificationBackoff: 10 * time.Second, NotificationRetryWindow: time.Minute},
			status:    func(int) int { return 500 },
			wantTimes: []time.Duration{0, 10 * time.Second, 30 * time.Second},
			retries:   2, dropped: 1,
		},
		{
			name:      "no answer within the delivery timeout",
			opts:      Options{NotificationBackoff: 10 * time.Second},
			hang:      func(n int) bool { return n == 0 },
			wantTimes: []time.Duration{0, 13 * time.Second},
			sent:      1, retries: 1,
		},
		{
			name:      "redirect is a failure",
			opts:      Options{NotificationBackoff: 10 * time.Second},
			status:    func(n int) int { return map[bool]int{true: 302, false: 202}[n == 0] },
			wantTimes: []time.Duration{0, 10 * time.Second},
			sent:      1, retries: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tc.opts.NoExtraUpdate = true
				h := newHarness(t, tc.opts, true)
				rv := newReceiver()
				rv.status, rv.hang = tc.status, tc.hang
				h.mustStatus(h.subscribe(lee, h.hosts.add("receiver.test", rv), "", nil), 201)
				start := time.Now()
				h.createEvent(lee, nil)
				time.Sleep(5 * time.Hour)
				synctest.Wait()
				got := rv.offsets(start)
				if len(got) != len(tc.wantTimes) {
					t.Fatalf("attempts at %v, want %v", got, tc.wantTimes)
				}
				for i := range got {
					if got[i] != tc.wantTimes[i] {
						t.Errorf("attempt %d at %v, want %v", i, got[i], tc.wantTimes[i])
					}
				}
				_, extra := h.em.Stats()
				if extra["notifications_sent"] != tc.sent || extra["notification_retries"] != tc.retries || extra["notifications_dropped"] != tc.dropped {
					t.Errorf("sent %d retries %d dropped %d, want %d %d %d", extra["notifications_sent"], extra["notification_retries"], extra["notifications_dropped"], tc.sent, tc.retries, tc.dropped)
				}
			})
		})
	}
}

func TestBatchingWhilePiledUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{NoExtraUpdate: true, NotificationDelay: time.Second}, true)
		rv := newReceiver()
		h.mustStatus(h.subscribe(lee, h.hosts.add("receiver.test", rv), "", nil), 201)
		for range 3 {
			h.createEvent(lee, nil)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if len(rv.posts) != 1 || len(rv.posts[0].Value) != 3 {
			t.Fatalf("%d POSTs, want 1 with 3 notifications", len(rv.posts))
		}
	})
}

func TestExpiryAndReauthorization(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{NoExtraUpdate: true, ReauthorizationLead: 30 * time.Minute, ReauthorizationInterval: 10 * time.Minute}, true)
		rv, lc := newReceiver(), newReceiver()
		notify := h.hosts.add("receiver.test", rv)
		life := h.hosts.add("lifecycle.test", lc)
		start := time.Now()
		sub := h.mustStatus(h.subscribe(lee, notify, life, map[string]any{"expirationDateTime": start.Add(time.Hour).Format(time.RFC3339)}), 201).json(t)
		id := sub["id"].(string)

		time.Sleep(29 * time.Minute)
		synctest.Wait()
		if n := len(lc.notifications()); n != 0 {
			t.Fatalf("%d lifecycle notifications before the lead time", n)
		}
		time.Sleep(15 * time.Minute) // 44m: sent at 30m and 40m
		synctest.Wait()
		got := lc.notifications()
		if len(got) != 2 || got[0].LifecycleEvent != "reauthorizationRequired" {
			t.Fatalf("lifecycle = %+v", got)
		}
		if off := lc.offsets(start); off[0] < 30*time.Minute || off[0] > 31*time.Minute {
			t.Errorf("first reauthorizationRequired at %v, want ~30m", off[0])
		}
		h.mustStatus(h.do("POST", "/subscriptions/"+id+"/reauthorize", nil), 204)

		time.Sleep(17 * time.Minute) // past expiry at 60m
		synctest.Wait()
		if r := h.do("GET", "/subscriptions/"+id, nil); r.status != 404 {
			t.Fatalf("expired subscription still there: %d", r.status)
		}
		h.createEvent(lee, nil)
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(rv.notifications()); n != 0 {
			t.Errorf("expired subscription delivered %d notifications", n)
		}
		if _, extra := h.em.Stats(); extra["subscriptions_expired"] != 1 {
			t.Errorf("subscriptions_expired = %d", extra["subscriptions_expired"])
		}
	})
}

func TestMailboxConcurrencyLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{}, true)
		if err := h.em.SetFaults([]byte(`{"latency_ms": 1000}`)); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		statuses := map[string][]int{}
		var retryAfter []string
		var wg sync.WaitGroup
		for i := range 7 {
			user := lee
			if i == 6 {
				user = adele // another mailbox is not affected
			}
			wg.Go(func() {
				r := h.do("GET", "/users/"+user+"/events", nil)
				mu.Lock()
				defer mu.Unlock()
				statuses[user] = append(statuses[user], r.status)
				if r.status == 429 {
					retryAfter = append(retryAfter, r.header.Get("Retry-After"))
				}
			})
		}
		wg.Wait()
		sort.Ints(statuses[lee])
		if got := statuses[lee]; len(got) != 6 || got[3] != 200 || got[4] != 429 || got[5] != 429 {
			t.Fatalf("statuses %v, want four 200s and two 429s", got)
		}
		if statuses[adele][0] != 200 || strings.Join(retryAfter, ",") != "1,1" {
			t.Errorf("adele %v, Retry-After %v", statuses[adele], retryAfter)
		}
		// Slots are released: a later request succeeds.
		if r := h.do("GET", "/users/"+lee+"/events", nil); r.status != http.StatusOK {
			t.Errorf("after the burst: %d", r.status)
		}
	})
}

func TestNotificationFaults(t *testing.T) {
	tests := []struct {
		name    string
		faults  string
		want    int // notifications received
		counter string
	}{
		{"drop", `{"drop_notifications_rate": 1}`, 0, "notifications_dropped"},
		{"duplicate", `{"duplicate_notifications_rate": 1}`, 2, "notifications_duplicated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, Options{NoExtraUpdate: true}, true)
				rv := newReceiver()
				h.mustStatus(h.subscribe(lee, h.hosts.add("receiver.test", rv), "", nil), 201)
				if err := h.em.SetFaults([]byte(tc.faults)); err != nil {
					t.Fatal(err)
				}
				h.createEvent(lee, nil)
				time.Sleep(time.Minute)
				synctest.Wait()
				if n := len(rv.notifications()); n != tc.want {
					t.Errorf("received %d, want %d", n, tc.want)
				}
				if _, extra := h.em.Stats(); extra[tc.counter] != 1 {
					t.Errorf("%s = %d", tc.counter, extra[tc.counter])
				}
			})
		})
	}
}

func TestReorderDeliversEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{NoExtraUpdate: true, NotificationDelay: time.Second}, true)
		rv := newReceiver()
		h.mustStatus(h.subscribe(lee, h.hosts.add("receiver.test", rv), "", nil), 201)
		if err := h.em.SetFaults([]byte(`{"reorder_notifications": true}`)); err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for range 5 {
			ev := h.createEvent(lee, nil)
			want[ev["id"].(string)] = true
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		got := rv.notifications()
		if len(got) != 5 {
			t.Fatalf("received %d, want 5", len(got))
		}
		for _, n := range got {
			if !want[n.ResourceData.ID] {
				t.Errorf("unexpected %s", n.ResourceData.ID)
			}
			delete(want, n.ResourceData.ID)
		}
	})
}
