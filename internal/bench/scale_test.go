package bench

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestScale runs the scale bench small: every mailbox enrolled, every
// booking linked, memory figures read from the child process.
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the service")
	}
	// The child must be bookingsync itself; the test binary is not. Built
	// without -race: it is the subject measured, not the code under test.
	bin := filepath.Join(t.TempDir(), "bookingsync")
	build := exec.Command("go", "build", "-o", bin, "github.com/bookingsync/bookingsync/cmd/bookingsync")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build bookingsync: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := Scale(ctx, ScaleOptions{Mailboxes: 20, LinksPerMailbox: 2, IdleWait: 2 * time.Second,
		Timeout: 80 * time.Second, ServiceBinary: bin, Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(res)
	t.Logf("%s", raw)
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"mailboxes", "links", "enrol_s", "graph_requests_enrol", "graph_subscription_creates",
		"graph_throttled", "renewal_max_per_20s", "renewal_span_s", "peak_rss_mb", "idle_rss_mb", "target_idle_rss_mb", "met"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, raw)
		}
	}
	if res.Enrolled != 20 || res.Links != 40 {
		t.Errorf("enrolled %d of 20, links %d of 40", res.Enrolled, res.Links)
	}
	if res.GraphSubscriptionCreates < 20 || res.GraphEventCreates < 40 {
		t.Errorf("%d subscription creates, %d event creates: want at least 20 and 40", res.GraphSubscriptionCreates, res.GraphEventCreates)
	}
	if res.IdleRSSMB <= 0 || res.PeakRSSMB < res.IdleRSSMB {
		t.Errorf("idle RSS %.1f MB, peak %.1f MB: want 0 < idle ≤ peak", res.IdleRSSMB, res.PeakRSSMB)
	}
	if res.RenewalMaxPer20s < 1 || res.RenewalMaxPer20s > 20 {
		t.Errorf("renewal_max_per_20s %d: want 1..20", res.RenewalMaxPer20s)
	}
	if res.EnrolS <= 0 || res.EnrolS < res.StartS {
		t.Errorf("enrol_s %.1f, start_s %.1f", res.EnrolS, res.StartS)
	}
}

func TestRenewalSpread(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var due []time.Time
	for _, s := range []int{0, 5, 19, 20, 39, 100, 101, 102, 103} {
		due = append(due, t0.Add(time.Duration(s)*time.Second))
	}
	n, span := renewalSpread(due, 20*time.Second)
	if n != 4 || span != 103 {
		t.Errorf("renewalSpread = %d, %v; want 4 (100–103 s), 103", n, span)
	}
	if n, span := renewalSpread(nil, 20*time.Second); n != 0 || span != 0 {
		t.Errorf("renewalSpread(nil) = %d, %v", n, span)
	}
}
