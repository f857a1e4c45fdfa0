package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/httpapi"
)

// fakeAdmin answers the admin API routes the conflict commands use.
func fakeAdmin(t *testing.T, calls *[]string) *httptest.Server {
	t.Helper()
	c := httpapi.Conflict{BookingID: "b1", Resource: "Ana", Rule: "C5", Reason: "times changed on both sides: left for a person",
		DetectedAt: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		*calls = append(*calls, r.Method+" "+r.URL.RequestURI())
		var out any
		switch r.URL.Path {
		case "/api/v1/status":
			out = map[string]any{"resources": []httpapi.ResourceStatus{{ResourceID: "r1", Name: "Ana"}}, "conflicts": []httpapi.Conflict{c}}
		case "/api/v1/conflicts":
			out = map[string]any{"conflicts": []httpapi.Conflict{c}}
		case "/api/v1/conflicts/resolve":
			q := r.URL.Query()
			out = httpapi.ConflictResolution{BookingID: q.Get("booking"), Keep: q.Get("keep"), Resolution: q.Get("keep") + " kept by admin",
				Rule: "C1", Reason: "times changed on both sides; D365 wins", Writes: 1}
		default:
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestConflictCommands(t *testing.T) {
	var calls []string
	srv := fakeAdmin(t, &calls)
	admin := []string{"--admin-url", srv.URL, "--token", "tok"}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
		wantCall string
	}{
		{"status shows open conflicts", append([]string{"status"}, admin...), 0,
			[]string{"1 open conflict(s)", "b1  Ana  C5  since 2026-11-27 09:00 UTC  times changed"}, "GET /api/v1/status"},
		{"list", append([]string{"conflicts", "list"}, admin...), 0, []string{"BOOKING", "b1", "Ana", "C5", "open"}, "GET /api/v1/conflicts"},
		{"list all", append([]string{"conflicts", "list", "--all"}, admin...), 0, []string{"b1"}, "GET /api/v1/conflicts?all=1"},
		{"resolve", append([]string{"conflicts", "resolve", "b1", "--keep", "d365"}, admin...), 0,
			[]string{"booking b1: d365 kept by admin (C1"}, "POST /api/v1/conflicts/resolve?booking=b1&keep=d365"},
		{"resolve needs --keep", append([]string{"conflicts", "resolve", "b1"}, admin...), 1, nil, ""},
		{"resolve needs a booking", append([]string{"conflicts", "resolve", "--keep", "d365"}, admin...), 2, nil, ""},
		{"unknown subcommand", []string{"conflicts", "forget"}, 2, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls = nil
			var out, errOut bytes.Buffer
			if code := Main(tt.args, &out, &errOut); code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.wantCode, errOut.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if tt.wantCall != "" && (len(calls) != 1 || calls[0] != tt.wantCall) {
				t.Errorf("admin API calls = %v, want [%s]", calls, tt.wantCall)
			}
			if tt.wantCall == "" && len(calls) != 0 {
				t.Errorf("admin API called: %v", calls)
			}
		})
	}
}
