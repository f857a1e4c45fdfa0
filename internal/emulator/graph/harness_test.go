package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

// Demo users the tests address.
const (
	adele = "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b01"
	lee   = "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b02"
)

// harness is an emulator behind a mux. With inProcess, the client and the
// notification receivers are called through RoundTrippers instead of
// sockets, so testing/synctest can fake time.
type harness struct {
	t      *testing.T
	tn     *tenant.Tenant
	em     *Emulator
	mux    *http.ServeMux
	client *http.Client
	token  string
	base   string // https://host:port
	hosts  *hostTransport
}

func newHarness(t *testing.T, opts Options, inProcess bool) *harness {
	t.Helper()
	h := &harness{t: t, tn: tenant.New(tenant.Config{TokenLifetime: 30 * 24 * time.Hour}), mux: http.NewServeMux(), hosts: &hostTransport{handlers: map[string]http.Handler{}}}
	if inProcess {
		h.base = "https://graph.test"
		h.client = &http.Client{Transport: handlerTransport{h.mux}}
		if opts.HTTPClient == nil {
			opts.HTTPClient = &http.Client{Transport: h.hosts}
		}
	} else {
		srv := httptest.NewServer(h.mux)
		t.Cleanup(srv.Close)
		h.base = srv.URL
		h.client = srv.Client()
	}
	h.tn.SetBaseURL(h.base)
	h.em = New(h.tn, opts, slog.New(slog.DiscardHandler))
	h.em.Mount(h.mux)
	if err := h.em.Reset("demo"); err != nil {
		t.Fatalf("reset: %v", err)
	}
	t.Cleanup(h.em.Close)
	h.token, _ = h.tn.Issue(Audience)
	return h
}

// handlerTransport serves requests with a handler, in process.
type handlerTransport struct{ h http.Handler }

func (ht handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	ht.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// hostTransport routes in-process requests by host, honouring the
// request's context like a network call would.
type hostTransport struct {
	mu       sync.Mutex
	handlers map[string]http.Handler
}

func (ht *hostTransport) add(host string, h http.Handler) string {
	ht.mu.Lock()
	defer ht.mu.Unlock()
	ht.handlers[host] = h
	return "https://" + host
}

func (ht *hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ht.mu.Lock()
	h := ht.handlers[r.URL.Host]
	ht.mu.Unlock()
	if h == nil {
		return nil, &url.Error{Op: r.Method, URL: r.URL.String(), Err: io.ErrUnexpectedEOF}
	}
	done := make(chan *http.Response, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		done <- rec.Result()
	}()
	select {
	case resp := <-done:
		return resp, nil
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode %d response %q: %v", r.status, r.body, err)
	}
	return m
}

// errorCode returns error.code of a Graph error body.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	m := r.json(t)
	e, _ := m["error"].(map[string]any)
	if e == nil {
		t.Fatalf("no error in %d response %s", r.status, r.body)
	}
	c, _ := e["code"].(string)
	return c
}

func (r response) errorMessage(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// do sends a request to path under /graph/v1.0 (or an absolute URL) with
// the app token. headers are name, value pairs.
func (h *harness) do(method, path string, body any, headers ...string) response {
	h.t.Helper()
	return h.doCtx(context.Background(), method, path, body, headers...)
}

func (h *harness) doCtx(ctx context.Context, method, path string, body any, headers ...string) response {
	h.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = h.base + basePath + path
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		h.t.Fatalf("request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// control calls our control API routes on the mux.
func (h *harness) control(method, path string, body any) response {
	h.t.Helper()
	raw, _ := json.Marshal(body)
	req := httptest.NewRequest(method, path, bytes.NewReader(raw))
	rec := httptest.NewRecorder()
	h.mux.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func (h *harness) mustStatus(r response, want int) response {
	h.t.Helper()
	if r.status != want {
		h.t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
	return r
}

// createEvent posts a minimal event and returns the response object.
func (h *harness) createEvent(user string, fields map[string]any, headers ...string) map[string]any {
	h.t.Helper()
	body := map[string]any{
		"subject": "Boiler service",
		"start":   map[string]any{"dateTime": "2030-03-04T09:00:00", "timeZone": "UTC"},
		"end":     map[string]any{"dateTime": "2030-03-04T10:00:00", "timeZone": "UTC"},
	}
	for k, v := range fields {
		body[k] = v
	}
	return h.mustStatus(h.do("POST", "/users/"+user+"/events", body, headers...), 201).json(h.t)
}

// receiver is a notification endpoint that answers the validation
// handshake and records what it gets.
type receiver struct {
	mu     sync.Mutex
	posts  []changeNotificationCollection
	status func(n int) int // status for the n-th notification POST (0-based)
	hang   func(n int) bool
	got    chan struct{}
	// validation behaviour
	echo  func(raw, decoded string) (int, string)
	times []time.Time
}

func newReceiver() *receiver { return &receiver{got: make(chan struct{}, 1000)} }

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, ok := r.URL.Query()["validationToken"]; ok {
		tok := r.URL.Query().Get("validationToken")
		status, body := http.StatusOK, tok
		if rv.echo != nil {
			raw := strings.SplitN(r.URL.RawQuery, "validationToken=", 2)[1]
			status, body = rv.echo(raw, tok)
		}
		if status < 0 { // hang until the caller gives up
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
		return
	}
	var c changeNotificationCollection
	_ = json.NewDecoder(r.Body).Decode(&c)
	rv.mu.Lock()
	n := len(rv.times)
	rv.times = append(rv.times, time.Now())
	hang := rv.hang != nil && rv.hang(n)
	status := http.StatusAccepted
	if rv.status != nil {
		status = rv.status(n)
	}
	if !hang && status >= 200 && status < 300 {
		rv.posts = append(rv.posts, c)
	}
	rv.mu.Unlock()
	if hang {
		<-r.Context().Done()
		return
	}
	w.WriteHeader(status)
	if status >= 200 && status < 300 {
		for range c.Value {
			rv.got <- struct{}{}
		}
	}
}

// notifications returns every accepted notification, in arrival order.
func (rv *receiver) notifications() []changeNotification {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	var out []changeNotification
	for _, p := range rv.posts {
		out = append(out, p.Value...)
	}
	return out
}

// wait blocks until n more notifications were accepted (real-time tests
// only; the timeout is a failure guard, not a timing assertion).
func (rv *receiver) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for range n {
		select {
		case <-rv.got:
		case <-deadline:
			t.Fatalf("timed out waiting for notifications; have %d", len(rv.notifications()))
		}
	}
}

// subscribe creates a subscription on user's events.
func (h *harness) subscribe(user, notifyURL, lifecycleURL string, extra map[string]any, headers ...string) response {
	h.t.Helper()
	body := map[string]any{
		"changeType":         "created,updated,deleted",
		"notificationUrl":    notifyURL,
		"resource":           "/users/" + user + "/events",
		"expirationDateTime": h.tn.Now().Add(48 * time.Hour).Format(time.RFC3339),
		"clientState":        "s3cret",
	}
	if lifecycleURL != "" {
		body["lifecycleNotificationUrl"] = lifecycleURL
	}
	for k, v := range extra {
		body[k] = v
	}
	return h.do("POST", "/subscriptions", body, headers...)
}

func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, _ := cur.(map[string]any)
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}

// waitStat waits until an extra counter reaches want: receivers see a POST
// before the emulator has counted it. The deadline only guards a hang.
func (h *harness) waitStat(name string, want int64) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, extra := h.em.Stats()
		if extra[name] == want {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s = %d, want %d", name, extra[name], want)
		}
		time.Sleep(time.Millisecond)
	}
}
