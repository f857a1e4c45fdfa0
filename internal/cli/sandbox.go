package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/bookingsync/bookingsync/internal/sandbox"
)

func runSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sandbox", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "service listen address (HTTP; notifications, admin API and metrics)")
	emuAddr := fs.String("emulator-addr", "127.0.0.1:7070", "emulator listen address (HTTPS)")
	data := fs.String("data", "", "keep state in this directory between runs (default: a fresh temporary directory)")
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
	sb, err := sandbox.Start(ctx, sandbox.Options{Addr: *addr, DataDir: *data, Emulator: ef.options(*emuAddr, nil), LogLevel: *logLevel, Logger: log, Demo: true})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "emulator ready at %s\n", sb.Emulator.URL())
	printInfo(stdout, sb.Emulator.Info())
	// The configured public URL has the port bound (--addr may say port 0).
	fmt.Fprintf(stdout, "service at %s  (notifications, /healthz, /readyz, /api/v1/status, /metrics)\n", sb.Config.PublicURL)
	fmt.Fprintf(stdout, "  %-20s %s\n", "admin UI", sb.UIURL())
	fmt.Fprintf(stdout, "  %-20s %s\n", "live demo", sb.UIURL()+"demo")
	fmt.Fprintf(stdout, "  %-20s %s\n", "admin token", sb.AdminToken)
	fmt.Fprintf(stdout, "  %-20s %s\n", "data", sb.DataDir)
	fmt.Fprintf(stdout, "  try: bookingsync status --admin-url %s --token %s\n", sb.Config.PublicURL, sb.AdminToken)
	fmt.Fprintln(stdout, "sandbox ready")
	<-ctx.Done()
	fmt.Fprintln(stdout, "sandbox stopping")
	sb.Stop()
	return nil
}
