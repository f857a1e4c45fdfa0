package emulator

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func startServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Options{Addr: "127.0.0.1:0", CAOut: t.TempDir() + "/ca.pem"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func call(t *testing.T, s *Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestControlAPINames pins the /_emulator names other tools depend on.
func TestControlAPINames(t *testing.T) {
	s := startServer(t)
	status, info := call(t, s, http.MethodGet, "/_emulator/info", "")
	if status != http.StatusOK {
		t.Fatalf("info: %d", status)
	}
	for _, k := range []string{"tenant_id", "client_id", "client_secret", "authority_host", "token_url", "graph_base_url",
		"graph_scope", "dataverse_base_url", "dataverse_org_url", "dataverse_scope", "ca_file"} {
		if v, _ := info[k].(string); v == "" {
			t.Errorf("info lacks %s", k)
		}
	}
	if got, want := info["authority_host"], s.URL()+"/login/"; got != want {
		t.Errorf("authority_host %v, want %v", got, want)
	}

	tests := []struct {
		name, method, path, body string
		want                     int
		keys                     []string
	}{
		{"faults set", http.MethodPost, "/_emulator/faults", `{"graph":{"throttle_rate":0.2},"dataverse":{"drop_webhooks_rate":0.5}}`, 200, []string{"graph", "dataverse"}},
		{"faults get", http.MethodGet, "/_emulator/faults", "", 200, []string{"graph", "dataverse"}},
		{"faults clear", http.MethodPost, "/_emulator/faults", `{"graph":{},"dataverse":{}}`, 200, []string{"graph", "dataverse"}},
		{"faults unknown section", http.MethodPost, "/_emulator/faults", `{"grahp":{}}`, 400, []string{"error"}},
		{"settings tenant", http.MethodPost, "/_emulator/settings", `{"tenant":{"token_lifetime_s":60}}`, 200, []string{"graph", "dataverse"}},
		{"settings bad token lifetime", http.MethodPost, "/_emulator/settings", `{"tenant":{"token_lifetime_s":0}}`, 400, []string{"error"}},
		{"stats", http.MethodGet, "/_emulator/stats", "", 200, []string{"graph", "dataverse", "notifications_sent", "webhooks_sent", "tokens_issued"}},
		{"clock", http.MethodPost, "/_emulator/clock", `{"advance":"48h"}`, 200, []string{"now", "clock_offset"}},
		{"clock backwards", http.MethodPost, "/_emulator/clock", `{"advance":"-1h"}`, 400, []string{"error"}},
		{"reset empty", http.MethodPost, "/_emulator/reset", `{"seed":"empty"}`, 200, []string{"seed"}},
		{"reset unknown seed", http.MethodPost, "/_emulator/reset", `{"seed":"full"}`, 400, []string{"error"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := call(t, s, tc.method, tc.path, tc.body)
			if status != tc.want {
				t.Fatalf("status %d, want %d (%v)", status, tc.want, out)
			}
			for _, k := range tc.keys {
				if _, ok := out[k]; !ok {
					t.Errorf("answer lacks %q: %v", k, out)
				}
			}
		})
	}
	if got := s.Tenant().ClockOffset().String(); got != "48h0m0s" {
		t.Errorf("clock offset %s after advancing 48h", got)
	}
}
