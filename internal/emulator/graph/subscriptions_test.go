package graph

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestValidationHandshake(t *testing.T) {
	tests := []struct {
		name    string
		echo    func(raw, decoded string) (int, string)
		status  int
		message string
	}{
		{"decoded token", nil, 201, ""},
		{"echoes the encoded token", func(raw, _ string) (int, string) { return 200, raw }, 400,
			"Subscription validation request failed. Response must exactly match validationToken query parameter."},
		{"decodes + as plus", func(raw, _ string) (int, string) {
			s, _ := url.PathUnescape(raw)
			return 200, s
		}, 400, "Subscription validation request failed. Response must exactly match validationToken query parameter."},
		{"not 200", func(_, tok string) (int, string) { return 202, tok }, 400,
			"Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."},
		{"too slow", func(string, string) (int, string) { return -1, "" }, 400, "Subscription validation request timed out."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{ValidationTimeout: 200 * time.Millisecond}, false)
			rv := newReceiver()
			rv.echo = tc.echo
			srv := httptest.NewServer(rv)
			defer srv.Close()
			r := h.subscribe(adele, srv.URL+"/notify?tenant=abc", "", nil)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.message != "" && r.errorMessage(t) != tc.message {
				t.Errorf("message %q", r.errorMessage(t))
			}
			if _, extra := h.em.Stats(); extra["validations_sent"] != 1 {
				t.Errorf("validations_sent = %d", extra["validations_sent"])
			}
		})
	}
}

func TestValidationRequest(t *testing.T) {
	h := newHarness(t, Options{}, false)
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(r.Context())
		_, _ = w.Write([]byte(r.URL.Query().Get("validationToken")))
	}))
	defer srv.Close()
	h.mustStatus(h.subscribe(adele, srv.URL+"/notify?tenant=abc", srv.URL+"/lifecycle", nil), 201)
	if got.Method != "POST" || got.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("validation request %s %q", got.Method, got.Header.Get("Content-Type"))
	}
	if got.URL.Path != "/lifecycle" {
		t.Errorf("last validation went to %s, want the lifecycle URL", got.URL.Path)
	}
	tok := got.URL.Query().Get("validationToken")
	if !strings.Contains(tok, " ") || !strings.ContainsAny(tok, ":&+/?") {
		t.Errorf("token %q lacks spaces or punctuation", tok)
	}
	if _, extra := h.em.Stats(); extra["validations_sent"] != 2 {
		t.Errorf("validations_sent = %d, want 2 (notification and lifecycle URLs)", extra["validations_sent"])
	}
}

