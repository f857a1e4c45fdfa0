package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// ErrUnknownResource is returned by an AdminBackend for a resource name that
// matches no bookable resource, UPN or Entra object id.
var ErrUnknownResource = errors.New("unknown resource")

// ResourceStatus is one row of `bookingsync status`.
type ResourceStatus struct {
	ResourceID     string     `json:"resource_id"`
	Name           string     `json:"name"`
	UPN            string     `json:"upn,omitempty"`
	Mailbox        string     `json:"mailbox,omitempty"`
	OptIn          string     `json:"opt_in"`
	Active         bool       `json:"active"`
	StatusText     string     `json:"status_text,omitempty"`
	SubscriptionID string     `json:"subscription_id,omitempty"`
	Expires        *time.Time `json:"expires,omitempty"`
	RenewFailures  int        `json:"renew_failures,omitempty"`
	LastError      string     `json:"last_error,omitempty"`
	LastNotified   *time.Time `json:"last_notification,omitempty"`
}

// AdminBackend is what the admin API operates on.
type AdminBackend interface {
	Status(ctx context.Context) ([]ResourceStatus, error)
	// RenewSubscriptions renews the subscriptions of one resource ("" = all).
	RenewSubscriptions(ctx context.Context, resource string) (int, error)
	// DeleteSubscriptions deletes the subscriptions of one resource.
	DeleteSubscriptions(ctx context.Context, resource string) (int, error)
}

// AdminConfig configures the admin listener.
type AdminConfig struct {
	Token func() string
	Ready map[string]ReadyFunc
}

// AdminHandler serves the admin API and /metrics, all behind the admin
// token except the health checks.
func (s *Server) AdminHandler(cfg AdminConfig, backend AdminBackend) http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		rows, err := backend.Status(r.Context())
		if err != nil {
			s.adminError(w, err)
			return
		}
		out := map[string]any{"resources": rows}
		conflicts, err := openConflicts(r.Context(), backend)
		if err != nil {
			s.adminError(w, err)
			return
		}
		if conflicts != nil {
			out["conflicts"] = conflicts
		}
		writeJSON(w, http.StatusOK, out)
	})
	api.HandleFunc("POST /api/v1/subscriptions/renew", func(w http.ResponseWriter, r *http.Request) {
		n, err := backend.RenewSubscriptions(r.Context(), r.URL.Query().Get("resource"))
		if err != nil {
			s.adminError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"renewed": n})
	})
	api.HandleFunc("POST /api/v1/subscriptions/delete", func(w http.ResponseWriter, r *http.Request) {
		res := r.URL.Query().Get("resource")
		if res == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "resource is required"})
			return
		}
		n, err := backend.DeleteSubscriptions(r.Context(), res)
		if err != nil {
			s.adminError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"deleted": n})
	})
	s.resyncRoutes(api, backend)
	s.conflictRoutes(api, backend)
	s.opsRoutes(api, backend)
	api.Handle("GET /metrics", metricsHandler(s.metrics))

	mux := http.NewServeMux()
	health(mux, cfg.Ready)
	mux.Handle("/", requireToken(cfg.Token, api))
	return securityHeaders(mux)
}

func (s *Server) adminError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrUnknownResource) || errors.Is(err, ErrNoConflict) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	s.log.Error("admin API", "err", err)
	writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
}
