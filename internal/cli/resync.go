package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/bookingsync/bookingsync/internal/httpapi"
)

// runResync asks the running service to compare bookings, events and links
// of one resource (or all enrolled ones) and repair every difference, or
// with --dry-run to print what it would do.
func runResync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("resync", stderr)
	cfgPath, adminURL, token := adminFlags(fs)
	resource := fs.String("resource", "", "the resource: bookableresourceid, UPN or Entra object id")
	all := fs.Bool("all", false, "every enrolled resource")
	dryRun := fs.Bool("dry-run", false, "print the plan (creates, updates, deletes on each side, with rule and reason) and change nothing")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*resource == "") == !*all {
		fmt.Fprintln(stderr, "usage: bookingsync resync --resource R | --all [--dry-run] [--json]   (R: bookableresourceid, UPN or Entra object id)")
		return errUsage
	}
	c, err := newAdminClient(*cfgPath, *adminURL, *token, stderr)
	if err != nil {
		return err
	}
	q := url.Values{}
	if *all {
		q.Set("all", "1")
	} else {
		q.Set("resource", *resource)
	}
	if *dryRun {
		q.Set("dry_run", "1")
	}
	var rep httpapi.ResyncReport
	if err := c.call(ctx, http.MethodPost, "/api/v1/resync", q, &rep); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printResync(stdout, rep)
	}
	if rep.Errors > 0 {
		return errors.New("some comparisons failed (see ERROR above)")
	}
	return nil
}

func printResync(w io.Writer, rep httpapi.ResyncReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if rep.DryRun {
		fmt.Fprintln(tw, "RULE\tSIDE\tACTION\tBOOKING\tEVENT\tREASON")
		for _, it := range rep.Items {
			if it.Error != "" {
				fmt.Fprintf(tw, "ERROR\t-\t-\t%s\t%s\t%s\n", dash(it.BookingID), short(it.EventID), it.Error)
				continue
			}
			if len(it.Actions) == 0 {
				what := "link " + it.Link
				if it.Conflict {
					what = "conflict"
				}
				fmt.Fprintf(tw, "%s\t-\t%s\t%s\t%s\t%s\n", it.Rule, what, dash(it.BookingID), short(it.EventID), it.Reason)
				continue
			}
			for _, a := range it.Actions {
				op := a.Op
				if a.Fields != "" {
					op += " (" + a.Fields + ")"
				}
				ev := a.EventID
				if ev == "" {
					ev = it.EventID
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.Rule, dash(a.Side), op, dash(it.BookingID), short(ev), it.Reason)
			}
		}
	} else {
		fmt.Fprintln(tw, "RULE\tWRITES\tBOOKING\tEVENT\tREASON")
		for _, it := range rep.Items {
			reason := it.Reason
			if it.Error != "" {
				reason = "ERROR: " + it.Error
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", dash(it.Rule), it.Writes, dash(it.BookingID), short(it.EventID), reason)
		}
	}
	tw.Flush()
	keys := make([]string, 0, len(rep.Counts))
	for k := range rep.Counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var counts []string
	for _, k := range keys {
		counts = append(counts, fmt.Sprintf("%s %d", k, rep.Counts[k]))
	}
	if len(counts) == 0 {
		counts = []string{"nothing to change"}
	}
	compared := fmt.Sprintf("compared %d bookings, %d events, %d links of %d resource(s): %d evaluated, %d in sync",
		rep.Bookings, rep.Events, rep.Links, len(rep.Resources), rep.Evaluated, rep.InSync)
	if rep.DryRun {
		fmt.Fprintf(w, "dry run: %s; would: %s; errors %d\n", compared, strings.Join(counts, ", "), rep.Errors)
		return
	}
	fmt.Fprintf(w, "resync: %s; %d repaired with %d writes; errors %d\n", compared, rep.Repairs, rep.Writes, rep.Errors)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// short abbreviates Graph's long event ids for the table.
func short(id string) string {
	if len(id) > 16 {
		return id[:6] + "…" + id[len(id)-8:]
	}
	return dash(id)
}
