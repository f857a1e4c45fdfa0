package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/bookingsync/bookingsync/internal/emulator"
	"github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator/graph"
)

// emulatorFlags are the flags shared by `emulator` and `sandbox`.
type emulatorFlags struct {
	seed, caOut   string
	tokenLifetime time.Duration
	graph         graph.Options
	dataverse     dataverse.Options
}

func (f *emulatorFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.seed, "seed", "demo", "initial data: demo (technicians, resources, bookings) or empty")
	fs.StringVar(&f.caOut, "ca-out", "", "write the emulator's CA certificate (PEM) to this file")
	fs.DurationVar(&f.tokenLifetime, "token-lifetime", time.Hour, "lifetime of access tokens the emulator issues")
	f.graph.RegisterFlags(fs) // -graph-max-subscription-minutes, -graph-notification-retry-window, …
}

func (f *emulatorFlags) options(addr string, log *slog.Logger) emulator.Options {
	opts := emulator.Options{Addr: addr, Seed: f.seed, CAOut: f.caOut, Graph: f.graph, Dataverse: f.dataverse, Logger: log}
	opts.Tenant.TokenLifetime = f.tokenLifetime
	return opts
}

func runEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("emulator", stderr)
	addr := fs.String("addr", "127.0.0.1:7070", "listen address (HTTPS)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	var ef emulatorFlags
	ef.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	srv, err := emulator.New(ef.options(*addr, log))
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	info := srv.Info()
	fmt.Fprintf(stdout, "emulator ready at %s\n", srv.URL())
	printInfo(stdout, info)
	<-ctx.Done()
	fmt.Fprintln(stdout, "emulator stopping")
	srv.Stop()
	return nil
}

func printInfo(w io.Writer, info emulator.Info) {
	for _, k := range []string{"graph_base_url", "dataverse_base_url", "dataverse_org_url", "authority_host", "token_url", "tenant_id", "client_id", "ca_file"} {
		if v, ok := info[k]; ok {
			fmt.Fprintf(w, "  %-20s %s\n", k, v)
		}
	}
	fmt.Fprintf(w, "  %-20s %s\n", "control", "GET /_emulator/info (client_secret and the rest)")
}
