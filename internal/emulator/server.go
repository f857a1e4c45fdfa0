// Package emulator runs the emulated Microsoft tenant: one HTTPS listener with
// the Entra ID token endpoint, Microsoft Graph under /graph/v1.0, the Dataverse
// Web API under /dataverse/api/data/v9.2, and our control API under /_emulator.
package emulator

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator/graph"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

// Options configure a Server.
type Options struct {
	Addr      string // host:port; port 0 picks a free one
	Seed      string // "demo" (default) or "empty"
	CAOut     string // if set, the CA certificate is written there (PEM)
	Tenant    tenant.Config
	Graph     graph.Options
	Dataverse dataverse.Options
	Logger    *slog.Logger
}

// Info is the body of GET /_emulator/info.
type Info map[string]string

// ServiceEnv is the service's configuration, as BOOKINGSYNC_* environment
// entries, that points it at this tenant: credentials, authority, CA, Graph
// and Dataverse. Callers add their own addresses, store and secrets.
func (i Info) ServiceEnv() []string {
	return []string{
		"BOOKINGSYNC_AZURE_TENANT_ID=" + i["tenant_id"],
		"BOOKINGSYNC_AZURE_CLIENT_ID=" + i["client_id"],
		"BOOKINGSYNC_AZURE_CLIENT_SECRET=" + i["client_secret"],
		"BOOKINGSYNC_AZURE_AUTHORITY_HOST=" + i["authority_host"],
		"BOOKINGSYNC_AZURE_CA_FILE=" + i["ca_file"],
		"BOOKINGSYNC_GRAPH_BASE_URL=" + i["graph_base_url"],
		"BOOKINGSYNC_DATAVERSE_ORG_URL=" + i["dataverse_org_url"],
	}
}

// Server is the emulated tenant. Start it, read URL/Info, Stop it.
type Server struct {
	opts     Options
	log      *slog.Logger
	tenant   *tenant.Tenant
	certs    *tenant.Certificates
	sections []tenant.Section
	graph    *graph.Emulator
	dv       *dataverse.Emulator

	ln      net.Listener
	srv     *http.Server
	url     string
	mu      sync.Mutex
	seed    string
	stopped chan struct{}
}

// New prepares a Server; nothing listens until Start.
func New(opts Options) (*Server, error) {
	if opts.Seed == "" {
		opts.Seed = "demo"
	}
	if opts.Seed != "demo" && opts.Seed != "empty" {
		return nil, fmt.Errorf("unknown seed %q (want demo or empty)", opts.Seed)
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:7070"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("emulator address %q: %w", opts.Addr, err)
	}
	certs, err := tenant.NewCertificates(host)
	if err != nil {
		return nil, fmt.Errorf("emulator certificates: %w", err)
	}
	return &Server{opts: opts, log: opts.Logger, tenant: tenant.New(opts.Tenant), certs: certs, seed: opts.Seed, stopped: make(chan struct{})}, nil
}

// Start binds the listener, builds the sections, seeds them and serves until
// Stop (or ctx is done).
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("emulator listen %s: %w", s.opts.Addr, err)
	}
	s.ln = ln
	s.url = "https://" + ln.Addr().String()
	s.tenant.SetBaseURL(s.url)
	if s.opts.CAOut != "" {
		if err := os.WriteFile(s.opts.CAOut, s.certs.CAPEM, 0o644); err != nil {
			ln.Close()
			return fmt.Errorf("write CA to %s: %w", s.opts.CAOut, err)
		}
	}

	s.graph = graph.New(s.tenant, s.opts.Graph, s.log.With("emulator", "graph"))
	s.dv = dataverse.New(s.tenant, s.opts.Dataverse, s.log.With("emulator", "dataverse"))
	s.sections = []tenant.Section{s.graph, s.dv}

	mux := http.NewServeMux()
	s.tenant.Mount(mux)
	for _, sec := range s.sections {
		sec.Mount(mux)
	}
	s.mountControl(mux)
	if err := s.reset(s.seed); err != nil {
		ln.Close()
		return err
	}

	s.srv = &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{s.certs.Server}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(s.stopped)
		if err := s.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("emulator server stopped", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.Stop()
		case <-s.stopped:
		}
	}()
	return nil
}

