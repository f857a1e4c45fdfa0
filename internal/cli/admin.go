package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bookingsync/bookingsync/internal/httpapi"
)

// adminClient talks to a running service's admin API, so operational
// commands work the same whatever store the service uses.
type adminClient struct {
	base, token string
	http        *http.Client
}

func adminFlags(fs *flag.FlagSet) (cfgPath, adminURL, token *string) {
	cfgPath = fs.String("config", "", "configuration file: the admin address and token are read from it")
	adminURL = fs.String("admin-url", "", "admin API base URL (default http://{admin_listen} from the configuration)")
	token = fs.String("token", "", "admin token (default $BOOKINGSYNC_ADMIN_TOKEN or the configuration's)")
	return
}

func newAdminClient(cfgPath, adminURL, token string, stderr io.Writer) (*adminClient, error) {
	if token == "" {
		token = os.Getenv("BOOKINGSYNC_ADMIN_TOKEN")
	}
	if adminURL == "" || token == "" {
		cfg, err := loadConfig(cfgPath, stderr)
		if err != nil {
			return nil, fmt.Errorf("need --admin-url and --token, or a valid configuration: %w", err)
		}
		if adminURL == "" {
			host := cfg.AdminListen
			if strings.HasPrefix(host, ":") {
				host = "127.0.0.1" + host
			}
			adminURL = "http://" + host
		}
		if token == "" {
			token = cfg.Admin.Token.Reveal()
		}
	}
	return &adminClient{base: strings.TrimRight(adminURL, "/"), token: token, http: &http.Client{Timeout: 2 * time.Minute}}, nil
}

func (c *adminClient) call(ctx context.Context, method, path string, q url.Values, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		return fmt.Errorf("admin API %s %s: HTTP %d: %s", method, path, resp.StatusCode, e.Error)
	}
	return json.Unmarshal(body, out)
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", stderr)
	cfgPath, adminURL, token := adminFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := newAdminClient(*cfgPath, *adminURL, *token, stderr)
	if err != nil {
		return err
	}
	var out struct {
		Resources []httpapi.ResourceStatus `json:"resources"`
		// Conflicts is absent from services that do not record them.
		Conflicts []httpapi.Conflict `json:"conflicts,omitempty"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/v1/status", nil, &out); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	printStatus(stdout, out.Resources)
	printConflictSummary(stdout, out.Conflicts)
	return nil
}

func printStatus(w io.Writer, rows []httpapi.ResourceStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tNAME\tUPN\tOPT-IN\tSUBSCRIPTION\tEXPIRES (UTC)\tSTATUS")
	for _, r := range rows {
		exp := "-"
		if r.Expires != nil {
			exp = r.Expires.UTC().Format("2006-01-02 15:04")
		}
		sub := r.SubscriptionID
		if sub == "" {
			sub = "-"
		}
		status := r.StatusText
		if r.RenewFailures > 0 {
			status += fmt.Sprintf(" [renewal failed %d×: %s]", r.RenewFailures, r.LastError)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ResourceID, r.Name, r.UPN, r.OptIn, sub, exp, status)
	}
	tw.Flush()
	if len(rows) == 0 {
		fmt.Fprintln(w, "no resources known yet (opt one in by setting its opt-in column to Allowed)")
	}
}

func runSubscriptions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usageLine := "usage: bookingsync subscriptions list | renew [--resource R] | delete --resource R   (R: bookableresourceid, UPN or Entra object id)"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usageLine)
		return errUsage
	}
	sub := args[0]
	fs := newFlagSet("subscriptions "+sub, stderr)
	cfgPath, adminURL, token := adminFlags(fs)
	resource := fs.String("resource", "", "the resource: bookableresourceid, UPN or Entra object id")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	c, err := newAdminClient(*cfgPath, *adminURL, *token, stderr)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		var out struct {
			Resources []httpapi.ResourceStatus `json:"resources"`
		}
		if err := c.call(ctx, http.MethodGet, "/api/v1/status", nil, &out); err != nil {
			return err
		}
		var withSub []httpapi.ResourceStatus
		for _, r := range out.Resources {
			if r.SubscriptionID != "" {
				withSub = append(withSub, r)
			}
		}
		printStatus(stdout, withSub)
		return nil
	case "renew":
		var out map[string]int
		if err := c.call(ctx, http.MethodPost, "/api/v1/subscriptions/renew", url.Values{"resource": {*resource}}, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "renewed %d subscription(s)\n", out["renewed"])
		return nil
	case "delete":
		if *resource == "" {
			return errors.New("delete needs --resource")
		}
		var out map[string]int
		if err := c.call(ctx, http.MethodPost, "/api/v1/subscriptions/delete", url.Values{"resource": {*resource}}, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %d subscription(s); the resource stays enrolled until its opt-in column says otherwise\n", out["deleted"])
		return nil
	default:
		fmt.Fprintln(stderr, usageLine)
		return errUsage
	}
}
