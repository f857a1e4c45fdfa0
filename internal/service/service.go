// Package service assembles bookingsync from its parts — store, job queue,
// Graph and Dataverse clients, subscription manager, HTTP endpoints — and
// runs it. `serve`, `sandbox` and the bench commands all start it through
// here, so there is one wiring.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/riverqueue/river"

	"github.com/bookingsync/bookingsync/internal/azauth"
	"github.com/bookingsync/bookingsync/internal/config"
	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/engine"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/httpapi"
	"github.com/bookingsync/bookingsync/internal/jobs"
	"github.com/bookingsync/bookingsync/internal/metrics"
	"github.com/bookingsync/bookingsync/internal/store"
	"github.com/bookingsync/bookingsync/internal/subscriptions"
	"github.com/bookingsync/bookingsync/internal/sync/d365"
	"github.com/bookingsync/bookingsync/internal/webui"
)

// Options are what New needs besides the configuration.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Metrics: nil means a fresh registry.
	Metrics *metrics.Metrics
	// Credential and HTTPClient override what the configuration would build
	// (tests, the sandbox).
	Credential azcore.TokenCredential
	HTTPClient *http.Client
	// RenewInterval is the period of the renewal job (default 5 minutes).
	RenewInterval time.Duration
	// SubscriptionLifetime, if set, replaces graph.subscription_lifetime and
	// may go below Graph's 45-minute floor, which the configuration refuses:
	// end-to-end tests run against an emulator whose min_subscription_seconds
	// is lowered, so renewal happens in seconds. Not a configuration key, so
	// no deployment can set it; real Graph would raise it to 45 minutes anyway.
	SubscriptionLifetime time.Duration
	// PublicListener, if set, is the bound listener the public address
	// (config listen) is served on.
	PublicListener net.Listener
}

// Service is a running bookingsync.
type Service struct {
	cfg     *config.Config
	log     *slog.Logger
	Metrics *metrics.Metrics

	Store     *store.Store
	Intake    *store.Intake
	Inbox     *jobs.Inbox
	Queue     *jobs.Queue
	Graph     *graph.Client
	Dataverse *dataverse.Client
	Manager   *subscriptions.Manager
	Enroller  *subscriptions.Enroller
	Engine    *engine.Engine
	API       *httpapi.Server

	bookings *d365.Source

	public, admin *httpapi.Listener
	subs          *subscriptionIndex

	stopOnce sync.Once
}

