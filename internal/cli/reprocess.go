package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/bookingsync/bookingsync/internal/httpapi"
)

// runReprocess puts a dead inbox row back in the queue, or (--job) retries
// a background job River discarded.
func runReprocess(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("reprocess", stderr)
	cfgPath, adminURL, token := adminFlags(fs)
	job := fs.Bool("job", false, "ID is a discarded background job (bookingsync dead lists both kinds)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bookingsync reprocess ID [--job]\n\n"+
			"Requeue a dead notification (or, with --job, retry a discarded job); 'bookingsync dead' lists them.")
		fs.PrintDefaults()
	}
	ids, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		fs.Usage()
		return errUsage
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(ids[0], "#"), 10, 64)
	if err != nil || id < 1 {
		return fmt.Errorf("ID must be a positive number, not %q", ids[0])
	}
	c, err := newAdminClient(*cfgPath, *adminURL, *token, stderr)
	if err != nil {
		return err
	}
	q := url.Values{"id": {strconv.FormatInt(id, 10)}}
	var out map[string]int64
	if *job {
		if err := c.call(ctx, http.MethodPost, "/api/v1/jobs/retry", q, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "job %d retried\n", id)
		return nil
	}
	if err := c.call(ctx, http.MethodPost, "/api/v1/notifications/reprocess", q, &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "notification %d requeued with a fresh count of attempts\n", id)
	return nil
}

// runDead lists failed work: dead inbox rows (out of attempts) and jobs
// River discarded, each with its last error.
func runDead(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dead", stderr)
	cfgPath, adminURL, token := adminFlags(fs)
	limit := fs.Int("limit", 100, "at most this many of each kind")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *limit < 1 {
		return fmt.Errorf("--limit must be at least 1")
	}
	c, err := newAdminClient(*cfgPath, *adminURL, *token, stderr)
	if err != nil {
		return err
	}
	var out httpapi.DeadItems
	if err := c.call(ctx, http.MethodGet, "/api/v1/dead", url.Values{"limit": {strconv.Itoa(*limit)}}, &out); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, out)
	}
	printDead(stdout, out)
	return nil
}

func printDead(w io.Writer, d httpapi.DeadItems) {
	if len(d.Notifications) == 0 && len(d.Jobs) == 0 {
		fmt.Fprintln(w, "no dead notifications, no discarded jobs")
		return
	}
	if len(d.Notifications) > 0 {
		fmt.Fprintf(w, "%d dead notification(s) (requeue with 'bookingsync reprocess ID'):\n", len(d.Notifications))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSOURCE\tMAILBOX\tITEM\tCHANGE\tATTEMPTS\tDEAD SINCE (UTC)\tLAST ERROR")
		for _, n := range d.Notifications {
			dead := "-"
			if n.DeadAt != nil {
				dead = n.DeadAt.UTC().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", n.ID, n.Source, orDash(n.Mailbox), orDash(n.ItemID),
				orDash(n.ChangeType), n.Attempts, dead, oneLine(n.LastError))
		}
		tw.Flush()
	}
	if len(d.Jobs) > 0 {
		if len(d.Notifications) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%d discarded job(s) (retry with 'bookingsync reprocess --job ID'):\n", len(d.Jobs))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tKIND\tATTEMPTS\tDISCARDED (UTC)\tARGS\tLAST ERROR")
		for _, j := range d.Jobs {
			at := "-"
			if j.FinalizedAt != nil {
				at = j.FinalizedAt.UTC().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%d\t%s\t%d/%d\t%s\t%s\t%s\n", j.ID, j.Kind, j.Attempts, j.MaxAttempts, at,
				orDash(string(j.Args)), oneLine(j.LastError))
		}
		tw.Flush()
	}
}

// oneLine keeps an error to one line of a table.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 160 {
		s = string(r[:160]) + "…"
	}
	return orDash(s)
}