func TestSubscriptionRules(t *testing.T) {
	h := newHarness(t, Options{}, false)
	srv := httptest.NewServer(newReceiver())
	defer srv.Close()
	now := h.tn.Now()
	in := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	tests := []struct {
		name    string
		extra   map[string]any
		status  int
		code    string
		message string
	}{
		{"beyond max", map[string]any{"expirationDateTime": in(10071 * time.Minute)}, 400, codeExtensionError, "Subscription expiration can only be 10070 minutes in the future."},
		{"past", map[string]any{"expirationDateTime": in(-time.Minute)}, 400, codeInvalidRequest, ""},
		{"missing resource", map[string]any{"resource": ""}, 400, codeInvalidRequest, "The property 'resource' is required."},
		{"bad changeType", map[string]any{"changeType": "created,moved"}, 400, codeInvalidRequest, ""},
		{"http not loopback", map[string]any{"notificationUrl": "http://example.com/notify"}, 400, codeInvalidRequest, ""},
		{"rich notifications", map[string]any{"includeResourceData": true}, 400, codeInvalidRequest, ""},
		{"long clientState", map[string]any{"clientState": strings.Repeat("x", 129)}, 400, codeInvalidRequest, ""},
		{"me", map[string]any{"resource": "/me/events"}, 400, codeBadRequest, ""},
		{"unknown property", map[string]any{"colour": "red"}, 400, codeRequestBodyRead, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.subscribe(adele, srv.URL, "", tc.extra)
			if r.status != tc.status || r.errorCode(t) != tc.code {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			if tc.message != "" && r.errorMessage(t) != tc.message {
				t.Errorf("message = %q", r.errorMessage(t))
			}
		})
	}

	short := h.mustStatus(h.subscribe(adele, srv.URL, "", map[string]any{"expirationDateTime": in(10 * time.Minute)}), 201).json(t)
	exp, _ := time.Parse(time.RFC3339Nano, short["expirationDateTime"].(string))
	if d := exp.Sub(now); d < 45*time.Minute || d > 46*time.Minute {
		t.Errorf("short lifetime raised to %v, want 45m", d)
	}
	if short["clientState"] != "s3cret" || short["resource"] != "users/"+adele+"/events" || short["applicationId"] == "" {
		t.Errorf("create response = %v", short)
	}
	dup := h.subscribe(adele, srv.URL, "", nil)
	if dup.status != 409 || !strings.Contains(dup.errorMessage(t), short["id"].(string)) {
		t.Errorf("duplicate: %d %s", dup.status, dup.body)
	}
	id := short["id"].(string)
	list := h.mustStatus(h.do("GET", "/subscriptions", nil), 200).json(t)
	if v := list["value"].([]any); len(v) != 1 || v[0].(map[string]any)["clientState"] != nil {
		t.Errorf("list = %v", v)
	}
	if got := h.mustStatus(h.do("GET", "/subscriptions/"+id, nil), 200).json(t); got["clientState"] != nil {
		t.Errorf("GET returned clientState")
	}
	r := h.do("PATCH", "/subscriptions/"+id, map[string]any{"expirationDateTime": in(10080 * time.Minute)})
	if r.status != 400 || r.errorMessage(t) != "Subscription expiration can only be 10070 minutes in the future." {
		t.Errorf("PATCH beyond max: %d %s", r.status, r.body)
	}
	renewed := h.mustStatus(h.do("PATCH", "/subscriptions/"+id, map[string]any{"expirationDateTime": in(72 * time.Hour)}), 200).json(t)
	if renewed["expirationDateTime"] == short["expirationDateTime"] {
		t.Errorf("PATCH did not renew")
	}
	if r := h.do("PATCH", "/subscriptions/"+id, map[string]any{"lifecycleNotificationUrl": srv.URL}); r.status != 400 {
		t.Errorf("adding lifecycle URL by PATCH: %d", r.status)
	}
	h.mustStatus(h.do("POST", "/subscriptions/"+id+"/reauthorize", nil), 204)
	h.mustStatus(h.do("DELETE", "/subscriptions/"+id, nil), 204)
	if r := h.do("GET", "/subscriptions/"+id, nil); r.status != 404 {
		t.Errorf("after delete: %d", r.status)
	}

	if err := h.em.SetSettings([]byte(`{"max_subscription_minutes": 4230}`)); err != nil {
		t.Fatal(err)
	}
	r = h.subscribe(adele, srv.URL, "", map[string]any{"expirationDateTime": in(4231 * time.Minute)})
	if r.status != 400 || r.errorMessage(t) != "Subscription expiration can only be 4230 minutes in the future." {
		t.Errorf("4230 tenant: %d %s", r.status, r.body)
	}
}

func TestSubscriptionPaging(t *testing.T) {
	h := newHarness(t, Options{}, false)
	srv := httptest.NewServer(newReceiver())
	defer srv.Close()
	for _, u := range []string{adele, lee, "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b03"} {
		h.mustStatus(h.subscribe(u, srv.URL, "", nil), 201)
	}
	page := h.mustStatus(h.do("GET", "/subscriptions", nil, "Prefer", "odata.maxpagesize=2"), 200).json(t)
	next, _ := page["@odata.nextLink"].(string)
	if len(page["value"].([]any)) != 2 || next == "" {
		t.Fatalf("first page = %v", page)
	}
	rest := h.mustStatus(h.do("GET", next, nil, "Prefer", "odata.maxpagesize=2"), 200).json(t)
	if len(rest["value"].([]any)) != 1 {
		t.Errorf("second page = %v", rest)
	}
}

