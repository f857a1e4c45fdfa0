package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bookingsync/bookingsync/internal/azauth"
	"github.com/bookingsync/bookingsync/internal/config"
	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator"
	emudv "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	emugraph "github.com/bookingsync/bookingsync/internal/emulator/graph"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	"github.com/bookingsync/bookingsync/internal/httpx"
	"github.com/bookingsync/bookingsync/internal/service"
	"github.com/bookingsync/bookingsync/internal/store"
	"github.com/bookingsync/bookingsync/internal/subscriptions"
)

// TargetIdleRSSMB is the issue's goal: the service idles in at most this
// much resident memory with 10,000 mailboxes and 100,000 links.
const TargetIdleRSSMB = 150

// ScaleOptions configure Scale.
type ScaleOptions struct {
	// Mailboxes is how many technicians opt in (default 10,000).
	Mailboxes int
	// LinksPerMailbox is how many bookings each gets in the sync window, so
	// that the service creates as many events and links; 0 is a pure
	// enrolment run.
	LinksPerMailbox int
	// IdleWait is how long the service must see no Graph or Dataverse
	// traffic before its resident memory counts as idle (default 60s).
	IdleWait time.Duration
	// Timeout bounds the whole run (default 30m).
	Timeout time.Duration
	// Keep keeps the data directory (store, service log) and reports it.
	Keep bool
	// LogLevel is the service's log level; its log goes to service.log in
	// the data directory (default warn).
	LogLevel string
	// ServiceBinary is the bookingsync binary run as `serve` (default: this
	// executable). Tests build one: a test binary is not bookingsync.
	ServiceBinary string
	// Progress receives a line per step (nil: none).
	Progress io.Writer
}

// ScaleResult is the bench's JSON line. Field names are fixed: other tools
// and docs read them.
type ScaleResult struct {
	Mailboxes       int `json:"mailboxes"`
	LinksPerMailbox int `json:"links_per_mailbox"`
	// Enrolled is the subscriptions Graph held when enrolment was done
	// (or when the run gave up waiting); Links the links stored at the end
	// (neither pending nor detached).
	Enrolled int `json:"enrolled"`
	Links    int `json:"links"`

	// SeedS is the bench's own setup of the tenant; the rest count from
	// the service's process start.
	SeedS  float64 `json:"seed_s"`
	StartS float64 `json:"start_s"`
	EnrolS float64 `json:"enrol_s"`
	LinksS float64 `json:"links_s"`

	// Graph requests by the service from its start until the last mailbox
	// was subscribed, leaving out event requests (the window passes of
	// mailboxes already enrolled run meanwhile); subscription creates
	// count every POST /subscriptions, 429s included; throttled is every
	// 429 Graph answered in that time.
	GraphRequestsEnrol       int64 `json:"graph_requests_enrol"`
	GraphSubscriptionCreates int64 `json:"graph_subscription_creates"`
	GraphThrottled           int64 `json:"graph_throttled"`
	// Whole run, start to settled.
	GraphRequestsTotal     int64 `json:"graph_requests_total"`
	GraphEventCreates      int64 `json:"graph_event_creates"`
	DataverseRequestsTotal int64 `json:"dataverse_requests_total"`

	// When the subscriptions fall due for renewal (subscriptions.Manager's
	// DueAt over the stored subscriptions): the most in any 20 s window
	// (Graph's write limit is per 20 s) and first to last.
	RenewalMaxPer20s int     `json:"renewal_max_per_20s"`
	RenewalSpanS     float64 `json:"renewal_span_s"`

	PeakRSSMB float64 `json:"peak_rss_mb"`
	IdleRSSMB float64 `json:"idle_rss_mb"`
	// From the service's /metrics when idle: the Go heap in use, the
	// heap's freed memory not yet returned to the OS, and everything the
	// Go runtime holds from the OS. RSS beyond the latter is outside Go's
	// runtime: SQLite's page cache (the transpiled C allocator maps its own
	// memory) and the binary's pages.
	IdleHeapMB           float64 `json:"idle_heap_mb,omitempty"`
	IdleHeapUnreleasedMB float64 `json:"idle_heap_unreleased_mb,omitempty"`
	IdleGoSysMB          float64 `json:"idle_go_sys_mb,omitempty"`
	TargetIdleRSSMB      float64 `json:"target_idle_rss_mb"`
	// Met: idle RSS within the target, every mailbox enrolled and every
	// link stored. The target is stated for 10,000 mailboxes and 100,000
	// links; a smaller run meeting it says little.
	Met bool `json:"met"`

	Dir string `json:"dir,omitempty"` // with Keep
	// Error is set on a run that failed after the service started: the
	// figures are what was measured until then.
	Error string `json:"error,omitempty"`
}

