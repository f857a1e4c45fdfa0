package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/bookingsync/bookingsync/internal/bench"
)

const benchScaleUsage = "usage: bookingsync bench scale [--mailboxes 10000] [--links-per-mailbox 10] [--idle-wait 60s] [--timeout 30m] [--keep] [--log-level warn] [--cpuprofile FILE]"

// runBenchScale is `bookingsync bench scale`: the emulated tenant
// in-process with N opted-in mailboxes, this binary's `serve` as a child
// process, enrolment, renewal spread and the service's memory as one JSON
// line.
func runBenchScale(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench scale", stderr)
	mailboxes := fs.Int("mailboxes", 10000, "technicians who opt in, each with a mailbox")
	links := fs.Int("links-per-mailbox", 10, "bookings per mailbox in the sync window, linked to events by the service (0: enrolment only)")
	idle := fs.Duration("idle-wait", 60*time.Second, "how long the service must see no Graph or Dataverse traffic before its memory counts as idle")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
	keep := fs.Bool("keep", false, "keep the data directory (store, service log)")
	logLevel := fs.String("log-level", "warn", "the service's log level (its log is service.log in the data directory)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the bench process (the emulated tenant; the service is a child process) to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *mailboxes <= 0 || *links < 0 || *idle <= 0 || *timeout <= 0 {
		fmt.Fprintln(stderr, benchScaleUsage)
		return errUsage
	}
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	res, err := bench.Scale(ctx, bench.ScaleOptions{Mailboxes: *mailboxes, LinksPerMailbox: *links, IdleWait: *idle,
		Timeout: *timeout, Keep: *keep, LogLevel: *logLevel, Progress: stdout})
	if err != nil {
		if res.Error != "" {
			b, _ := json.Marshal(res) // how far it got
			fmt.Fprintln(stdout, string(b))
		}
		return err
	}
	b, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(b))
	return nil
}
