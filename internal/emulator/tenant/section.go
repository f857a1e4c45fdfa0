package tenant

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// Section is one emulated API (Graph, Dataverse) mounted on the shared
// listener. The control API under /_emulator dispatches its generic calls
// (reset, faults, settings, stats, info) to every section by name.
type Section interface {
	// Name is the section's key in control-API JSON: "graph" or "dataverse".
	Name() string
	// Mount registers the API routes and any section-specific control routes.
	Mount(mux *http.ServeMux)
	// Reset drops all state and seeds again: seed is "demo" or "empty".
	Reset(seed string) error
	// SetFaults applies a JSON object of fault settings: omitted fields stay
	// unchanged, {} clears them all.
	SetFaults(raw json.RawMessage) error
	Faults() any
	// SetSettings applies a JSON object of settings (durations tests shrink).
	SetSettings(raw json.RawMessage) error
	Settings() any
	// Stats returns the section's request counts (keyed by "METHOD /route"
	// relative to the API base) and extra top-level counters.
	Stats() (routes map[string]int64, extra map[string]int64)
	// Info returns the section's entries for GET /_emulator/info.
	Info() map[string]string
	// Close stops background work (notification delivery).
	Close()
}

// Counter counts requests by key. Safe for concurrent use.
type Counter struct {
	mu sync.Mutex
	m  map[string]int64
}

// Add increments key by one.
func (c *Counter) Add(key string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[key]++
	c.mu.Unlock()
}

// Snapshot copies the counts.
func (c *Counter) Snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// Reset clears the counts.
func (c *Counter) Reset() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// RouteKey turns a ServeMux pattern such as
// "GET /graph/v1.0/users/{uid}/events/{eid}" into the stats key
// "GET /users/{id}/events/{id}": relative to the API base, every wildcard
// spelled {id}.
func RouteKey(pattern, base string) string {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		path, method = pattern, ""
	}
	path = strings.TrimPrefix(path, base)
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = "{id}"
		}
	}
	path = strings.Join(segs, "/")
	if method == "" {
		return path
	}
	return method + " " + path
}
