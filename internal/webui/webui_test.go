package webui_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/bookingsync/bookingsync/internal/emulator"
	"github.com/bookingsync/bookingsync/internal/sandbox"
)

func startSandbox(t *testing.T, demo bool) *sandbox.Sandbox {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, sandbox.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Demo: demo,
		Emulator: emulator.Options{Addr: "127.0.0.1:0", Seed: "demo"}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Stop(); cancel() })
	return sb
}

// client follows no redirects, so tests see them.
var client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type req struct {
	method, path string
	form         url.Values
	basic        string // password for basic auth
	cookies      []*http.Cookie
	header       http.Header
}

func do(t *testing.T, sb *sandbox.Sandbox, r req) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	hr, err := http.NewRequest(r.method, sb.Service.AdminURL()+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.form != nil {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.basic != "" {
		hr.SetBasicAuth("admin", r.basic)
	}
	for k, v := range r.header {
		hr.Header[k] = v
	}
	for _, c := range r.cookies {
		hr.AddCookie(c)
	}
	resp, err := client.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func cookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfFor opens the login form and returns its CSRF cookie and token.
func csrfFor(t *testing.T, sb *sandbox.Sandbox) (*http.Cookie, string) {
	t.Helper()
	resp, body := do(t, sb, req{method: http.MethodGet, path: "/ui/login"})
	c := cookie(resp, "bsync_csrf")
	m := csrfRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || c == nil || m == nil {
		t.Fatalf("login form: HTTP %d, csrf cookie %v, token in form %v", resp.StatusCode, c, m != nil)
	}
	return c, m[1]
}

// login signs in through the form and returns the cookies a browser keeps
// (CSRF, session).
func login(t *testing.T, sb *sandbox.Sandbox) []*http.Cookie {
	cookies, _ := loginToken(t, sb)
	return cookies
}

// loginToken is login, also returning the browser's CSRF form token.
func loginToken(t *testing.T, sb *sandbox.Sandbox) ([]*http.Cookie, string) {
	t.Helper()
	c, tok := csrfFor(t, sb)
	resp, _ := do(t, sb, req{method: http.MethodPost, path: "/ui/login", cookies: []*http.Cookie{c},
		form: url.Values{"csrf": {tok}, "token": {sb.AdminToken}, "next": {"/ui/resources"}}})
	s := cookie(resp, "bsync_session")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/resources" || s == nil {
		t.Fatalf("login: HTTP %d to %q, session cookie %v", resp.StatusCode, resp.Header.Get("Location"), s)
	}
	return []*http.Cookie{c, s}, tok
}

func TestAuth(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, true)

	// Unauthenticated: pages redirect to the login form, the rest is 401.
	for _, p := range []string{"/ui/", "/ui/resources", "/ui/activity", "/ui/conflicts", "/ui/settings", "/ui/demo"} {
		resp, _ := do(t, sb, req{method: http.MethodGet, path: p})
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login?next=") {
			t.Errorf("GET %s unauthenticated: HTTP %d to %q, want 303 to the login form", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, _ := do(t, sb, req{method: http.MethodGet, path: "/ui/demo/state"}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /ui/demo/state unauthenticated: HTTP %d, want 401", resp.StatusCode)
	}
	c, tok := csrfFor(t, sb)
	if resp, _ := do(t, sb, req{method: http.MethodPost, path: "/ui/resources/resync", cookies: []*http.Cookie{c},
		form: url.Values{"csrf": {tok}, "resource": {"x"}}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST with a valid CSRF token but no login: HTTP %d, want 401", resp.StatusCode)
	}
	// Health and notifications stay public; the admin API keeps its bearer token.
	if resp, _ := do(t, sb, req{method: http.MethodGet, path: "/healthz"}); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: HTTP %d", resp.StatusCode)
	}
	if resp, _ := do(t, sb, req{method: http.MethodGet, path: "/api/v1/status", basic: sb.AdminToken}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("admin API with basic auth: HTTP %d, want 401 (bearer only)", resp.StatusCode)
	}
	// / goes to the UI.
	if resp, _ := do(t, sb, req{method: http.MethodGet, path: "/"}); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: HTTP %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// A wrong token is refused and sets no session.
	resp, _ := do(t, sb, req{method: http.MethodPost, path: "/ui/login", cookies: []*http.Cookie{c},
		form: url.Values{"csrf": {tok}, "token": {"not-the-token"}}})
	if resp.StatusCode != http.StatusUnauthorized || cookie(resp, "bsync_session") != nil {
		t.Errorf("login with a wrong token: HTTP %d, session %v", resp.StatusCode, cookie(resp, "bsync_session"))
	}
	// Wrong basic auth password.
	if resp, _ := do(t, sb, req{method: http.MethodGet, path: "/ui/settings", basic: "wrong"}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("wrong basic auth: HTTP %d", resp.StatusCode)
	}

	// The login form's session works, and is not the token.
	cookies, formTok := loginToken(t, sb)
	sess := cookies[1]
	if strings.Contains(sess.Value, sb.AdminToken) || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/ui/" {
		t.Errorf("session cookie: %+v", sess)
	}
	if resp, _ := do(t, sb, req{method: http.MethodGet, path: "/ui/resources", cookies: cookies}); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /ui/resources signed in: HTTP %d", resp.StatusCode)
	}
	// A forged or expired session is refused.
	exp, _, _ := strings.Cut(sess.Value, ".")
	for _, v := range []string{exp + ".AAAA", "1." + strings.SplitN(sess.Value, ".", 2)[1], sb.AdminToken} {
		if resp, _ := do(t, sb, req{method: http.MethodGet, path: "/ui/resources", cookies: []*http.Cookie{{Name: "bsync_session", Value: v}}}); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("forged session %q: HTTP %d, want 303 to login", v, resp.StatusCode)
		}
	}
	// Basic auth works for scripts.
	if resp, _ := do(t, sb, req{method: http.MethodGet, path: "/ui/settings", basic: sb.AdminToken}); resp.StatusCode != http.StatusOK {
		t.Errorf("basic auth: HTTP %d", resp.StatusCode)
	}
	// Signing out clears the cookie.
	resp, _ = do(t, sb, req{method: http.MethodPost, path: "/ui/logout", cookies: cookies, form: url.Values{"csrf": {formTok}}})
	if c := cookie(resp, "bsync_session"); resp.StatusCode != http.StatusSeeOther || c == nil || c.MaxAge >= 0 {
		t.Errorf("logout: HTTP %d, cookie %v", resp.StatusCode, c)
	}
	// Open redirects are not followed after login.
	resp, _ = do(t, sb, req{method: http.MethodPost, path: "/ui/login", cookies: []*http.Cookie{c},
		form: url.Values{"csrf": {tok}, "token": {sb.AdminToken}, "next": {"//evil.example/ui/"}}})
	if resp.Header.Get("Location") != "/ui/" {
		t.Errorf("login next=//evil.example: redirected to %q", resp.Header.Get("Location"))
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, true)
	cookies := login(t, sb)
	c, tok := cookies[0], ""
	_, body := do(t, sb, req{method: http.MethodGet, path: "/ui/resources", cookies: cookies})
	if m := csrfRE.FindStringSubmatch(body); m != nil {
		tok = m[1]
	} else {
		t.Fatal("no CSRF token on the resources page")
	}
	_, other := csrfFor(t, sb) // another browser's token
	for _, tc := range []struct {
		name    string
		cookies []*http.Cookie
		form    url.Values
	}{
		{"no token", cookies, url.Values{"resource": {"x"}}},
		{"wrong token", cookies, url.Values{"resource": {"x"}, "csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}},
		{"another browser's token", cookies, url.Values{"resource": {"x"}, "csrf": {other}}},
		{"no CSRF cookie", cookies[1:], url.Values{"resource": {"x"}, "csrf": {tok}}},
	} {
		for _, path := range []string{"/ui/resources/resync", "/ui/conflicts/resolve", "/ui/demo/action", "/ui/logout", "/ui/login"} {
			resp, _ := do(t, sb, req{method: http.MethodPost, path: path, cookies: tc.cookies, form: tc.form})
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: POST %s: HTTP %d, want 403", tc.name, path, resp.StatusCode)
			}
		}
		// Basic auth does not exempt a POST from CSRF (browsers resend it).
		resp, _ := do(t, sb, req{method: http.MethodPost, path: "/ui/resources/resync", basic: sb.AdminToken, cookies: tc.cookies, form: tc.form})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s with basic auth: HTTP %d, want 403", tc.name, resp.StatusCode)
		}
	}
	// The right token passes: the action reaches the admin API.
	resp, body := do(t, sb, req{method: http.MethodPost, path: "/ui/resources/resync", cookies: []*http.Cookie{c, cookies[1]},
		form: url.Values{"csrf": {tok}, "resource": {"no-such-resource"}, "dry_run": {"true"}}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "HTTP") {
		t.Errorf("POST with the right token: HTTP %d\n%s", resp.StatusCode, body)
	}
}

