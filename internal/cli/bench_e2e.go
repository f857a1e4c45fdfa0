package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/bookingsync/bookingsync/internal/bench"
)

const benchE2EUsage = "usage: bookingsync bench e2e [--changes 200] [--technicians 3] [--rate 20/s | --concurrency N] [--timeout 10s] [--log-level warn]"

// runBenchE2E is `bookingsync bench e2e`: the sandbox in-process, N booking
// changes one way and N event changes the other, figures as one JSON line.
func runBenchE2E(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench e2e", stderr)
	changes := fs.Int("changes", 200, "booking changes through Dataverse, and as many event changes through Graph")
	techs := fs.Int("technicians", 3, "demo technicians who opt in")
	rate := fs.String("rate", "20/s", "changes per second in each phase (open loop), e.g. 20/s")
	conc := fs.Int("concurrency", 0, "instead of --rate: this many workers each apply a change and wait until it shows (closed loop)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long one change may take to show before it counts as missed")
	logLevel := fs.String("log-level", "", "show the sandbox's logs at this level on stderr (default: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	perSecond, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(*rate), "/s"), 64)
	if err != nil || perSecond <= 0 {
		fmt.Fprintf(stderr, "--rate: want a positive number of changes per second such as 20/s, got %q\n%s\n", *rate, benchE2EUsage)
		return errUsage
	}
	if *changes <= 0 || *techs <= 0 || *conc < 0 {
		fmt.Fprintln(stderr, benchE2EUsage)
		return errUsage
	}
	o := bench.E2EOptions{Changes: *changes, Technicians: *techs, Rate: perSecond, Concurrency: *conc, Timeout: *timeout, Progress: stdout}
	if *logLevel != "" {
		if o.Logger, err = newLogger(stderr, *logLevel, "text"); err != nil {
			return err
		}
	}
	res, err := bench.E2E(ctx, o)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(b))
	return nil
}
