package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/httpapi"
	"github.com/bookingsync/bookingsync/internal/metrics"
)

// fakeOps is an admin backend with the operational routes, recording calls.
type fakeOps struct {
	mu    sync.Mutex
	calls []string
	audit httpapi.AuditQuery
}

func (f *fakeOps) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeOps) Status(context.Context) ([]httpapi.ResourceStatus, error) { return nil, nil }
func (f *fakeOps) RenewSubscriptions(context.Context, string) (int, error)  { return 0, nil }
func (f *fakeOps) DeleteSubscriptions(context.Context, string) (int, error) { return 0, nil }
func (f *fakeOps) Passes(_ context.Context, status string) ([]httpapi.GuardPass, error) {
	f.record("passes " + status)
	return []httpapi.GuardPass{heldPass()}, nil
}

var t1 = time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC)

func heldPass() httpapi.GuardPass {
	return httpapi.GuardPass{ID: "P-ABC", Mailbox: "mbx-1", ResourceID: "r1", Resource: "Ana", Side: "outlook", Deletes: 25,
		Linked: 30, Status: "held", CreatedAt: t1,
		Plan: json.RawMessage(`[{"kind":"booking","booking_id":"b1","mailbox":"mbx-1","rule":"D1","reason":"booking out of scope (booking deleted): event deleted","actions":[{"kind":"delete_event","mailbox":"mbx-1","event_id":"e1"}]}]`)}
}

func (f *fakeOps) ApprovePass(_ context.Context, id, by string) (httpapi.PassApproval, error) {
	f.record("approve " + id + " by " + by)
	if id != "P-ABC" {
		return httpapi.PassApproval{}, fmt.Errorf("%w: pass %s", httpapi.ErrNoSuchItem, id)
	}
	p := heldPass()
	p.Status = "applied"
	return httpapi.PassApproval{Pass: p, Items: 25, Applied: 25}, nil
}

func (f *fakeOps) DiscardPass(_ context.Context, id, by string) (httpapi.GuardPass, error) {
	f.record("discard " + id)
	p := heldPass()
	p.Status = "discarded"
	return p, nil
}

func (f *fakeOps) AuditLog(_ context.Context, q httpapi.AuditQuery) ([]httpapi.AuditEntry, error) {
	f.mu.Lock()
	f.audit = q
	f.mu.Unlock()
	return []httpapi.AuditEntry{
		{ID: 2, At: t1, BookingID: "b1", EventID: "e1", Side: "dataverse", Action: "update_booking_times",
			Reason: "O2: event moved in Outlook", Before: json.RawMessage(`{"start":"2026-12-02T08:00:00Z","end":"2026-12-02T10:00:00Z"}`),
			After: json.RawMessage(`{"start":"2026-12-02T09:00:00Z","end":"2026-12-02T11:00:00Z"}`), Outcome: "ok"},
		{ID: 1, At: t1.Add(-time.Minute), BookingID: "b1", Side: "outlook", Action: "create_event", Reason: "B1: booking in scope",
			After: json.RawMessage(`{"subject":"WO-1 · Contoso","mailbox":"mbx-1"}`), Outcome: "failed", Error: "graph 503"},
	}, nil
}

func (f *fakeOps) Dead(context.Context, int) (httpapi.DeadItems, error) {
	dead := t1
	return httpapi.DeadItems{
		Notifications: []httpapi.DeadNotification{{ID: 42, Source: "graph", Mailbox: "mbx-1", ItemID: "e9", ChangeType: "updated",
			ReceivedAt: t1, Attempts: 10, DeadAt: &dead, LastError: "read event e9:\n 500 internal"}},
		Jobs: []httpapi.DeadJob{{ID: 7, Kind: "catchup_mailbox", Args: json.RawMessage(`{"mailbox":"mbx-1"}`), Attempts: 25,
			MaxAttempts: 25, FinalizedAt: &dead, LastError: "delta: 410 gone"}},
	}, nil
}

func (f *fakeOps) ReprocessNotification(_ context.Context, id int64) error {
	f.record(fmt.Sprintf("reprocess %d", id))
	if id == 99 {
		return fmt.Errorf("%w: notification 99 is being processed", httpapi.ErrWrongState)
	}
	return nil
}

func (f *fakeOps) RetryJob(_ context.Context, id int64) error {
	f.record(fmt.Sprintf("retry %d", id))
	return nil
}

