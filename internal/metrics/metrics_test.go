package metrics

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestEndpoint(t *testing.T) {
	for _, tc := range []struct{ method, url, want string }{
		{"GET", "https://graph.microsoft.com/v1.0/users/5f0c2d7e-1111-2222-3333-444455556666/calendar/events/AAMkAGI2TG93AAA=", "GET /users/{id}/calendar/events/{id}"},
		{"GET", "https://127.0.0.1:7070/graph/v1.0/users/alex@contoso.com/calendarView/delta?startDateTime=x", "GET /users/{id}/calendarView/delta"},
		{"PATCH", "https://graph.microsoft.com/v1.0/subscriptions/7f105c7d-2dc5-4530-97cd-4e7ae6534c07", "PATCH /subscriptions/{id}"},
		{"POST", "https://graph.microsoft.com/v1.0/$batch", "POST /$batch"},
		{"PATCH", "https://contoso.crm.dynamics.com/api/data/v9.2/bookableresourcebookings(0d6f8a2b-1111-2222-3333-444455556666)", "PATCH /bookableresourcebookings({id})"},
		{"GET", "https://127.0.0.1:7070/dataverse/api/data/v9.2/EntityDefinitions(LogicalName='bookableresource')/Attributes", "GET /EntityDefinitions(LogicalName={key})/Attributes"},
		{"GET", "https://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI", "GET /WhoAmI"},
	} {
		req, _ := http.NewRequest(tc.method, tc.url, nil)
		if got := Endpoint(req); got != tc.want {
			t.Errorf("Endpoint(%s %s) = %q, want %q", tc.method, tc.url, got, tc.want)
		}
	}
}

func TestObserveAPIResponse(t *testing.T) {
	m := New()
	req, _ := http.NewRequest("GET", "https://graph.microsoft.com/v1.0/subscriptions", nil)
	m.ObserveAPIResponse("graph", req, 429, true)
	m.ObserveAPIResponse("graph", req, 503, false)
	m.ObserveAPIResponse("graph", req, 503, true)
	m.ObserveAPIResponse("graph", req, 0, false)
	if got := testutil.ToFloat64(m.APIThrottled.WithLabelValues("graph")); got != 2 {
		t.Errorf("throttled = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.APIRequests.WithLabelValues("graph", "GET /subscriptions", "error")); got != 1 {
		t.Errorf("errors = %v, want 1", got)
	}
}

func TestScrapeQueries(t *testing.T) {
	m := New()
	exp := time.Now().Add(time.Hour)
	if err := m.RegisterScrapeQueries(
		func(context.Context) (map[string]int64, error) { return map[string]int64{"available": 3}, nil },
		func(context.Context) (time.Time, bool, error) { return exp, true, nil }); err != nil {
		t.Fatal(err)
	}
	out, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, f := range out {
		for _, mm := range f.GetMetric() {
			if f.GetName() == "bookingsync_jobs" && mm.GetLabel()[0].GetValue() == "available" {
				found["jobs_available"] = mm.GetGauge().GetValue()
			}
			if f.GetName() == "bookingsync_subscription_nearest_expiry_seconds" {
				found["expiry"] = mm.GetGauge().GetValue()
			}
		}
	}
	if found["jobs_available"] != 3 {
		t.Errorf("jobs{available} = %v", found["jobs_available"])
	}
	if e := found["expiry"]; e < 3500 || e > 3600 {
		t.Errorf("nearest expiry seconds = %v, want about 3600", e)
	}

	// A failing query is reported, not fatal to the scrape.
	m2 := New()
	_ = m2.RegisterScrapeQueries(func(context.Context) (map[string]int64, error) { return nil, errors.New("db down") }, nil)
	if n, err := testutil.GatherAndCount(m2.Registry, "bookingsync_jobs"); err != nil || n != 0 {
		t.Errorf("jobs on error: %d series, %v", n, err)
	}
	if err := testutil.GatherAndCompare(m2.Registry, strings.NewReader(`
# HELP bookingsync_scrape_errors 1 when a scrape-time query failed in this scrape, by query.
# TYPE bookingsync_scrape_errors gauge
bookingsync_scrape_errors{query="jobs"} 1
`), "bookingsync_scrape_errors"); err != nil {
		t.Error(err)
	}
}

func TestSharedCountersOnEveryRegistry(t *testing.T) {
	a, b := New(), New()
	CountSyncAction("create_event", "outlook", "ok")
	for _, m := range []*Metrics{a, b} {
		for _, name := range []string{"bookingsync_sync_actions_total", "bookingsync_catchup_drift_repaired_total", "bookingsync_mass_delete_guard_trips_total"} {
			if n, err := testutil.GatherAndCount(m.Registry, name); err != nil || n == 0 {
				t.Errorf("%s: %d series, %v", name, n, err)
			}
		}
	}
}
