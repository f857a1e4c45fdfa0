package bench

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestE2E runs the sync bench briefly: the JSON line has every field, and
// the write counts (exact, unlike the timings, which are never asserted)
// are one per change with no write for any echo.
func TestE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	res, err := E2E(context.Background(), E2EOptions{Changes: 10, Technicians: 2, Rate: 50, Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(res)
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"changes", "d365_to_outlook_p50_ms", "d365_to_outlook_p99_ms", "graph_writes_per_booking_change",
		"api_calls_per_echo", "writes_per_echo", "outlook_changes", "outlook_to_d365_p50_ms", "outlook_to_d365_p99_ms",
		"dataverse_writes_per_outlook_change"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, raw)
		}
	}
	t.Logf("%s", raw)
	if res.Changes != 10 || res.OutlookChanges != 10 || res.D365ToOutlookMissed != 0 || res.OutlookToD365Missed != 0 {
		t.Fatalf("changes %d/%d, missed %d/%d", res.Changes, res.OutlookChanges, res.D365ToOutlookMissed, res.OutlookToD365Missed)
	}
	if res.GraphWritesPerBookingChange != 1 {
		t.Errorf("graph_writes_per_booking_change = %v, want 1 (%d event writes)", res.GraphWritesPerBookingChange, res.Phase1.GraphEventWrites)
	}
	if res.DataverseWritesPerOutlookChange != 1 {
		t.Errorf("dataverse_writes_per_outlook_change = %v, want 1 (%d booking writes)", res.DataverseWritesPerOutlookChange, res.Phase2.DataverseBookingWrites)
	}
	if res.Echoes == 0 || res.WritesPerEcho != 0 {
		t.Errorf("%d echoes, writes_per_echo %v", res.Echoes, res.WritesPerEcho)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
