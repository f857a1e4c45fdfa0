package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/bookingsync/bookingsync/internal/emulator"
	emudv "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	emugraph "github.com/bookingsync/bookingsync/internal/emulator/graph"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	"github.com/bookingsync/bookingsync/internal/sandbox"
)

// demoTechnicians returns the first n technicians of the demo seed.
func demoTechnicians(n int) ([]tenant.User, error) {
	techs := tenant.Technicians()
	if n > len(techs) {
		return nil, fmt.Errorf("--technicians: the demo seed has %d", len(techs))
	}
	return techs[:n], nil
}

// progressTo returns a printf that writes one line to w (nil: nowhere).
func progressTo(w io.Writer) func(format string, args ...any) {
	return func(format string, args ...any) {
		if w != nil {
			fmt.Fprintf(w, format+"\n", args...)
		}
	}
}

// startRecordedSandbox starts the sandbox in-process (demo seed, service
// on SQLite in a temporary directory, env added to its configuration) with
// the emulator's observers feeding a recorder. stop ends it all and removes
// the directory.
func startRecordedSandbox(ctx context.Context, name string, logger *slog.Logger, env []string) (*sandbox.Sandbox, *e2eRecorder, func(), error) {
	dir, err := os.MkdirTemp("", "bookingsync-bench-"+name+"-")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("temporary directory: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	sb, err := sandbox.Start(ctx, sandbox.Options{Addr: "127.0.0.1:0", DataDir: dir, Logger: logger, Env: env,
		Emulator: emulator.Options{Addr: "127.0.0.1:0", Seed: "demo"}})
	if err != nil {
		cancel()
		os.RemoveAll(dir)
		return nil, nil, nil, fmt.Errorf("start sandbox: %w", err)
	}
	rec := newE2ERecorder()
	sb.Emulator.Graph().Observe(emugraph.Observer{OnRequest: rec.graphRequest, OnWrite: rec.graphWrite})
	sb.Emulator.Dataverse().Observe(emudv.Observer{OnRequest: rec.dvRequest, OnWrite: rec.dvWrite})
	stop := func() {
		sb.Emulator.Graph().Observe(emugraph.Observer{})
		sb.Emulator.Dataverse().Observe(emudv.Observer{})
		sb.Stop()
		cancel()
		os.RemoveAll(dir)
	}
	return sb, rec, stop, nil
}
