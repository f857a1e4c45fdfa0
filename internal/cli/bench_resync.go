package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/bookingsync/bookingsync/internal/bench"
)

const benchResyncUsage = "usage: bookingsync bench resync [--bookings 1000] [--technicians 1] [--drift 0.05] [--cpuprofile FILE] [--log-level warn]"

// runBenchResync is `bookingsync bench resync`: the sandbox in-process with
// every booking already in Outlook, then full resyncs measured (in sync,
// dry run, after drift), figures as one JSON line.
func runBenchResync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench resync", stderr)
	bookings := fs.Int("bookings", 1000, "bookings in the sync window, in all (spread over the technicians)")
	techs := fs.Int("technicians", 1, "demo technicians who opt in")
	drift := fs.Float64("drift", 0.05, "fraction of the bookings changed behind the service's back before the drift resync")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	logLevel := fs.String("log-level", "", "show the sandbox's logs at this level on stderr (default: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *bookings <= 0 || *techs <= 0 || *drift <= 0 || *drift > 1 {
		fmt.Fprintln(stderr, benchResyncUsage)
		return errUsage
	}
	o := bench.ResyncOptions{Bookings: *bookings, Technicians: *techs, Drift: *drift, Progress: stdout}
	if *logLevel != "" {
		var err error
		if o.Logger, err = newLogger(stderr, *logLevel, "text"); err != nil {
			return err
		}
	}
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	res, err := bench.Resync(ctx, o)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(b))
	return nil
}
