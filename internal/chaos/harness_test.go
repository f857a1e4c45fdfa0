package chaos

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/azauth"
	"github.com/bookingsync/bookingsync/internal/config"
	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/httpx"
	"github.com/bookingsync/bookingsync/internal/service"
)

var (
	flagSeed  = flag.Int64("chaos.seed", 0, "seed of the chaos run's RNG (0: random, printed)")
	flagOps   = flag.Int("chaos.ops", 0, "random operations (default 150; 1000 with -chaos.long)")
	flagKills = flag.Int("chaos.kills", 0, "SIGKILLs of the service (default 5; 20 with -chaos.long)")
	flagLong  = flag.Bool("chaos.long", false, "a longer run: 1000 operations, 20 kills")
	flagKeep  = flag.Bool("chaos.keep", false, "keep the data directory and the service log")
	flagLogs  = flag.String("chaos.loglevel", "info", "the service's log level (its log is printed on failure)")
)

// binary is the bookingsync binary TestMain built.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // the test skips itself
	}
	dir, err := os.MkdirTemp("", "bookingsync-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "bookingsync")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/bookingsync/bookingsync/cmd/bookingsync")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: building bookingsync:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// harness is the emulator (in process), the service (a child process) and
// the clients the test acts and checks through.
type harness struct {
	t       *testing.T
	emu     *emulator.Server
	dir     string
	addr    string // the service's listener (public and admin)
	env     []string
	cfg     *config.Config
	admin   string
	key     string
	gc      *graph.Client
	dv      *dataverse.Client
	http    *http.Client // to the emulator's control API
	logPath string

	mu     sync.Mutex
	proc   *exec.Cmd
	exited chan struct{}
	starts int
	kills  int
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
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

// newHarness starts the emulator (demo seed) and prepares the service's
// environment the way internal/sandbox does, plus the chaos run's
// settings; it registers the Dataverse webhooks with service.WebhookSpecs.
func newHarness(t *testing.T, ctx context.Context) *harness {
	t.Helper()
	return newHarnessWith(t, ctx, nil)
}

// newHarnessWith is newHarness with some of the service's environment
// replaced (e.g. BOOKINGSYNC_STORE).
func newHarnessWith(t *testing.T, ctx context.Context, override map[string]string) *harness {
	t.Helper()
	dir := t.TempDir()
	if *flagKeep {
		var err error
		if dir, err = os.MkdirTemp("", "bookingsync-chaos-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("data directory kept: %s", dir)
	}
	emu, err := emulator.New(emulator.Options{Addr: "127.0.0.1:0", Seed: "demo", CAOut: filepath.Join(dir, "emulator-ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Stop)
	h := &harness{t: t, emu: emu, dir: dir, addr: freeAddr(t), admin: randomToken(), key: randomToken(),
		http: emu.HTTPClient(), logPath: filepath.Join(dir, "service.log")}
	info := emu.Info()
	h.env = append(info.ServiceEnv(),
		// As internal/sandbox configures the service against the emulator.
		"BOOKINGSYNC_PUBLIC_URL=http://"+h.addr,
		"BOOKINGSYNC_LISTEN="+h.addr,
		"BOOKINGSYNC_ADMIN_LISTEN="+h.addr,
		"BOOKINGSYNC_DATA_DIR="+dir,
		"BOOKINGSYNC_STORE=sqlite:"+filepath.Join(dir, "bookingsync.db"),
		"BOOKINGSYNC_LOG_LEVEL="+*flagLogs,
		"BOOKINGSYNC_ADMIN_TOKEN="+h.admin,
		"BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY="+h.key,
		// The chaos run's: safety nets that act within the run's minutes.
		"BOOKINGSYNC_DATAVERSE_POLL_INTERVAL=5s",
		"BOOKINGSYNC_DATAVERSE_OPTIN_POLL_INTERVAL=10s",
		"BOOKINGSYNC_SYNC_CATCHUP_INTERVAL=1m",
		"BOOKINGSYNC_SYNC_CATCHUP_AFTER_DOWNTIME=5s",
	)
	h.env = withEnv(h.env, override)
	cfg, _, err := config.Load("", h.env)
	if err != nil {
		t.Fatalf("service configuration: %v", err)
	}
	h.cfg = cfg
	hc, err := azauth.HTTPClient(cfg.Azure.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := azauth.NewCredential(azauth.Config{TenantID: cfg.Azure.TenantID, ClientID: cfg.Azure.ClientID,
		ClientSecret: cfg.Azure.ClientSecret.Reveal(), AuthorityHost: cfg.Azure.AuthorityHost, ExtraCAFile: cfg.Azure.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	// The test's own clients retry like the service's: the faults hit
	// them as well.
	h.gc, err = graph.New(&httpx.Client{HTTP: hc, Tokens: httpx.NewTokenSource(cred, cfg.Graph.Scope), MaxAttempts: 8},
		graph.Options{BaseURL: cfg.Graph.BaseURL, MailboxConcurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	h.dv, err = dataverse.New(dataverse.Options{OrgURL: cfg.Dataverse.OrgURL, APIBase: cfg.DataverseAPIBase(), Scope: cfg.DataverseScope(),
		Doer: &httpx.Client{HTTP: hc, Tokens: httpx.NewTokenSource(cred, cfg.DataverseScope()), MaxAttempts: 8}})
	if err != nil {
		t.Fatal(err)
	}
	// What `bookingsync dataverse register-webhook` and the sandbox register.
	if _, err := service.RegisterWebhooks(ctx, h.dv, service.WebhookSpecs(cfg, h.key)); err != nil {
		t.Fatalf("register Dataverse webhooks: %v", err)
	}
	t.Cleanup(func() {
		h.stop()
		if t.Failed() || testing.Verbose() {
			h.printLogTail(t, 400)
		}
	})
	return h
}

// withEnv returns env with the keys of override replaced or added.
func withEnv(env []string, override map[string]string) []string {
	out := make([]string, 0, len(env)+len(override))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := override[k]; !ok {
			out = append(out, kv)
		}
	}
	keys := make([]string, 0, len(override))
	for k := range override {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+override[k])
	}
	return out
}

// start runs `bookingsync serve` and waits for /readyz.
func (h *harness) start(ctx context.Context) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc != nil {
		return
	}
	logf, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		h.t.Fatal(err)
	}
	h.starts++
	fmt.Fprintf(logf, "\n===== chaos: start #%d at %s =====\n", h.starts, time.Now().Format("15:04:05.000"))
	cmd := exec.Command(binary, "serve")
	cmd.Env = config.ChildEnv(os.Environ(), h.env)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		h.t.Fatalf("start service: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	h.proc, h.exited = cmd, exited
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			h.proc = nil
			h.t.Fatalf("service exited during start (see %s)", h.logPath)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.addr+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("service not ready after 60s (see %s)", h.logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL: no shutdown, no flush, as a crash or an OOM kill.
func (h *harness) kill() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc == nil {
		return
	}
	_ = h.proc.Process.Signal(syscall.SIGKILL)
	<-h.exited
	h.proc = nil
	h.kills++
}

// stop sends SIGTERM and waits for a clean exit (SIGKILL after 30s).
func (h *harness) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc == nil {
		return
	}
	_ = h.proc.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(30 * time.Second):
		h.t.Errorf("service did not stop within 30s of SIGTERM; killing it")
		_ = h.proc.Process.Signal(syscall.SIGKILL)
		<-h.exited
	}
	h.proc = nil
}

func (h *harness) running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.proc != nil
}

// printLogTail logs the end of the service's log.
func (h *harness) printLogTail(t *testing.T, lines int) {
	b, err := os.ReadFile(h.logPath)
	if err != nil {
		return
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	t.Logf("service log (last %d lines of %s):\n%s", len(all), h.logPath, strings.Join(all, "\n"))
}

// logScan reports lines of the service log that are worth a violation:
// data races and panics.
func (h *harness) logScan() []string {
	f, err := os.Open(h.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "WARNING: DATA RACE") || strings.HasPrefix(l, "panic:") || strings.Contains(l, "fatal error:") {
			out = append(out, l)
		}
	}
	return out
}

// control calls the emulator's control API.
func (h *harness) control(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.emu.URL()+path, rd)
	if err != nil {
		return err
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// adminCall calls the service's admin API; status is the HTTP status (0 on
// a transport error).
func (h *harness) adminCall(ctx context.Context, method, path string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+h.addr+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+h.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

// metric reads one unlabelled sample from the service's /metrics.
func (h *harness) metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+h.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if rest, ok := strings.CutPrefix(l, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, errors.New("metric " + name + " not found")
}
