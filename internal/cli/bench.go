package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/bookingsync/bookingsync/internal/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "e2e":
			return runBenchE2E(ctx, args[1:], stdout, stderr)
		case "scale":
			return runBenchScale(ctx, args[1:], stdout, stderr)
		case "resync":
			return runBenchResync(ctx, args[1:], stdout, stderr)
		}
	}
	if len(args) == 0 || args[0] != "ingest" {
		fmt.Fprintln(stderr, "usage: bookingsync bench ingest [--store sqlite|postgres://…] [--rate 2000] [--duration 5s]")
		fmt.Fprintln(stderr, "       "+strings.TrimPrefix(benchE2EUsage, "usage: "))
		fmt.Fprintln(stderr, "       "+strings.TrimPrefix(benchScaleUsage, "usage: "))
		fmt.Fprintln(stderr, "       "+strings.TrimPrefix(benchResyncUsage, "usage: "))
		return errUsage
	}
	fs := newFlagSet("bench ingest", stderr)
	storeURL := fs.String("store", "sqlite", "store: sqlite (a fresh temporary file) or a postgres:// URL")
	rate := fs.Int("rate", 2000, "fixed-rate phase: notifications per second")
	dur := fs.Duration("duration", 5*time.Second, "length of each phase")
	conc := fs.Int("concurrency", 64, "fast phase: concurrent connections")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(stdout, "bench ingest: baseline and fixed rate at %d notifications/s for %v each, then flat out with %d connections for %v\n",
		*rate, *dur, *conc, *dur)
	res, err := bench.Ingest(ctx, bench.IngestOptions{Store: *storeURL, Rate: *rate, Duration: *dur, Concurrency: *conc})
	if err != nil {
		return err
	}
	b, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(b))
	return nil
}

// startCPUProfile profiles the whole bench run into path ("" = none); the
// emulator runs in the bench's process, so its costs show too.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
