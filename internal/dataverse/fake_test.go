package dataverse

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

const testBase = "https://contoso.crm.dynamics.com/api/data/v9.2"

// recorded is one request seen by the fake.
type recorded struct {
	Method string
	URL    string // full URL as sent
	Path   string
	Query  string // raw query
	Header http.Header
	Body   []byte
}

// fake is an in-process Dataverse: a RoundTripper that calls handler
// directly (no sockets, so it also works inside synctest bubbles).
type fake struct {
	t       *testing.T
	mu      sync.Mutex
	reqs    []recorded
	handler func(w http.ResponseWriter, r *http.Request, body []byte)
}

func (f *fake) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{Method: r.Method, URL: r.URL.String(), Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	f.mu.Unlock()
	rec := httptest.NewRecorder()
	f.handler(rec, r, body)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

func (f *fake) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// newFake returns a Client wired to handler.
func newFake(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, body []byte)) (*Client, *fake) {
	t.Helper()
	f := &fake{t: t, handler: handler}
	c, err := New(Options{OrgURL: "https://contoso.crm.dynamics.com", Doer: &http.Client{Transport: f}})
	if err != nil {
		t.Fatal(err)
	}
	return c, f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// golden compares the request body (re-indented JSON) with
// testdata/golden/<name>.json; -update rewrites it.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		t.Fatalf("%s: body is not JSON: %v\n%s", name, err, body)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s: body differs from golden file\n--- got\n%s\n--- want\n%s", name, buf.Bytes(), want)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
