package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/bookingsync/bookingsync/internal/store"
)

const migrateStoreUsage = `usage: bookingsync migrate-store --from sqlite:PATH --to postgres://... [--dry-run]

Copies a store into an empty one (normally SQLite into PostgreSQL): resources,
subscriptions with their clientState hashes, links with every column, sync
state (Graph delta and Dataverse change-tracking tokens), conflicts, guard
passes, the audit log, and the pending and dead inbox rows. Not copied:
processed inbox rows (history; counted), leases, and River's job tables
(the periodic schedule re-creates the jobs when the service starts).

Stop the service first and keep it stopped until this has finished: rows
written meanwhile are not copied. The target's schema is created on open;
a target that already holds rows is refused. Then set store: to the target
URL, start the service and run 'bookingsync check'.

flags:
`

// runMigrateStore copies one store into another through store.Copy.
func runMigrateStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate-store", stderr)
	from := fs.String("from", "", "the store to copy: sqlite:PATH (the main file; its -inbox file beside it is read too)")
	to := fs.String("to", "", "the empty store to fill: postgres://user:pass@host:5432/db?sslmode=... (search_path=SCHEMA selects a schema)")
	dryRun := fs.Bool("dry-run", false, "open both stores, check the target is empty and print the counts; copy nothing")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), migrateStoreUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		fs.Usage()
		return errUsage
	}
	if *from == *to {
		return errors.New("--from and --to name the same store")
	}
	// Open creates a missing SQLite file; a typo must not copy an empty store.
	if path, ok := strings.CutPrefix(*from, "sqlite:"); ok {
		path = strings.TrimPrefix(path, "//")
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}

	src, err := store.Open(ctx, *from, nil)
	if err != nil {
		return fmt.Errorf("opening --from: %w", err)
	}
	defer src.Close()
	dst, err := store.Open(ctx, *to, nil)
	if err != nil {
		return fmt.Errorf("opening --to: %w", err)
	}
	defer dst.Close()

	verb := "copying"
	if *dryRun {
		verb = "dry run: would copy"
	}
	fmt.Fprintf(stdout, "%s %s (%s) into %s (%s)\n", verb, redact(*from), src.Backend(), redact(*to), dst.Backend())
	rep, err := store.Copy(ctx, src, dst, store.CopyOptions{DryRun: *dryRun})
	printCopyReport(stdout, rep)
	if err != nil {
		return err
	}
	if !*dryRun {
		fmt.Fprintf(stdout, "done: set store: %s in the configuration, start the service and run 'bookingsync check'\n", redact(*to))
	}
	return nil
}

func printCopyReport(w io.Writer, rep store.CopyReport) {
	if len(rep.Tables) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS\t")
	for _, t := range rep.Tables {
		note := ""
		if t.Table == "notifications" {
			note = fmt.Sprintf("pending and dead only; %d processed skipped", rep.SkippedProcessedNotifications)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", t.Table, t.Rows, note)
	}
	tw.Flush()
	fmt.Fprintln(w, "not copied: leases, River's job tables (jobs are re-created by the periodic schedule), processed notifications")
}

// redact hides a URL's password.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
