package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/httpapi"
	"github.com/bookingsync/bookingsync/internal/service"
	"github.com/bookingsync/bookingsync/internal/store"
)

// Faults and settings of the chaos phase (issue 7): 20 % 429s with
// Retry-After, 5 % 5xx, 30 % dropped notifications, duplicates and
// reordering on Graph; the same rates on Dataverse (its webhooks dropped
// instead of notifications); delta and change-tracking tokens that expire
// within the run; notification retries that give up within seconds, so a
// killed service really loses what Graph sent while it was down.
var (
	chaosFaults = map[string]any{
		"graph": map[string]any{"throttle_rate": 0.2, "error_rate": 0.05, "drop_notifications_rate": 0.3,
			"duplicate_notifications_rate": 0.1, "reorder_notifications": true},
		"dataverse": map[string]any{"throttle_rate": 0.2, "error_rate": 0.05, "drop_webhooks_rate": 0.3},
	}
	// Writes applied whose response is lost (504), if the emulator has the fault.
	loseResponses = map[string]any{"graph": map[string]any{"lose_response_rate": 0.02}}
	chaosSettings = map[string]any{
		"graph": map[string]any{"delta_token_lifetime_s": 20, "retry_after_s": 1, "notification_delay_ms": 100,
			"notification_backoff_ms": 200, "notification_backoff_max_ms": 2000, "notification_retry_window_s": 10},
		"dataverse": map[string]any{"throttle_retry_after_s": 1, "change_tracking_day_s": 2},
	}
)

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run: starts the service as a process and runs for minutes")
	}
	began := time.Now()
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	nops, nkills := 150, 5
	if *flagLong {
		nops, nkills = 1000, 20
	}
	if *flagOps > 0 {
		nops = *flagOps
	}
	if *flagKills > 0 {
		nkills = *flagKills
	}
	t.Logf("chaos seed %d (replay: go test ./internal/chaos/ -run TestChaos -chaos.seed=%d -chaos.ops=%d -chaos.kills=%d); race-built service: %v",
		seed, seed, nops, nkills, raceEnabled)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6368616f73))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := newHarness(t, ctx)
	w := newWorld()
	w.observe(h)
	c := &chaos{h: h, w: w, rng: rng, techs: technicians(), now: h.emu.Tenant().Now}
	if err := c.seedBookings(ctx); err != nil {
		t.Fatal(err)
	}
	h.start(ctx)

	// All technicians but one opt in; the calendars fill before the chaos.
	for _, tc := range c.techs[:len(c.techs)-1] {
		rec := c.setOptIn(ctx, tc, true)
		rec.at = time.Now()
		w.record(rec)
		if rec.err != nil {
			t.Fatal(rec.err)
		}
	}
	c.waitSubscribed(t, ctx, c.techs[:len(c.techs)-1])
	if err := c.waitQuiet(ctx, 3*time.Second, 60*time.Second); err != nil {
		t.Fatalf("initial sync: %v", err)
	}
	setupDone := time.Now()

	// Chaos.
	if err := h.control("POST", "/_emulator/settings", chaosSettings, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.control("POST", "/_emulator/faults", chaosFaults, nil); err != nil {
		t.Fatal(err)
	}
	lostResponses := h.control("POST", "/_emulator/faults", loseResponses, nil) == nil
	statsBefore := h.emu.Stats()
	ops := c.ops()
	kills := killPlan(rng, nops, nkills)
	restartAt := -1
	counts := map[string]int{}
	for i := 0; i < nops; i++ {
		if len(kills) > 0 && kills[0] == i {
			kills = kills[1:]
			if !h.running() {
				h.start(ctx) // still down from the last kill: up, then down again
			}
			// A random moment: the service is mid-way through whatever
			// the last operations caused.
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			h.kill()
			restartAt = i + rng.IntN(6) // down for 0–5 operations
			t.Logf("op %d: service killed (SIGKILL #%d), restart after op %d", i, h.kills, restartAt)
		}
		if !h.running() && i >= restartAt {
			h.start(ctx)
		}
		// Each operation draws from its own stream (seed, i), so a retry
		// picks the same target and the choices of one operation do not
		// shift those of the next.
		c.rng = rand.New(rand.NewPCG(uint64(seed), uint64(i)))
		k := c.pick(ops)
		opCtx, opCancel := context.WithTimeout(ctx, 60*time.Second)
		rec := ops[k].run(opCtx)
		for try := 0; try < 3 && injected(rec.err); try++ {
			// An injected 5xx happens before the emulator applies the
			// write: trying again is safe (a person would, too).
			c.rng = rand.New(rand.NewPCG(uint64(seed), uint64(i)))
			c.pick(ops)
			rec = ops[k].run(opCtx)
		}
		opCancel()
		rec.at = time.Now()
		w.record(rec)
		counts[rec.kind]++
		if rec.err != nil {
			counts["failed"]++
		}
		time.Sleep(time.Duration(50+rng.IntN(350)) * time.Millisecond)
	}
	if !h.running() {
		h.start(ctx)
	}
	chaosDone := time.Now()
	statsChaos := h.emu.Stats()

	// Quiesce: faults off, the inbox drained, nothing written for a while.
	if err := h.control("POST", "/_emulator/faults", map[string]any{"graph": map[string]any{}, "dataverse": map[string]any{}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.waitQuiet(ctx, 6*time.Second, 180*time.Second); err != nil {
		t.Errorf("quiesce after the chaos: %v", err)
	}
	quiesced := time.Now()

	// Catch-up: the three-way resync of every enrolled resource.
	catchup := "POST /api/v1/resync?all=1"
	var rep httpapi.ResyncReport
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Minute)
	status, err := h.adminCall(rctx, "POST", "/api/v1/resync?all=1", &rep)
	rcancel()
	if status == 404 || status == 405 {
		// No resync in this build: restart, so the after-downtime
		// catch-up, the window pass and the change-tracking poll run.
		catchup = "restart (after-downtime catch-up, window pass, poll)"
		h.stop()
		time.Sleep(6 * time.Second) // longer than sync.catchup_after_downtime
		h.start(ctx)
	} else if err != nil {
		t.Errorf("resync: %v", err)
	}
	if err := c.waitQuiet(ctx, 6*time.Second, 180*time.Second); err != nil {
		t.Errorf("quiesce after the catch-up: %v", err)
	}
	// After a repair the plan must be empty: a dry run says so.
	var dry httpapi.ResyncReport
	if status == 200 {
		dctx, dcancel := context.WithTimeout(ctx, 3*time.Minute)
		if _, err := h.adminCall(dctx, "POST", "/api/v1/resync?all=1&dry_run=1", &dry); err != nil {
			t.Errorf("resync dry run: %v", err)
		}
		dcancel()
	}
	h.stop()
	done := time.Now()

	// The store, read after the service stopped.
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(h.dir, "bookingsync.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("open the service's store: %v", err)
	}
	defer st.Close()
	held, _ := st.ListGuardPasses(ctx, st.DB(), store.GuardPassFilter{Limit: 1000})
	pending, _ := st.CountUnprocessedNotifications(ctx, st.InboxReadDB())
	dead, _ := st.ListDeadNotifications(ctx, st.InboxReadDB(), 1000)

	fs, err := h.readFinal(ctx, c.techs, st)
	if err != nil {
		t.Fatalf("read the final state: %v", err)
	}
	w.mu.Lock()
	allOps := append([]opRecord(nil), w.ops...)
	w.mu.Unlock()
	res, err := h.check(fs, c.techs, allOps)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range h.logScan() {
		res.violations = append(res.violations, violation{invariant: "0 service log", what: l})
	}
	if pending > 0 {
		res.violations = append(res.violations, violation{invariant: "0 inbox drained", what: fmt.Sprintf("%d notifications never processed", pending)})
	}
	for _, n := range dead {
		res.notes = append(res.notes, fmt.Sprintf("dead notification %d %s %s %s: %s", n.ID, n.Source, n.ChangeType, n.ItemID, n.LastError))
	}

	// Counts.
	var b strings.Builder
	fmt.Fprintf(&b, "chaos run, seed %d: %d operations, %d kills, %d service starts, catch-up by %s\n", seed, nops, h.kills, h.starts, catchup)
	fmt.Fprintf(&b, "  time: setup %s, chaos %s, quiesce %s, catch-up+quiesce %s, check %s, total %s\n",
		setupDone.Sub(began).Round(time.Millisecond), chaosDone.Sub(setupDone).Round(time.Millisecond), quiesced.Sub(chaosDone).Round(time.Millisecond),
		done.Sub(quiesced).Round(time.Millisecond), time.Since(done).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	fmt.Fprintf(&b, "  operations: %s\n", sortedCounts(counts))
	fmt.Fprintf(&b, "  faults injected (emulator): %s\n", faultCounts(statsBefore, statsChaos, lostResponses))
	fmt.Fprintf(&b, "  audit: %s\n", auditCounts(fs.audit))
	cu := catchupCounts(fs.audit)
	fmt.Fprintf(&b, "  catch-ups (audit catch_up): %d runs (%d full rounds, %d failed), %d repairs, %d writes\n", cu.runs, cu.full, cu.failed, cu.repairs, cu.writes)
	if status == 200 {
		fmt.Fprintf(&b, "  resync: %d bookings, %d events, %d links compared; %d evaluated, %d in sync; %d repairs, %d writes, %d errors; counts %v rules %v\n",
			rep.Bookings, rep.Events, rep.Links, rep.Evaluated, rep.InSync, rep.Repairs, rep.Writes, rep.Errors, rep.Counts, rep.Rules)
		fmt.Fprintf(&b, "  resync dry run afterwards: %d items planned (%v)\n", len(dry.Items), dry.Counts)
		if len(dry.Items) > 0 {
			for _, it := range dry.Items {
				res.notes = append(res.notes, fmt.Sprintf("dry run after repair still plans: booking %s rule %s: %s %+v", it.BookingID, it.Rule, it.Reason, it.Actions))
			}
		}
	}
	nHeld := 0
	for _, p := range held {
		if p.Status == store.GuardHeld {
			nHeld++
		}
	}
	fmt.Fprintf(&b, "  mass-delete guard: %d passes recorded, %d still held (no approve command in this build)\n", len(held), nHeld)
	fmt.Fprintf(&b, "  inbox: %d pending, %d dead\n", pending, len(dead))
	fmt.Fprintf(&b, "  final: %d bookings must have an event, %d events of ours in opted-in mailboxes, %d left in opted-out mailboxes (D6)\n",
		res.expected, res.ourEvents, res.leftovers)
	fmt.Fprintf(&b, "  Outlook moves checked: %d (%d in the booking, %d resolved by the conflict policy %q)\n", res.moves, res.movesKept, res.movesByPol, h.cfg.Sync.Conflict)
	fmt.Fprintf(&b, "  violations: %d\n", len(res.violations))
	t.Log(b.String())
	for _, n := range res.notes {
		t.Logf("note: %s", n)
	}
	if len(res.violations) > 0 {
		for _, v := range res.violations {
			msg := fmt.Sprintf("VIOLATION invariant %s: booking %s: %s", v.invariant, v.booking, v.what)
			if v.booking != "" && !strings.Contains(v.what, "audit:") {
				msg += "\n  operations:\n" + opsOf(allOps, v.booking) + "  audit:\n" + auditOf(fs.audit, v.booking)
			}
			if l, ok := fs.links[v.booking]; ok {
				msg += fmt.Sprintf("  link: mailbox=%s event=%s agreed %s–%s detached=%v\n", short(l.Mailbox), short(l.EventID),
					l.AgreedStart.Format(time.RFC3339), l.AgreedEnd.Format(time.RFC3339), l.Detached)
			}
			t.Error(msg)
		}
		logOps(t, allOps)
	} else if testing.Verbose() {
		logOps(t, allOps)
	}
}

// waitSubscribed waits until the service reports a subscription for each.
func (c *chaos) waitSubscribed(t *testing.T, ctx context.Context, techs []tech) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var out struct {
			Resources []httpapi.ResourceStatus `json:"resources"`
		}
		_, err := c.h.adminCall(ctx, "GET", "/api/v1/status", &out)
		ok := err == nil
		if ok {
			subscribed := map[string]bool{}
			for _, r := range out.Resources {
				if r.SubscriptionID != "" {
					subscribed[strings.ToLower(r.ResourceID)] = true
				}
			}
			for _, tc := range techs {
				ok = ok && subscribed[tc.resource]
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("technicians not subscribed after 60s: %v %+v", err, out.Resources)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitQuiet waits until the service's inbox is empty and neither side was
// written nor notified anyone for quiet.
func (c *chaos) waitQuiet(ctx context.Context, quiet, timeout time.Duration) error {
	began := time.Now()
	deadline := began.Add(timeout)
	var sig, why string
	changed := time.Now()
	lastLog := time.Now()
	for {
		_, writes := c.w.quietSince()
		s := c.h.emu.Stats()
		cur := fmt.Sprintf("writes=%d notifications=%v/%v webhooks=%v/%v", writes, s["notifications_sent"], s["notification_retries"], s["webhooks_sent"], s["webhook_retries"])
		if cur != sig {
			sig, why, changed = cur, cur, time.Now()
		}
		var pending float64
		var err error
		if c.pending != nil {
			pending, err = c.pending(ctx)
		} else {
			pending, err = c.h.metric(ctx, "bookingsync_inbox_pending")
		}
		if err == nil && pending == 0 && time.Since(changed) >= quiet {
			c.h.t.Logf("quiet after %s (%s)", time.Since(began).Round(time.Millisecond), why)
			return nil
		}
		if time.Since(lastLog) > 10*time.Second {
			c.h.t.Logf("waiting for quiet: inbox pending %v (%v), last change %s ago: %s", pending, err, time.Since(changed).Round(time.Millisecond), why)
			lastLog = time.Now()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not quiet after %s: inbox pending %v (%v), last change %s ago", timeout, pending, err, time.Since(changed).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// injected reports an error the emulator injected (error_rate) or a
// throttle our retries gave up on.
func injected(err error) bool {
	if err == nil {
		return false
	}
	m := err.Error()
	return strings.Contains(m, "0x80040216") || strings.Contains(m, "generalException") || strings.Contains(m, " 429 ")
}

func sortedCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func num(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int:
		return int64(x)
	case float64:
		return int64(x)
	}
	return 0
}

func routeTotal(v any) int64 {
	var n int64
	switch m := v.(type) {
	case map[string]int64:
		for _, x := range m {
			n += x
		}
	}
	return n
}

// faultCounts is what the emulator counted during the chaos phase.
func faultCounts(before, after map[string]any, lost bool) string {
	d := func(k string) int64 { return num(after[k]) - num(before[k]) }
	s := fmt.Sprintf("graph: %d requests, %d throttled (429), %d injected 5xx, %d notifications sent, %d dropped, %d duplicated, %d retried",
		routeTotal(after["graph"])-routeTotal(before["graph"]), d("graph_throttled_requests"), d("graph_injected_errors"),
		d("notifications_sent"), d("notifications_dropped"), d("notifications_duplicated"), d("notification_retries"))
	if lost {
		s += fmt.Sprintf(", %d responses lost", d("graph_lost_responses"))
	}
	s += fmt.Sprintf("; dataverse: %d requests (429/5xx at 20 %%/5 %%, not counted by the emulator), %d webhooks sent, %d dropped, %d retried, %d failed",
		routeTotal(after["dataverse"])-routeTotal(before["dataverse"]), d("webhooks_sent"), d("webhooks_dropped"), d("webhook_retries"), d("webhooks_failed"))
	return s
}

func auditCounts(audit []store.AuditEntry) string {
	m := map[string]int{}
	for _, a := range audit {
		k := a.Action
		if a.Outcome != "ok" {
			k += "(" + a.Outcome + ")"
		}
		m[k]++
	}
	return sortedCounts(m)
}

type catchupTotals struct{ runs, full, failed, repairs, writes int }

func catchupCounts(audit []store.AuditEntry) catchupTotals {
	var c catchupTotals
	for _, a := range audit {
		if a.Action != "catch_up" {
			continue
		}
		c.runs++
		if a.Outcome != "ok" {
			c.failed++
		}
		var r service.CatchupReport
		if json.Unmarshal(a.After, &r) == nil {
			c.repairs += r.Repairs
			c.writes += r.Writes
			if r.Full {
				c.full++
			}
		}
	}
	return c
}
