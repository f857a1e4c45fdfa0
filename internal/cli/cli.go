// Package cli wires bookingsync's subcommands: it parses flags, builds the
// services from the other packages and runs them until a signal arrives.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"emulator":      {"run the emulated Microsoft tenant (Entra ID token endpoint, Graph, Dataverse)", runEmulator},
		"sandbox":       {"run the emulated tenant and the service together, wired up (the quickest way to see it work)", runSandbox},
		"serve":         {"run the service (--config FILE)", runServe},
		"config":        {"config check: validate a configuration and say precisely what is wrong", runConfig},
		"status":        {"show every resource, its subscription and expiry (asks the running service)", runStatus},
		"bench":         {"bench ingest|e2e|scale|resync: measure intake, end-to-end sync, a large tenant, a full resync (figures as one JSON line)", runBench},
		"subscriptions": {"subscriptions list | renew | delete (asks the running service)", runSubscriptions},
		"dataverse":     {"dataverse setup | register-webhook [--remove]: create the columns, switch change tracking on, register the webhooks", runDataverse},
		"check":         {"check configuration, tokens, permissions, columns, webhooks, the public URL and coexistence (PASS/WARN/FAIL)", runCheck},
		"resync":        {"resync --resource R | --all [--dry-run]: compare bookings, events and links and repair (asks the running service)", runResync},
		"conflicts":     {"conflicts list | resolve BOOKING --keep d365|outlook: conflicts left for a person (asks the running service)", runConflicts},
		"approve":       {"approve [PASS-ID [--discard]]: list, approve or discard passes the mass-delete guard held (asks the running service)", runApprove},
		"log":           {"log [--resource R] [--booking B] [--since 2h|RFC3339] [--limit N]: the audit log (asks the running service)", runLog},
		"reprocess":     {"reprocess ID [--job]: requeue a dead notification, or retry a discarded job (asks the running service)", runReprocess},
		"dead":          {"dead: list dead notifications and discarded jobs with their last error (asks the running service)", runDead},
		"migrate-store": {"migrate-store --from sqlite:PATH --to postgres://... [--dry-run]: copy the store into an empty PostgreSQL database (service stopped)", runMigrateStore},
	}
}

// errUsage marks a usage error, already explained to the user.
var errUsage = errors.New("usage")

// Main runs the subcommand named by args[0] and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "bookingsync: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, errUsage) {
			return 2
		}
		fmt.Fprintf(stderr, "bookingsync %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: bookingsync <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'bookingsync <command> -h' for a command's flags.")
}

// newFlagSet returns a FlagSet that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bookingsync "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and refuses positional leftovers.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return errUsage
	}
	return nil
}