// Stop shuts the listener down, letting in-flight requests finish briefly,
// and stops notification and webhook delivery.
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	for _, sec := range s.sections {
		sec.Close()
	}
	<-s.stopped
}

// URL is https://host:port of the listener.
func (s *Server) URL() string { return s.url }

// Tenant exposes the identity part (tests mint tokens with it).
func (s *Server) Tenant() *tenant.Tenant { return s.tenant }

// Graph and Dataverse expose the sections to in-process callers (the sandbox).
func (s *Server) Graph() *graph.Emulator         { return s.graph }
func (s *Server) Dataverse() *dataverse.Emulator { return s.dv }

// CAPEM is the CA certificate clients must trust.
func (s *Server) CAPEM() []byte { return s.certs.CAPEM }

// HTTPClient returns a client that trusts the emulator's CA.
func (s *Server) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: s.certs.Pool(), MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Info is what GET /_emulator/info answers.
func (s *Server) Info() Info {
	cfg := s.tenant.Config()
	info := Info{
		"tenant_id":         cfg.TenantID,
		"client_id":         cfg.ClientID,
		"client_secret":     cfg.ClientSecret,
		"authority_host":    s.tenant.AuthorityHost(),
		"token_url":         s.tenant.TokenURL(),
		"identity_endpoint": s.url + "/msi/token",
		"identity_header":   cfg.IdentityHeader,
	}
	if s.opts.CAOut != "" {
		info["ca_file"] = s.opts.CAOut
	}
	for _, sec := range s.sections {
		for k, v := range sec.Info() {
			info[k] = v
		}
	}
	return info
}

func (s *Server) reset(seed string) error {
	for _, sec := range s.sections {
		if err := sec.Reset(seed); err != nil {
			return fmt.Errorf("reset %s: %w", sec.Name(), err)
		}
	}
	s.mu.Lock()
	s.seed = seed
	s.mu.Unlock()
	return nil
}

func (s *Server) mountControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /_emulator/info", func(w http.ResponseWriter, r *http.Request) {
		tenant.WriteJSON(w, http.StatusOK, s.Info())
	})
	mux.HandleFunc("POST /_emulator/reset", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Seed string `json:"seed"`
		}
		if err := decodeOptional(r, &body); err != nil {
			controlError(w, http.StatusBadRequest, err)
			return
		}
		seed := body.Seed
		if seed == "" {
			s.mu.Lock()
			seed = s.seed
			s.mu.Unlock()
		}
		if seed != "demo" && seed != "empty" {
			controlError(w, http.StatusBadRequest, fmt.Errorf("unknown seed %q (want demo or empty)", seed))
			return
		}
		if err := s.reset(seed); err != nil {
			controlError(w, http.StatusInternalServerError, err)
			return
		}
		tenant.WriteJSON(w, http.StatusOK, map[string]string{"seed": seed})
	})
	mux.HandleFunc("GET /_emulator/faults", func(w http.ResponseWriter, r *http.Request) {
		tenant.WriteJSON(w, http.StatusOK, s.perSection(tenant.Section.Faults))
	})
	mux.HandleFunc("POST /_emulator/faults", func(w http.ResponseWriter, r *http.Request) {
		s.applySections(w, r, tenant.Section.SetFaults, tenant.Section.Faults)
	})
	mux.HandleFunc("GET /_emulator/settings", func(w http.ResponseWriter, r *http.Request) {
		out := s.perSection(tenant.Section.Settings)
		out["tenant"] = s.tenantSettings()
		tenant.WriteJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /_emulator/settings", func(w http.ResponseWriter, r *http.Request) {
		s.applySections(w, r, tenant.Section.SetSettings, tenant.Section.Settings)
	})
	mux.HandleFunc("GET /_emulator/stats", func(w http.ResponseWriter, r *http.Request) {
		tenant.WriteJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("POST /_emulator/clock", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Advance string `json:"advance"`
		}
		if err := decodeOptional(r, &body); err != nil {
			controlError(w, http.StatusBadRequest, err)
			return
		}
		d, err := time.ParseDuration(body.Advance)
		if err != nil || d < 0 {
			controlError(w, http.StatusBadRequest, fmt.Errorf("advance: want a positive Go duration such as \"24h\", got %q", body.Advance))
			return
		}
		s.tenant.Advance(d)
		tenant.WriteJSON(w, http.StatusOK, s.tenantSettings())
	})
	mux.HandleFunc("GET /_emulator/clock", func(w http.ResponseWriter, r *http.Request) {
		tenant.WriteJSON(w, http.StatusOK, s.tenantSettings())
	})
}

