package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/emulator"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

// lockedBuffer collects log output written from many goroutines.
type lockedBuffer struct {
	mu gosync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// clientStates is a reverse proxy in front of the public listener (it is
// the public URL Graph and Dataverse are given) that records the
// clientState of every notification passing through it: the service keeps
// only their hashes, so this is where the test learns the secrets.
type clientStates struct {
	mu   gosync.Mutex
	seen map[string]string // subscription id → clientState
}

func (c *clientStates) proxy(target string) http.Handler {
	u, _ := url.Parse("http://" + target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var coll struct {
			Value []struct {
				SubscriptionID string `json:"subscriptionId"`
				ClientState    string `json:"clientState"`
			} `json:"value"`
		}
		if strings.HasPrefix(r.URL.Path, "/notifications/graph") && json.Unmarshal(body, &coll) == nil {
			c.mu.Lock()
			for _, n := range coll.Value {
				if n.ClientState != "" {
					c.seen[n.SubscriptionID] = n.ClientState
				}
			}
			c.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	})
}

func (c *clientStates) of(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.seen[id]
	return s, ok
}

// TestSecretsNeverLeak runs the sandbox through a full scenario with
// logging at debug level and checks that no secret (the Azure client
// secret, any subscription's clientState, the Dataverse webhook key, the
// admin token) appears in the service's logs, the admin UI's pages, the
// metrics or any answer of the admin API and the public endpoints.
func TestSecretsNeverLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The public URL is the capturing proxy; the service listens behind it.
	addr := freeAddr(t)
	states := &clientStates{seen: map[string]string{}}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxySrv := &http.Server{Handler: states.proxy(addr), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = proxySrv.Serve(pl) }()
	t.Cleanup(func() { _ = proxySrv.Close() })

	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sb, err := Start(ctx, Options{Addr: addr, DataDir: t.TempDir(), LogLevel: "debug", Logger: logger,
		Env: []string{"BOOKINGSYNC_PUBLIC_URL=http://" + pl.Addr().String()},
		// The emulator is the fixture, not the service: its own log is not
		// under test (it holds the secrets by design).
		Emulator: emulator.Options{Addr: "127.0.0.1:0", Seed: "demo", Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Stop() })
	if !strings.HasPrefix(sb.Config.NotificationURL(), "http://"+pl.Addr().String()) {
		t.Fatalf("notification URL %s does not go through the proxy", sb.Config.NotificationURL())
	}

	secrets := map[string]string{
		"azure client secret":       sb.Emulator.Info()["client_secret"],
		"dataverse webhook key":     sb.WebhookKey,
		"admin token":               sb.AdminToken,
		"azure client secret (cfg)": sb.Config.Azure.ClientSecret.Reveal(),
	}
	for name, v := range secrets {
		if len(v) < 8 {
			t.Fatalf("%s %q is too short to search for", name, v)
		}
	}

	// Surfaces: every answer we get is kept.
	var answers []string
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Timeout: 20 * time.Second, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	call := func(method, target string, hdr http.Header, body string) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, target, rd)
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range hdr {
			req.Header[k] = vs
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answers = append(answers, fmt.Sprintf("%s %s → %d %v\n%s", method, target, resp.StatusCode, resp.Header, b))
		return resp.StatusCode, string(b)
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	admin := sb.Service.AdminURL()

	// 1. Opt-in: the webhook for the resource, the subscription (and its
	// validation handshake).
	techs := technicians(t, sb)[:2]
	optIn(t, sb, techs...)

	// 2. A booking is created, reaches the calendar, and the event is moved
	// in Outlook, which comes back to the booking.
	start := time.Now().Add(48 * time.Hour).Truncate(time.Hour)
	booking := createBooking(t, sb, techs[0].resource, "Secrets check", start, time.Hour, "")
	waitFor(t, "the booking's event", func() (bool, error) {
		_, ok := eventOf(t, sb, techs[0].mailbox, booking)
		return ok, nil
	})
	ev, _ := eventOf(t, sb, techs[0].mailbox, booking)
	moveEvent(t, sb, techs[0].mailbox, ev.ID, start.Add(2*time.Hour), start.Add(3*time.Hour))
	waitFor(t, "the move to reach the booking", func() (bool, error) {
		b, ok := getBooking(t, sb, booking)
		return ok && b.StartTime.Equal(start.Add(2*time.Hour)), nil
	})

	// 3. A lifecycle notification for every subscription, so each
	// subscription's clientState passes through the proxy at least once.
	subs, err := sb.Service.Graph.ListSubscriptions(ctx)
	if err != nil || len(subs) < 2 {
		t.Fatalf("subscriptions: %v (%d)", err, len(subs))
	}
	for _, s := range subs {
		raw, _ := json.Marshal(map[string]string{"subscription_id": s.ID, "event": "reauthorizationRequired"})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, sb.Emulator.URL()+"/_emulator/lifecycle", bytes.NewReader(raw))
		resp, err := sb.Emulator.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("lifecycle for %s: HTTP %d", s.ID, resp.StatusCode)
		}
	}
	for _, s := range subs {
		waitFor(t, "the clientState of "+s.ID, func() (bool, error) {
			_, ok := states.of(s.ID)
			return ok, nil
		})
		cs, _ := states.of(s.ID)
		secrets["clientState of "+s.ID] = cs
	}

	// 4. Hostile and failed requests: a forged notification with a wrong
	// clientState, webhooks with wrong keys, wrong admin tokens.
	forged := fmt.Sprintf(`{"value":[{"subscriptionId":%q,"subscriptionExpirationDateTime":"2030-01-01T00:00:00Z","changeType":"updated",
		"resource":"Users/x/Events/AAA","resourceData":{"id":"AAA"},"clientState":"not-the-secret","tenantId":%q}]}`, subs[0].ID, tenant.DefaultTenantID)
	call("POST", sb.Config.NotificationURL(), http.Header{"Content-Type": {"application/json"}}, forged)
	call("POST", sb.Config.NotificationURL(), http.Header{"Content-Type": {"application/json"}}, `{"value":[{`)
	call("POST", sb.Config.DataverseWebhookURL(), http.Header{"Content-Type": {"application/json"}}, `{}`)
	call("POST", strings.Split(sb.Config.DataverseWebhookURL(), "?")[0]+"?code=wrong-key", http.Header{"Content-Type": {"application/json"}}, `{}`)
	call("GET", admin+"/api/v1/status", bearer("wrong-token"), "")
	call("GET", admin+"/api/v1/status", nil, "")
	call("GET", admin+"/metrics", bearer(sb.AdminToken+"x"), "")

	// 5. The admin API, with the token, asked things that fail.
	for _, target := range []string{
		"GET /api/v1/status",
		"POST /api/v1/subscriptions/renew?resource=no-such-resource",
		"POST /api/v1/subscriptions/delete?resource=" + url.QueryEscape("' or 1 eq 1"),
		"POST /api/v1/subscriptions/delete",
		"POST /api/v1/resync?resource=no-such-resource",
		"POST /api/v1/conflicts/resolve?booking=00000000-0000-0000-0000-000000000000&keep=d365",
		"GET /api/v1/log?since=not-a-time",
		"GET /api/v1/dead",
		"POST /api/v1/notifications/reprocess?id=999999",
		"POST /api/v1/jobs/retry?id=abc",
		"POST /api/v1/passes/approve?id=P-nope",
	} {
		method, path, _ := strings.Cut(target, " ")
		call(method, admin+path, bearer(sb.AdminToken), "")
	}

	// 6. The admin UI: login page, a failed and a good login, Settings and
	// the other pages with the token.
	_, loginPage := call("GET", sb.UIURL()+"login", nil, "")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(loginPage)
	if m == nil {
		t.Fatal("no CSRF token in the login form")
	}
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if code, _ := call("POST", sb.UIURL()+"login", form, url.Values{"csrf": {m[1]}, "token": {"wrong-token"}}.Encode()); code != http.StatusUnauthorized {
		t.Errorf("login with a wrong token: HTTP %d", code)
	}
	if code, _ := call("POST", sb.UIURL()+"login", form, url.Values{"csrf": {m[1]}, "token": {sb.AdminToken}}.Encode()); code != http.StatusSeeOther {
		t.Errorf("login: HTTP %d", code)
	}
	for _, page := range []string{"", "settings", "resources", "activity", "conflicts"} {
		if code, _ := call("GET", sb.UIURL()+page, nil, ""); code != http.StatusOK { // the session cookie
			t.Errorf("UI page %q: HTTP %d", page, code)
		}
		if code, _ := call("GET", sb.UIURL()+page, bearer(sb.AdminToken), ""); code != http.StatusOK {
			t.Errorf("UI page %q with the token: HTTP %d", page, code)
		}
	}

	// 7. Metrics.
	if code, body := call("GET", admin+"/metrics", bearer(sb.AdminToken), ""); code != http.StatusOK || !strings.Contains(body, "bookingsync_") {
		t.Fatalf("metrics: HTTP %d", code)
	}
	waitQuiet(t, sb)

	// Nothing holds a secret.
	surfaces := map[string]string{"logs": logs.String()}
	for i, a := range answers {
		surfaces[fmt.Sprintf("answer %d", i)] = a
	}
	for where, text := range surfaces {
		for name, secret := range secrets {
			if strings.Contains(text, secret) || strings.Contains(text, url.QueryEscape(secret)) {
				t.Errorf("the %s leaks in %s:\n%s", name, where, excerpt(text, secret))
			}
		}
	}
	if !strings.Contains(logs.String(), "level=DEBUG") {
		t.Error("no debug lines logged: the test saw less than it should")
	}
}

// excerpt shows the line holding secret, with the secret itself masked.
func excerpt(text, secret string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, secret) || strings.Contains(line, url.QueryEscape(secret)) {
			line = strings.ReplaceAll(strings.ReplaceAll(line, secret, "«SECRET»"), url.QueryEscape(secret), "«SECRET»")
			if len(line) > 400 {
				line = line[:400] + "…"
			}
			return line
		}
	}
	return ""
}
