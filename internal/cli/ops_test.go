package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/config"
	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator"
	dvemu "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	"github.com/bookingsync/bookingsync/internal/sandbox"
	"github.com/bookingsync/bookingsync/internal/service"
)

// startEmulator starts an emulated tenant and returns it with a
// configuration pointing at it (public_url: publicURL).
func startEmulator(t *testing.T, fresh bool, publicURL string) (*emulator.Server, *config.Config) {
	t.Helper()
	dir := t.TempDir()
	emu, err := emulator.New(emulator.Options{Addr: "127.0.0.1:0", Seed: "demo", CAOut: filepath.Join(dir, "ca.pem"),
		Dataverse: dvemu.Options{FreshOrg: fresh}})
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Stop)
	info := emu.Info()
	cfg, _, err := config.Load("", append(info.ServiceEnv(),
		"BOOKINGSYNC_PUBLIC_URL="+publicURL,
		"BOOKINGSYNC_DATA_DIR="+dir,
		"BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY=test-webhook-key-0123456789",
	))
	if err != nil {
		t.Fatal(err)
	}
	return emu, cfg
}

func clients(t *testing.T, cfg *config.Config) *service.APIClients {
	t.Helper()
	cl, err := service.NewAPIClients(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// writes counts the Dataverse emulator's write requests so far.
func writes(emu *emulator.Server) int64 {
	routes, _ := emu.Dataverse().Stats()
	var n int64
	for k, v := range routes {
		if !strings.HasPrefix(k, "GET ") {
			n += v
		}
	}
	return n
}

func TestDataverseSetupFreshOrg(t *testing.T) {
	emu, cfg := startEmulator(t, true, "http://127.0.0.1:1")
	dv := clients(t, cfg).Dataverse
	ctx := context.Background()

	var out bytes.Buffer
	changed, err := DataverseSetup(ctx, cfg, dv, SetupOptions{}, &out)
	if err != nil {
		t.Fatalf("setup: %v\n%s", err, out.String())
	}
	t.Logf("first run:\n%s", out.String())
	for _, want := range []string{
		"created:          bookableresource.bsync_outlooksync (choice: 100000000 Allowed, 100000001 Not Allowed)",
		"created:          bookableresource.bsync_outlooksyncstatus (text, 400 characters)",
		"switched on:      change tracking on bookableresourcebooking",
	} {
		if !changed || !strings.Contains(out.String(), want) {
			t.Errorf("first run: missing %q (changed=%v)", want, changed)
		}
	}
	def, err := entityDefinition(ctx, dv, "bookableresource")
	if err != nil {
		t.Fatal(err)
	}
	if a := def.Attribute("bsync_outlooksync"); a == nil || a.AttributeType != "Picklist" {
		t.Errorf("opt-in column after setup: %+v", a)
	}
	for _, tbl := range changeTrackedTables {
		m, err := entityDefinition(ctx, dv, tbl)
		if err != nil || !m.ChangeTrackingEnabled {
			t.Errorf("change tracking on %s after setup: %v %v", tbl, m != nil && m.ChangeTrackingEnabled, err)
		}
	}

	// Second run: nothing to do, nothing written.
	before := writes(emu)
	out.Reset()
	changed, err = DataverseSetup(ctx, cfg, dv, SetupOptions{Prefix: "bsync"}, &out)
	if err != nil || changed {
		t.Fatalf("second run: changed=%v err=%v\n%s", changed, err, out.String())
	}
	t.Logf("second run:\n%s", out.String())
	if n := strings.Count(out.String(), "already in place:"); n != 4 {
		t.Errorf("second run: %d 'already in place' lines, want 4:\n%s", n, out.String())
	}
	if w := writes(emu) - before; w != 0 {
		t.Errorf("second run made %d write requests", w)
	}

	// A prefix that the configured names don't carry is refused before any call.
	if _, err := DataverseSetup(ctx, cfg, dv, SetupOptions{Prefix: "contoso"}, io.Discard); err == nil || !strings.Contains(err.Error(), `"contoso_"`) {
		t.Errorf("wrong prefix: %v", err)
	}
}

// hookSink stands in for the service's public listener.
type hookSink struct {
	mu     sync.Mutex
	bodies []string
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if r.URL.Path == "/notifications/dataverse" && r.URL.Query().Get("code") == "test-webhook-key-0123456789" {
		h.mu.Lock()
		h.bodies = append(h.bodies, r.Header.Get("x-ms-dynamics-entity-name")+" "+string(b))
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

func (h *hookSink) count(substr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, b := range h.bodies {
		if strings.Contains(b, substr) {
			n++
		}
	}
	return n
}

func TestRegisterWebhookDeliversAndRemoves(t *testing.T) {
	sink := &hookSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	_, cfg := startEmulator(t, false, srv.URL)
	dv := clients(t, cfg).Dataverse
	ctx := context.Background()

	var out bytes.Buffer
	for range 2 { // idempotent: the second run updates the same rows
		out.Reset()
		if err := RegisterWebhooks(ctx, cfg, dv, &out); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("register-webhook:\n%s", out.String())
	for _, want := range []string{"registered: bookingsync bookings → " + srv.URL + "/notifications/dataverse",
		"Delete of bookableresourcebooking, pre image pre (all columns)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	var n int
	_ = dv.List(ctx, dataverse.SetServiceEndpoints, dataverse.Query{Select: []string{"serviceendpointid"}}, func(json.RawMessage) error { n++; return nil })
	if n != 3 {
		t.Errorf("%d service endpoints after registering twice, want 3", n)
	}

	booking := firstBooking(t, dv)
	move := func() {
		t.Helper()
		start := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Hour)
		if err := dv.Update(ctx, dataverse.SetBookings, booking, map[string]any{"starttime": start, "endtime": start.Add(time.Hour)}, ""); err != nil {
			t.Fatal(err)
		}
	}
	move()
	deadline := time.Now().Add(10 * time.Second)
	for sink.count(booking) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no webhook for the booking change arrived")
		}
		time.Sleep(20 * time.Millisecond)
	}

	out.Reset()
	if err := RemoveWebhooks(ctx, cfg, dv, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("register-webhook --remove:\n%s", out.String())
	if !strings.Contains(out.String(), "removed: bookingsync bookings (1 endpoint, 3 steps, 3 images)") {
		t.Errorf("remove output:\n%s", out.String())
	}
	got := sink.count(booking)
	move()
	time.Sleep(time.Second)
	if after := sink.count(booking); after != got {
		t.Errorf("%d webhook(s) arrived after --remove", after-got)
	}
	out.Reset()
	if err := RemoveWebhooks(ctx, cfg, dv, &out); err != nil || strings.Count(out.String(), "not registered:") != 3 {
		t.Errorf("second remove: %v\n%s", err, out.String())
	}
}

func firstBooking(t *testing.T, dv *dataverse.Client) string {
	t.Helper()
	var id string
	err := dv.List(context.Background(), dataverse.SetBookings, dataverse.Query{Select: []string{"bookableresourcebookingid"}, Top: 1},
		func(raw json.RawMessage) error {
			var r struct {
				ID string `json:"bookableresourcebookingid"`
			}
			if id == "" {
				_ = json.Unmarshal(raw, &r)
				id = r.ID
			}
			return nil
		})
	if err != nil || id == "" {
		t.Fatalf("no booking: %v", err)
	}
	return id
}

func TestCheckAgainstSandbox(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb, err := sandbox.Start(ctx, sandbox.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(),
		Emulator: emulator.Options{Addr: "127.0.0.1:0", Seed: "demo"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Stop()

	var out bytes.Buffer
	results := Check(ctx, sb.Config, nil, clients(t, sb.Config), CheckOptions{Mailbox: firstTechnician(t, sb)}, &out)
	t.Logf("check against the sandbox:\n%s", out.String())
	names := map[string]bool{}
	for _, r := range results {
		names[r.Name] = true
		if r.Status == checkFail || r.Status == checkWarn {
			t.Errorf("%s %s: %s", r.Status, r.Name, r.Detail)
		}
	}
	for _, n := range []string{"configuration", "graph token", "dataverse token", "graph permission", "graph", "dataverse",
		"columns", "change tracking", "webhook", "calendar access", "public url", "coexistence"} {
		if !names[n] {
			t.Errorf("no %q line", n)
		}
	}

	// A broken setting: the public URL points where nothing answers.
	broken := *sb.Config
	broken.PublicURL = "http://" + freeAddr(t)
	out.Reset()
	results = Check(ctx, &broken, nil, clients(t, &broken), CheckOptions{Timeout: 5 * time.Second}, &out)
	t.Logf("check with a wrong public_url:\n%s", out.String())
	failed := map[string]bool{}
	for _, r := range results {
		if r.Status == checkFail {
			failed[r.Name] = true
		}
	}
	if !failed["public url"] || !failed["webhook"] {
		t.Errorf("wrong public_url: want FAIL for public url and webhook, got %v", failed)
	}

	// The organization-level switch of Microsoft's booking sync gives a warning.
	dv := clients(t, sb.Config).Dataverse
	var orgID string
	_ = dv.List(ctx, dataverse.SetOrganizations, dataverse.Query{Select: []string{"organizationid"}}, func(raw json.RawMessage) error {
		var r struct {
			ID string `json:"organizationid"`
		}
		_ = json.Unmarshal(raw, &r)
		orgID = r.ID
		return nil
	})
	if err := dv.Update(ctx, dataverse.SetOrganizations, orgID, map[string]any{"isresourcebookingexchangesyncenabled": true}, ""); err != nil {
		t.Fatalf("set org flag: %v", err)
	}
	out.Reset()
	Check(ctx, sb.Config, nil, clients(t, sb.Config), CheckOptions{}, &out)
	if !strings.Contains(out.String(), "WARN  coexistence") {
		t.Errorf("org flag on: no coexistence warning:\n%s", out.String())
	}
}

func firstTechnician(t *testing.T, sb *sandbox.Sandbox) string {
	t.Helper()
	var upn string
	err := sb.Service.Dataverse.List(context.Background(), dataverse.SetSystemUsers, dataverse.Query{Select: dataverse.SystemUserSelect},
		func(raw json.RawMessage) error {
			var su dataverse.SystemUser
			_ = json.Unmarshal(raw, &su)
			if upn == "" && su.AADObjectID != "" && su.DomainName != "" {
				upn = su.AADObjectID
			}
			return nil
		})
	if err != nil || upn == "" {
		t.Fatalf("no technician: %v", err)
	}
	return upn
}

func TestCheckInvalidConfigExitsNonZero(t *testing.T) {
	for _, k := range config.Keys() {
		t.Setenv(config.EnvName(k), "")
	}
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := writeFile(path, "public_url: https://x.example\nlog:\n  levle: info\n"); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"check", "--config", path}, &stdout, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "FAIL  configuration") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
