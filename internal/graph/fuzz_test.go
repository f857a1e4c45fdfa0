package graph

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseLifecycleNotification builds a lifecycle collection from fuzzed
// strings (JSON-encoded, so any bytes can appear inside them): it parses
// exactly when the required fields are there, the values come back
// verbatim, and an item re-marshalled without its clientState (as the
// intake stores it) parses again to the same event.
func FuzzParseLifecycleNotification(f *testing.F) {
	b, err := readFile("lifecycle_notification.json")
	if err != nil {
		f.Fatal(err)
	}
	var seed ChangeNotificationCollection
	if err := json.Unmarshal(b, &seed); err != nil {
		f.Fatal(err)
	}
	for _, n := range seed.Value {
		f.Add(n.SubscriptionID, n.ClientState, n.LifecycleEvent, "")
	}
	f.Add("s", "", LifecycleMissed, `"x":1`)
	f.Add("s", "c", LifecycleSubscriptionRemoved, `"changeType":"updated"`)
	f.Add("", "c", LifecycleMissed, `"resource":"Users/a/Events"`)
	f.Add("s\u2028", "\"},{", "reauthorizationRequired", `"value":[]`)
	f.Fuzz(func(t *testing.T, sub, clientState, event, extra string) {
		if !utf8.ValidString(sub) || !utf8.ValidString(clientState) || !utf8.ValidString(event) {
			return // json.Marshal would replace the bytes; the values could not round-trip
		}
		enc := func(s string) string { b, _ := json.Marshal(s); return string(b) }
		item := `{"subscriptionId":` + enc(sub) + `,"subscriptionExpirationDateTime":"2030-01-01T00:00:00Z","clientState":` +
			enc(clientState) + `,"lifecycleEvent":` + enc(event)
		if extra != "" {
			item += "," + extra
		}
		body := `{"value":[` + item + `}]}`
		c, err := ParseNotificationCollection([]byte(body))
		if extra == "" {
			if wantOK := sub != "" && event != ""; (err == nil) != wantOK {
				t.Fatalf("parse %q: err %v, want ok=%v", body, err, wantOK)
			}
		}
		if err != nil {
			return
		}
		for i := range c.Value {
			n := &c.Value[i]
			if n.SubscriptionID == "" || (n.ChangeType == "") == (n.LifecycleEvent == "") {
				t.Fatalf("accepted invalid item %+v", n)
			}
			if extra == "" && (n.SubscriptionID != sub || n.ClientState != clientState || n.LifecycleEvent != event) {
				t.Fatalf("values changed: %+v", n)
			}
			if !n.IsLifecycle() {
				continue
			}
			n.ClientState = ""
			raw, err := json.Marshal(n)
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseNotificationCollection([]byte(`{"value":[` + string(raw) + `]}`))
			if err != nil || len(again.Value) != 1 || again.Value[0].LifecycleEvent != n.LifecycleEvent || again.Value[0].ClientState != "" {
				t.Fatalf("stored form %s does not parse back: %v", raw, err)
			}
		}
	})
}

// FuzzPaths: whatever an id holds, the paths built from it stay one
// segment per id: no '/', '?' or '#' gets through, the segment is never a
// dot segment, and it unescapes back to the id.
func FuzzPaths(f *testing.F) {
	for _, s := range []string{"AAMkAGI2TG93AAA=", "user@contoso.com", "..", ".", "a/b", "a?b#c", "%2e%2e", "x' or 1 eq 1", "\x00\r\n"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, user, event string) {
		p := eventPath(user, event)
		segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
		if len(segs) != 4 || segs[0] != "users" || segs[2] != "events" {
			t.Fatalf("eventPath(%q, %q) = %q: not 4 segments", user, event, p)
		}
		for i, want := range map[int]string{1: user, 3: event} {
			seg := segs[i]
			if strings.ContainsAny(seg, "?#") || seg == "." || seg == ".." || seg == "" && want != "" {
				t.Fatalf("segment %q of %q", seg, p)
			}
			got, err := url.PathUnescape(seg)
			if err != nil || got != want {
				t.Fatalf("segment %q unescapes to %q (%v), want %q", seg, got, err, want)
			}
		}
		u, err := url.Parse("https://graph.example/v1.0" + p)
		if err != nil {
			t.Fatalf("parse %q: %v", p, err)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.Host != "graph.example" {
			t.Fatalf("path %q changed the URL: %+v", p, u)
		}
		if r := u.ResolveReference(&url.URL{}); !strings.HasPrefix(r.EscapedPath(), "/v1.0/users/") {
			t.Fatalf("path %q escapes /v1.0/users/ once resolved: %q", p, r.EscapedPath())
		}
	})
}
