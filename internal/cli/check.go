package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/bookingsync/bookingsync/internal/config"
	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/service"
)

// Check statuses. INFO lines are facts the check cannot turn into a
// verdict; only FAIL makes `bookingsync check` exit non-zero.
const (
	checkPass = "PASS"
	checkWarn = "WARN"
	checkFail = "FAIL"
	checkInfo = "INFO"
)

// CheckResult is one line of `bookingsync check`.
type CheckResult struct {
	Status, Name, Detail string
}

// checker collects and prints results as they come.
type checker struct {
	w       io.Writer
	results []CheckResult
}

func (c *checker) add(status, name, format string, args ...any) {
	r := CheckResult{Status: status, Name: name, Detail: fmt.Sprintf(format, args...)}
	c.results = append(c.results, r)
	fmt.Fprintf(c.w, "%-4s  %-22s %s\n", r.Status, r.Name, r.Detail)
}

func (c *checker) failed() int {
	n := 0
	for _, r := range c.results {
		if r.Status == checkFail {
			n++
		}
	}
	return n
}

// CheckOptions tune Check.
type CheckOptions struct {
	// Mailbox is a technician (UPN or Entra object id) whose calendar is
	// read to prove Graph access; "" means the first opted-in resource's.
	Mailbox string
	// Timeout bounds each probe (default 30s).
	Timeout time.Duration
}

// Check runs every check against a loaded configuration and returns the
// results; it prints each line to w as it goes.
func Check(ctx context.Context, cfg *config.Config, warnings []string, cl *service.APIClients, o CheckOptions, w io.Writer) []CheckResult {
	c := &checker{w: w}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	probe := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, o.Timeout) }

	c.add(checkPass, "configuration", "valid (credential: %s, store: %s)", cfg.Azure.CredentialKind(), cfg.StoreKind())
	for _, warn := range warnings {
		c.add(checkWarn, "configuration", "%s", warn)
	}

	// Tokens.
	graphToken := ""
	for _, t := range []struct{ name, scope string }{{"graph token", cfg.Graph.Scope}, {"dataverse token", cfg.DataverseScope()}} {
		pctx, cancel := probe()
		tok, err := cl.Credential.GetToken(pctx, policy.TokenRequestOptions{Scopes: []string{t.scope}})
		cancel()
		if err != nil {
			c.add(checkFail, t.name, "cannot get a token for %s: %v", t.scope, firstLine(err))
			continue
		}
		c.add(checkPass, t.name, "obtained for %s (expires %s)", t.scope, tok.ExpiresOn.UTC().Format("15:04 UTC"))
		if t.scope == cfg.Graph.Scope {
			graphToken = tok.Token
		}
	}

	// Graph: permission in the token, then real calls.
	if graphToken != "" {
		roles, ok := tokenRoles(graphToken)
		switch {
		case !ok:
			c.add(checkWarn, "graph permission", "the access token is not a readable JWT; cannot list its application permissions")
		case slices.Contains(roles, "Calendars.ReadWrite"):
			c.add(checkPass, "graph permission", "application permission Calendars.ReadWrite granted (roles: %s)", strings.Join(roles, ", "))
		default:
			c.add(checkFail, "graph permission", "the token lacks the application permission Calendars.ReadWrite (roles: %s); add it to the app registration and grant admin consent (docs/setup.md)", orNone(roles))
		}
	}
	pctx, cancel := probe()
	subs, err := cl.Graph.ListSubscriptions(pctx)
	cancel()
	if err != nil {
		c.add(checkFail, "graph", "GET /subscriptions: %v", firstLine(err))
	} else {
		c.add(checkPass, "graph", "reachable at %s; %d subscription(s) of this app", cfg.Graph.BaseURL, len(subs))
	}

	// Dataverse.
	pctx, cancel = probe()
	who, err := cl.Dataverse.WhoAmI(pctx)
	cancel()
	dvOK := err == nil
	if err != nil {
		c.add(checkFail, "dataverse", "WhoAmI at %s: %v", cfg.DataverseAPIBase(), firstLine(err))
	} else {
		c.add(checkPass, "dataverse", "reachable at %s as application user %s", cfg.DataverseAPIBase(), who.UserID)
	}
	var optedIn []optedInUser
	if dvOK {
		checkColumns(ctx, c, cfg, cl.Dataverse, o.Timeout)
		checkWebhooks(ctx, c, cfg, cl.Dataverse, o.Timeout)
		pctx, cancel = probe()
		optedIn, err = optedInUsers(pctx, cfg, cl.Dataverse)
		cancel()
		if err != nil {
			c.add(checkFail, "opted-in resources", "reading bookable resources: %v", firstLine(err))
		}
	}

	// A technician's calendar: proves the permission reaches mailboxes
	// (an application access policy may exclude them).
	mailbox, who2 := o.Mailbox, o.Mailbox
	if mailbox == "" && len(optedIn) > 0 {
		mailbox, who2 = optedIn[0].aadID, optedIn[0].name
	}
	if mailbox == "" {
		c.add(checkInfo, "calendar access", "no resource is opted in yet; pass --mailbox UPN to read one technician's calendar")
	} else {
		pctx, cancel = probe()
		now := time.Now()
		evs, err := cl.Graph.CalendarView(pctx, mailbox, now, now.Add(24*time.Hour))
		cancel()
		var ge *graph.Error
		switch {
		case err == nil:
			c.add(checkPass, "calendar access", "read %s's calendar (%d event(s) in the next 24h)", who2, len(evs))
		case errors.As(err, &ge) && (ge.StatusCode == http.StatusForbidden || ge.Code == "ErrorAccessDenied"):
			c.add(checkFail, "calendar access", "%s's calendar: access denied (%v); is the mailbox in the application access policy's group?", who2, firstLine(err))
		default:
			c.add(checkFail, "calendar access", "%s's calendar: %v", who2, firstLine(err))
		}
	}

	checkHandshake(ctx, c, cfg, cl.HTTP, o.Timeout)

	if dvOK {
		checkCoexistence(ctx, c, cl.Dataverse, optedIn, o.Timeout)
	}
	return c.results
}

