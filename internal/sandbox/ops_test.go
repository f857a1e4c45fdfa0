package sandbox

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/store"
)

// TestMetricsFamilies scrapes /metrics after one technician is opted in
// and synced, and finds every family of issue 8's list.
func TestMetricsFamilies(t *testing.T) {
	sb := startSandbox(t)
	optIn(t, sb, technicians(t, sb)[0])

	families := []string{
		"bookingsync_notifications_received_total", // received / accepted / rejected by outcome
		"bookingsync_notification_ack_seconds",     // ack latency histogram
		"bookingsync_jobs",                         // jobs by state (River)
		"bookingsync_inbox_pending",                // the inbox is the notification queue
		"bookingsync_sync_actions_total",           // by kind, side and outcome
		"bookingsync_api_requests_total",           // by API, endpoint and status
		"bookingsync_api_throttled_total",
		"bookingsync_subscription_nearest_expiry_seconds",
		"bookingsync_catchup_drift_repaired_total",
		"bookingsync_mass_delete_guard_trips_total",
		"bookingsync_retention_deleted_total",
	}
	var body string
	waitFor(t, "every metric family", func() (bool, error) {
		req, _ := http.NewRequest(http.MethodGet, sb.Service.AdminURL()+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+sb.AdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		for _, f := range families {
			if !strings.Contains(body, "\n"+f+"{") && !strings.Contains(body, "\n"+f+" ") && !strings.Contains(body, "\n"+f+"_bucket{") {
				return false, nil
			}
		}
		return strings.Contains(body, `bookingsync_notifications_received_total{outcome="accepted",source="dataverse"}`) &&
			strings.Contains(body, `bookingsync_api_requests_total{api="graph",endpoint="POST /subscriptions",status="201"}`), nil
	})
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "bookingsync_sync_actions_total") || strings.HasPrefix(line, "bookingsync_subscription_nearest_expiry_seconds") ||
			strings.HasPrefix(line, "bookingsync_jobs{") {
			t.Log(line)
		}
	}
}

func TestRetention(t *testing.T) {
	sb := startSandbox(t)
	ctx := context.Background()
	st := sb.Service.Store
	now := time.Now()
	for _, at := range []time.Time{now.Add(-91 * 24 * time.Hour), now.Add(-time.Hour)} {
		if _, err := st.InsertAudit(ctx, st.DB(), store.AuditEntry{At: at, Action: "retention_test", Outcome: "ok", BookingID: at.Format(time.RFC3339)}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := sb.Service.Retain(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Audit != 1 {
		t.Errorf("deleted %d audit entries, want 1 (older than retention.audit = 90d)", res.Audit)
	}
	left, err := st.QueryAudit(ctx, st.DB(), store.AuditFilter{Since: now.Add(-365 * 24 * time.Hour), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, e := range left {
		if e.Action == "retention_test" {
			kept++
			if e.At.Before(now.Add(-2 * time.Hour)) {
				t.Errorf("old entry kept: %+v", e)
			}
		}
	}
	if kept != 1 {
		t.Errorf("%d recent test entries kept, want 1", kept)
	}
}