// New builds the service; nothing runs until Start.
func New(ctx context.Context, opts Options) (*Service, error) {
	cfg, log := opts.Config, opts.Logger
	m := opts.Metrics
	if m == nil {
		m = metrics.New()
	}
	s := &Service{cfg: cfg, log: log, Metrics: m}

	clients, err := NewAPIClients(cfg, m, opts.HTTPClient, opts.Credential)
	if err != nil {
		return nil, err
	}
	gc, dc := clients.Graph, clients.Dataverse
	s.Graph, s.Dataverse = gc, dc

	st, err := store.Open(ctx, cfg.Store, log)
	if err != nil {
		return nil, err
	}
	s.Store = st
	s.subs = &subscriptionIndex{store: st}

	adapter := subscriptions.StoreAdapter{S: st}
	lifetime, minLifetime := cfg.Graph.SubscriptionLifetime, time.Duration(0)
	if opts.SubscriptionLifetime > 0 {
		lifetime, minLifetime = opts.SubscriptionLifetime, opts.SubscriptionLifetime
	}
	s.Manager = subscriptions.New(subscriptions.Config{
		NotificationURL:    cfg.NotificationURL(),
		LifecycleURL:       cfg.LifecycleURL(),
		Lifetime:           lifetime,
		RenewWhenRemaining: renewFraction(cfg.Graph.RenewWhenRemaining, lifetime),
		MinLifetime:        minLifetime,
	}, gc, adapter, log.With("component", "subscriptions"), m, nil)
	s.Manager.OnChange = s.subs.invalidate
	s.Enroller = subscriptions.NewEnroller(subscriptions.EnrollConfig{
		OptInColumn: cfg.Dataverse.OptInColumn, Allowed: cfg.Dataverse.OptInAllowed,
		NotAllowed: cfg.Dataverse.OptInNotAllowed, StatusColumn: cfg.Dataverse.StatusColumn,
	}, dc, s.Manager, adapter, log.With("component", "enroll"))
	s.Manager.OnAlert = s.Enroller.ReportRenewalFailure
	s.bookings = d365.New(dc, d365.Options{OrgURL: cfg.Dataverse.OrgURL})
	if s.Engine, err = s.newEngine(); err != nil {
		st.Close()
		return nil, err
	}

	renewEvery := opts.RenewInterval
	if renewEvery <= 0 {
		renewEvery = 5 * time.Minute
	}
	q, err := jobs.New(ctx, st, jobs.Config{
		Logger: log.With("component", "jobs"),
		Handlers: jobs.Handlers{
			RenewSubscriptions: s.renewSubscriptions,
			CatchupMailbox:     s.catchupMailbox,
			PollDataverse:      s.PollResources,
		},
		RenewInterval:         renewEvery,
		PollDataverseInterval: cfg.Dataverse.OptInPollInterval,
		Register: func(w *river.Workers) error {
			if err := s.syncJobs(w); err != nil {
				return err
			}
			if err := s.catchupJobs(w); err != nil {
				return err
			}
			if err := s.retentionWorker(w); err != nil {
				return err
			}
			return river.AddWorkerSafely(w, river.WorkFunc(func(ctx context.Context, job *river.Job[ReconcileResourceArgs]) error {
				if err := s.Enroller.Reconcile(ctx, job.Args.ResourceID); err != nil {
					return err
				}
				return s.afterReconcile(ctx, job.Args.ResourceID)
			}))
		},
		PeriodicJobs: append(append(s.syncPeriodicJobs(), s.catchupPeriodicJobs()...), s.retentionPeriodicJob()),
		// River's cleaner removes finished jobs (retention.jobs).
		CompletedRetention: cfg.Retention.Jobs,
		CancelledRetention: cfg.Retention.Jobs,
		DiscardedRetention: max(cfg.Retention.Jobs, 7*24*time.Hour),
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	s.Queue = q
	if err := m.RegisterScrapeQueries(s.jobStates, s.nearestExpiry); err != nil {
		st.Close()
		return nil, err
	}
	s.Manager.CatchUp = func(ctx context.Context, mailbox, reason string) error {
		_, err := q.Insert(ctx, jobs.CatchupMailboxArgs{Mailbox: mailbox, Reason: reason}, nil)
		return err
	}
	s.Inbox = jobs.NewInbox(st, jobs.InboxConfig{ProcessNotifications: s.processNotifications,
		Logger: log.With("component", "inbox"), Registerer: m.Registry})
	in, err := store.NewIntake(st, store.IntakeConfig{Stored: s.Inbox.Wake, Logger: log.With("component", "intake")})
	if err != nil {
		st.Close()
		return nil, err
	}
	s.Intake = in

	ready := map[string]httpapi.ReadyFunc{
		"store": func(ctx context.Context) error { return st.DB().PingContext(ctx) },
		"queue": func(ctx context.Context) error { _, err := q.Stats(ctx); return err },
	}
	s.API = httpapi.NewServer(httpapi.Config{
		MaxBodyBytes:       cfg.Notifications.MaxBodyBytes,
		DataverseKey:       cfg.Dataverse.WebhookKey.Reveal,
		DataverseKeyHeader: cfg.Dataverse.WebhookKeyHeader,
		Ready:              ready,
	}, s.subs, in, log.With("component", "http"), m)
	adminHandler := s.API.AdminHandler(httpapi.AdminConfig{Token: cfg.Admin.Token.Reveal, Ready: ready}, &adminBackend{s: s})
	adminHandler = webui.Mount(ctx, adminHandler, webui.Deps{Config: cfg, Store: st, Metrics: m, Graph: gc, Dataverse: dc, Status: (&adminBackend{s: s}).Status, Ready: ready, Logger: log.With("component", "webui")})
	publicHandler := s.API.PublicHandler()
	// admin_listen equal to listen: one address for everything (the sandbox).
	if cfg.AdminListen == cfg.Listen {
		publicHandler = httpapi.Combine(publicHandler, adminHandler)
	} else {
		s.admin = &httpapi.Listener{Name: "admin", Addr: cfg.AdminListen, Logger: log, Handler: adminHandler}
	}
	s.public = &httpapi.Listener{Name: "public", Addr: cfg.Listen, Bound: opts.PublicListener, Handler: publicHandler, Logger: log}
	return s, nil
}

// credential builds the token credential the configuration describes.
func credential(cfg *config.Config) (azcore.TokenCredential, error) {
	a := cfg.Azure
	// Certificate is BOOKINGSYNC_AZURE_CERTIFICATE or what Load read from
	// azure.certificate_file: one form for both.
	return azauth.NewCredential(azauth.Config{
		TenantID:                a.TenantID,
		ClientID:                a.ClientID,
		ClientSecret:            a.ClientSecret.Reveal(),
		Certificate:             []byte(a.Certificate.Reveal()),
		CertificatePassword:     a.CertificatePassword.Reveal(),
		ManagedIdentity:         a.ManagedIdentity.Enabled,
		ManagedIdentityClientID: a.ManagedIdentity.ClientID,
		AuthorityHost:           a.AuthorityHost,
		ExtraCAFile:             a.CAFile,
	})
}

// renewFraction is renew_when_remaining as a fraction of the lifetime
// (the manager clamps nonsense to 0.5).
func renewFraction(r config.RenewWhen, life time.Duration) float64 {
	if life <= 0 {
		return 0.5
	}
	return float64(r.Of(life)) / float64(life)
}

// Start starts the intake, the inbox processor, the queue and both listeners.
func (s *Service) Start(ctx context.Context) error {
	if err := s.Store.ReleaseAllLeases(ctx); err != nil {
		return err
	}
	if err := s.Intake.Start(ctx); err != nil {
		return fmt.Errorf("start intake: %w", err)
	}
	if err := s.Inbox.Start(ctx); err != nil {
		s.Intake.Stop()
		return fmt.Errorf("start inbox processor: %w", err)
	}
	if err := s.Queue.Start(ctx); err != nil {
		return fmt.Errorf("start job queue: %w", err)
	}
	if err := s.public.Start(ctx); err != nil {
		return err
	}
	if s.admin != nil {
		if err := s.admin.Start(ctx); err != nil {
			s.public.Stop()
			return err
		}
	}
	s.log.Info("bookingsync started", "public", s.PublicURL(), "admin", s.AdminURL(), "store", s.Store.Backend())
	return nil
}

// PublicURL and AdminURL are the bound listeners' http://host:port.
func (s *Service) PublicURL() string { return s.public.URL() }
func (s *Service) AdminURL() string {
	if s.admin == nil {
		return s.public.URL()
	}
	return s.admin.URL()
}

// Stop drains the listeners first (so nothing new is acknowledged), then
// stops the queue, the inbox processor (it finishes its batches in flight)
// and the intake, then closes the store.
func (s *Service) Stop() {
	s.stopOnce.Do(func() {
		s.public.Stop()
		if s.admin != nil {
			s.admin.Stop()
		}
		s.Queue.Stop()
		s.Inbox.Stop()
		s.Intake.Stop()
		if err := s.Store.Close(); err != nil {
			s.log.Error("close store", "err", err)
		}
	})
}