func checkColumns(ctx context.Context, c *checker, cfg *config.Config, dv *dataverse.Client, timeout time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	def, err := entityDefinition(pctx, dv, resourceTable)
	if err != nil {
		c.add(checkFail, "columns", "reading the bookableresource definition: %v", firstLine(err))
	} else {
		for _, col := range []struct{ name, want string }{{cfg.Dataverse.OptInColumn, "Picklist"}, {cfg.Dataverse.StatusColumn, "String"}} {
			a := def.Attribute(col.name)
			switch {
			case a == nil:
				c.add(checkFail, "columns", "bookableresource.%s is missing: run `bookingsync dataverse setup`", col.name)
			case a.AttributeType != col.want && !(col.want == "String" && a.AttributeType == "Memo"):
				c.add(checkFail, "columns", "bookableresource.%s is a %s column, expected %s", col.name, a.AttributeType, col.want)
			default:
				c.add(checkPass, "columns", "bookableresource.%s (%s) in place", col.name, a.AttributeType)
			}
		}
	}
	for _, t := range changeTrackedTables {
		m, err := entityDefinition(pctx, dv, t)
		switch {
		case err != nil:
			c.add(checkFail, "change tracking", "reading the %s definition: %v", t, firstLine(err))
		case !m.ChangeTrackingEnabled:
			c.add(checkFail, "change tracking", "off for %s: run `bookingsync dataverse setup`", t)
		default:
			c.add(checkPass, "change tracking", "on for %s", t)
		}
	}
}

