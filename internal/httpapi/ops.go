package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Operational admin routes: the mass-delete guard's held passes, the audit
// log, and failed work (dead inbox rows, discarded jobs).

// Errors an OpsBackend returns for the answers other than 500.
var (
	// ErrNoSuchItem: no pass, notification or job with that id (404).
	ErrNoSuchItem = errors.New("no such item")
	// ErrWrongState: the item is not in a state that allows it (409),
	// e.g. approving an applied pass, or reprocessing a row being processed.
	ErrWrongState = errors.New("not possible in its current state")
)

// GuardPass is a pass the mass-delete guard held (GET /api/v1/passes).
type GuardPass struct {
	ID         string     `json:"id"`
	Mailbox    string     `json:"mailbox"`
	ResourceID string     `json:"resource_id,omitempty"`
	Resource   string     `json:"resource,omitempty"` // the resource's name
	Side       string     `json:"side"`               // outlook: events deleted; dataverse: bookings canceled
	Deletes    int        `json:"deletes"`
	Linked     int        `json:"linked"`
	Status     string     `json:"status"` // held, approved, applied, discarded
	CreatedAt  time.Time  `json:"created_at"`
	ApprovedAt *time.Time `json:"approved_at,omitempty"`
	ApprovedBy string     `json:"approved_by,omitempty"`
	// Plan is the held items (engine.PassItem: trigger, rule, reason, actions).
	Plan json.RawMessage `json:"plan,omitempty"`
}

// PassApproval is the answer of POST /api/v1/passes/approve.
type PassApproval struct {
	Pass    GuardPass `json:"pass"`
	Items   int       `json:"items"`
	Applied int       `json:"applied"`
	Errors  []string  `json:"errors,omitempty"` // the pass stays approved; approve again to retry
}

// AuditQuery selects audit entries (GET /api/v1/log).
type AuditQuery struct {
	Resource string // bookableresourceid, UPN or mailbox
	Booking  string
	Since    time.Time
	Limit    int
}

// AuditEntry is one audited action.
type AuditEntry struct {
	ID         int64           `json:"id"`
	At         time.Time       `json:"at"`
	ResourceID string          `json:"resource_id,omitempty"`
	BookingID  string          `json:"booking_id,omitempty"`
	EventID    string          `json:"event_id,omitempty"`
	Side       string          `json:"side,omitempty"`
	Action     string          `json:"action"`
	Reason     string          `json:"reason,omitempty"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
	Outcome    string          `json:"outcome"`
	Error      string          `json:"error,omitempty"`
}

// DeadNotification is an inbox row that ran out of attempts.
type DeadNotification struct {
	ID         int64      `json:"id"`
	Source     string     `json:"source"`
	Mailbox    string     `json:"mailbox,omitempty"`
	ItemID     string     `json:"item_id,omitempty"`
	ChangeType string     `json:"change_type,omitempty"`
	ReceivedAt time.Time  `json:"received_at"`
	Attempts   int        `json:"attempts"`
	DeadAt     *time.Time `json:"dead_at,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
}

// DeadJob is a background job River discarded after its last attempt.
type DeadJob struct {
	ID          int64           `json:"id"`
	Kind        string          `json:"kind"`
	Args        json.RawMessage `json:"args,omitempty"`
	Attempts    int             `json:"attempts"`
	MaxAttempts int             `json:"max_attempts"`
	FinalizedAt *time.Time      `json:"finalized_at,omitempty"`
	LastError   string          `json:"last_error,omitempty"`
}

// DeadItems is the answer of GET /api/v1/dead.
type DeadItems struct {
	Notifications []DeadNotification `json:"notifications"`
	Jobs          []DeadJob          `json:"jobs"`
}

// OpsBackend is implemented by admin backends that run the sync.
type OpsBackend interface {
	// Passes lists held passes ("" status: all), newest first.
	Passes(ctx context.Context, status string) ([]GuardPass, error)
	// ApprovePass approves a held pass and re-runs its items.
	ApprovePass(ctx context.Context, id, by string) (PassApproval, error)
	// DiscardPass drops a held pass without applying it.
	DiscardPass(ctx context.Context, id, by string) (GuardPass, error)
	// AuditLog returns entries, newest first.
	AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// Dead lists dead inbox rows and discarded jobs.
	Dead(ctx context.Context, limit int) (DeadItems, error)
	// ReprocessNotification puts a dead (or waiting) inbox row back in the queue.
	ReprocessNotification(ctx context.Context, id int64) error
	// RetryJob makes a discarded job available again.
	RetryJob(ctx context.Context, id int64) error
}