// Stats is what GET /_emulator/stats answers: each section's route counts
// under its name, its extra counters at the top level.
func (s *Server) Stats() map[string]any {
	out := map[string]any{"tokens_issued": s.tenant.TokensIssued()}
	for _, sec := range s.sections {
		routes, extra := sec.Stats()
		if routes == nil {
			routes = map[string]int64{}
		}
		out[sec.Name()] = routes
		for k, v := range extra {
			out[k] = v
		}
	}
	return out
}

func (s *Server) tenantSettings() map[string]any {
	return map[string]any{
		"now":              s.tenant.Now().Format(time.RFC3339Nano),
		"clock_offset":     s.tenant.ClockOffset().String(),
		"token_lifetime_s": int(s.tenant.Config().TokenLifetime / time.Second),
	}
}

func (s *Server) perSection(get func(tenant.Section) any) map[string]any {
	out := map[string]any{}
	for _, sec := range s.sections {
		out[sec.Name()] = get(sec)
	}
	return out
}

// applySections hands each named member of the body to its section. Unknown
// members are an error so a typo never silently does nothing. The "tenant"
// member of settings carries token_lifetime_s.
func (s *Server) applySections(w http.ResponseWriter, r *http.Request, set func(tenant.Section, json.RawMessage) error, get func(tenant.Section) any) {
	var body map[string]json.RawMessage
	if err := decodeOptional(r, &body); err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	names := make([]string, 0, len(body))
	for k := range body {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		raw := body[name]
		if name == "tenant" {
			if err := s.applyTenantSettings(raw); err != nil {
				controlError(w, http.StatusBadRequest, err)
				return
			}
			continue
		}
		sec := s.section(name)
		if sec == nil {
			controlError(w, http.StatusBadRequest, fmt.Errorf("unknown section %q (want graph, dataverse or tenant)", name))
			return
		}
		if err := set(sec, raw); err != nil {
			controlError(w, http.StatusBadRequest, fmt.Errorf("%s: %w", name, err))
			return
		}
	}
	tenant.WriteJSON(w, http.StatusOK, s.perSection(get))
}

func (s *Server) applyTenantSettings(raw json.RawMessage) error {
	var ts struct {
		TokenLifetimeS *int `json:"token_lifetime_s"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ts); err != nil {
		return fmt.Errorf("tenant: %w", err)
	}
	if ts.TokenLifetimeS != nil {
		if *ts.TokenLifetimeS < 1 {
			return errors.New("tenant: token_lifetime_s must be at least 1")
		}
		s.tenant.SetTokenLifetime(time.Duration(*ts.TokenLifetimeS) * time.Second)
	}
	return nil
}

func (s *Server) section(name string) tenant.Section {
	for _, sec := range s.sections {
		if sec.Name() == name {
			return sec
		}
	}
	return nil
}

func decodeOptional(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	return nil
}

func controlError(w http.ResponseWriter, status int, err error) {
	tenant.WriteJSON(w, status, map[string]string{"error": err.Error()})
}
