package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"

	"github.com/bookingsync/bookingsync/internal/httpapi"
)

// printConflictSummary is the conflicts part of `bookingsync status`: the
// count, then one line per open conflict.
func printConflictSummary(w io.Writer, cs []httpapi.Conflict) {
	if len(cs) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%d open conflict(s), left for a person (sync.conflict: manual); resolve with "+
		"'bookingsync conflicts resolve BOOKING --keep d365|outlook':\n", len(cs))
	for _, c := range cs {
		fmt.Fprintln(w, "  "+conflictLine(c))
	}
}

// conflictLine is one conflict on one line.
func conflictLine(c httpapi.Conflict) string {
	who := c.Resource
	if who == "" {
		who = c.ResourceID
	}
	if who == "" {
		who = "-"
	}
	return fmt.Sprintf("%s  %s  %s  since %s UTC  %s", c.BookingID, who, c.Rule,
		c.DetectedAt.UTC().Format("2006-01-02 15:04"), c.Reason)
}

func runConflicts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usageLine := "usage: bookingsync conflicts list [--all] [--json] | resolve BOOKING --keep d365|outlook"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usageLine)
		return errUsage
	}
	sub, rest := args[0], args[1:]
	booking := ""
	if sub == "resolve" && len(rest) > 0 && len(rest[0]) > 0 && rest[0][0] != '-' {
		booking, rest = rest[0], rest[1:]
	}
	fs := newFlagSet("conflicts "+sub, stderr)
	cfgPath, adminURL, token := adminFlags(fs)
	all := fs.Bool("all", false, "list: resolved conflicts too")
	asJSON := fs.Bool("json", false, "print JSON")
	keep := fs.String("keep", "", "resolve: the side whose state is kept, d365 or outlook")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	switch sub {
	case "list":
		c, err := newAdminClient(*cfgPath, *adminURL, *token, stderr)
		if err != nil {
			return err
		}
		q := url.Values{}
		if *all {
			q.Set("all", "1")
		}
		var out struct {
			Conflicts []httpapi.Conflict `json:"conflicts"`
		}
		if err := c.call(ctx, http.MethodGet, "/api/v1/conflicts", q, &out); err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		}
		printConflicts(stdout, out.Conflicts)
		return nil
	case "resolve":
		if booking == "" {
			fmt.Fprintln(stderr, usageLine)
			return errUsage
		}
		if *keep != "d365" && *keep != "outlook" {
			return errors.New(`resolve needs --keep d365 (the booking's state) or --keep outlook (the event's)`)
		}
		c, err := newAdminClient(*cfgPath, *adminURL, *token, stderr)
		if err != nil {
			return err
		}
		var out httpapi.ConflictResolution
		if err := c.call(ctx, http.MethodPost, "/api/v1/conflicts/resolve", url.Values{"booking": {booking}, "keep": {*keep}}, &out); err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(out)
		}
		fmt.Fprintf(stdout, "booking %s: %s (%s: %s; %d write(s))\n", out.BookingID, out.Resolution, out.Rule, out.Reason, out.Writes)
		return nil
	default:
		fmt.Fprintln(stderr, usageLine)
		return errUsage
	}
}

func printConflicts(w io.Writer, cs []httpapi.Conflict) {
	if len(cs) == 0 {
		fmt.Fprintln(w, "no conflicts")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BOOKING\tRESOURCE\tRULE\tDETECTED (UTC)\tRESOLVED\tREASON")
	for _, c := range cs {
		who := c.Resource
		if who == "" {
			who = c.ResourceID
		}
		resolved := "open"
		if c.ResolvedAt != nil {
			resolved = c.ResolvedAt.UTC().Format("2006-01-02 15:04") + ": " + c.Resolution
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.BookingID, who, c.Rule, c.DetectedAt.UTC().Format("2006-01-02 15:04"), resolved, c.Reason)
	}
	tw.Flush()
}