// scaleSeedWorkers is the bench's concurrency while it fills Dataverse:
// well under the emulator's 52 concurrent requests per user.
const scaleSeedWorkers = 16

// scaleSettle is how long nothing may happen after the last event create
// before the sync counts as done.
const scaleSettle = 5 * time.Second

// Scale runs the emulated tenant in-process with Mailboxes opted-in
// technicians and LinksPerMailbox bookings each, starts `bookingsync
// serve` against it as a child process (so that its memory is its own),
// and measures enrolment, the renewal spread and the service's memory.
func Scale(ctx context.Context, o ScaleOptions) (res ScaleResult, err error) {
	if runtime.GOOS != "linux" {
		return res, errors.New("bench scale reads the service's memory from /proc/PID/status: Linux only")
	}
	if o.Mailboxes <= 0 {
		o.Mailboxes = 10000
	}
	if o.LinksPerMailbox < 0 {
		return res, errors.New("links per mailbox must not be negative")
	}
	if o.LinksPerMailbox > 300 {
		// Five slots a weekday: more would leave the 90-day sync window.
		return res, errors.New("links per mailbox: at most 300")
	}
	if o.IdleWait <= 0 {
		o.IdleWait = 60 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Minute
	}
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	if o.ServiceBinary == "" {
		if o.ServiceBinary, err = os.Executable(); err != nil {
			return res, fmt.Errorf("find the bookingsync binary: %w", err)
		}
	}
	res = ScaleResult{Mailboxes: o.Mailboxes, LinksPerMailbox: o.LinksPerMailbox, TargetIdleRSSMB: TargetIdleRSSMB}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "bench scale: "+format+"\n", args...)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "bookingsync-bench-scale-")
	if err != nil {
		return res, err
	}
	if o.Keep {
		res.Dir = dir
		progress("data directory kept: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	t0 := time.Now()
	emu, err := emulator.New(emulator.Options{Addr: "127.0.0.1:0", Seed: "empty", CAOut: filepath.Join(dir, "emulator-ca.pem")})
	if err != nil {
		return res, fmt.Errorf("emulator: %w", err)
	}
	if err := emu.Start(ctx); err != nil {
		return res, fmt.Errorf("start emulator: %w", err)
	}
	defer emu.Stop()
	addr, err := e2eFreeAddr()
	if err != nil {
		return res, err
	}
	sc := &scale{o: o, emu: emu, dir: dir, addr: addr, admin: randomHex(24), progress: progress}
	if err := sc.configure(); err != nil {
		return res, err
	}
	if err := sc.seed(ctx); err != nil {
		return res, err
	}
	res.SeedS = secondsSince(t0)
	progress("tenant ready in %.1f s: %d mailboxes, %d bookings", res.SeedS, o.Mailboxes, o.Mailboxes*o.LinksPerMailbox)

	emu.Graph().Observe(emugraph.Observer{OnRequest: sc.graphRequest, OnWrite: sc.graphWrite})
	emu.Dataverse().Observe(emudv.Observer{OnRequest: sc.dvRequest})
	defer emu.Graph().Observe(emugraph.Observer{})
	defer emu.Dataverse().Observe(emudv.Observer{})

	if err := sc.start(); err != nil {
		return res, err
	}
	defer func() {
		if serr := sc.stop(); serr != nil && err == nil {
			err = serr
		}
		if err != nil {
			err = fmt.Errorf("%w (service log: %s)", err, sc.logTail(20))
		}
	}()
	if err := sc.measure(ctx, &res); err != nil {
		// What was measured so far is worth a line too (a run that runs
		// out of time says how far it got).
		if m, perr := procStatus(sc.cmd.Process.Pid); perr == nil {
			res.PeakRSSMB = kbToMB(m["VmHWM"])
		}
		res.GraphEventCreates = sc.eventCreates.Load()
		res.GraphRequestsTotal = sc.graphReqs.Load() - sc.ownPolls.Load()
		res.DataverseRequestsTotal = sc.dvReqs.Load()
		res.Error = err.Error()
		return res, err
	}
	if err := sc.stop(); err != nil {
		return res, err
	}
	if err := sc.readStore(ctx, &res); err != nil {
		return res, err
	}
	res.Met = res.IdleRSSMB > 0 && res.IdleRSSMB <= TargetIdleRSSMB &&
		res.Enrolled == o.Mailboxes && res.Links == o.Mailboxes*o.LinksPerMailbox
	progress("links stored %d; renewals: at most %d in 20 s over %.0f s", res.Links, res.RenewalMaxPer20s, res.RenewalSpanS)
	return res, nil
}

// scale is one run.
type scale struct {
	o        ScaleOptions
	emu      *emulator.Server
	dir      string
	addr     string // the service's listener (public and admin)
	admin    string // its admin token
	env      []string
	cfg      *config.Config
	dv       *dataverse.Client
	progress func(string, ...any)

	// Counted by the observers from the service's start on.
	graphReqs, graphEventReqs, graphSubCreates, eventCreates, dvReqs atomic.Int64
	ownPolls                                                         atomic.Int64 // the bench's GET /subscriptions
	lastTraffic                                                      atomic.Int64 // unix nanoseconds
	lastEventCreate                                                  atomic.Int64

	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{}
	logPath string
	rss     atomic.Int64 // kB, latest sample
	stopped bool
}

// configure prepares the service's environment as the chaos harness and
// internal/sandbox do, and the bench's own Dataverse client.
func (sc *scale) configure() error {
	info := sc.emu.Info()
	sc.logPath = filepath.Join(sc.dir, "service.log")
	sc.env = append(info.ServiceEnv(),
		"BOOKINGSYNC_PUBLIC_URL=http://"+sc.addr,
		"BOOKINGSYNC_LISTEN="+sc.addr,
		"BOOKINGSYNC_ADMIN_LISTEN="+sc.addr,
		"BOOKINGSYNC_DATA_DIR="+sc.dir,
		"BOOKINGSYNC_STORE=sqlite:"+filepath.Join(sc.dir, "bookingsync.db"),
		"BOOKINGSYNC_LOG_LEVEL="+sc.o.LogLevel,
		"BOOKINGSYNC_ADMIN_TOKEN="+sc.admin,
		"BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY="+randomHex(24),
		// The booking poll's default minute would never leave a minute
		// without Dataverse traffic. The webhooks are registered, so the
		// polls are only safety nets; their first runs at start still
		// enrol everyone and bring the bookings in.
		"BOOKINGSYNC_DATAVERSE_POLL_INTERVAL="+max(10*time.Minute, 3*sc.o.IdleWait).String(),
		"BOOKINGSYNC_DATAVERSE_OPTIN_POLL_INTERVAL="+max(30*time.Minute, 3*sc.o.IdleWait).String(),
	)
	cfg, _, err := config.Load("", sc.env)
	if err != nil {
		return fmt.Errorf("service configuration: %w", err)
	}
	sc.cfg = cfg
	hc, err := azauth.HTTPClient(cfg.Azure.CAFile)
	if err != nil {
		return err
	}
	cred, err := azauth.NewCredential(azauth.Config{TenantID: cfg.Azure.TenantID, ClientID: cfg.Azure.ClientID,
		ClientSecret: cfg.Azure.ClientSecret.Reveal(), AuthorityHost: cfg.Azure.AuthorityHost, ExtraCAFile: cfg.Azure.CAFile})
	if err != nil {
		return fmt.Errorf("credential: %w", err)
	}
	sc.dv, err = dataverse.New(dataverse.Options{OrgURL: cfg.Dataverse.OrgURL, APIBase: cfg.DataverseAPIBase(), Scope: cfg.DataverseScope(),
		Doer: &httpx.Client{HTTP: hc, Tokens: httpx.NewTokenSource(cred, cfg.DataverseScope()), MaxAttempts: 8}})
	if err != nil {
		return fmt.Errorf("dataverse client: %w", err)
	}
	return nil
}

// seed makes the mailboxes in Graph, and per mailbox a systemuser, an
// opted-in bookable resource and its bookings in Dataverse, then registers
// the Dataverse webhooks. All before the service starts: its opt-in poll
// at start then enrols everyone at once, the mass enrolment measured.
func (sc *scale) seed(ctx context.Context) error {
	var created struct {
		IDs []string `json:"ids"`
	}
	if err := sc.control(ctx, http.MethodPost, "/_emulator/graph/users",
		map[string]any{"generate": map[string]any{"count": sc.o.Mailboxes, "prefix": "scale"}}, &created); err != nil {
		return fmt.Errorf("create %d Graph users: %w", sc.o.Mailboxes, err)
	}
	if len(created.IDs) != sc.o.Mailboxes {
		return fmt.Errorf("create Graph users: got %d ids, want %d", len(created.IDs), sc.o.Mailboxes)
	}
	// The bookings start tomorrow, inside the sync window, on weekdays at
	// 07:00, 09:00, … (UTC, as the users' zone), one hour each.
	now := time.Now().UTC()
	day0 := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	var slots []time.Time
	for d := day0; len(slots) < sc.o.LinksPerMailbox; d = d.AddDate(0, 0, 1) {
		if d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
			continue
		}
		for h := 7; h < 17 && len(slots) < sc.o.LinksPerMailbox; h += 2 {
			slots = append(slots, d.Add(time.Duration(h)*time.Hour))
		}
	}
	work := make(chan int)
	var done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range scaleSeedWorkers {
		wg.Go(func() {
			for i := range work {
				if err := sc.seedMailbox(ctx, i, created.IDs[i], slots); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					continue
				}
				if n := done.Add(1); n%1000 == 0 {
					sc.progress("%d of %d mailboxes in Dataverse", n, sc.o.Mailboxes)
				}
			}
		})
	}
	for i := range created.IDs {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// As `bookingsync dataverse register-webhook` would: the service
	// hears of Dataverse changes as in production.
	if _, err := service.RegisterWebhooks(ctx, sc.dv, service.WebhookSpecs(sc.cfg, sc.webhookKey())); err != nil {
		return fmt.Errorf("register Dataverse webhooks: %w", err)
	}
	return nil
}

