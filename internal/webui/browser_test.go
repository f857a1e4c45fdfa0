package webui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	emudv "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	"github.com/bookingsync/bookingsync/internal/sandbox"
	"github.com/bookingsync/bookingsync/internal/store"
)

// chromium finds Debian's chromium (BOOKINGSYNC_TEST_CHROMIUM overrides).
func chromium() string {
	if p := os.Getenv("BOOKINGSYNC_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestBrowserDemo drives the sandbox's live demo in headless Chromium as a
// newcomer would: sign in with the printed token, book a job for an opted-in
// technician and see its event appear in the Outlook column, reschedule the
// booking and see the event move, move the event and see the booking move.
// Screenshots of each step go to t.ArtifactDir() (kept with go test
// -artifacts -outputdir DIR). The whole run is bounded at 60 s.
func TestBrowserDemo(t *testing.T) {
	exe := chromium()
	if exe == "" {
		if ok, _ := strconv.ParseBool(os.Getenv("BOOKINGSYNC_TEST_BROWSER_REQUIRED")); ok {
			t.Fatal("chromium is not installed and BOOKINGSYNC_TEST_BROWSER_REQUIRED is set")
		}
		t.Skip("chromium is not installed (apt-get install chromium); set BOOKINGSYNC_TEST_BROWSER_REQUIRED=true to fail instead")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The browser starts while the sandbox does (both take seconds).
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, 1600),
		chromedp.UserDataDir(t.TempDir()))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer bcancel()
	browser := make(chan error, 1)
	go func() { browser <- chromedp.Do(bctx) }()

	sb := startSandbox(t, true)
	// The first demo technician starts with an empty calendar week (the
	// others keep the demo data), so the run stays well inside its bound on
	// a busy CI machine, and is opted in as an admin would in Dynamics 365
	// (the page offers the same button) while the browser comes up.
	t.Cleanup(func() { dumpOnFailure(t, sb) })
	res := strings.ToLower(emudv.ResourceID(tenant.Technicians()[0].ID))
	dv := sb.Service.Dataverse
	seeded, err := dataverse.ListAll[dataverse.Booking](ctx, dv, dataverse.SetBookings,
		dataverse.Query{Select: []string{"bookableresourcebookingid"}, Filter: dataverse.Eq("_resource_value", dataverse.GUID(res))})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range seeded {
		if err := dv.Delete(ctx, dataverse.SetBookings, b.ID, "*"); err != nil {
			t.Fatal(err)
		}
	}
	if err := dv.Update(ctx, dataverse.SetResources, res,
		map[string]any{sb.Config.Dataverse.OptInColumn: sb.Config.Dataverse.OptInAllowed}, "*"); err != nil {
		t.Fatal(err)
	}
	if err := <-browser; err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Logf("sandbox and chromium up after %v", time.Since(start).Round(time.Millisecond))

	dir := t.ArtifactDir()
	n := 0
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			n++
			p := filepath.Join(dir, fmt.Sprintf("%02d-%s.png", n, name))
			t.Logf("screenshot %s", p)
			return os.WriteFile(p, png, 0o644)
		})
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		defer func(s time.Time) {
			t.Logf("%-36s %6v (at %v)", what, time.Since(s).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		}(time.Now())
		if err := chromedp.Do(bctx, actions...); err != nil {
			_ = chromedp.Do(bctx, shot("failed-"+strings.ReplaceAll(what, " ", "-")))
			if board, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(document.querySelector(".tech")||{}).outerHTML||""`)); err == nil {
				t.Logf("first technician on the page: %s", board)
			}
			t.Fatalf("%s: %v (after %v)", what, err, time.Since(start).Round(time.Millisecond))
		}
	}
	eval := func(what, expr string, out any) {
		t.Helper()
		raw, err := chromedp.Run(bctx, chromedp.Evaluate[[]byte](expr))
		if err == nil {
			err = json.Unmarshal(raw, out)
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// poll waits until a JS expression is true on whatever page is loaded
	// (a form's POST navigates; the expression is evaluated again after it).
	poll := func(what, expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			for {
				if ok, err := chromedp.Evaluate[bool](expr)(ctx, tg); err == nil && ok {
					return nil
				}
				// Leave the last seconds of the bound for the failure report.
				if time.Since(start) > 52*time.Second {
					return fmt.Errorf("waiting for %s: timed out", what)
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	// act clicks a demo button and waits for the page the POST leads to.
	act := func(what, sel string) {
		t.Helper()
		run(what,
			chromedp.Evaluate[chromedp.Void](`document.getElementById("flash").remove()`),
			chromedp.Click(chromedp.CSS(sel)),
			chromedp.WaitVisible(chromedp.CSS(`#flash span`)))
		var errText string
		eval(what, `(document.querySelector("#flash .error")||{}).textContent||""`, &errText)
		if errText != "" {
			t.Fatalf("%s: the demo says %q", what, errText)
		}
	}

	// Sign in with the admin token the sandbox printed.
	run("sign in",
		chromedp.Navigate(sb.UIURL()+"demo"),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		shot("login"),
		chromedp.SendKeys(chromedp.CSS(`#token`), sb.AdminToken),
		chromedp.Click(chromedp.CSS(`#login`)),
		chromedp.WaitVisible(chromedp.CSS(`section.tech`)))

	tech := `#tech-` + res
	var optedIn string
	eval("opt-in state", `document.querySelector("`+tech+`").dataset.optedIn`, &optedIn)
	if optedIn != "true" {
		act("opt in", tech+` button[value=opt_in]`)
	}
	run("subscribed", poll("the technician's subscription", `(() => {
		const s = document.querySelector("`+tech+`");
		return !!s && s.dataset.optedIn === "true" && /Subscribed until/.test(s.querySelector(".status")?.textContent || "");
	})()`))

	// The dispatcher books a job: it appears in the calendar.
	act("new booking", tech+` button[value=create]`)
	var booking struct {
		ID    string `json:"id"`
		Start string `json:"start"`
	}
	newJob := `[...document.querySelectorAll("` + tech + ` li.booking")].find(b => b.querySelector("b").textContent.startsWith("Demo job"))`
	run("the new booking's event", poll("the new booking and its event", `(() => { const b = `+newJob+`;
		return !!b && !!document.querySelector('`+tech+` li.event[data-booking="' + b.dataset.id + '"]'); })()`), shot("booking-created"))
	t.Logf("new booking in Outlook after %v", time.Since(start).Round(time.Millisecond))
	eval("the new booking", `(() => { const b = `+newJob+`; return {id: b.dataset.id, start: b.dataset.start}; })()`, &booking)

	// The dispatcher reschedules it: its event moves.
	t0, err := time.Parse(time.RFC3339, booking.Start)
	if err != nil {
		t.Fatal(err)
	}
	bookingSel := tech + ` li.booking[data-id="` + booking.ID + `"]`
	eventSel := tech + ` li.event[data-booking="` + booking.ID + `"]`
	act("reschedule", bookingSel+` button[value=reschedule]`)
	t1 := t0.Add(time.Hour).UTC().Format(time.RFC3339)
	run("event follows the booking", poll("the event at "+t1,
		`(() => { const e = document.querySelector('`+eventSel+`'); return !!e && e.dataset.start === "`+t1+`"; })()`),
		shot("booking-rescheduled"))
	t.Logf("booking rescheduled, event followed after %v", time.Since(start).Round(time.Millisecond))

	// The technician moves the event: the booking moves.
	act("move event", eventSel+` button[value=move]`)
	t2 := t0.Add(90 * time.Minute).UTC().Format(time.RFC3339)
	run("booking follows the event", poll("the booking at "+t2,
		`(() => { const b = document.querySelector('`+bookingSel+`'); const e = document.querySelector('`+eventSel+`');
		  return !!b && !!e && b.dataset.start === "`+t2+`" && e.dataset.start === "`+t2+`"; })()`),
		shot("event-moved"))
	t.Logf("event moved, booking followed after %v", time.Since(start).Round(time.Millisecond))

	// The admin pages, for the artifacts (while the bound leaves time).
	for _, pg := range []string{"", "resources", "activity", "conflicts", "settings"} {
		if d, _ := ctx.Deadline(); time.Until(d) < 10*time.Second {
			break
		}
		run("page /ui/"+pg, chromedp.Navigate(sb.UIURL()+pg), chromedp.WaitVisible(chromedp.CSS(`main h1`)), shot("page-"+cmpOr(pg, "overview")))
	}

	// Dataverse agrees with what the page shows.
	b, err := sb.Service.Dataverse.GetBooking(context.Background(), booking.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.StartTime.UTC().Format(time.RFC3339); got != t2 {
		t.Errorf("booking starts at %s in Dataverse, want %s", got, t2)
	}
}

// dumpOnFailure logs what the service did, so a failed run says why.
func dumpOnFailure(t *testing.T, sb *sandbox.Sandbox) {
	if !t.Failed() {
		return
	}
	ctx := context.Background()
	st := sb.Service.Store
	ents, _ := st.QueryAudit(ctx, st.DB(), store.AuditFilter{Limit: 40})
	for i := len(ents) - 1; i >= 0; i-- {
		e := ents[i]
		t.Logf("audit %s %s %s booking=%s %s → %s %s", e.At.Format("15:04:05.000"), e.Side, e.Action, e.BookingID, e.Reason, e.Outcome, e.Error)
	}
	ns, _ := st.ListUnprocessedNotifications(ctx, st.InboxReadDB(), 40)
	for _, n := range ns {
		t.Logf("unprocessed %s %s %s %.12s…", n.ReceivedAt.Format("15:04:05.000"), n.Source, n.ChangeType, n.ItemID)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
