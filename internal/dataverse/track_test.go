package dataverse

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestTrackAndTrackNext(t *testing.T) {
	const (
		delta1 = testBase + "/bookableresourcebookings?$select=name&$deltatoken=919042%2108%2f22%2f2017%2008%3a10%3a44"
		delta2 = testBase + "/bookableresourcebookings?$select=name&$deltatoken=919043%2108%2f22%2f2017%2009%3a10%3a44"
		next   = testBase + "/bookableresourcebookings?$select=name&$skiptoken=%3Ccookie%20pagenumber=%222%22%20/%3E"
		del    = "2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b"
	)
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		switch u := r.URL.String(); {
		case u == delta1:
			writeJSON(w, 200, map[string]any{
				"@odata.context": testBase + "/$metadata#bookableresourcebookings(name)/$delta",
				"value": []any{
					map[string]any{"bookableresourcebookingid": bookingID, "name": "changed"},
					map[string]any{"@odata.context": testBase + "/$metadata#bookableresourcebookings/$deletedEntity", "id": del, "reason": "deleted"},
				},
				"@odata.deltaLink": delta2,
			})
		case u == delta2:
			// Nothing changed: the documented "empty JSON".
			writeJSON(w, 200, map[string]any{})
		case strings.Contains(u, "skiptoken"):
			writeJSON(w, 200, map[string]any{"value": []any{map[string]any{"bookableresourcebookingid": gid, "name": "b"}}, "@odata.deltaLink": delta1})
		default:
			writeJSON(w, 200, map[string]any{"value": []any{map[string]any{"bookableresourcebookingid": bookingID, "name": "a"}}, "@odata.nextLink": next})
		}
	})
	ctx := context.Background()
	ch, err := c.Track(ctx, SetBookings, []string{"name"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Rows) != 2 || len(ch.Deleted) != 0 || ch.DeltaLink != delta1 {
		t.Fatalf("initial = %d rows, %v deleted, delta %q", len(ch.Rows), ch.Deleted, ch.DeltaLink)
	}
	reqs := f.requests()
	if reqs[0].URL != testBase+"/bookableresourcebookings?$select=name" {
		t.Errorf("initial URL = %s", reqs[0].URL)
	}
	for _, r := range reqs {
		if p := r.Header.Get("Prefer"); !strings.Contains(p, "odata.track-changes") {
			t.Errorf("Prefer = %q", p)
		}
	}
	if reqs[1].URL != next {
		t.Errorf("nextLink not followed verbatim: %s", reqs[1].URL)
	}

	ch, err = c.TrackNext(ctx, ch.DeltaLink)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Rows) != 1 || len(ch.Deleted) != 1 || ch.Deleted[0] != del || ch.DeltaLink != delta2 {
		t.Fatalf("delta = %d rows, deleted %v, delta %q", len(ch.Rows), ch.Deleted, ch.DeltaLink)
	}
	var b Booking
	if err := b.UnmarshalJSON(ch.Rows[0]); err != nil || b.Name != "changed" {
		t.Fatalf("row = %+v, %v", b, err)
	}

	ch, err = c.TrackNext(ctx, delta2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Rows)+len(ch.Deleted) != 0 || ch.DeltaLink != delta2 {
		t.Fatalf("empty delta = %+v", ch)
	}
}

func TestTrackErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter)
		want    error
		substr  string
	}{
		{"expired token", func(w http.ResponseWriter) {
			writeError(w, 400, "0x80044352", "Version stamp associated with the client has expired. Please perform a full sync.")
		}, ErrChangeTrackingExpired, ""},
		{"not enabled", func(w http.ResponseWriter) {
			writeJSON(w, 200, map[string]any{"value": []any{}})
		}, nil, "neither @odata.deltaLink"},
		{"bad deleted id", func(w http.ResponseWriter) {
			writeJSON(w, 200, map[string]any{"value": []any{map[string]any{"id": "x", "reason": "deleted"}}, "@odata.deltaLink": testBase + "/x"})
		}, ErrInvalidID, ""},
		{"foreign delta link", func(w http.ResponseWriter) {
			writeJSON(w, 200, map[string]any{"value": []any{}, "@odata.deltaLink": "https://other.example/x"})
		}, nil, "not on contoso"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { tt.handler(w) })
			_, err := c.Track(context.Background(), SetBookings, []string{"name"})
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if tt.substr != "" && !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("err = %v, want containing %q", err, tt.substr)
			}
		})
	}
	c, _ := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {})
	if _, err := c.TrackNext(context.Background(), ""); err == nil {
		t.Error("TrackNext(\"\") succeeded")
	}
}