func checkWebhooks(ctx context.Context, c *checker, cfg *config.Config, dv *dataverse.Client, timeout time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	want := cfg.DataverseWebhookURL()
	for _, spec := range service.WebhookSpecs(cfg, "unused") {
		var urls []string
		err := dv.List(pctx, dataverse.SetServiceEndpoints, dataverse.Query{Select: []string{"url"},
			Filter: dataverse.And(dataverse.Eq("name", dataverse.String(spec.Name)), dataverse.Eq("contract", dataverse.Int(8)))},
			func(raw json.RawMessage) error {
				var row struct {
					URL string `json:"url"`
				}
				if err := json.Unmarshal(raw, &row); err != nil {
					return err
				}
				urls = append(urls, row.URL)
				return nil
			})
		switch {
		case err != nil:
			c.add(checkWarn, "webhook", "%s: cannot read service endpoints (%v); the app user may lack read on serviceendpoint — fine if registered by an admin", spec.Name, firstLine(err))
		case len(urls) == 0:
			c.add(checkWarn, "webhook", "%s is not registered: run `bookingsync dataverse register-webhook` (until then changes arrive by polling only)", spec.Name)
		case urls[0] != want:
			c.add(checkFail, "webhook", "%s posts to %s, not %s: run `bookingsync dataverse register-webhook` again", spec.Name, urls[0], want)
		default:
			c.add(checkPass, "webhook", "%s registered → %s", spec.Name, want)
		}
	}
}