func (sc *scale) webhookKey() string {
	for _, kv := range sc.env {
		if v, ok := strings.CutPrefix(kv, "BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY="); ok {
			return v
		}
	}
	return ""
}

func (sc *scale) seedMailbox(ctx context.Context, i int, graphID string, slots []time.Time) error {
	n := strconv.Itoa(i + 1)
	upn := "scale-" + n + "@" + tenant.Domain // as the emulator generated it
	sysID, resID := emudv.SystemUserID(graphID), emudv.ResourceID(graphID)
	if _, err := sc.dv.Create(ctx, dataverse.SetSystemUsers, map[string]any{
		"systemuserid": sysID, "fullname": "Load Technician " + n, "firstname": "Load", "lastname": "Technician " + n,
		"internalemailaddress": upn, "domainname": upn, "azureactivedirectoryobjectid": strings.ToLower(graphID),
		"isdisabled": false, "accessmode": 0, "timezonecode": 92,
	}); err != nil {
		return fmt.Errorf("create systemuser %d: %w", i+1, err)
	}
	if _, err := sc.dv.Create(ctx, dataverse.SetResources, map[string]any{
		"bookableresourceid": resID, "name": "Load Technician " + n, "resourcetype": 3, "timezone": 92,
		dataverse.NavResourceUser + "@odata.bind": "/" + dataverse.SetSystemUsers + "(" + sysID + ")",
		sc.cfg.Dataverse.OptInColumn:              sc.cfg.Dataverse.OptInAllowed,
	}); err != nil {
		return fmt.Errorf("create bookable resource %d: %w", i+1, err)
	}
	for j, start := range slots {
		if _, err := sc.dv.Create(ctx, dataverse.SetBookings, map[string]any{
			"name": fmt.Sprintf("Scale job %d-%d", i+1, j+1), "starttime": start.Format(time.RFC3339),
			"endtime": start.Add(time.Hour).Format(time.RFC3339), "duration": 60, "bookingtype": 1,
			dataverse.NavBookingResource + "@odata.bind": "/" + dataverse.SetResources + "(" + resID + ")",
			dataverse.NavBookingStatus + "@odata.bind":   "/" + dataverse.SetBookingStatuses + "(" + emudv.BookingStatusID("Scheduled") + ")",
		}); err != nil {
			return fmt.Errorf("create booking %d of mailbox %d: %w", j+1, i+1, err)
		}
	}
	return nil
}

