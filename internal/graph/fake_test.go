package graph

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

// fakeGraph serves requests in-process: no sockets, so it also works
// inside testing/synctest bubbles.
type fakeGraph struct {
	handler http.Handler
	mu      sync.Mutex
	reqs    []seenRequest
}

type seenRequest struct {
	Method string
	URL    string // as sent, including the encoded query
	Header http.Header
	Body   []byte
}

func (f *fakeGraph) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, seenRequest{Method: r.Method, URL: r.URL.String(), Header: r.Header.Clone(), Body: body})
	f.mu.Unlock()
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

func (f *fakeGraph) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.reqs...)
}

func newTestClient(t *testing.T, h http.HandlerFunc) (*Client, *fakeGraph) {
	t.Helper()
	fg := &fakeGraph{handler: h}
	c, err := New(&http.Client{Transport: fg}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c, fg
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkGolden compares a request body with testdata/golden/<name>. The
// body is indented for readability; key order and values are kept exactly.
func checkGolden(t *testing.T, name string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, body)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("request body differs from %s (run with -update if intended)\ngot:\n%s\nwant:\n%s", path, buf.Bytes(), want)
	}
}

func readFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", name))
}