// checkHandshake plays Graph's validation request against the public URL.
func checkHandshake(ctx context.Context, c *checker, cfg *config.Config, hc *http.Client, timeout time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	token := "bookingsync-check " + base64.RawURLEncoding.EncodeToString(b)
	u := cfg.NotificationURL() + "?validationToken=" + url.QueryEscape(token)
	req, err := http.NewRequestWithContext(pctx, http.MethodPost, u, strings.NewReader(""))
	if err != nil {
		c.add(checkFail, "public url", "%v", err)
		return
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := hc.Do(req)
	if err != nil {
		c.add(checkFail, "public url", "POST %s: %v (is the service running and the reverse proxy forwarding?)", cfg.NotificationURL(), firstLine(err))
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	ct := resp.Header.Get("Content-Type")
	switch {
	case resp.StatusCode != http.StatusOK:
		c.add(checkFail, "public url", "POST %s?validationToken=…: HTTP %d, want 200", cfg.NotificationURL(), resp.StatusCode)
	case !strings.HasPrefix(ct, "text/plain"):
		c.add(checkFail, "public url", "validation answer has Content-Type %q, want text/plain", ct)
	case string(body) != token:
		c.add(checkFail, "public url", "validation answer does not echo the token (got %q)", truncate(string(body), 60))
	default:
		c.add(checkPass, "public url", "%s answers Graph's validation handshake", cfg.NotificationURL())
	}
}

type optedInUser struct{ resourceID, name, userID, aadID string }

// optedInUsers lists opted-in resources with their user's Entra object id.
func optedInUsers(ctx context.Context, cfg *config.Config, dv *dataverse.Client) ([]optedInUser, error) {
	var out []optedInUser
	err := dv.List(ctx, dataverse.SetResources, dataverse.Query{
		Select: []string{"bookableresourceid", "name", "_userid_value"},
		Filter: dataverse.Eq(cfg.Dataverse.OptInColumn, dataverse.Int(int64(cfg.Dataverse.OptInAllowed))),
	}, func(raw json.RawMessage) error {
		var r dataverse.BookableResource
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		if r.UserID != "" {
			out = append(out, optedInUser{resourceID: r.ID, name: r.Name, userID: r.UserID})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		var su dataverse.SystemUser
		if err := dv.Get(ctx, dataverse.SetSystemUsers, out[i].userID, dataverse.Query{Select: dataverse.SystemUserSelect}, &su); err != nil {
			return nil, err
		}
		out[i].aadID = su.AADObjectID
	}
	return out, nil
}

// checkCoexistence looks for Microsoft's own booking → Outlook sync
// (dataverse-api.md §1.7, §8.1, §8.2). Only the organization column is
// documented; the per-user column is known from generated dumps only, and
// the current built-in integration has no documented switch at all.
func checkCoexistence(ctx context.Context, c *checker, dv *dataverse.Client, optedIn []optedInUser, timeout time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var orgFlags []*bool
	err := dv.List(pctx, dataverse.SetOrganizations, dataverse.Query{Select: []string{"isresourcebookingexchangesyncenabled"}},
		func(raw json.RawMessage) error {
			var row struct {
				Enabled *bool `json:"isresourcebookingexchangesyncenabled"`
			}
			if err := json.Unmarshal(raw, &row); err != nil {
				return err
			}
			orgFlags = append(orgFlags, row.Enabled)
			return nil
		})
	switch {
	case err != nil:
		c.add(checkWarn, "coexistence", "cannot read organization.isresourcebookingexchangesyncenabled: %v", firstLine(err))
	case len(orgFlags) == 1 && orgFlags[0] != nil && *orgFlags[0]:
		c.add(checkWarn, "coexistence", "organization.isresourcebookingexchangesyncenabled is true: booking synchronization with Exchange is enabled at organization level; if bookings also reach Outlook that way, technicians get duplicate events — turn it off (System Settings → Synchronization)")
	default:
		c.add(checkPass, "coexistence", "organization.isresourcebookingexchangesyncenabled is false (booking sync with Exchange off at organization level)")
	}

	// Per user: usersettings.isresourcebookingexchangesyncenabled is not in
	// Microsoft's documentation (only seen in generated dumps); read it if
	// the environment has it, say so if not.
	if len(optedIn) > 0 {
		var on []string
		var readErr error
		for _, u := range optedIn {
			var row map[string]any
			err := dv.List(pctx, "usersettingscollection", dataverse.Query{Select: []string{"isresourcebookingexchangesyncenabled"},
				Filter: dataverse.Eq("systemuserid", dataverse.GUID(u.userID))}, func(raw json.RawMessage) error {
				return json.Unmarshal(raw, &row)
			})
			if err != nil {
				readErr = err
				break
			}
			if v, _ := row["isresourcebookingexchangesyncenabled"].(bool); v {
				on = append(on, u.name)
			}
		}
		switch {
		case readErr != nil:
			c.add(checkInfo, "coexistence", "usersettings.isresourcebookingexchangesyncenabled could not be read (%v); it is not a documented column, so this is no verdict", firstLine(readErr))
		case len(on) > 0:
			c.add(checkWarn, "coexistence", "booking sync with Exchange is switched on in the user settings of opted-in %s (usersettings.isresourcebookingexchangesyncenabled, undocumented column)", strings.Join(on, ", "))
		default:
			c.add(checkPass, "coexistence", "usersettings.isresourcebookingexchangesyncenabled is off for all %d opted-in user(s) (undocumented column)", len(optedIn))
		}
	}
	c.add(checkInfo, "coexistence", "Microsoft's current Field Service \"Integrate bookings with Outlook calendars\" runs on server-side synchronization and has no documented setting bookingsync can read: "+
		"if a technician's mailbox syncs Appointments through server-side synchronization, bookings reach Outlook twice. Check the mailboxes of opted-in technicians, and ask Microsoft support to disable the built-in booking sync for this environment (docs/setup.md)")
}

// tokenRoles reads the roles claim of a JWT access token without
// verifying it (the token came straight from the authority).
func tokenRoles(tok string) ([]string, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, false
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, false
	}
	return claims.Roles, true
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return truncate(s, 300)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	path := fs.String("config", "", "YAML configuration file (default $BOOKINGSYNC_CONFIG)")
	mailbox := fs.String("mailbox", "", "technician (UPN or Entra object id) whose calendar to read (default: the first opted-in resource's)")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of each probe")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		*path = os.Getenv(config.EnvConfigFile)
	}
	cfg, warnings, err := config.Load(*path, os.Environ())
	if err != nil {
		c := &checker{w: stdout}
		var cerr *config.Error
		if errors.As(err, &cerr) {
			for _, p := range cerr.Problems {
				c.add(checkFail, "configuration", "%s", p.Error())
			}
		} else {
			c.add(checkFail, "configuration", "%v", err)
		}
		return errors.New("configuration is not valid; nothing else was checked")
	}
	cl, err := service.NewAPIClients(cfg, nil, nil, nil)
	if err != nil {
		fmt.Fprintf(stdout, "%-4s  %-22s %v\n", checkFail, "clients", err)
		return errors.New("cannot build the API clients")
	}
	results := Check(ctx, cfg, warnings, cl, CheckOptions{Mailbox: *mailbox, Timeout: *timeout}, stdout)
	if n := (&checker{results: results}).failed(); n > 0 {
		return fmt.Errorf("%d check(s) failed", n)
	}
	return nil
}
