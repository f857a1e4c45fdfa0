package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// ErrNoConflict is returned by a ConflictBackend asked to resolve a booking
// that has no open conflict.
var ErrNoConflict = errors.New("no open conflict for this booking")

// Conflict is one conflict left for a person (sync.conflict: manual).
type Conflict struct {
	BookingID  string     `json:"booking_id"`
	ResourceID string     `json:"resource_id,omitempty"`
	Resource   string     `json:"resource,omitempty"` // the resource's name
	Mailbox    string     `json:"mailbox,omitempty"`
	EventID    string     `json:"event_id,omitempty"`
	Rule       string     `json:"rule"` // C5, C8 or D4 (docs/sync-rules.md)
	Reason     string     `json:"reason"`
	DetectedAt time.Time  `json:"detected_at"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	Resolution string     `json:"resolution,omitempty"`
}

// ConflictResolution is the answer of POST /api/v1/conflicts/resolve.
type ConflictResolution struct {
	BookingID  string `json:"booking_id"`
	Keep       string `json:"keep"`       // d365 or outlook
	Resolution string `json:"resolution"` // e.g. "d365 kept by admin", "no longer in conflict"
	Rule       string `json:"rule"`       // the rule that decided the writes, e.g. C1
	Reason     string `json:"reason"`
	Writes     int    `json:"writes"`
}

// ConflictBackend is implemented by admin backends that record conflicts.
type ConflictBackend interface {
	// Conflicts lists the open conflicts, oldest first (all: resolved ones too).
	Conflicts(ctx context.Context, all bool) ([]Conflict, error)
	// ResolveConflict keeps one side ("d365" or "outlook") of a booking's
	// open conflict; ErrNoConflict if it has none.
	ResolveConflict(ctx context.Context, bookingID, keep string) (ConflictResolution, error)
}

// conflictRoutes adds GET /api/v1/conflicts[?all=1] and
// POST /api/v1/conflicts/resolve?booking=ID&keep=d365|outlook when backend
// records conflicts.
func (s *Server) conflictRoutes(api *http.ServeMux, backend AdminBackend) {
	cb, ok := backend.(ConflictBackend)
	if !ok {
		return
	}
	api.HandleFunc("GET /api/v1/conflicts", func(w http.ResponseWriter, r *http.Request) {
		all := r.URL.Query().Get("all")
		cs, err := cb.Conflicts(r.Context(), all == "1" || all == "true")
		if err != nil {
			s.adminError(w, err)
			return
		}
		if cs == nil {
			cs = []Conflict{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"conflicts": cs})
	})
	api.HandleFunc("POST /api/v1/conflicts/resolve", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		booking, keep := q.Get("booking"), q.Get("keep")
		if booking == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "booking is required"})
			return
		}
		if keep != "d365" && keep != "outlook" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `keep must be "d365" or "outlook"`})
			return
		}
		res, err := cb.ResolveConflict(r.Context(), booking, keep)
		if err != nil {
			s.adminError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

// openConflicts is what GET /api/v1/status adds about conflicts: nil when
// the backend does not record them.
func openConflicts(ctx context.Context, backend AdminBackend) ([]Conflict, error) {
	cb, ok := backend.(ConflictBackend)
	if !ok {
		return nil, nil
	}
	cs, err := cb.Conflicts(ctx, false)
	if cs == nil && err == nil {
		cs = []Conflict{}
	}
	return cs, err
}
