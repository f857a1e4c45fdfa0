package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/httpapi"
	"github.com/bookingsync/bookingsync/internal/store"
	"github.com/bookingsync/bookingsync/internal/store/storetest"
)

// The cluster run (issue 9): three `serve` instances on one PostgreSQL
// database behind a round-robin balancer; the River leader is SIGKILLed
// mid-run and restarted later.
const (
	clusterNodes      = 3
	clusterTechs      = 3
	clusterDrive      = 45 * time.Second // operations, in all
	clusterKillAfter  = 15 * time.Second // into the drive: kill the leader
	clusterDownFor    = 15 * time.Second // then restart it
	clusterElectAfter = 45 * time.Second // a new leader must be elected within
	// clusterPollsAfter bounds the wait for the polls the new leader
	// enqueues: election (≈15 s), the killed leader's running jobs rescued
	// when its lease lapses (20 s), then a poll period (10 s).
	clusterPollsAfter = 90 * time.Second
)

var flagKillBusy = flag.Bool("cluster.killbusy", true, "kill the leader while it runs a periodic job (up to 15s wait), so that job is left running in river_job and must be rescued")

// periodicKinds are the jobs the leader enqueues (window_pass also per
// resource, with arguments); none may run twice at once with the same
// arguments.
var periodicKinds = map[string]bool{"renew_subscriptions": true, "poll_dataverse": true, "poll_bookings": true,
	"window_pass": true, "catchup_due": true, "retention": true}

// node is one `serve` instance.
type node struct {
	*harness
	name string
}

// cluster is the instances and the balancer in front of them.
type cluster struct {
	nodes []*node
	mu    sync.Mutex
	pids  map[int]string // pid → node name, over restarts
	next  atomic.Uint64
	// served counts requests the balancer passed to each node, by route.
	served sync.Map // node name + " " + route → *atomic.Int64
}

// start starts n and maps its new pid to it (River client IDs and inbox
// owners carry the pid).
func (cl *cluster) start(ctx context.Context, n *node) {
	n.start(ctx)
	n.mu.Lock()
	pid := n.proc.Process.Pid
	n.mu.Unlock()
	cl.mu.Lock()
	cl.pids[pid] = n.name
	cl.mu.Unlock()
}

// RoundTrip sends the request to the next running node, trying the others
// when one refuses (it was killed a moment ago): a load balancer.
func (cl *cluster) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, fmt.Errorf("balancer: read body: %w", err)
		}
		req.Body.Close()
	}
	first := int(cl.next.Add(1))
	var lastErr error = errors.New("balancer: no instance running")
	for i := range cl.nodes {
		n := cl.nodes[(first+i)%len(cl.nodes)]
		if !n.running() {
			continue
		}
		out := req.Clone(req.Context())
		out.URL.Host, out.Host = n.addr, n.addr
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			lastErr = err
			continue
		}
		route := "other"
		switch {
		case strings.HasPrefix(req.URL.Path, "/notifications/graph"):
			route = "graph"
		case strings.HasPrefix(req.URL.Path, "/notifications/dataverse"):
			route = "dataverse"
		}
		v, _ := cl.served.LoadOrStore(n.name+" "+route, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		return resp, nil
	}
	return nil, lastErr
}

// servedBy is the balancer's counts per node and route.
func (cl *cluster) servedBy() string {
	m := map[string]int{}
	cl.served.Range(func(k, v any) bool {
		m[k.(string)] = int(v.(*atomic.Int64).Load())
		return true
	})
	return sortedCounts(m)
}

