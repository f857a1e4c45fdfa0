package dataverse

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

const testBase = "https://dv.example.test"

type harness struct {
	t     *testing.T
	tn    *tenant.Tenant
	e     *Emulator
	mux   *http.ServeMux
	token string
}

func newHarness(t *testing.T, seed string, opts Options) *harness {
	t.Helper()
	tn := tenant.New(tenant.Config{})
	tn.SetBaseURL(testBase)
	e := New(tn, opts, nil)
	t.Cleanup(e.Close)
	if err := e.Reset(seed); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	e.Mount(mux)
	tok, _ := tn.Issue(e.OrgURL())
	return &harness{t: t, tn: tn, e: e, mux: mux, token: tok}
}

// escapeQuery percent-encodes what clients encode in OData URLs.
func escapeQuery(s string) string {
	r := strings.NewReplacer(" ", "%20", "'", "%27", "\"", "%22")
	return r.Replace(s)
}

// do sends a request to the Web API. path is relative to the API base
// ("/bookableresourcebookings?$top=1") or absolute (a nextLink). Headers
// come as "Name: value" strings.
func (h *harness) do(method, path string, body any, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = testBase + APIPath + path
	}
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i+1] + escapeQuery(u[i+1:])
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req := httptest.NewRequest(method, u, rd)
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, hv := range headers {
		k, v, _ := strings.Cut(hv, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	rec := httptest.NewRecorder()
	h.mux.ServeHTTP(rec, req)
	return rec
}

// json decodes a response body, failing on a status other than want.
func (h *harness) json(rec *httptest.ResponseRecorder, want int) map[string]any {
	h.t.Helper()
	if rec.Code != want {
		h.t.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body.String())
	}
	var m map[string]any
	if rec.Body.Len() == 0 {
		return nil
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		h.t.Fatalf("decode %q: %v", rec.Body.String(), err)
	}
	return m
}

func values(m map[string]any) []map[string]any {
	var out []map[string]any
	for _, v := range m["value"].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

func errorOf(t *testing.T, rec *httptest.ResponseRecorder) (string, string) {
	t.Helper()
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
		t.Fatalf("error body %q: %v", rec.Body.String(), err)
	}
	return env.Error.Code, env.Error.Message
}

// createBooking adds a booking for the first demo technician and returns its id.
func (h *harness) createBooking(name string) string {
	h.t.Helper()
	res := ResourceID(tenant.Technicians()[0].ID)
	rec := h.do("POST", "/bookableresourcebookings", map[string]any{
		"name": name, "starttime": "2026-03-02T09:00:00Z", "endtime": "2026-03-02T10:30:00Z",
		"Resource@odata.bind":      "/bookableresources(" + res + ")",
		"BookingStatus@odata.bind": "/bookingstatuses(" + BookingStatusID("Scheduled") + ")",
	})
	if rec.Code != http.StatusNoContent {
		h.t.Fatalf("create booking: %d %s", rec.Code, rec.Body.String())
	}
	loc := rec.Header().Get("OData-EntityId")
	return loc[strings.LastIndex(loc, "(")+1 : len(loc)-1]
}