// opsRoutes adds, when backend runs the sync:
//
//	GET  /api/v1/passes[?status=held]          held passes of the mass-delete guard
//	POST /api/v1/passes/approve?id=P-…[&by=]   approve and re-run one
//	POST /api/v1/passes/discard?id=P-…[&by=]   drop one
//	GET  /api/v1/log[?resource=&booking=&since=2h|RFC3339&limit=]
//	GET  /api/v1/dead[?limit=]                 dead inbox rows and discarded jobs
//	POST /api/v1/notifications/reprocess?id=N  requeue a dead inbox row
//	POST /api/v1/jobs/retry?id=N               retry a discarded job
func (s *Server) opsRoutes(api *http.ServeMux, backend AdminBackend) {
	ob, ok := backend.(OpsBackend)
	if !ok {
		return
	}
	api.HandleFunc("GET /api/v1/passes", func(w http.ResponseWriter, r *http.Request) {
		status := r.URL.Query().Get("status")
		switch status {
		case "", "held", "approved", "applied", "discarded":
		case "all":
			status = ""
		default:
			badRequest(w, "status must be held, approved, applied, discarded or all")
			return
		}
		ps, err := ob.Passes(r.Context(), status)
		if err != nil {
			s.opsError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"passes": nonNil(ps)})
	})
	api.HandleFunc("POST /api/v1/passes/approve", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if id == "" {
			badRequest(w, "id is required")
			return
		}
		out, err := ob.ApprovePass(r.Context(), id, r.URL.Query().Get("by"))
		if err != nil {
			s.opsError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
	api.HandleFunc("POST /api/v1/passes/discard", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if id == "" {
			badRequest(w, "id is required")
			return
		}
		p, err := ob.DiscardPass(r.Context(), id, r.URL.Query().Get("by"))
		if err != nil {
			s.opsError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"pass": p})
	})
	api.HandleFunc("GET /api/v1/log", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		aq := AuditQuery{Resource: q.Get("resource"), Booking: q.Get("booking")}
		if v := q.Get("since"); v != "" {
			t, err := ParseSince(v, time.Now())
			if err != nil {
				badRequest(w, err.Error())
				return
			}
			aq.Since = t
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 10000 {
				badRequest(w, "limit must be a number from 1 to 10000")
				return
			}
			aq.Limit = n
		}
		es, err := ob.AuditLog(r.Context(), aq)
		if err != nil {
			s.opsError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"entries": nonNil(es)})
	})
	api.HandleFunc("GET /api/v1/dead", func(w http.ResponseWriter, r *http.Request) {
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 10000 {
				badRequest(w, "limit must be a number from 1 to 10000")
				return
			}
			limit = n
		}
		d, err := ob.Dead(r.Context(), limit)
		if err != nil {
			s.opsError(w, err)
			return
		}
		d.Notifications, d.Jobs = nonNil(d.Notifications), nonNil(d.Jobs)
		writeJSON(w, http.StatusOK, d)
	})
	api.HandleFunc("POST /api/v1/notifications/reprocess", func(w http.ResponseWriter, r *http.Request) {
		id, ok := idParam(w, r)
		if !ok {
			return
		}
		if err := ob.ReprocessNotification(r.Context(), id); err != nil {
			s.opsError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int64{"requeued": id})
	})
	api.HandleFunc("POST /api/v1/jobs/retry", func(w http.ResponseWriter, r *http.Request) {
		id, ok := idParam(w, r)
		if !ok {
			return
		}
		if err := ob.RetryJob(r.Context(), id); err != nil {
			s.opsError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int64{"retried": id})
	})
}

func idParam(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.URL.Query().Get("id"), 10, 64)
	if err != nil || id < 1 {
		badRequest(w, "id must be a positive number")
		return 0, false
	}
	return id, true
}

func badRequest(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
}

func (s *Server) opsError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNoSuchItem):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrWrongState):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	default:
		s.adminError(w, err)
	}
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ParseSince reads --since: an RFC 3339 time, or an age before now as a
// Go duration ("90m", "2h") or whole days ("7d", "1d12h").
func ParseSince(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	var days time.Duration
	if d, rest, ok := strings.Cut(v, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return time.Time{}, errors.New(`since: want an RFC 3339 time or an age like "2h" or "7d"`)
		}
		days, v = time.Duration(n)*24*time.Hour, rest
	}
	var d time.Duration
	if v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d < 0 {
			return time.Time{}, errors.New(`since: want an RFC 3339 time or an age like "2h" or "7d"`)
		}
	}
	return now.Add(-(days + d)), nil
}
