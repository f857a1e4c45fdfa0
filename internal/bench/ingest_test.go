package bench

import (
	"context"
	"testing"
	"time"
)

// TestIngestLosesNothing runs the ingest bench briefly: whatever the
// figures, every acknowledged notification must be in the inbox.
func TestIngestLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	res, err := Ingest(context.Background(), IngestOptions{Rate: 500, Duration: 500 * time.Millisecond, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	if res.Notifications == 0 || res.Requests == 0 {
		t.Fatalf("bench sent nothing: %+v", res)
	}
	if res.Lost != 0 || res.Persisted != res.Notifications {
		t.Fatalf("acknowledged %d, persisted %d (lost %d)", res.Notifications, res.Persisted, res.Lost)
	}
	if res.Errors != 0 {
		t.Fatalf("%d requests failed", res.Errors)
	}
}
