package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bookingsync/bookingsync/internal/httpapi"
)

func TestResyncCommand(t *testing.T) {
	var gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/resync" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		gotQuery = r.URL.RawQuery
		_ = json.NewEncoder(w).Encode(httpapi.ResyncReport{DryRun: true, Resources: []string{"r1"}, Bookings: 3, Events: 4, Links: 3,
			Evaluated: 3, InSync: 1,
			Items: []httpapi.ResyncItem{
				{BookingID: "b1", EventID: "e1", Rule: "O4", Reason: "event deleted in Outlook",
					Actions: []httpapi.ResyncAction{{Side: "dataverse", Op: "cancel", Kind: "cancel_booking"}}, Link: "delete"},
				{BookingID: "b2", EventID: "e2", Rule: "B6", Reason: "booking changed",
					Actions: []httpapi.ResyncAction{{Side: "outlook", Op: "update", Kind: "update_event", Fields: "start,end"}}, Link: "save"},
			},
			Counts: map[string]int{"dataverse.cancel": 1, "outlook.update": 1, "link.delete": 1}, Rules: map[string]int{"O4": 1, "B6": 1}})
	}))
	defer srv.Close()
	var out, errb bytes.Buffer
	code := Main([]string{"resync", "--resource", "r1", "--dry-run", "--admin-url", srv.URL, "--token", "tok"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if gotQuery != "dry_run=1&resource=r1" {
		t.Errorf("query = %q", gotQuery)
	}
	for _, want := range []string{"O4", "dataverse", "cancel", "B6", "update (start,end)",
		"dry run: compared 3 bookings, 4 events, 3 links of 1 resource(s): 3 evaluated, 1 in sync; would: dataverse.cancel 1, link.delete 1, outlook.update 1; errors 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if code := Main([]string{"resync", "--admin-url", srv.URL, "--token", "tok"}, &out, &errb); code != 2 {
		t.Errorf("resync without --resource or --all: exit %d, want 2", code)
	}
}
