package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bookingsync/bookingsync/internal/httpapi"
)

// runLog prints the audit log: one line per action, newest first.
func runLog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("log", stderr)
	cfgPath, adminURL, token := adminFlags(fs)
	resource := fs.String("resource", "", "only this resource: bookableresourceid, UPN or Entra object id")
	booking := fs.String("booking", "", "only this booking (bookableresourcebookingid)")
	since := fs.String("since", "", `only entries since: an age like "2h" or "7d", or an RFC 3339 time`)
	limit := fs.Int("limit", 100, "at most this many entries")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	q := url.Values{}
	if *resource != "" {
		q.Set("resource", *resource)
	}
	if *booking != "" {
		q.Set("booking", *booking)
	}
	if *since != "" {
		// Checked here for a clear message; sent as given, so an age is
		// measured on the service's clock.
		if _, err := httpapi.ParseSince(*since, time.Now()); err != nil {
			return err
		}
		q.Set("since", *since)
	}
	if *limit < 1 {
		return fmt.Errorf("--limit must be at least 1")
	}
	q.Set("limit", strconv.Itoa(*limit))
	c, err := newAdminClient(*cfgPath, *adminURL, *token, stderr)
	if err != nil {
		return err
	}
	var out struct {
		Entries []httpapi.AuditEntry `json:"entries"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/v1/log", q, &out); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, out)
	}
	if len(out.Entries) == 0 {
		fmt.Fprintln(stdout, "no audit entries match")
		return nil
	}
	for _, e := range out.Entries {
		fmt.Fprintln(stdout, auditLine(e))
	}
	return nil
}

// auditLine is one entry on one line: time, side, action, booking/event,
// outcome, reason, the changed fields, the error.
func auditLine(e httpapi.AuditEntry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-9s  %-20s  %s/%s  %s", e.At.UTC().Format("2006-01-02 15:04:05Z"), orDash(e.Side), e.Action,
		orDash(e.BookingID), orDash(e.EventID), e.Outcome)
	if e.Reason != "" {
		b.WriteString("  " + e.Reason)
	}
	if ch := auditChanges(e.Before, e.After); ch != "" {
		b.WriteString("  [" + ch + "]")
	}
	if e.Error != "" {
		b.WriteString("  error: " + e.Error)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// auditChanges renders before/after: "start 08:00Z → 09:00Z" for a changed
// field, "subject=…" for one only after (a create), "was …" for one only
// before (a deletion).
func auditChanges(before, after json.RawMessage) string {
	bm, am := fieldMap(before), fieldMap(after)
	if bm == nil && am == nil {
		return ""
	}
	var keys []string
	for k := range bm {
		keys = append(keys, k)
	}
	for k := range am {
		if _, ok := bm[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		bv, inB := bm[k]
		av, inA := am[k]
		switch {
		case inB && inA:
			if reflect.DeepEqual(bv, av) {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %s → %s", k, fieldValue(bv), fieldValue(av)))
		case inA:
			parts = append(parts, fmt.Sprintf("%s=%s", k, fieldValue(av)))
		default:
			parts = append(parts, fmt.Sprintf("%s was %s", k, fieldValue(bv)))
		}
	}
	return strings.Join(parts, "; ")
}

func fieldMap(raw json.RawMessage) map[string]any {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return map[string]any{"value": string(raw)}
	}
	return m
}

func fieldValue(v any) string {
	switch s := v.(type) {
	case string:
		if s == "" || strings.ContainsAny(s, " \t\n\";") {
			return strconv.Quote(s)
		}
		return s
	case nil:
		return "null"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
