package outlook

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	gosync "sync"
	"testing"
	"time"

	emugraph "github.com/bookingsync/bookingsync/internal/emulator/graph"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/httpx"
)

// Demo mailboxes (tenant.DemoUsers).
const (
	adele  = "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b01" // W. Europe Standard Time
	lee    = "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b02" // Eastern Standard Time
	nobody = "00000000-0000-0000-0000-00000000dead"
)

// wireRequest is one request as sent to the emulator.
type wireRequest struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// harness is the Graph emulator served in process (no sockets), a graph
// client in front of it that records every request, and a Calendar.
type harness struct {
	em    *emugraph.Emulator
	gc    *graph.Client
	cal   *Calendar
	mu    gosync.Mutex
	reqs  []wireRequest
	mux   *http.ServeMux
	token string
}

func newHarness(t *testing.T, emOpts emugraph.Options, o Options) *harness {
	t.Helper()
	if emOpts.ExtraUpdateDelay == 0 {
		// Outlook's extra update after create would change changeKeys under
		// the tests' feet; the test about it turns it back on.
		emOpts.NoExtraUpdate = true
	}
	tn := tenant.New(tenant.Config{TokenLifetime: 24 * time.Hour})
	tn.SetBaseURL("https://graph.test")
	h := &harness{mux: http.NewServeMux()}
	h.em = emugraph.New(tn, emOpts, slog.New(slog.DiscardHandler))
	h.em.Mount(h.mux)
	if err := h.em.Reset("demo"); err != nil {
		t.Fatalf("reset emulator: %v", err)
	}
	t.Cleanup(h.em.Close)
	h.token, _ = tn.Issue(emugraph.Audience)
	gc, err := graph.New(&httpx.Client{HTTP: &http.Client{Transport: h}, MaxAttempts: 1}, graph.Options{BaseURL: "https://graph.test/graph/v1.0"})
	if err != nil {
		t.Fatal(err)
	}
	h.gc = gc
	h.cal = New(gc, o)
	return h
}

// RoundTrip records the request, adds the token and serves it in process.
func (h *harness) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	h.mu.Lock()
	h.reqs = append(h.reqs, wireRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	h.mu.Unlock()
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+h.token)
	rec := httptest.NewRecorder()
	h.mux.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// requests returns the recorded requests and forgets them.
func (h *harness) requests() []wireRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.reqs
	h.reqs = nil
	return out
}

// countEvents counts the mailbox's events in a wide window.
func (h *harness) countEvents(t *testing.T, mailbox string) int {
	t.Helper()
	evs, err := h.gc.CalendarView(context.Background(), mailbox,
		time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// postCount is how many event POSTs reached the emulator.
func (h *harness) postCount() int64 {
	routes, _ := h.em.Stats()
	return routes["POST /users/{id}/events"]
}