func startOps(t *testing.T) (*fakeOps, string) {
	t.Helper()
	f := &fakeOps{}
	s := httpapi.NewServer(httpapi.Config{}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New())
	srv := httptest.NewServer(s.AdminHandler(httpapi.AdminConfig{Token: func() string { return "tok" }}, f))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func runCmd(t *testing.T, url string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(append(args, "--admin-url", url, "--token", "tok"), &out, &errb)
	return out.String(), errb.String(), code
}

func TestLogCommand(t *testing.T) {
	f, url := startOps(t)
	out, errs, code := runCmd(t, url, "log", "--resource", "ana@example.test", "--booking", "b1", "--since", "2h", "--limit", "5")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if f.audit.Resource != "ana@example.test" || f.audit.Booking != "b1" || f.audit.Limit != 5 ||
		time.Since(f.audit.Since) < 2*time.Hour-time.Minute || time.Since(f.audit.Since) > 2*time.Hour+time.Minute {
		t.Errorf("query = %+v", f.audit)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("output:\n%s", out)
	}
	for _, want := range []string{"2026-12-01 08:30:00Z", "dataverse", "update_booking_times", "b1/e1", "ok",
		"O2: event moved in Outlook", "end 2026-12-02T10:00:00Z → 2026-12-02T11:00:00Z", "start 2026-12-02T08:00:00Z → 2026-12-02T09:00:00Z"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q lacks %q", lines[0], want)
		}
	}
	for _, want := range []string{"outlook", "create_event", "b1/-", "failed", `subject="WO-1 · Contoso"`, "error: graph 503"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("line %q lacks %q", lines[1], want)
		}
	}
	if _, errs, code := runCmd(t, url, "log", "--since", "yesterday"); code == 0 || !strings.Contains(errs, "since") {
		t.Errorf("bad --since: exit %d, %s", code, errs)
	}
}

func TestApproveCommand(t *testing.T) {
	f, url := startOps(t)
	out, errs, code := runCmd(t, url, "approve")
	if code != 0 || !strings.Contains(out, "P-ABC  held  Ana, mailbox mbx-1: 25 event deletion(s) of 30 linked") ||
		!strings.Contains(out, "booking b1  D1: booking out of scope (booking deleted): event deleted  → delete_event e1") {
		t.Errorf("list: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = runCmd(t, url, "approve", "P-ABC", "--by", "ops")
	if code != 0 || !strings.Contains(out, "approved P-ABC (Ana, mailbox mbx-1): 25 item(s) re-run, 25 applied; the pass is applied") {
		t.Errorf("approve: exit %d\n%s%s", code, out, errs)
	}
	if _, errs, code := runCmd(t, url, "approve", "P-NOPE"); code != 1 || !strings.Contains(errs, "HTTP 404") {
		t.Errorf("unknown pass: exit %d, %s", code, errs)
	}
	if out, _, code := runCmd(t, url, "approve", "--discard", "P-ABC"); code != 0 || !strings.Contains(out, "discarded P-ABC") {
		t.Errorf("discard: exit %d, %s", code, out)
	}
	want := []string{"passes held", "approve P-ABC by ops", "approve P-NOPE by " + defaultApprover(), "discard P-ABC"}
	if strings.Join(f.calls, "|") != strings.Join(want, "|") {
		t.Errorf("calls = %q, want %q", f.calls, want)
	}
}

func TestReprocessAndDeadCommands(t *testing.T) {
	f, url := startOps(t)
	out, errs, code := runCmd(t, url, "dead")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"1 dead notification(s)", "42", "graph", "e9", "read event e9: 500 internal",
		"1 discarded job(s)", "catchup_mailbox", "25/25", "delta: 410 gone"} {
		if !strings.Contains(out, want) {
			t.Errorf("dead output lacks %q:\n%s", want, out)
		}
	}
	if out, errs, code := runCmd(t, url, "reprocess", "42"); code != 0 || !strings.Contains(out, "notification 42 requeued") {
		t.Errorf("reprocess: exit %d %s%s", code, out, errs)
	}
	if out, _, code := runCmd(t, url, "reprocess", "--job", "7"); code != 0 || !strings.Contains(out, "job 7 retried") {
		t.Errorf("retry job: exit %d %s", code, out)
	}
	if _, errs, code := runCmd(t, url, "reprocess", "99"); code != 1 || !strings.Contains(errs, "HTTP 409") {
		t.Errorf("busy row: exit %d %s", code, errs)
	}
	if _, _, code := runCmd(t, url, "reprocess", "abc"); code != 1 {
		t.Errorf("non-numeric id: exit %d", code)
	}
	if strings.Join(f.calls, "|") != "reprocess 42|retry 7|reprocess 99" {
		t.Errorf("calls = %q", f.calls)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2h":                   now.Add(-2 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"7d":                   now.Add(-7 * 24 * time.Hour),
		"1d12h":                now.Add(-36 * time.Hour),
		"2026-11-30T08:00:00Z": time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC),
	} {
		got, err := httpapi.ParseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-2h", "d", "2x"} {
		if _, err := httpapi.ParseSince(bad, now); err == nil {
			t.Errorf("ParseSince(%q) accepted", bad)
		}
	}
}
