// Package webui is the admin web UI: server-rendered pages (html/template,
// assets embedded in the binary) on the admin listener under /ui/, behind
// the admin token, with CSRF tokens on every form and a strict CSP. In the
// sandbox it also serves the live two-way demo (/ui/demo).
//
// It reads the store, the metrics and the service's Graph and Dataverse
// clients; actions that change the service's state (resync, resolving a
// conflict) are forwarded to the admin API in process, so the UI implements
// no operation of its own.
package webui

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bookingsync/bookingsync/internal/config"
	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/httpapi"
	"github.com/bookingsync/bookingsync/internal/metrics"
	"github.com/bookingsync/bookingsync/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the UI is mounted.
const Prefix = "/ui/"

// Deps are the parts of the service the UI reads.
type Deps struct {
	Config    *config.Config
	Store     *store.Store
	Metrics   *metrics.Metrics
	Graph     *graph.Client
	Dataverse *dataverse.Client
	// Status is the admin API's status (resources with their subscriptions).
	Status func(context.Context) ([]httpapi.ResourceStatus, error)
	Ready  map[string]httpapi.ReadyFunc
	Logger *slog.Logger
}

type demoKey struct{}

// WithDemo marks ctx so that Mount also serves the live demo. Only the
// sandbox does this (on the context it passes to service.New): the demo
// writes to Dataverse and Graph as a dispatcher and a technician would,
// which no real deployment must offer, so there is no configuration key.
func WithDemo(ctx context.Context) context.Context { return context.WithValue(ctx, demoKey{}, true) }

func demoEnabled(ctx context.Context) bool { v, _ := ctx.Value(demoKey{}).(bool); return v }

// Mount serves the UI under /ui/ (and redirects / there) in front of the
// admin handler, which keeps everything else (API, metrics, health).
func Mount(ctx context.Context, admin http.Handler, d Deps) http.Handler {
	ui := New(d, admin, demoEnabled(ctx))
	mux := http.NewServeMux()
	mux.Handle(Prefix, ui)
	mux.Handle("GET /{$}", http.RedirectHandler(Prefix, http.StatusSeeOther))
	mux.Handle("GET /ui", http.RedirectHandler(Prefix, http.StatusSeeOther))
	mux.Handle("/", admin)
	return mux
}

// UI is the web UI's handler.
type UI struct {
	d     Deps
	admin http.Handler
	demo  bool
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux

	rateMu  sync.Mutex
	samples []rateSample

	demoMu    sync.Mutex
	demoCache *demoState
	demoAt    time.Time
	users     map[string]string // systemuserid → Entra object id
	statuses  []dataverse.BookingStatus
}

// New builds the UI; admin is the admin API handler that actions are
// forwarded to; demo enables /ui/demo.
func New(d Deps, admin http.Handler, demo bool) *UI {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &UI{d: d, admin: admin, demo: demo, log: log, pages: parsePages(), users: map[string]string{}}
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", staticHandler(http.FileServerFS(static))))
	mux.HandleFunc("GET /ui/login", u.loginForm)
	mux.HandleFunc("POST /ui/login", u.login)
	mux.Handle("POST /ui/logout", u.auth(http.HandlerFunc(u.logout)))
	mux.Handle("GET /ui/{$}", u.auth(http.HandlerFunc(u.overview)))
	mux.Handle("GET /ui/resources", u.auth(http.HandlerFunc(u.resources)))
	mux.Handle("POST /ui/resources/resync", u.auth(http.HandlerFunc(u.resync)))
	mux.Handle("GET /ui/activity", u.auth(http.HandlerFunc(u.activity)))
	mux.Handle("GET /ui/conflicts", u.auth(http.HandlerFunc(u.conflicts)))
	mux.Handle("POST /ui/conflicts/resolve", u.auth(http.HandlerFunc(u.resolve)))
	mux.Handle("GET /ui/settings", u.auth(http.HandlerFunc(u.settings)))
	if demo {
		mux.Handle("GET /ui/demo", u.auth(http.HandlerFunc(u.demoPage)))
		mux.Handle("GET /ui/demo/state", u.auth(http.HandlerFunc(u.demoStateJSON)))
		mux.Handle("POST /ui/demo/action", u.auth(http.HandlerFunc(u.demoAction)))
	}
	u.mux = mux
	return u
}

// ServeHTTP sets the security headers, refuses a POST without a valid CSRF
// token, then routes.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	}
	if r.Method == http.MethodPost && !u.checkCSRF(r) {
		http.Error(w, "missing or invalid CSRF token: reload the page and try again", http.StatusForbidden)
		return
	}
	u.mux.ServeHTTP(w, r)
}

// csp allows nothing but our own scripts, styles and images; no inline
// script or style, no framing, forms only to ourselves.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

func staticHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

var funcs = template.FuncMap{
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		case *time.Time:
			if v == nil || v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return "—"
	},
	"until": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return ""
		}
		d := time.Until(*t).Round(time.Minute)
		if d < 0 {
			return "expired"
		}
		return "in " + shortDuration(d)
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"span": func(a, b time.Time) string {
		a, b = a.UTC(), b.UTC()
		if a.YearDay() == b.YearDay() && a.Year() == b.Year() {
			return a.Format("Mon 15:04") + "–" + b.Format("15:04")
		}
		return a.Format("Mon 15:04") + " – " + b.Format("Mon 15:04")
	},
	"dash": func(s string) string {
		if strings.TrimSpace(s) == "" {
			return "—"
		}
		return s
	},
}

func shortDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	}
}

func parsePages() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "overview", "resources", "activity", "conflicts", "settings", "demo", "result"} {
		out[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}

// page is what every template gets.
type page struct {
	Title  string
	Nav    string
	CSRF   string
	Authed bool
	Demo   bool
	Data   any
}

func (u *UI) render(w http.ResponseWriter, r *http.Request, name, title string, data any) {
	p := page{Title: title, Nav: name, CSRF: u.csrfToken(w, r), Authed: u.authenticated(r), Demo: u.demo, Data: data}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := u.pages[name].ExecuteTemplate(w, "layout.html", p); err != nil {
		u.log.Error("render page", "page", name, "err", err)
	}
}