func (sc *scale) graphRequest(r emugraph.Request) {
	sc.lastTraffic.Store(r.At.UnixNano())
	sc.graphReqs.Add(1)
	switch {
	case strings.Contains(r.Route, "/events"):
		sc.graphEventReqs.Add(1)
	case r.Route == "POST /subscriptions": // routes are keyed "METHOD path"
		sc.graphSubCreates.Add(1)
	}
}

func (sc *scale) graphWrite(w emugraph.Write) {
	if w.ChangeType == "created" && w.Source == "api" {
		sc.eventCreates.Add(1)
		sc.lastEventCreate.Store(w.At.UnixNano())
	}
}

func (sc *scale) dvRequest(r emudv.Request) {
	sc.lastTraffic.Store(r.At.UnixNano())
	sc.dvReqs.Add(1)
}

// start runs `bookingsync serve` with the prepared environment and samples
// its resident memory every second.
func (sc *scale) start() error {
	logf, err := os.OpenFile(sc.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(sc.o.ServiceBinary, "serve")
	cmd.Env = config.ChildEnv(os.Environ(), sc.env)
	cmd.Stdout, cmd.Stderr = logf, logf
	sc.lastTraffic.Store(time.Now().UnixNano())
	sc.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s serve: %w", sc.o.ServiceBinary, err)
	}
	sc.cmd, sc.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(sc.exited) }()
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if m, err := procStatus(cmd.Process.Pid); err == nil {
				sc.rss.Store(m["VmRSS"])
			}
			select {
			case <-sc.exited:
				return
			case <-tick.C:
			}
		}
	}()
	return nil
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 60 s).
func (sc *scale) stop() error {
	if sc.cmd == nil || sc.stopped {
		return nil
	}
	sc.stopped = true
	_ = sc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-sc.exited:
		return nil
	case <-time.After(60 * time.Second):
		_ = sc.cmd.Process.Kill()
		<-sc.exited
		return errors.New("the service did not stop within 60 s of SIGTERM; killed")
	}
}

