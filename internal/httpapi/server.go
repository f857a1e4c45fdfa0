// Package httpapi serves bookingsync's HTTP endpoints: the public listener
// (Graph and Dataverse notification endpoints, health) and the admin listener
// (admin API, metrics). Handlers persist what they accept before answering
// 2xx and leave all processing to the job queue.
package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bookingsync/bookingsync/internal/metrics"
)

// Listener is one HTTP server with a graceful stop: Stop lets in-flight
// requests finish (up to ShutdownTimeout) before returning.
type Listener struct {
	Name string
	Addr string
	// Bound, if set, is an already bound listener served instead of
	// binding Addr: the sandbox binds "127.0.0.1:0" itself, so the port
	// it writes into the public URL cannot be taken in between.
	Bound           net.Listener
	Handler         http.Handler
	Logger          *slog.Logger
	ShutdownTimeout time.Duration

	mu   sync.Mutex
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Start binds the address and serves in the background.
func (l *Listener) Start(ctx context.Context) error {
	ln := l.Bound
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", l.Addr); err != nil {
			return fmt.Errorf("%s listener on %s: %w", l.Name, l.Addr, err)
		}
	}
	srv := &http.Server{
		Handler:           l.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(l.Logger.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	l.mu.Lock()
	l.srv, l.ln, l.done = srv, ln, make(chan struct{})
	l.mu.Unlock()
	go func() {
		defer close(l.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.Logger.Error("listener stopped", "listener", l.Name, "err", err)
		}
	}()
	return nil
}

// URL is http://host:port of the bound listener.
func (l *Listener) URL() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return ""
	}
	return "http://" + l.ln.Addr().String()
}

// Stop shuts down gracefully.
func (l *Listener) Stop() {
	l.mu.Lock()
	srv, done := l.srv, l.done
	l.mu.Unlock()
	if srv == nil {
		return
	}
	timeout := l.ShutdownTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		l.Logger.Warn("listener did not drain in time", "listener", l.Name, "err", err)
		_ = srv.Close()
	}
	<-done
}

// ReadyFunc reports whether a dependency (store, queue) is reachable.
type ReadyFunc func(ctx context.Context) error

// health serves /healthz (the process answers) and /readyz (every check passes).
func health(mux *http.ServeMux, checks map[string]ReadyFunc) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		out := map[string]string{}
		status := http.StatusOK
		for name, check := range checks {
			if err := check(ctx); err != nil {
				out[name] = "unavailable"
				status = http.StatusServiceUnavailable
			} else {
				out[name] = "ok"
			}
		}
		writeJSON(w, status, out)
	})
}

// metricsHandler serves the registry in Prometheus text format.
func metricsHandler(m *metrics.Metrics) http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// requireToken guards admin routes with a bearer token, compared in constant time.
func requireToken(token func() string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := token()
		got := ""
		if h := r.Header.Get("Authorization"); len(h) > 7 && h[:7] == "Bearer " {
			got = h[7:]
		}
		if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bookingsync admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin token required"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets the headers every response of ours carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Combine serves the public endpoints (notifications, health) from public
// and everything else from admin, for a single-address deployment.
func Combine(public, admin http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/notifications/", public)
	mux.Handle("/healthz", public)
	mux.Handle("/readyz", public)
	mux.Handle("/", admin)
	return mux
}
