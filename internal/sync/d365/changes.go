package d365

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/bookingsync/bookingsync/internal/dataverse"
)

// Change is one booking reported by change tracking.
type Change struct {
	BookingID string
	Deleted   bool
	// Version is the row's versionnumber at the time of the poll (0 for
	// deletions): equal to the version recorded after our own write means
	// the change is our echo.
	Version int64
}

// trackColumns is all a poll needs: the engine reads changed bookings
// itself, and $expand is not allowed with change tracking (reference §3).
var trackColumns = []string{"bookableresourcebookingid", "versionnumber"}

// Changes polls change tracking on bookings. token "" starts a new round:
// every current booking is reported (deletions are not, by design of the
// initial sync). Otherwise it returns what changed since token: updated
// and created rows first, then deletions. Store next only after the changes
// have been handled. An expired token gives ErrTokenExpired: start again
// with "" and compare the whole window.
//
// Tokens are the delta link relative to the API base, so a stored token
// survives a change of the org's host name (e.g. the sandbox's port).
func (s *Source) Changes(ctx context.Context, token string) ([]Change, string, error) {
	ch, err := s.track(ctx, dataverse.SetBookings, trackColumns, token)
	if err != nil {
		return nil, "", fmt.Errorf("booking changes: %w", mapErr(err))
	}
	out := make([]Change, 0, len(ch.Rows)+len(ch.Deleted))
	for _, raw := range ch.Rows {
		var r struct {
			ID      string            `json:"bookableresourcebookingid"`
			Version dataverse.Version `json:"versionnumber"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, "", fmt.Errorf("booking changes: decode row: %w", err)
		}
		id, err := dataverse.ParseID(r.ID)
		if err != nil {
			return nil, "", fmt.Errorf("booking changes: %w", err)
		}
		out = append(out, Change{BookingID: id, Version: int64(r.Version)})
	}
	for _, id := range ch.Deleted {
		out = append(out, Change{BookingID: id, Deleted: true})
	}
	return out, s.token(ch.DeltaLink), nil
}

// track starts a change-tracking round on set (token "") or continues
// one. Errors are the client's, not yet mapped.
func (s *Source) track(ctx context.Context, set string, columns []string, token string) (*dataverse.Changes, error) {
	if token == "" {
		return s.c.Track(ctx, set, columns)
	}
	link, err := s.deltaLink(set, token)
	if err != nil {
		return nil, err
	}
	return s.c.TrackNext(ctx, link)
}

// token turns a delta link into the stored token.
func (s *Source) token(link string) string {
	if rel, ok := strings.CutPrefix(link, s.c.BaseURL()+"/"); ok {
		return rel
	}
	return link
}

// deltaLink turns a stored token back into a URL. Only links of set are
// accepted: the client attaches a bearer token to the request.
func (s *Source) deltaLink(set, token string) (string, error) {
	if strings.HasPrefix(token, "https://") || strings.HasPrefix(token, "http://") {
		return token, nil // the client refuses links to another host
	}
	if !strings.HasPrefix(token, set+"?") {
		return "", fmt.Errorf("invalid change-tracking token %q", truncate(token, 40))
	}
	return s.c.BaseURL() + "/" + token, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