// measure waits for readiness, enrolment, the events and quiet, then the
// idle memory.
func (sc *scale) measure(ctx context.Context, res *ScaleResult) error {
	hc := &http.Client{Timeout: 10 * time.Second}
	if err := sc.waitUntil(ctx, "the service's /readyz", time.Second, func() (bool, error) {
		resp, err := hc.Get("http://" + sc.addr + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}); err != nil {
		return err
	}
	res.StartS = secondsSince(sc.started)
	sc.progress("service ready in %.1f s (pid %d)", res.StartS, sc.cmd.Process.Pid)

	throttledBefore := graphThrottled(sc.emu.Stats())
	lastReport := time.Now()
	if err := sc.waitUntil(ctx, "every mailbox subscribed", time.Second, func() (bool, error) {
		n, err := sc.countSubscriptions(ctx)
		if err != nil {
			return false, err
		}
		res.Enrolled = n
		if time.Since(lastReport) >= 10*time.Second {
			lastReport = time.Now()
			sc.progress("%d of %d mailboxes subscribed after %.0f s, RSS %.0f MB", n, sc.o.Mailboxes, secondsSince(sc.started), sc.rssMB())
		}
		return n >= sc.o.Mailboxes, nil
	}); err != nil {
		return err
	}
	res.EnrolS = secondsSince(sc.started)
	polls := sc.ownPolls.Load()
	res.GraphRequestsEnrol = sc.graphReqs.Load() - sc.graphEventReqs.Load() - polls
	res.GraphSubscriptionCreates = sc.graphSubCreates.Load()
	res.GraphThrottled = graphThrottled(sc.emu.Stats()) - throttledBefore
	sc.progress("%d mailboxes subscribed in %.1f s: %d Graph requests besides events, %d subscription creates, %d throttled",
		res.Enrolled, res.EnrolS, res.GraphRequestsEnrol, res.GraphSubscriptionCreates, res.GraphThrottled)

	want := int64(sc.o.Mailboxes * sc.o.LinksPerMailbox)
	lastReport = time.Now()
	if err := sc.waitUntil(ctx, "the events", time.Second, func() (bool, error) {
		n := sc.eventCreates.Load()
		if time.Since(lastReport) >= 10*time.Second {
			lastReport = time.Now()
			sc.progress("%d of %d events created after %.0f s, RSS %.0f MB", n, want, secondsSince(sc.started), sc.rssMB())
		}
		if n < want {
			return false, nil
		}
		return time.Since(time.Unix(0, sc.lastTraffic.Load())) >= scaleSettle, nil
	}); err != nil {
		return err
	}
	if want > 0 {
		res.LinksS = round1(time.Unix(0, sc.lastEventCreate.Load()).Sub(sc.started).Seconds())
	}
	res.GraphRequestsTotal = sc.graphReqs.Load() - sc.ownPolls.Load()
	res.GraphEventCreates = sc.eventCreates.Load()
	res.DataverseRequestsTotal = sc.dvReqs.Load()
	sc.progress("%d events created in %.1f s; settled; waiting for %v without traffic", res.GraphEventCreates, res.LinksS, sc.o.IdleWait)

	// Idle: a freshly finished burst leaves the heap's freed spans mapped
	// (the Go scavenger returns them to the OS gradually, over minutes, and
	// a GC cycle needs allocation to trigger it), so RSS right after the
	// work overstates what an idle service holds. IdleWait without any
	// traffic lets it shrink to what the service keeps.
	var idleSince time.Time
	if err := sc.waitUntil(ctx, fmt.Sprintf("%v without traffic", sc.o.IdleWait), time.Second, func() (bool, error) {
		quiet := time.Unix(0, sc.lastTraffic.Load())
		if quiet != idleSince {
			if !idleSince.IsZero() {
				sc.progress("traffic at %.0f s: idle clock restarted", quiet.Sub(sc.started).Seconds())
			}
			idleSince = quiet
		}
		return time.Since(quiet) >= sc.o.IdleWait, nil
	}); err != nil {
		return err
	}
	m, err := procStatus(sc.cmd.Process.Pid)
	if err != nil {
		return err
	}
	res.IdleRSSMB = kbToMB(m["VmRSS"])
	res.PeakRSSMB = kbToMB(m["VmHWM"]) // the kernel's high-water mark of RSS
	if ms, err := sc.metrics(ctx, "go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes",
		"go_memstats_heap_released_bytes", "go_memstats_sys_bytes"); err == nil {
		mb := func(b float64) float64 { return round1(b / (1 << 20)) }
		res.IdleHeapMB = mb(ms[0])
		res.IdleHeapUnreleasedMB = mb(ms[1] - ms[2])
		res.IdleGoSysMB = mb(ms[3])
	} else {
		sc.progress("no heap figures: %v", err)
	}
	sc.progress("idle RSS %.1f MB (Go heap in use %.1f MB, freed but not returned %.1f MB, all Go runtime memory %.1f MB), peak RSS %.1f MB",
		res.IdleRSSMB, res.IdleHeapMB, res.IdleHeapUnreleasedMB, res.IdleGoSysMB, res.PeakRSSMB)
	return nil
}

// waitUntil polls cond every interval until it holds, the service exits or
// ctx ends.
func (sc *scale) waitUntil(ctx context.Context, what string, interval time.Duration, cond func() (bool, error)) error {
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: gave up after %.0f s: %w", what, secondsSince(sc.started), ctx.Err())
		case <-sc.exited:
			return fmt.Errorf("wait for %s: the service exited", what)
		case <-time.After(interval):
		}
	}
}

