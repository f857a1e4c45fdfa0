package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/bookingsync/bookingsync/internal/config"
	"github.com/bookingsync/bookingsync/internal/service"
)

// loadConfig loads --config (or $BOOKINGSYNC_CONFIG) with the environment's
// overrides and prints warnings.
func loadConfig(path string, stderr io.Writer) (*config.Config, error) {
	if path == "" {
		path = os.Getenv(config.EnvConfigFile)
	}
	cfg, warnings, err := config.Load(path, os.Environ())
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	return cfg, err
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	path := fs.String("config", "", "YAML configuration file (default $BOOKINGSYNC_CONFIG; environment BOOKINGSYNC_* overrides it)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	svc, err := service.New(ctx, service.Options{Config: cfg, Logger: log})
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		svc.Stop()
		return err
	}
	<-ctx.Done()
	log.Info("stopping")
	svc.Stop()
	return nil
}

func runConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: bookingsync config check [--config FILE]")
		return errUsage
	}
	fs := newFlagSet("config check", stderr)
	path := fs.String("config", "", "YAML configuration file (default $BOOKINGSYNC_CONFIG)")
	show := fs.Bool("show", false, "print the effective configuration (secrets redacted)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, stderr)
	var cerr *config.Error
	if errors.As(err, &cerr) {
		fmt.Fprintf(stderr, "configuration has %d problem(s):\n", len(cerr.Problems))
		for _, p := range cerr.Problems {
			fmt.Fprintln(stderr, "  "+p.Error())
		}
		return errors.New("configuration is not valid")
	}
	if err != nil {
		return err
	}
	if *show {
		y, err := cfg.RedactedYAML()
		if err != nil {
			return err
		}
		stdout.Write(y)
	}
	fmt.Fprintln(stdout, "configuration OK")
	return nil
}