// TestNoSecretInPages grabs the sandbox's real secrets and checks that no
// page shows them; Settings shows that they are set.
func TestNoSecretInPages(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, true)
	info := sb.Emulator.Info()
	secrets := map[string]string{"admin token": sb.AdminToken, "webhook key": sb.WebhookKey,
		"client secret": info["client_secret"], "config admin token": sb.Config.Admin.Token.Reveal(),
		"config client secret": sb.Config.Azure.ClientSecret.Reveal(), "config webhook key": sb.Config.Dataverse.WebhookKey.Reveal()}
	for name, v := range secrets {
		if len(v) < 8 {
			t.Fatalf("%s is %q: the test needs a real secret", name, v)
		}
	}
	cookies := login(t, sb)
	for _, p := range []string{"/ui/settings", "/ui/", "/ui/resources", "/ui/activity", "/ui/conflicts", "/ui/demo", "/ui/demo/state", "/ui/login"} {
		resp, body := do(t, sb, req{method: http.MethodGet, path: p, cookies: cookies})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: HTTP %d", p, resp.StatusCode)
		}
		for name, v := range secrets {
			if strings.Contains(body, v) || strings.Contains(body, url.QueryEscape(v)) {
				t.Errorf("GET %s shows the %s", p, name)
			}
		}
		for _, c := range resp.Cookies() {
			for name, v := range secrets {
				if strings.Contains(c.Value, v) {
					t.Errorf("GET %s: cookie %s holds the %s", p, c.Name, name)
				}
			}
		}
	}
	_, body := do(t, sb, req{method: http.MethodGet, path: "/ui/settings", cookies: cookies})
	for _, key := range []string{"admin.token", "azure.client_secret", "dataverse.webhook_key"} {
		i := strings.Index(body, "<code>"+key+"</code>")
		if i < 0 {
			t.Errorf("settings page has no row for %s", key)
			continue
		}
		row := body[i:]
		row = row[:strings.Index(row, "</tr>")]
		if !strings.Contains(row, "&lt;redacted&gt;") {
			t.Errorf("settings row for %s does not say it is redacted: %s", key, row)
		}
	}
	if !strings.Contains(body, "graph.base_url") || !strings.Contains(body, sb.Config.Graph.BaseURL) {
		t.Error("settings page does not show the effective (non-secret) configuration")
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, false)
	cookies := login(t, sb)
	for _, p := range []string{"/ui/login", "/ui/", "/ui/settings", "/ui/static/style.css", "/ui/nope"} {
		resp, _ := do(t, sb, req{method: http.MethodGet, path: p, cookies: cookies})
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "script-src 'self'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: CSP allows inline script: %q", p, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: headers %v", p, h)
		}
	}
	// No inline script in any page: every <script> has a src.
	_, body := do(t, sb, req{method: http.MethodGet, path: "/ui/", cookies: cookies})
	if regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`).MatchString(body) || strings.Contains(body, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(body) {
		t.Error("overview page has inline script")
	}
	// Cookies are Secure behind HTTPS.
	resp, _ := do(t, sb, req{method: http.MethodGet, path: "/ui/login", header: http.Header{"X-Forwarded-Proto": {"https"}}})
	if c := cookie(resp, "bsync_csrf"); c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("CSRF cookie behind HTTPS: %+v", c)
	}
	resp, _ = do(t, sb, req{method: http.MethodGet, path: "/ui/login"})
	if c := cookie(resp, "bsync_csrf"); c == nil || c.Secure {
		t.Errorf("CSRF cookie over plain HTTP: %+v", c)
	}
	// Without the sandbox's option there is no demo.
	if resp, _ := do(t, sb, req{method: http.MethodGet, path: "/ui/demo", cookies: cookies}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/demo without the demo option: HTTP %d, want 404", resp.StatusCode)
	}
}

// The overview computes sync lag and error rate from the store instead of
// leaving them blank.
func TestOverviewFigures(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, false)
	cookies := login(t, sb)
	resp, body := do(t, sb, req{method: http.MethodGet, path: "/ui/", cookies: cookies})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ui/: HTTP %d", resp.StatusCode)
	}
	for _, want := range []string{`<b id="sync-lag">none waiting</b>`, `<b id="error-rate">0 %</b>`, "Warnings"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
}