// countSubscriptions asks the emulator's Graph for its subscriptions in
// one page. The bench counts its own requests to take them out.
func (sc *scale) countSubscriptions(ctx context.Context) (int, error) {
	tok, _ := sc.emu.Tenant().Issue(emugraph.Audience)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sc.emu.Graph().BaseURL()+"/subscriptions", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Prefer", "odata.maxpagesize=1000000")
	sc.ownPolls.Add(1)
	resp, err := sc.emu.HTTPClient().Do(req)
	if err != nil {
		return 0, fmt.Errorf("list subscriptions: %w", err)
	}
	defer resp.Body.Close()
	var page struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
		Next string `json:"@odata.nextLink"`
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("list subscriptions: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return 0, fmt.Errorf("list subscriptions: %w", err)
	}
	if page.Next != "" {
		return 0, errors.New("list subscriptions: the emulator paged the list")
	}
	return len(page.Value), nil
}

// metrics reads unlabelled samples from the service's /metrics.
func (sc *scale) metrics(ctx context.Context, names ...string) ([]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+sc.addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+sc.admin)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := make([]float64, len(names))
	found := 0
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		for i, name := range names {
			if rest, ok := strings.CutPrefix(s.Text(), name+" "); ok {
				v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
				if err != nil {
					return nil, fmt.Errorf("metric %s: %w", name, err)
				}
				out[i] = v
				found++
			}
		}
	}
	if found < len(names) {
		return nil, fmt.Errorf("metrics %v: %d found (HTTP %s)", names, found, resp.Status)
	}
	return out, nil
}