func TestChangeNotifications(t *testing.T) {
	h := newHarness(t, Options{ExtraUpdateDelay: 10 * time.Millisecond}, false)
	rv := newReceiver()
	srv := httptest.NewServer(rv)
	defer srv.Close()
	sub := h.mustStatus(h.subscribe(lee, srv.URL+"/notify?tenant=abc", "", nil, "Prefer", `IdType="ImmutableId"`), 201).json(t)

	ev := h.createEvent(lee, nil)
	rv.wait(t, 2) // created, then Outlook's own update
	h.mustStatus(h.do("PATCH", "/users/"+lee+"/events/"+ev["id"].(string), map[string]any{"subject": "x"}), 200)
	rv.wait(t, 1)
	h.mustStatus(h.do("DELETE", "/users/"+lee+"/events/"+ev["id"].(string), nil), 204)
	rv.wait(t, 1)
	h.createEvent(adele, nil) // not subscribed

	ns := rv.notifications()
	var types []string
	for _, n := range ns {
		types = append(types, n.ChangeType)
	}
	if got := strings.Join(types, ","); got != "created,updated,updated,deleted" {
		t.Fatalf("change types %s", got)
	}
	immID := itemRef{}
	if ref, err := parseItemID(ev["id"].(string)); err == nil {
		immID = ref
	}
	wantID := immID.id(true)
	for _, n := range ns {
		if n.SubscriptionID != sub["id"] || n.ClientState == nil || *n.ClientState != "s3cret" || n.TenantID == "" {
			t.Errorf("notification = %+v", n)
		}
		if n.Resource != "Users/"+lee+"/Events/"+wantID || n.ResourceData.ID != wantID || n.ResourceData.ODataType != "#Microsoft.Graph.Event" || n.ResourceData.ODataID != n.Resource {
			t.Errorf("resource %q data %+v", n.Resource, n.ResourceData)
		}
	}
	// The extra update changed the etag but no client-visible field.
	got := h.mustStatus(h.do("GET", "/users/"+lee+"/events?$top=1", nil), 200).json(t)
	if len(got["value"].([]any)) != 0 {
		t.Errorf("event survived delete")
	}
	if ns[0].ResourceData.ODataETag == ns[1].ResourceData.ODataETag {
		t.Errorf("extra update kept the etag")
	}
	h.waitStat("notifications_sent", 4)
}

func TestExtraUpdateChangesOnlyVersion(t *testing.T) {
	h := newHarness(t, Options{ExtraUpdateDelay: 10 * time.Millisecond}, false)
	rv := newReceiver()
	srv := httptest.NewServer(rv)
	defer srv.Close()
	h.mustStatus(h.subscribe(lee, srv.URL, "", nil), 201)
	created := h.createEvent(lee, map[string]any{"body": map[string]any{"contentType": "html", "content": "<p>hi</p>"}})
	rv.wait(t, 2)
	after := h.mustStatus(h.do("GET", "/users/"+lee+"/events/"+created["id"].(string), nil), 200).json(t)
	for _, k := range []string{"changeKey", "@odata.etag", "lastModifiedDateTime"} {
		if after[k] == created[k] {
			t.Errorf("%s unchanged by the extra update", k)
		}
	}
	for k, v := range created {
		switch k {
		case "changeKey", "@odata.etag", "lastModifiedDateTime", "@odata.context":
			continue
		}
		if fmt.Sprint(after[k]) != fmt.Sprint(v) {
			t.Errorf("extra update changed %s: %v -> %v", k, v, after[k])
		}
	}
}

