package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/metrics"
)

// fakeConflicts is an admin backend that records conflicts.
type fakeConflicts struct {
	open     []Conflict
	resolved []string // "booking keep"
}

func (f *fakeConflicts) Status(context.Context) ([]ResourceStatus, error) {
	return []ResourceStatus{{ResourceID: "r1", Name: "Ana"}}, nil
}
func (f *fakeConflicts) RenewSubscriptions(context.Context, string) (int, error)  { return 0, nil }
func (f *fakeConflicts) DeleteSubscriptions(context.Context, string) (int, error) { return 0, nil }
func (f *fakeConflicts) Conflicts(_ context.Context, all bool) ([]Conflict, error) {
	return f.open, nil
}

func (f *fakeConflicts) ResolveConflict(_ context.Context, booking, keep string) (ConflictResolution, error) {
	for _, c := range f.open {
		if c.BookingID == booking {
			f.resolved = append(f.resolved, booking+" "+keep)
			return ConflictResolution{BookingID: booking, Keep: keep, Resolution: keep + " kept by admin", Rule: "C1", Writes: 1}, nil
		}
	}
	return ConflictResolution{}, fmt.Errorf("%w: %s", ErrNoConflict, booking)
}

func TestConflictRoutes(t *testing.T) {
	backend := &fakeConflicts{open: []Conflict{{BookingID: "b1", ResourceID: "r1", Resource: "Ana", Rule: "C5",
		Reason: "times changed on both sides", DetectedAt: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}}}
	s := NewServer(Config{}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New())
	h := s.AdminHandler(AdminConfig{Token: func() string { return "tok" }}, backend)
	do := func(method, target, token string) (int, map[string]any) {
		req := httptest.NewRequest(method, target, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}
	tests := []struct {
		name, method, target, token string
		want                        int
		check                       func(t *testing.T, body map[string]any)
	}{
		{name: "list needs the token", method: "GET", target: "/api/v1/conflicts", want: http.StatusUnauthorized},
		{name: "resolve needs the token", method: "POST", target: "/api/v1/conflicts/resolve?booking=b1&keep=d365", token: "nope", want: http.StatusUnauthorized},
		{name: "list", method: "GET", target: "/api/v1/conflicts", token: "tok", want: http.StatusOK, check: func(t *testing.T, body map[string]any) {
			cs, _ := body["conflicts"].([]any)
			if len(cs) != 1 || cs[0].(map[string]any)["booking_id"] != "b1" || cs[0].(map[string]any)["rule"] != "C5" {
				t.Errorf("conflicts = %v", body)
			}
		}},
		{name: "status carries the open conflicts", method: "GET", target: "/api/v1/status", token: "tok", want: http.StatusOK, check: func(t *testing.T, body map[string]any) {
			if cs, _ := body["conflicts"].([]any); len(cs) != 1 {
				t.Errorf("status = %v", body)
			}
		}},
		{name: "list is GET only", method: "POST", target: "/api/v1/conflicts", token: "tok", want: http.StatusMethodNotAllowed},
		{name: "resolve is POST only", method: "GET", target: "/api/v1/conflicts/resolve?booking=b1&keep=d365", token: "tok", want: http.StatusMethodNotAllowed},
		{name: "resolve without booking", method: "POST", target: "/api/v1/conflicts/resolve?keep=d365", token: "tok", want: http.StatusBadRequest},
		{name: "resolve with a bad side", method: "POST", target: "/api/v1/conflicts/resolve?booking=b1&keep=both", token: "tok", want: http.StatusBadRequest},
		{name: "resolve without a conflict", method: "POST", target: "/api/v1/conflicts/resolve?booking=b9&keep=d365", token: "tok", want: http.StatusNotFound},
		{name: "resolve", method: "POST", target: "/api/v1/conflicts/resolve?booking=b1&keep=outlook", token: "tok", want: http.StatusOK, check: func(t *testing.T, body map[string]any) {
			if body["resolution"] != "outlook kept by admin" || body["keep"] != "outlook" {
				t.Errorf("resolve = %v", body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(tt.method, tt.target, tt.token)
			if code != tt.want {
				t.Fatalf("%s %s = %d %v, want %d", tt.method, tt.target, code, body, tt.want)
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
	if len(backend.resolved) != 1 || backend.resolved[0] != "b1 outlook" {
		t.Errorf("backend saw resolutions %v, want only b1 outlook", backend.resolved)
	}
}
