package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/bookingsync/bookingsync/internal/engine"
	"github.com/bookingsync/bookingsync/internal/httpapi"
)

// runApprove lists the passes the mass-delete guard holds, approves one
// (its held items are re-run, each decided again) or discards one.
func runApprove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("approve", stderr)
	cfgPath, adminURL, token := adminFlags(fs)
	discard := fs.Bool("discard", false, "discard the pass instead: its deletions are not made")
	all := fs.Bool("all", false, "without PASS-ID: list passes in every state, not only held ones")
	asJSON := fs.Bool("json", false, "print JSON")
	by := fs.String("by", defaultApprover(), "who approves (recorded with the pass)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bookingsync approve [PASS-ID [--discard]] [--all] [--json]\n\n"+
			"Without PASS-ID: list the passes the mass-delete guard holds. With it: approve the pass (its held\n"+
			"deletions are re-run, each decided again from the current state) or, with --discard, drop it.")
		fs.PrintDefaults()
	}
	ids, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(ids) > 1 {
		fs.Usage()
		return errUsage
	}
	c, err := newAdminClient(*cfgPath, *adminURL, *token, stderr)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		q := url.Values{}
		if !*all {
			q.Set("status", "held")
		}
		var out struct {
			Passes []httpapi.GuardPass `json:"passes"`
		}
		if err := c.call(ctx, http.MethodGet, "/api/v1/passes", q, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, out)
		}
		if len(out.Passes) == 0 {
			fmt.Fprintln(stdout, "no passes held by the mass-delete guard")
			return nil
		}
		for _, p := range out.Passes {
			printPass(stdout, p)
		}
		return nil
	}
	q := url.Values{"id": {ids[0]}, "by": {*by}}
	if *discard {
		var out struct {
			Pass httpapi.GuardPass `json:"pass"`
		}
		if err := c.call(ctx, http.MethodPost, "/api/v1/passes/discard", q, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, out)
		}
		fmt.Fprintf(stdout, "discarded %s: its %d deletion(s) in %s were not made\n", out.Pass.ID, out.Pass.Deletes, passWho(out.Pass))
		return nil
	}
	var out httpapi.PassApproval
	if err := c.call(ctx, http.MethodPost, "/api/v1/passes/approve", q, &out); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "approved %s (%s): %d item(s) re-run, %d applied; the pass is %s\n",
		out.Pass.ID, passWho(out.Pass), out.Items, out.Applied, out.Pass.Status)
	for _, e := range out.Errors {
		fmt.Fprintln(stdout, "  failed: "+e)
	}
	if len(out.Errors) > 0 {
		return fmt.Errorf("%d item(s) failed; run 'bookingsync approve %s' again to retry them", len(out.Errors), out.Pass.ID)
	}
	return nil
}

func passWho(p httpapi.GuardPass) string {
	if p.Resource != "" {
		return p.Resource + ", mailbox " + p.Mailbox
	}
	return "mailbox " + p.Mailbox
}

// printPass prints a pass and its held items, one line each.
func printPass(w io.Writer, p httpapi.GuardPass) {
	what := "event deletion(s)"
	if p.Side == "dataverse" {
		what = "booking cancellation(s)"
	}
	fmt.Fprintf(w, "%s  %s  %s: %d %s of %d linked item(s), held %s UTC\n", p.ID, p.Status, passWho(p), p.Deletes, what,
		p.Linked, p.CreatedAt.UTC().Format("2006-01-02 15:04"))
	if p.ApprovedAt != nil {
		fmt.Fprintf(w, "    approved %s UTC by %s\n", p.ApprovedAt.UTC().Format("2006-01-02 15:04"), p.ApprovedBy)
	}
	items, err := engine.DecodePlan(p.Plan)
	if err != nil {
		fmt.Fprintf(w, "    (plan unreadable: %v)\n", err)
		return
	}
	for _, it := range items {
		var acts []string
		for _, a := range it.Actions {
			s := a.Kind
			switch {
			case a.EventID != "":
				s += " " + a.EventID
			case a.BookingID != "":
				s += " " + a.BookingID
			}
			acts = append(acts, s)
		}
		fmt.Fprintf(w, "    %s  %s: %s  → %s\n", it.String(), it.Rule, it.Reason, strings.Join(acts, ", "))
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// defaultApprover names the person running the command.
func defaultApprover() string {
	user := os.Getenv("USER")
	if user == "" {
		user = os.Getenv("USERNAME")
	}
	host, _ := os.Hostname()
	switch {
	case user != "" && host != "":
		return user + "@" + host
	case user != "":
		return user
	}
	return "cli"
}

// parseWithArgs parses flags that may come before, between or after the
// positional arguments, and returns the positional ones.
func parseWithArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, errUsage
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