// freshSchema creates a schema in the test database and returns a URL
// whose search_path is that schema (as storetest.NewPostgres isolates).
func freshSchema(t *testing.T, ctx context.Context) string {
	t.Helper()
	base := storetest.PostgresURL(t)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bscluster_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if *flagKeep {
			t.Logf("schema kept: %s", schema)
			return
		}
		if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", storetest.EnvPostgresURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// riverLeader is River's elected leader's client ID ("" if none).
func riverLeader(ctx context.Context, db *sql.DB) (string, error) {
	var id string
	err := db.QueryRowContext(ctx, `SELECT leader_id FROM river_leader`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read river_leader: %w", err)
	}
	return id, nil
}

var (
	riverIDPid = regexp.MustCompile(`-(\d+)-[A-Z2-7]{4}$`) // jobs.ClientID
	ownerPid   = regexp.MustCompile(`/(\d+)/[0-9a-f]{8}$`) // the inbox's default owner
)

// nodeOf names the node whose process id matches re in id.
func (cl *cluster) nodeOf(re *regexp.Regexp, id string) string {
	m := re.FindStringSubmatch(id)
	if m == nil {
		return "?" + id
	}
	pid, _ := strconv.Atoi(m[1])
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if n, ok := cl.pids[pid]; ok {
		return n
	}
	return "?" + id
}

type riverJob struct {
	id                int64
	kind, state, args string
	attemptedBy       []string
	created           time.Time
	attempted, final  sql.NullTime
}

// waitPollsAfterKill waits until a poll_bookings and a poll_dataverse job
// created after killAt have completed, or until deadline.
func waitPollsAfterKill(ctx context.Context, db *sql.DB, killAt, deadline time.Time) bool {
	for {
		var n int
		err := db.QueryRowContext(ctx, `SELECT COUNT(DISTINCT kind) FROM river_job
			WHERE kind IN ('poll_bookings', 'poll_dataverse') AND state = 'completed' AND created_at > $1`, killAt.UTC()).Scan(&n)
		if err == nil && n == 2 {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func riverJobs(ctx context.Context, db *sql.DB) ([]riverJob, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, kind, state, args::text, COALESCE(array_to_string(attempted_by, ','), ''),
		created_at, attempted_at, finalized_at FROM river_job ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read river_job: %w", err)
	}
	defer rows.Close()
	var out []riverJob
	for rows.Next() {
		var j riverJob
		var by string
		if err := rows.Scan(&j.id, &j.kind, &j.state, &j.args, &by, &j.created, &j.attempted, &j.final); err != nil {
			return nil, fmt.Errorf("read river_job: %w", err)
		}
		if by != "" {
			j.attemptedBy = strings.Split(by, ",")
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster run: starts three service processes")
	}
	began := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pgURL := freshSchema(t, ctx)
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	t.Logf("cluster seed %d (replay: go test ./internal/chaos/ -run TestCluster -chaos.seed=%d); race-built service: %v", seed, seed, raceEnabled)
	rng := mrand.New(mrand.NewPCG(uint64(seed), 0x636c7573746572))

	// The test's own store: River's tables and the inbox, read directly.
	st, err := store.Open(ctx, pgURL, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	defer st.Close()
	db := st.DB()

	// h.addr is the balancer's: public_url (Graph's notificationUrl), the
	// Dataverse webhooks and the test's admin calls all go through it.
	h := newHarnessWith(t, ctx, map[string]string{"BOOKINGSYNC_STORE": pgURL})
	cl := &cluster{pids: map[int]string{}}
	for i := range clusterNodes {
		name := fmt.Sprintf("n%d", i+1)
		addr := freeAddr(t)
		dir := filepath.Join(h.dir, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		n := &node{name: name, harness: &harness{t: t, emu: h.emu, dir: dir, addr: addr, cfg: h.cfg, admin: h.admin, key: h.key,
			gc: h.gc, dv: h.dv, http: h.http, logPath: filepath.Join(h.dir, name+".log"),
			env: withEnv(h.env, map[string]string{"BOOKINGSYNC_LISTEN": addr, "BOOKINGSYNC_ADMIN_LISTEN": addr, "BOOKINGSYNC_DATA_DIR": dir})}}
		cl.nodes = append(cl.nodes, n)
		t.Cleanup(func() {
			n.stop()
			if t.Failed() {
				n.printLogTail(t, 150)
			}
		})
	}
	ln, err := net.Listen("tcp", h.addr)
	if err != nil {
		t.Fatalf("balancer: %v", err)
	}
	lb := &http.Server{Handler: &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.Out.URL.Scheme, r.Out.URL.Host = "http", h.addr },
		Transport: cl,
	}}
	go func() { _ = lb.Serve(ln) }()
	defer lb.Close()

	w := newWorld()
	w.observe(h)
	c := &chaos{h: h, w: w, rng: rng, techs: technicians(), now: h.emu.Tenant().Now,
		pending: func(ctx context.Context) (float64, error) {
			n, err := st.CountUnprocessedNotifications(ctx, st.InboxReadDB())
			return float64(n), err
		}}
	if len(c.techs) < clusterTechs {
		t.Fatalf("want %d technicians, the demo tenant has %d", clusterTechs, len(c.techs))
	}
	c.techs = c.techs[:clusterTechs]
	if err := c.seedBookings(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range cl.nodes {
		cl.start(ctx, n)
	}
	for _, tc := range c.techs {
		rec := c.setOptIn(ctx, tc, true)
		rec.at = time.Now()
		w.record(rec)
		if rec.err != nil {
			t.Fatal(rec.err)
		}
	}
	c.waitSubscribed(t, ctx, c.techs)
	if err := c.waitQuiet(ctx, 3*time.Second, 90*time.Second); err != nil {
		t.Fatalf("initial sync: %v", err)
	}
	setupDone := time.Now()

	// Drive: the chaos operations but opt-in toggles (the instances, not
	// the enrolments, are under test); no injected faults but the kill.
	var ops []struct {
		name   string
		weight int
		run    func(ctx context.Context) opRecord
	}
	for _, o := range c.ops() {
		if o.name != "opt_toggle" {
			ops = append(ops, o)
		}
	}
	var (
		killed                *node
		killAt, restartAt     time.Time
		leaderBefore          string
		leaderAfter           string
		electedAt             time.Time
		counts                = map[string]int{}
		failures              = map[string]int{}
		leaderWatch, watchEnd = make(chan struct{}), make(chan struct{})
	)
	for i := 0; time.Since(setupDone) < clusterDrive; i++ {
		if killed == nil && time.Since(setupDone) >= clusterKillAfter {
			leader, err := riverLeader(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			name := cl.nodeOf(riverIDPid, leader)
			for _, n := range cl.nodes {
				if n.name == name {
					killed = n
				}
			}
			if killed == nil {
				t.Fatalf("op %d: the River leader %q is none of the instances", i, leader)
			}
			leaderBefore = leader
			if *flagKillBusy {
				t.Logf("op %d: leader %s runs %s", i, killed.name, waitBusy(ctx, db, leader, 15*time.Second))
			}
			killed.kill()
			killAt = time.Now()
			t.Logf("op %d: killed the River leader %s (%s) with SIGKILL", i, killed.name, leader)
			// Watch for the new leader while the operations go on.
			go func() {
				defer close(watchEnd)
				for {
					id, err := riverLeader(ctx, db)
					if err == nil && id != "" && id != leaderBefore {
						leaderAfter, electedAt = id, time.Now()
						return
					}
					select {
					case <-leaderWatch:
						return
					case <-ctx.Done():
						return
					case <-time.After(200 * time.Millisecond):
					}
				}
			}()
		}
		if killed != nil && restartAt.IsZero() && time.Since(killAt) >= clusterDownFor {
			cl.start(ctx, killed)
			restartAt = time.Now()
			t.Logf("op %d: restarted %s", i, killed.name)
		}
		c.rng = mrand.New(mrand.NewPCG(uint64(seed), uint64(i)))
		k := c.pick(ops)
		opCtx, opCancel := context.WithTimeout(ctx, 60*time.Second)
		rec := ops[k].run(opCtx)
		opCancel()
		rec.at = time.Now()
		w.record(rec)
		counts[rec.kind]++
		if rec.err != nil {
			counts["failed"]++
			failures[rec.kind+": "+errClass(rec.err)]++
		}
		time.Sleep(time.Duration(100+rng.IntN(300)) * time.Millisecond)
	}
	if killed != nil && !killed.running() {
		cl.start(ctx, killed)
		restartAt = time.Now()
	}
	driveDone := time.Now()
	if killed != nil {
		select {
		case <-watchEnd:
		case <-time.After(time.Until(killAt.Add(clusterElectAfter))):
			close(leaderWatch)
			<-watchEnd
		}
	}

	if killed != nil {
		// A kill late in the drive leaves the new leader's first polls
		// after it: wait for them (the check reports them if they never run).
		waited := time.Now()
		ok := waitPollsAfterKill(ctx, db, killAt, killAt.Add(clusterPollsAfter))
		t.Logf("polls enqueued and completed after the kill: %v (waited %s after the drive)", ok, time.Since(waited).Round(time.Millisecond))
	}
	if err := c.waitQuiet(ctx, 6*time.Second, 120*time.Second); err != nil {
		t.Errorf("quiesce: %v", err)
	}
	quiesced := time.Now()
	// What a resync would still repair (dry run: nothing is repaired, the
	// check below sees what the instances left).
	var dry httpapi.ResyncReport
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Minute)
	_, dryErr := h.adminCall(dctx, "POST", "/api/v1/resync?all=1&dry_run=1", &dry)
	dcancel()
	for _, n := range cl.nodes {
		n.stop()
	}
	done := time.Now()

	fs, err := h.readFinal(ctx, c.techs, st)
	if err != nil {
		t.Fatalf("read the final state: %v", err)
	}
	w.mu.Lock()
	allOps := append([]opRecord(nil), w.ops...)
	doubles := append([]string(nil), w.doubles...)
	w.mu.Unlock()
	res, err := h.check(fs, c.techs, allOps)
	if err != nil {
		t.Fatal(err)
	}
	add := func(inv, format string, args ...any) {
		res.violations = append(res.violations, violation{invariant: inv, what: fmt.Sprintf(format, args...)})
	}
	for _, n := range cl.nodes {
		for _, l := range n.logScan() {
			add("0 service log", "%s: %s", n.name, l)
		}
	}
	if pending, _ := st.CountUnprocessedNotifications(ctx, st.InboxReadDB()); pending > 0 {
		add("0 inbox drained", "%d notifications never processed", pending)
	}
	if dryErr != nil {
		add("5 nothing lost", "resync dry run: %v", dryErr)
	}
	for _, it := range dry.Items {
		res.violations = append(res.violations, violation{invariant: "5 nothing lost", booking: strings.ToLower(it.BookingID),
			what: fmt.Sprintf("a resync would still repair it (rule %s): %s %+v", it.Rule, it.Reason, it.Actions)})
	}
	for _, d := range doubles {
		add("6 nothing done twice", "%s", d)
	}

	// The inbox: who processed what.
	inbox := map[string]int{}
	rows, err := st.InboxReadDB().QueryContext(ctx, `SELECT COALESCE(claimed_by, ''), COUNT(*) FROM notifications WHERE processed_at IS NOT NULL GROUP BY 1`)
	if err != nil {
		t.Fatalf("read the inbox: %v", err)
	}
	for rows.Next() {
		var by string
		var n int
		if err := rows.Scan(&by, &n); err != nil {
			t.Fatal(err)
		}
		inbox[cl.nodeOf(ownerPid, by)] += n
	}
	rows.Close()
	// Claimed more than once: by an instance that died (or failed) first.
	var reclaimed int
	if err := st.InboxReadDB().QueryRowContext(ctx, `SELECT COUNT(*) FROM notifications WHERE attempts > 1`).Scan(&reclaimed); err != nil {
		t.Fatalf("read the inbox: %v", err)
	}
	if len(inbox) < 2 {
		add("7 work spread", "notifications were processed by %d instance(s): %v", len(inbox), inbox)
	}

	// River: who ran what; periodic jobs one at a time; continued after the kill.
	jobsRows, err := riverJobs(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	byNode := map[string]int{}
	periodicByNode := map[string]int{}
	kinds := map[string]int{}
	var stranded []string
	strandedKind := map[string]string{}
	afterKill := map[string]int{}
	type span struct {
		from, to time.Time
		node     string
		id       int64
	}
	spans := map[string][]span{}
	longest := map[string]time.Duration{}
	for _, j := range jobsRows {
		kinds[j.kind+"/"+j.state]++
		if len(j.attemptedBy) == 0 {
			continue
		}
		who := cl.nodeOf(riverIDPid, j.attemptedBy[len(j.attemptedBy)-1])
		byNode[who]++
		if periodicKinds[j.kind] {
			periodicByNode[who]++
		}
		if !killAt.IsZero() && j.created.After(killAt) && j.state == "completed" {
			afterKill[j.kind]++
		}
		if j.state == "running" {
			stranded = append(stranded, fmt.Sprintf("%s #%d on %s since %s", j.kind, j.id, who, j.attempted.Time.Format("15:04:05.000")))
			strandedKind[j.kind] = stranded[len(stranded)-1]
		}
		if periodicKinds[j.kind] && j.attempted.Valid && j.final.Valid {
			k := j.kind + " " + j.args
			spans[k] = append(spans[k], span{from: j.attempted.Time, to: j.final.Time, node: who, id: j.id})
			if d := j.final.Time.Sub(j.attempted.Time); d > longest[j.kind] {
				longest[j.kind] = d
			}
		}
	}
	for k, ss := range spans {
		sort.Slice(ss, func(a, b int) bool { return ss[a].from.Before(ss[b].from) })
		for i := 1; i < len(ss); i++ {
			if ss[i].from.Before(ss[i-1].to) {
				add("6 nothing done twice", "periodic job %s ran twice at once: #%d on %s %s–%s and #%d on %s from %s", k,
					ss[i-1].id, ss[i-1].node, ss[i-1].from.Format("15:04:05.000"), ss[i-1].to.Format("15:04:05.000"),
					ss[i].id, ss[i].node, ss[i].from.Format("15:04:05.000"))
			}
		}
	}
	if len(byNode) < 2 {
		add("7 work spread", "River jobs were worked by %d instance(s): %v", len(byNode), byNode)
	}
	if killed != nil {
		if leaderAfter == "" {
			add("8 failover", "no new River leader within %s of killing %s", clusterElectAfter, leaderBefore)
		}
		for _, k := range []string{"poll_bookings", "poll_dataverse"} {
			if afterKill[k] == 0 {
				why := ""
				if s, ok := strandedKind[k]; ok {
					// River's unique states must include running: the job a
					// killed instance left "running" blocks the next one
					// until River rescues it.
					why = "; blocked by " + s + ", left running by the killed instance (unique while running; rescued only after RescueStuckJobsAfter)"
				}
				add("8 failover", "no %s job was enqueued and completed after the leader was killed at %s%s", k, killAt.Format("15:04:05.000"), why)
			}
		}
	}
	for _, s := range stranded {
		res.notes = append(res.notes, "job left running (by a killed instance; River rescues it after RescueStuckJobsAfter): "+s)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "cluster run, seed %d: %d instances on one PostgreSQL database, %d operations\n", seed, clusterNodes, len(allOps))
	fmt.Fprintf(&b, "  time: setup %s, drive %s, quiesce %s, dry run+stop %s, check %s, total %s\n",
		setupDone.Sub(began).Round(time.Millisecond), driveDone.Sub(setupDone).Round(time.Millisecond), quiesced.Sub(driveDone).Round(time.Millisecond),
		done.Sub(quiesced).Round(time.Millisecond), time.Since(done).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	fmt.Fprintf(&b, "  operations: %s\n", sortedCounts(counts))
	fmt.Fprintf(&b, "  failed operations (targets gone or changed meanwhile): %s\n", sortedCounts(failures))
	if killed != nil {
		elected := "never"
		if leaderAfter != "" {
			elected = fmt.Sprintf("%s (%s) %s after the kill", cl.nodeOf(riverIDPid, leaderAfter), leaderAfter, electedAt.Sub(killAt).Round(time.Millisecond))
		}
		fmt.Fprintf(&b, "  leader: %s (%s) killed at +%s, restarted at +%s; new leader %s\n", killed.name, leaderBefore,
			killAt.Sub(setupDone).Round(time.Millisecond), restartAt.Sub(setupDone).Round(time.Millisecond), elected)
	}
	fmt.Fprintf(&b, "  balancer requests: %s\n", cl.servedBy())
	fmt.Fprintf(&b, "  notifications processed: %s (%d claimed more than once)\n", sortedCounts(inbox), reclaimed)
	fmt.Fprintf(&b, "  river jobs worked: %s; periodic ones: %s\n", sortedCounts(byNode), sortedCounts(periodicByNode))
	fmt.Fprintf(&b, "  river jobs by kind/state: %s\n", sortedCounts(kinds))
	fmt.Fprintf(&b, "  enqueued and completed after the kill: %s\n", sortedCounts(afterKill))
	var runs []string
	for k, d := range longest {
		runs = append(runs, fmt.Sprintf("%s %s", k, d.Round(time.Millisecond)))
	}
	sort.Strings(runs)
	fmt.Fprintf(&b, "  longest run of the periodic jobs: %s\n", strings.Join(runs, ", "))
	fmt.Fprintf(&b, "  audit: %s\n", auditCounts(fs.audit))
	fmt.Fprintf(&b, "  resync dry run: %d items planned (%v)\n", len(dry.Items), dry.Counts)
	fmt.Fprintf(&b, "  final: %d bookings must have an event, %d events of ours\n", res.expected, res.ourEvents)
	fmt.Fprintf(&b, "  Outlook moves checked: %d (%d in the booking, %d resolved by the conflict policy %q)\n", res.moves, res.movesKept, res.movesByPol, h.cfg.Sync.Conflict)
	fmt.Fprintf(&b, "  violations: %d\n", len(res.violations))
	t.Log(b.String())
	for _, n := range res.notes {
		t.Logf("note: %s", n)
	}
	for _, v := range res.violations {
		msg := fmt.Sprintf("VIOLATION invariant %s: booking %s: %s", v.invariant, v.booking, v.what)
		if v.booking != "" {
			msg += "\n  operations:\n" + opsOf(allOps, v.booking) + "  audit:\n" + auditOf(fs.audit, v.booking)
		}
		t.Error(msg)
	}
	if len(res.violations) > 0 {
		logOps(t, allOps)
	}
}

// errClass shortens an operation's error for the summary's counts.
func errClass(err error) string {
	m := err.Error()
	for _, k := range []string{"404", "412", "409", "400", "429", "500", "503", "no target"} {
		if strings.Contains(m, k) {
			return k
		}
	}
	if len(m) > 60 {
		m = m[:60]
	}
	return m
}

// waitBusy waits until the client id runs a periodic job and returns its
// kind ("" after timeout).
func waitBusy(ctx context.Context, db *sql.DB, id string, timeout time.Duration) string {
	kinds := make([]string, 0, len(periodicKinds))
	for k := range periodicKinds {
		kinds = append(kinds, "'"+k+"'")
	}
	q := `SELECT kind FROM river_job WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = $1
		AND kind IN (` + strings.Join(kinds, ",") + `) LIMIT 1`
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var kind string
		if err := db.QueryRowContext(ctx, q, id).Scan(&kind); err == nil {
			return kind
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ""
}