func TestLifecycleControl(t *testing.T) {
	h := newHarness(t, Options{}, false)
	rv, lc := newReceiver(), newReceiver()
	srv, lsrv := httptest.NewServer(rv), httptest.NewServer(lc)
	defer srv.Close()
	defer lsrv.Close()
	sub := h.mustStatus(h.subscribe(adele, srv.URL, lsrv.URL, nil), 201).json(t)
	id := sub["id"].(string)
	for _, ev := range []string{"missed", "reauthorizationRequired", "subscriptionRemoved"} {
		r := h.control("POST", "/_emulator/lifecycle", map[string]any{"subscription_id": id, "event": ev})
		if r.status != 202 {
			t.Fatalf("%s: %d %s", ev, r.status, r.body)
		}
		lc.wait(t, 1)
	}
	ns := lc.notifications()
	for i, want := range []string{"missed", "reauthorizationRequired", "subscriptionRemoved"} {
		n := ns[i]
		if n.LifecycleEvent != want || n.SubscriptionID != id || n.ChangeType != "" || n.Resource != "" || *n.ClientState != "s3cret" {
			t.Errorf("lifecycle %d = %+v", i, n)
		}
	}
	if r := h.do("GET", "/subscriptions/"+id, nil); r.status != 404 {
		t.Errorf("subscriptionRemoved left the subscription: %d", r.status)
	}
	for _, tc := range []struct {
		body   map[string]any
		status int
	}{
		{map[string]any{"subscription_id": id, "event": "missed"}, 404},
		{map[string]any{"subscription_id": id, "event": "exploded"}, 400},
		{map[string]any{"subscription": id}, 400},
	} {
		if r := h.control("POST", "/_emulator/lifecycle", tc.body); r.status != tc.status {
			t.Errorf("%v: %d %s", tc.body, r.status, r.body)
		}
	}
	h.waitStat("lifecycle_notifications_sent", 3)
}

// TestMinSubscriptionSeconds: the 45-minute floor is a setting, so renewal
// and expiry can be tested in seconds; a lowered floor still raises shorter
// requests to it, and subscriptions then expire on time.
func TestMinSubscriptionSeconds(t *testing.T) {
	h := newHarness(t, Options{MinSubscriptionSeconds: 2, SweepInterval: 20 * time.Millisecond}, false)
	srv := httptest.NewServer(newReceiver())
	defer srv.Close()
	now := h.tn.Now()
	short := h.mustStatus(h.subscribe(adele, srv.URL, "", map[string]any{
		"expirationDateTime": now.Add(500 * time.Millisecond).Format(time.RFC3339Nano)}), 201).json(t)
	exp, _ := time.Parse(time.RFC3339Nano, short["expirationDateTime"].(string))
	if d := exp.Sub(now); d < 2*time.Second || d > 3*time.Second {
		t.Errorf("lifetime raised to %v, want the 2s floor", d)
	}
	id := short["id"].(string)
	renewed := h.mustStatus(h.do("PATCH", "/subscriptions/"+id, map[string]any{
		"expirationDateTime": h.tn.Now().Add(3 * time.Second).Format(time.RFC3339Nano)}), 200).json(t)
	if renewed["expirationDateTime"] == short["expirationDateTime"] {
		t.Errorf("PATCH to 3s did not move the expiry")
	}
	h.waitStat("subscriptions_expired", 1)
	if r := h.do("GET", "/subscriptions/"+id, nil); r.status != 404 {
		t.Errorf("expired subscription: GET %d, want 404", r.status)
	}

	for _, bad := range []string{`{"min_subscription_seconds": 0}`, `{"min_subscription_seconds": 61, "max_subscription_minutes": 1}`} {
		if err := h.em.SetSettings([]byte(bad)); err == nil {
			t.Errorf("SetSettings(%s) accepted", bad)
		}
	}
	if err := h.em.SetSettings([]byte(`{"min_subscription_seconds": 2700}`)); err != nil {
		t.Fatal(err)
	}
	if got := settingsOf(h.em.options()).MinSubscriptionSeconds; *got != 2700 {
		t.Errorf("min_subscription_seconds = %d", *got)
	}
}
