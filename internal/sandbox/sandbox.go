// Package sandbox runs the emulated tenant and the service wired together in
// one process: the README's first command, the end-to-end tests and the
// bench commands all start it through here.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/bookingsync/bookingsync/internal/config"
	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator"
	"github.com/bookingsync/bookingsync/internal/service"
	"github.com/bookingsync/bookingsync/internal/webui"
)

// Sandbox is the emulated tenant and the service, wired together in one
// process. Tests and the bench commands use it as well as the CLI.
type Sandbox struct {
	Emulator   *emulator.Server
	Service    *service.Service
	Config     *config.Config
	AdminToken string
	WebhookKey string
	DataDir    string
}

// Options configure Start.
type Options struct {
	// Addr is the service's one address (port 0: any free port, written
	// into the public URL).
	Addr, DataDir string
	// Emulator configures the emulated tenant (its Addr, Seed, durations);
	// CAOut is set by Start.
	Emulator emulator.Options
	LogLevel string
	Logger   *slog.Logger
	// Env are extra BOOKINGSYNC_* settings applied on top of the sandbox's.
	Env []string

	// RenewInterval is the period of the service's renewal job (default 5m).
	RenewInterval time.Duration
	// SubscriptionLifetime shrinks the Graph subscription lifetime below the
	// 45 minutes graph.subscription_lifetime may not go under (see
	// service.Options.SubscriptionLifetime), so renewal can be watched end to
	// end in seconds. Unless Emulator.Graph.MinSubscriptionSeconds is set, the
	// emulator's floor is lowered to match (it would otherwise raise every
	// request to 45 minutes, as Graph does).
	SubscriptionLifetime time.Duration
	// NoBookingWebhooks registers no webhook steps for bookings and work
	// orders, so tests can prove change tracking alone keeps calendars right.
	NoBookingWebhooks bool
	// Demo serves the live two-way demo page (/ui/demo) of the admin UI.
	Demo bool
}

// Start starts the emulator with demo data, configures the service
// against it exactly as an admin would configure a real tenant (through
// config.Load and BOOKINGSYNC_* settings), registers the Dataverse webhook
// steps the way a real org has them, and starts the service.
func Start(ctx context.Context, o Options) (*Sandbox, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	var err error
	if o.DataDir == "" {
		if o.DataDir, err = os.MkdirTemp("", "bookingsync-sandbox-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, err
	}
	// Bind the service's address first and hand the listener over: with
	// port 0 the chosen port goes into the public URL, and nothing else
	// can take it between choosing and serving.
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("sandbox listener: %w", err)
	}
	started := false
	defer func() {
		if !started {
			ln.Close()
		}
	}()
	addr := boundAddr(o.Addr, ln.Addr())
	if o.Emulator.CAOut == "" {
		o.Emulator.CAOut = filepath.Join(o.DataDir, "emulator-ca.pem")
	}
	if l := o.SubscriptionLifetime; l > 0 && o.Emulator.Graph.MinSubscriptionSeconds == 0 {
		o.Emulator.Graph.MinSubscriptionSeconds = max(int(l/time.Second), 1)
	}
	if o.Emulator.Logger == nil {
		o.Emulator.Logger = log.With("component", "emulator")
	}
	emu, err := emulator.New(o.Emulator)
	if err != nil {
		return nil, err
	}
	if err := emu.Start(ctx); err != nil {
		return nil, err
	}
	sb := &Sandbox{Emulator: emu, DataDir: o.DataDir, AdminToken: randomToken(), WebhookKey: randomToken()}
	info := emu.Info()
	env := append(info.ServiceEnv(),
		"BOOKINGSYNC_PUBLIC_URL=http://"+addr,
		"BOOKINGSYNC_LISTEN="+addr,
		"BOOKINGSYNC_ADMIN_LISTEN="+addr,
		"BOOKINGSYNC_DATA_DIR="+o.DataDir,
		"BOOKINGSYNC_STORE=sqlite:"+filepath.Join(o.DataDir, "bookingsync.db"),
		"BOOKINGSYNC_LOG_LEVEL="+o.LogLevel,
		"BOOKINGSYNC_ADMIN_TOKEN="+sb.AdminToken,
		"BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY="+sb.WebhookKey,
	)
	env = append(env, o.Env...)
	cfg, warnings, err := config.Load("", env)
	if err != nil {
		emu.Stop()
		return nil, fmt.Errorf("sandbox configuration: %w", err)
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	sb.Config = cfg
	svcCtx := ctx
	if o.Demo {
		svcCtx = webui.WithDemo(ctx)
	}
	svc, err := service.New(svcCtx, service.Options{Config: cfg, Logger: log.With("component", "service"),
		RenewInterval: o.RenewInterval, SubscriptionLifetime: o.SubscriptionLifetime, PublicListener: ln})
	if err != nil {
		emu.Stop()
		return nil, err
	}
	sb.Service = svc
	if err := registerWebhooks(ctx, svc.Dataverse, cfg, sb.WebhookKey, !o.NoBookingWebhooks); err != nil {
		svc.Stop()
		emu.Stop()
		return nil, fmt.Errorf("register Dataverse webhooks: %w", err)
	}
	if err := svc.Start(ctx); err != nil {
		svc.Stop()
		emu.Stop()
		return nil, err
	}
	started = true
	return sb, nil
}

// boundAddr is the address as given with the port the listener got (the
// host as given, so "localhost:0" stays "localhost" in the public URL).
func boundAddr(given string, bound net.Addr) string {
	host, _, err := net.SplitHostPort(given)
	_, port, err2 := net.SplitHostPort(bound.String())
	if err != nil || err2 != nil {
		return bound.String()
	}
	return net.JoinHostPort(host, port)
}

// UIURL is the admin web UI's address.
func (sb *Sandbox) UIURL() string { return sb.Service.AdminURL() + webui.Prefix }

// Stop stops the service, then the emulator.
func (sb *Sandbox) Stop() {
	sb.Service.Stop()
	sb.Emulator.Stop()
}

// registerWebhooks registers our endpoint and its steps the way
// `bookingsync dataverse register-webhook` does in a real org (both use
// service.WebhookSpecs, so they cannot differ). Without bookings, only the
// bookable-resource webhook is registered (Options.NoBookingWebhooks).
func registerWebhooks(ctx context.Context, dv *dataverse.Client, cfg *config.Config, key string, bookings bool) error {
	specs := service.WebhookSpecs(cfg, key)
	if !bookings {
		specs = slices.DeleteFunc(specs, func(s dataverse.WebhookSpec) bool { return s.Name != service.WebhookResources })
	}
	_, err := service.RegisterWebhooks(ctx, dv, specs)
	return err
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
