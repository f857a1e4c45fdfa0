package httpapi

import (
	"context"
	"net/http"
)

// ResyncRequest is POST /api/v1/resync?resource=R|all=1[&dry_run=1].
type ResyncRequest struct {
	Resource string // bookableresourceid, UPN or Entra object id; "" with All
	All      bool   // every enrolled resource
	DryRun   bool   // plan only: change nothing
}

// ResyncAction is one write a resync plans (dry run).
type ResyncAction struct {
	Side      string `json:"side"` // outlook, dataverse, or "" for a warning
	Op        string `json:"op"`   // create, update, delete, cancel, warn
	Kind      string `json:"kind"` // the decision core's action kind, e.g. update_booking_times
	Mailbox   string `json:"mailbox,omitempty"`
	EventID   string `json:"event_id,omitempty"`
	BookingID string `json:"booking_id,omitempty"`
	Fields    string `json:"fields,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// ResyncItem is one evaluation that found a difference: the plan (dry run)
// or what was done.
type ResyncItem struct {
	BookingID string         `json:"booking_id,omitempty"`
	Mailbox   string         `json:"mailbox,omitempty"`
	EventID   string         `json:"event_id,omitempty"`
	Rule      string         `json:"rule"`
	Reason    string         `json:"reason"`
	Actions   []ResyncAction `json:"actions,omitempty"` // dry run
	Link      string         `json:"link,omitempty"`    // dry run: keep, save, delete, detach
	Conflict  bool           `json:"conflict,omitempty"`
	Writes    int            `json:"writes,omitempty"` // performed (not a dry run)
	Error     string         `json:"error,omitempty"`
}

// ResyncReport is the answer of POST /api/v1/resync.
type ResyncReport struct {
	DryRun    bool     `json:"dry_run"`
	Resources []string `json:"resources"`
	// What was compared: bookings in the window, events in the window,
	// links of the resources' mailboxes.
	Bookings int `json:"bookings"`
	Events   int `json:"events"`
	Links    int `json:"links"`
	// Evaluated went through the decision core; InSync needed nothing.
	Evaluated int          `json:"evaluated"`
	InSync    int          `json:"in_sync"`
	Items     []ResyncItem `json:"items"`
	// Counts: "outlook.create", "dataverse.cancel", … (planned or done),
	// "conflict", "link.delete", "link.detach".
	Counts map[string]int `json:"counts"`
	// Rules counts the rule ids of Items.
	Rules   map[string]int `json:"rules"`
	Repairs int            `json:"repairs"` // evaluations that wrote (not a dry run)
	Writes  int            `json:"writes"`
	Errors  int            `json:"errors"`
}

// ResyncBackend is implemented by admin backends that can resync.
type ResyncBackend interface {
	Resync(ctx context.Context, req ResyncRequest) (ResyncReport, error)
}

// resyncRoutes adds POST /api/v1/resync when backend can resync.
func (s *Server) resyncRoutes(api *http.ServeMux, backend AdminBackend) {
	rb, ok := backend.(ResyncBackend)
	if !ok {
		return
	}
	api.HandleFunc("POST /api/v1/resync", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		req := ResyncRequest{Resource: q.Get("resource"), All: truthy(q.Get("all")), DryRun: truthy(q.Get("dry_run"))}
		if (req.Resource == "") == !req.All {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "give exactly one of resource=ID and all=1"})
			return
		}
		rep, err := rb.Resync(r.Context(), req)
		if err != nil {
			s.adminError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
}

func truthy(v string) bool { return v == "1" || v == "true" }