// readStore counts the links and computes the renewal spread from the
// stopped service's store.
func (sc *scale) readStore(ctx context.Context, res *ScaleResult) error {
	st, err := store.Open(ctx, sc.cfg.Store, nil)
	if err != nil {
		return fmt.Errorf("open the service's store: %w", err)
	}
	defer st.Close()
	links, err := st.ListLinks(ctx, st.DB())
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if !l.Pending() && !l.Detached {
			res.Links++
		}
	}
	subs, err := st.ListSubscriptions(ctx, st.DB())
	if err != nil {
		return fmt.Errorf("list subscriptions: %w", err)
	}
	// The service's own renewal schedule: a Manager configured as
	// internal/service configures it (renewFraction there) computes DueAt.
	life := sc.cfg.Graph.SubscriptionLifetime
	mgr := subscriptions.New(subscriptions.Config{Lifetime: life,
		RenewWhenRemaining: float64(sc.cfg.Graph.RenewWhenRemaining.Of(life)) / float64(life)}, nil, nil, nil, nil, nil)
	due := make([]time.Time, len(subs))
	for i, s := range subs {
		due[i] = mgr.DueAt(s)
	}
	res.RenewalMaxPer20s, res.RenewalSpanS = renewalSpread(due, 20*time.Second)
	return nil
}

// renewalSpread returns the most due times in any window of length w and
// the seconds from the first to the last.
func renewalSpread(due []time.Time, w time.Duration) (int, float64) {
	if len(due) == 0 {
		return 0, 0
	}
	due = slices.Clone(due)
	slices.SortFunc(due, time.Time.Compare)
	best, j := 0, 0
	for i := range due {
		for due[i].Sub(due[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best, round1(due[len(due)-1].Sub(due[0]).Seconds())
}

// control calls the emulator's control API.
func (sc *scale) control(ctx context.Context, method, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, sc.emu.URL()+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := sc.emu.HTTPClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(rb))
	}
	if out != nil {
		return json.Unmarshal(rb, out)
	}
	return nil
}

// logTail is the end of the service's log, for errors.
func (sc *scale) logTail(lines int) string {
	b, err := os.ReadFile(sc.logPath)
	if err != nil {
		return sc.logPath
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return sc.logPath + ", last lines:\n" + strings.Join(all, "\n")
}

func (sc *scale) rssMB() float64 { return kbToMB(sc.rss.Load()) }

// procStatus reads the kB figures (VmRSS, VmHWM, …) of /proc/PID/status.
func procStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, fmt.Errorf("read the service's memory: %w", err)
	}
	out := map[string]int64{}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || !strings.HasPrefix(k, "Vm") {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64); err == nil {
			out[k] = n
		}
	}
	if out["VmRSS"] == 0 {
		return nil, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return out, nil
}

// graphThrottled sums the emulator's counters of Graph's 429s (the
// mailbox concurrency limit, injected throttling, and any per-kind limit
// named graph_…throttled…).
func graphThrottled(stats map[string]any) int64 {
	var n int64
	for k, v := range stats {
		if c, ok := v.(int64); ok && strings.HasPrefix(k, "graph_") && strings.Contains(k, "throttled") {
			n += c
		}
	}
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func kbToMB(kb int64) float64 { return round1(float64(kb) / 1024) }

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }

func secondsSince(t time.Time) float64 { return round1(time.Since(t).Seconds()) }
