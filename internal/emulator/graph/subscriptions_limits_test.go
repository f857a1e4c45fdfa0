package graph

import (
	"encoding/json"
	"flag"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

// Demo users beyond adele and lee, for more subscriptions than two.
const (
	megan  = "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b03"
	nestor = "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b04"
)

// limitHarness is an in-process emulator whose notification URL answers
// the validation handshake. Limit windows are an hour long, so that real
// time never ends one mid-test; tests move on with the tenant's clock.
func limitHarness(t *testing.T, opts Options) (*harness, string) {
	t.Helper()
	if opts.SubscriptionLimitWindow == 0 {
		opts.SubscriptionLimitWindow = time.Hour
	}
	if opts.MailboxRequestWindow == 0 {
		opts.MailboxRequestWindow = time.Hour
	}
	h := newHarness(t, opts, true)
	return h, h.hosts.add("hooks.test", newReceiver()) + "/notify"
}

// checkThrottled asserts a 429 in Graph's shape with a whole-second
// Retry-After between 1 and maxWait.
func checkThrottled(t *testing.T, status int, retryAfter string, code string, maxWait time.Duration) {
	t.Helper()
	if status != 429 {
		t.Fatalf("status %d, want 429", status)
	}
	if code != codeThrottled {
		t.Errorf("error code %q, want %q", code, codeThrottled)
	}
	n, err := strconv.Atoi(retryAfter)
	if err != nil || n < 1 || time.Duration(n)*time.Second > maxWait {
		t.Errorf("Retry-After %q, want whole seconds in [1, %v]", retryAfter, maxWait)
	}
}

func stat(h *harness, name string) int64 {
	_, extra := h.em.Stats()
	return extra[name]
}

// TestSubscriptionWriteLimit: creates past the per-app write limit get a
// 429, create nothing and send no handshake; the next window admits again.
func TestSubscriptionWriteLimit(t *testing.T) {
	h, hook := limitHarness(t, Options{SubscriptionWritesPerWindow: 2})
	h.mustStatus(h.subscribe(adele, hook, "", nil), 201)
	h.mustStatus(h.subscribe(lee, hook, "", nil), 201)
	r := h.subscribe(megan, hook, "", nil)
	checkThrottled(t, r.status, r.header.Get("Retry-After"), r.errorCode(t), time.Hour)
	if n, _ := strconv.Atoi(r.header.Get("Retry-After")); n < 3500 {
		t.Errorf("Retry-After %d s, want about the hour left in the window", n)
	}
	if !strings.Contains(r.errorMessage(t), "2 write requests per application") {
		t.Errorf("message %q does not name the limit", r.errorMessage(t))
	}
	if got := stat(h, "validations_sent"); got != 2 {
		t.Errorf("validations_sent = %d, want 2: a refused create must not validate", got)
	}
	if subs := h.mustStatus(h.do("GET", "/subscriptions", nil), 200).json(t)["value"].([]any); len(subs) != 2 {
		t.Errorf("%d subscriptions, want 2", len(subs))
	}
	for name, want := range map[string]int64{"graph_subscription_throttled": 1, "graph_throttled_requests": 1, "graph_subscription_writes": 2} {
		if got := stat(h, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}

	h.tn.Advance(59 * time.Minute)
	r = h.subscribe(megan, hook, "", nil)
	checkThrottled(t, r.status, r.header.Get("Retry-After"), r.errorCode(t), time.Minute)
	h.tn.Advance(time.Minute)
	h.mustStatus(h.subscribe(megan, hook, "", nil), 201)
	if got := stat(h, "validations_sent"); got != 3 {
		t.Errorf("validations_sent = %d, want 3", got)
	}
}

// TestSubscriptionLimits walks sequences of /subscriptions calls through
// each of the four windows.
func TestSubscriptionLimits(t *testing.T) {
	type step struct {
		op   string // create <user>, list, get, renew, delete, reauthorize
		want int
	}
	tests := []struct {
		name  string
		opts  Options
		steps []step
	}{
		{"writes per app; reads do not count", Options{SubscriptionWritesPerWindow: 2}, []step{
			{"create " + adele, 201}, {"list", 200}, {"get", 200}, {"get", 200}, {"create " + lee, 201},
			{"renew", 429}, {"delete", 429}, {"reauthorize", 429}, {"create " + megan, 429},
			{"get", 200}, {"list", 200}, // the refused delete deleted nothing
		}},
		{"requests of any kind per app", Options{SubscriptionRequestsPerWindow: 3}, []step{
			{"create " + adele, 201}, {"get", 200}, {"list", 200}, {"get", 429}, {"create " + lee, 429}, {"reauthorize", 429},
		}},
		{"writes per tenant", Options{SubscriptionWritesPerWindow: Unlimited, TenantSubscriptionWritesPerWindow: 2}, []step{
			{"create " + adele, 201}, {"renew", 200}, {"reauthorize", 429}, {"list", 200},
		}},
		{"requests of any kind per tenant", Options{SubscriptionRequestsPerWindow: Unlimited, TenantSubscriptionRequestsPerWindow: 2}, []step{
			{"create " + adele, 201}, {"list", 200}, {"get", 429}, {"delete", 429},
		}},
		{"unlimited", Options{SubscriptionWritesPerWindow: Unlimited, SubscriptionRequestsPerWindow: Unlimited,
			TenantSubscriptionWritesPerWindow: Unlimited, TenantSubscriptionRequestsPerWindow: Unlimited}, []step{
			{"create " + adele, 201}, {"create " + lee, 201}, {"create " + megan, 201}, {"renew", 200}, {"reauthorize", 204},
			{"list", 200}, {"get", 200}, {"delete", 204},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, hook := limitHarness(t, tc.opts)
			var sid string
			throttled := int64(0)
			for i, s := range tc.steps {
				var r response
				switch op, user, _ := strings.Cut(s.op, " "); op {
				case "create":
					r = h.subscribe(user, hook, "", nil)
					if r.status == 201 && sid == "" {
						sid = str(r.json(t), "id")
					}
				case "list":
					r = h.do("GET", "/subscriptions", nil)
				case "get":
					r = h.do("GET", "/subscriptions/"+sid, nil)
				case "renew":
					r = h.do("PATCH", "/subscriptions/"+sid, map[string]any{"expirationDateTime": h.tn.Now().Add(72 * time.Hour).Format(time.RFC3339)})
				case "delete":
					r = h.do("DELETE", "/subscriptions/"+sid, nil)
				case "reauthorize":
					r = h.do("POST", "/subscriptions/"+sid+"/reauthorize", nil)
				default:
					t.Fatalf("unknown op %q", s.op)
				}
				if r.status != s.want {
					t.Fatalf("step %d (%s): status %d, want %d: %s", i, s.op, r.status, s.want, r.body)
				}
				if r.status == 429 {
					throttled++
					checkThrottled(t, r.status, r.header.Get("Retry-After"), r.errorCode(t), time.Hour)
				}
			}
			if got := stat(h, "graph_subscription_throttled"); got != throttled {
				t.Errorf("graph_subscription_throttled = %d, want %d", got, throttled)
			}
		})
	}
}

// TestSubscriptionLimitDefaults: Graph's 1,000 writes per app in 20 s.
func TestSubscriptionLimitDefaults(t *testing.T) {
	h := newHarness(t, Options{}, true)
	hook := h.hosts.add("hooks.test", newReceiver()) + "/notify"
	sid := str(h.mustStatus(h.subscribe(adele, hook, "", nil), 201).json(t), "id")
	for i := range 999 {
		if r := h.do("POST", "/subscriptions/"+sid+"/reauthorize", nil); r.status != 204 {
			t.Fatalf("reauthorize %d: status %d: %s", i+2, r.status, r.body)
		}
	}
	r := h.do("POST", "/subscriptions/"+sid+"/reauthorize", nil)
	checkThrottled(t, r.status, r.header.Get("Retry-After"), r.errorCode(t), 20*time.Second)
	h.mustStatus(h.do("GET", "/subscriptions/"+sid, nil), 200) // reads have room up to 5,000
	h.tn.Advance(20 * time.Second)
	h.mustStatus(h.do("POST", "/subscriptions/"+sid+"/reauthorize", nil), 204)
	if got := stat(h, "graph_subscription_writes"); got != 1001 {
		t.Errorf("graph_subscription_writes = %d, want 1001", got)
	}
}

// TestSubscriptionLimitBatch: $batch steps are counted one by one, and a
// step over the limit gets its own 429 inside a 200 batch.
func TestSubscriptionLimitBatch(t *testing.T) {
	h, hook := limitHarness(t, Options{SubscriptionWritesPerWindow: 2})
	create := func(id, user string) map[string]any {
		return map[string]any{"id": id, "method": "POST", "url": "/subscriptions",
			"headers": map[string]string{"Content-Type": "application/json"},
			"body": map[string]any{"changeType": "created", "notificationUrl": hook, "resource": "/users/" + user + "/events",
				"expirationDateTime": h.tn.Now().Add(48 * time.Hour).Format(time.RFC3339)}}
	}
	body := map[string]any{"requests": []any{
		create("1", adele), create("2", lee), create("3", megan),
		map[string]any{"id": "4", "method": "GET", "url": "/subscriptions"},
		map[string]any{"id": "5", "dependsOn": []string{"3"}, "method": "GET", "url": "/subscriptions"},
	}}
	res := h.mustStatus(h.do("POST", "/$batch", body), 200).json(t)
	byID := map[string]map[string]any{}
	for _, r := range res["responses"].([]any) {
		m := r.(map[string]any)
		byID[m["id"].(string)] = m
	}
	for id, want := range map[string]float64{"1": 201, "2": 201, "3": 429, "4": 200, "5": 424} {
		if byID[id]["status"] != want {
			t.Errorf("step %s status %v, want %v: %v", id, byID[id]["status"], want, byID[id])
		}
	}
	step := byID["3"]
	headers, _ := step["headers"].(map[string]any)
	ra, _ := headers["Retry-After"].(string)
	code := str(step, "body", "error", "code")
	checkThrottled(t, 429, ra, code, time.Hour)
	if n := len(byID["4"]["body"].(map[string]any)["value"].([]any)); n != 2 {
		t.Errorf("%d subscriptions listed, want 2", n)
	}
	if got := stat(h, "validations_sent"); got != 2 {
		t.Errorf("validations_sent = %d, want 2", got)
	}
}

// TestMailboxVolumeLimit: Outlook's requests per app and mailbox.
func TestMailboxVolumeLimit(t *testing.T) {
	tests := []struct {
		name    string
		limit   int
		refused bool
	}{
		{"limited", 3, true},
		{"unlimited", Unlimited, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := limitHarness(t, Options{MailboxRequestsPerWindow: tc.limit})
			h.mustStatus(h.do("GET", "/users/"+adele+"/events", nil), 200)
			h.mustStatus(h.do("GET", "/users/"+adele+"/calendarView?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z", nil), 200)
			h.mustStatus(h.do("GET", "/users/"+adele+"/events", nil), 200)
			r := h.do("POST", "/users/"+adele+"/events", map[string]any{
				"subject": "Refused",
				"start":   map[string]any{"dateTime": "2030-03-04T09:00:00", "timeZone": "UTC"},
				"end":     map[string]any{"dateTime": "2030-03-04T10:00:00", "timeZone": "UTC"},
			})
			if !tc.refused {
				h.mustStatus(r, 201)
				if got := stat(h, "graph_mailbox_volume_throttled"); got != 0 {
					t.Errorf("graph_mailbox_volume_throttled = %d", got)
				}
				if n := len(h.em.limits.mailbox); n != 0 {
					t.Errorf("%d mailbox windows kept although the limit is off", n)
				}
				return
			}
			checkThrottled(t, r.status, r.header.Get("Retry-After"), r.errorCode(t), time.Hour)
			// Other mailboxes, directory reads and subscriptions are not counted here.
			h.mustStatus(h.do("GET", "/users/"+lee+"/events", nil), 200)
			h.mustStatus(h.do("GET", "/users/"+adele, nil), 200)
			batch := h.mustStatus(h.do("POST", "/$batch", map[string]any{"requests": []any{
				map[string]any{"id": "1", "method": "GET", "url": "/users/" + adele + "/events"},
				map[string]any{"id": "2", "method": "GET", "url": "/users/" + lee + "/events"},
			}}), 200).json(t)
			for _, x := range batch["responses"].([]any) {
				m := x.(map[string]any)
				want := map[string]float64{"1": 429, "2": 200}[m["id"].(string)]
				if m["status"] != want {
					t.Errorf("batch step %v: status %v, want %v", m["id"], m["status"], want)
				}
			}
			for name, want := range map[string]int64{"graph_mailbox_volume_throttled": 2, "graph_throttled_requests": 2} {
				if got := stat(h, name); got != want {
					t.Errorf("%s = %d, want %d", name, got, want)
				}
			}
			h.tn.Advance(time.Hour)
			refused := h.mustStatus(h.do("GET", "/users/"+adele+"/events?$filter="+url.QueryEscape("subject eq 'Refused'"), nil), 200).json(t)["value"].([]any)
			if len(refused) != 0 {
				t.Errorf("the refused create created %d events", len(refused))
			}
		})
	}
}

// TestLimiterKeys: the per-app windows are keyed by the token's appid and
// the tenant's are shared by every app.
func TestLimiterKeys(t *testing.T) {
	var l limiter
	l.reset()
	o := Options{SubscriptionWritesPerWindow: 1, TenantSubscriptionWritesPerWindow: 2, SubscriptionLimitWindow: 1500 * time.Millisecond,
		MailboxRequestsPerWindow: 1, MailboxRequestWindow: time.Minute}.withDefaults()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	a := tenant.Claims{AppID: "app-a", TenantID: "t"}
	b := tenant.Claims{AppID: "app-b", TenantID: "t"}
	c := tenant.Claims{AppID: "app-c", TenantID: "t"}
	steps := []struct {
		who  tenant.Claims
		at   time.Duration
		want time.Duration // Retry-After of a refusal; 0 = admitted
	}{
		{a, 0, 0},
		{a, time.Millisecond, 1499 * time.Millisecond}, // app a's window is full
		{b, time.Millisecond, 0},                       // app b has its own
		{c, time.Millisecond, 1499 * time.Millisecond}, // the tenant's is full
		{c, 1499 * time.Millisecond, time.Second},      // never less than a second
		{c, 1500 * time.Millisecond, 0},                // new window
	}
	for i, s := range steps {
		aerr := l.admitSubscription(s.who, true, now.Add(s.at), o)
		var got time.Duration
		if aerr != nil {
			got = aerr.retryAfter
		}
		if got != s.want {
			t.Errorf("step %d (%s at %v): Retry-After %v, want %v (%v)", i, s.who.AppID, s.at, got, s.want, aerr)
		}
	}
	mb := uuid.New()
	if aerr := l.admitMailbox("app-a", mb, now, o); aerr != nil {
		t.Fatal(aerr)
	}
	if aerr := l.admitMailbox("app-a", mb, now, o); aerr == nil {
		t.Error("second request to the mailbox admitted")
	}
	if aerr := l.admitMailbox("app-b", mb, now, o); aerr != nil {
		t.Errorf("another app's request to the mailbox refused: %v", aerr)
	}
}

// TestLimitSettings: the new settings round-trip through the control API,
// flags and Options defaults.
func TestLimitSettings(t *testing.T) {
	h := newHarness(t, Options{}, false)
	get := func() map[string]any {
		raw, _ := json.Marshal(h.em.Settings())
		var s map[string]any
		_ = json.Unmarshal(raw, &s)
		return s
	}
	defaults := map[string]float64{
		"subscription_writes_per_window": 1000, "subscription_requests_per_window": 5000,
		"tenant_subscription_writes_per_window": 2000, "tenant_subscription_requests_per_window": 10000,
		"subscription_limit_window_ms": 20000, "mailbox_requests_per_window": 10000, "mailbox_request_window_ms": 600000,
	}
	s := get()
	for k, v := range defaults {
		if s[k] != v {
			t.Errorf("default %s = %v, want %v", k, s[k], v)
		}
	}
	set := map[string]float64{
		"subscription_writes_per_window": 7, "subscription_requests_per_window": -5,
		"tenant_subscription_writes_per_window": 9, "tenant_subscription_requests_per_window": 11,
		"subscription_limit_window_ms": 1500, "mailbox_requests_per_window": -1, "mailbox_request_window_ms": 60000,
	}
	raw, _ := json.Marshal(set)
	if err := h.em.SetSettings(raw); err != nil {
		t.Fatal(err)
	}
	set["subscription_requests_per_window"] = -1 // any negative reads back as -1
	s = get()
	for k, v := range set {
		if s[k] != v {
			t.Errorf("%s = %v, want %v", k, s[k], v)
		}
	}
	o := h.em.options()
	if o.SubscriptionLimitWindow != 1500*time.Millisecond || o.SubscriptionWritesPerWindow != 7 || o.MailboxRequestsPerWindow != Unlimited {
		t.Errorf("options not applied: %+v", o)
	}
	for _, bad := range []string{`{"subscription_writes_per_window": 0}`, `{"mailbox_requests_per_window": 0}`,
		`{"subscription_limit_window_ms": 0}`, `{"mailbox_request_window_ms": -1}`, `{"subscription_writes": 5}`} {
		if err := h.em.SetSettings([]byte(bad)); err == nil {
			t.Errorf("SetSettings(%s) accepted", bad)
		}
	}

	var fo Options
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fo.RegisterFlags(fs)
	if err := fs.Parse([]string{"-graph-subscription-writes-per-window=-3", "-graph-mailbox-request-window=1m",
		"-graph-tenant-subscription-requests-per-window=42", "-graph-subscription-limit-window=5s"}); err != nil {
		t.Fatal(err)
	}
	fo = fo.withDefaults()
	if fo.SubscriptionWritesPerWindow != Unlimited || fo.MailboxRequestWindow != time.Minute || fo.TenantSubscriptionRequestsPerWindow != 42 ||
		fo.SubscriptionLimitWindow != 5*time.Second || fo.SubscriptionRequestsPerWindow != 5000 || fo.MailboxRequestsPerWindow != 10000 ||
		fo.TenantSubscriptionWritesPerWindow != 2000 {
		t.Errorf("flags: %+v", fo)
	}
}
