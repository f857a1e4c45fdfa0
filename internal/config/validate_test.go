package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	goodCert := filepath.Join(dir, "good.pem")
	expiredCert := filepath.Join(dir, "expired.pem")
	notPEM := filepath.Join(dir, "not.pem")
	for name, data := range map[string][]byte{
		goodCert:    testCert(t, time.Now().Add(365*24*time.Hour)),
		expiredCert: testCert(t, time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC)),
		notPEM:      []byte("hello\n"),
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	readCert := func(name string) Secret {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return NewSecret(string(b))
	}
	noCred := func(c *Config) { c.Azure.ClientSecret = Secret{} }

	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string
	}{
		// Top level.
		{"public_url missing", func(c *Config) { c.PublicURL = "" },
			[]string{"public_url: required (the https URL at which Graph and Dataverse reach this service)"}},
		{"public_url http", func(c *Config) { c.PublicURL = "http://sync.example.com" },
			[]string{`public_url: "http://sync.example.com" must use https (http is allowed only for localhost and loopback addresses)`}},
		{"public_url http loopback ok", func(c *Config) { c.PublicURL = "http://127.0.0.1:8080" }, nil},
		{"public_url with path ok", func(c *Config) { c.PublicURL = "https://example.com/bookingsync" }, nil},
		{"public_url relative", func(c *Config) { c.PublicURL = "sync.example.com" },
			[]string{`public_url: "sync.example.com" is not an absolute https URL`}},
		{"public_url query", func(c *Config) { c.PublicURL = "https://sync.example.com/?a=b" },
			[]string{`public_url: "https://sync.example.com/?a=b" must not have a query or fragment`}},
		{"listen not host:port", func(c *Config) { c.Listen = "8080" },
			[]string{`listen: "8080" is not host:port (like :8080 or 127.0.0.1:8081)`}},
		{"listen bad port", func(c *Config) { c.Listen = ":http" },
			[]string{`listen: ":http" has an invalid port (use a number from 0 to 65535)`}},
		{"listen missing", func(c *Config) { c.Listen = "" }, []string{"listen: required"}},
		{"same port", func(c *Config) { c.AdminListen = "127.0.0.1:8080" },
			[]string{`admin_listen: "127.0.0.1:8080" uses the same port as listen ":8080" (use another port, or exactly the same address to serve the admin API on the public listener)`}},
		{"one listener needs a token", func(c *Config) { c.Listen = "127.0.0.1:8080"; c.AdminListen = c.Listen; c.Admin.Token = Secret{} },
			[]string{`admin.token: required when admin_listen equals listen (the admin API is then public) (set BOOKINGSYNC_ADMIN_TOKEN or admin.token_file)`}},
		{"same port other hosts ok", func(c *Config) { c.Listen = "10.0.0.1:8081" }, nil},
		{"admin exposed without token", func(c *Config) { c.AdminListen = ":9090" },
			[]string{"admin.token: required when admin_listen is not a loopback address (set BOOKINGSYNC_ADMIN_TOKEN or admin.token_file)"}},
		{"admin exposed with token", func(c *Config) { c.AdminListen = ":9090"; c.Admin.Token = NewSecret(testToken) }, nil},
		{"admin token short", func(c *Config) { c.Admin.Token = NewSecret("short") },
			[]string{"admin.token: must be at least 16 characters"}},
		{"admin localhost ok", func(c *Config) { c.AdminListen = "localhost:8081" }, nil},
		{"data_dir missing", func(c *Config) { c.DataDir = "" },
			[]string{"data_dir: required (no $XDG_STATE_HOME or $HOME to derive the default from)"}},
		{"store scheme", func(c *Config) { c.Store = "mysql://u:p@h/db" },
			[]string{`store: unsupported scheme "mysql" (use sqlite:PATH, postgres://… or postgresql://…)`}},
		{"store sqlite empty", func(c *Config) { c.Store = "sqlite:" },
			[]string{"store: sqlite: needs a path (like sqlite:/var/lib/bookingsync/bookingsync.db)"}},
		{"store postgres no host", func(c *Config) { c.Store = "postgres://" },
			[]string{"store: is not a valid postgres URL (like postgres://user@host:5432/bookingsync)"}},
		{"store postgres bad does not echo password", func(c *Config) { c.Store = "postgres://u:pa ss%zz@h/db" },
			[]string{"store: is not a valid postgres URL (like postgres://user@host:5432/bookingsync)"}},
		{"store postgres ok", func(c *Config) { c.Store = "postgresql://bs@db.internal:5432/bookingsync?sslmode=require" }, nil},
		{"store postgres socket ok", func(c *Config) { c.Store = "postgres:///bookingsync?host=/run/postgresql" }, nil},
		{"store missing", func(c *Config) { c.Store = "" }, []string{"store: required"}},
		{"log", func(c *Config) { c.Log.Level = "trace"; c.Log.Format = "xml" }, []string{
			`log.level: "trace" is not one of debug, info, warn, error`,
			`log.format: "xml" is not one of json, text`,
		}},

		// Azure.
		{"no credential", noCred, []string{
			"azure: no credential configured (set one of BOOKINGSYNC_AZURE_CLIENT_SECRET, azure.client_secret_file, BOOKINGSYNC_AZURE_CERTIFICATE, azure.certificate_file or azure.managed_identity)",
		}},
		{"two credentials", func(c *Config) { c.Azure.ManagedIdentity = ManagedIdentity{Enabled: true} },
			[]string{"azure: more than one credential configured: client_secret, managed_identity (configure exactly one)"}},
		{"tenant and client required", func(c *Config) { c.Azure.TenantID = ""; c.Azure.ClientID = "" }, []string{
			"azure.tenant_id: required (the directory (tenant) ID of the app registration)",
			"azure.client_id: required (the application (client) ID of the app registration)",
		}},
		{"tenant domain ok", func(c *Config) { c.Azure.TenantID = "contoso.onmicrosoft.com" }, nil},
		{"tenant bad", func(c *Config) { c.Azure.TenantID = "contoso" },
			[]string{`azure.tenant_id: "contoso" is not a tenant id (use the directory (tenant) GUID or a domain like contoso.onmicrosoft.com)`}},
		{"client id bad", func(c *Config) { c.Azure.ClientID = "my-app" },
			[]string{`azure.client_id: "my-app" is not a GUID (the application (client) ID of the app registration)`}},
		{"managed identity alone ok", func(c *Config) {
			noCred(c)
			c.Azure.TenantID, c.Azure.ClientID = "", ""
			c.Azure.ManagedIdentity = ManagedIdentity{Enabled: true, ClientID: testClient}
		}, nil},
		{"certificate ok", func(c *Config) {
			noCred(c)
			c.Azure.CertificateFile, c.Azure.Certificate = goodCert, readCert(goodCert)
		}, nil},
		{"certificate expired", func(c *Config) {
			noCred(c)
			c.Azure.CertificateFile, c.Azure.Certificate = expiredCert, readCert(expiredCert)
		}, []string{"azure.certificate_file: certificate expired on 2020-01-02"}},
		{"certificate password without certificate", func(c *Config) { c.Azure.CertificatePassword = NewSecret("pw") },
			[]string{"azure.certificate_password: set, but no certificate is configured (set BOOKINGSYNC_AZURE_CERTIFICATE or azure.certificate_file)"}},
		{"authority http", func(c *Config) { c.Azure.AuthorityHost = "http://localhost:9999/" },
			[]string{`azure.authority_host: "http://localhost:9999/" must use https (azidentity refuses authority hosts without https)`}},
		{"ca_file missing", func(c *Config) { c.Azure.CAFile = filepath.Join(dir, "nope.pem") },
			[]string{`azure.ca_file: cannot read "` + filepath.Join(dir, "nope.pem") + `": no such file or directory`}},
		{"ca_file not PEM", func(c *Config) { c.Azure.CAFile = notPEM },
			[]string{`azure.ca_file: "` + notPEM + `" contains no PEM certificates`}},
		{"ca_file ok", func(c *Config) { c.Azure.CAFile = goodCert }, nil},

		// Graph.
		{"graph base_url", func(c *Config) { c.Graph.BaseURL = "ftp://graph" },
			[]string{`graph.base_url: "ftp://graph" is not an absolute https URL`}},
		{"graph scope", func(c *Config) { c.Graph.Scope = "https://graph.microsoft.com/Calendars.Read" },
			[]string{`graph.scope: "https://graph.microsoft.com/Calendars.Read" does not end in /.default (app-only tokens use the resource's /.default scope)`}},
		{"lifetime short", func(c *Config) { c.Graph.SubscriptionLifetime = 30 * time.Minute },
			[]string{"graph.subscription_lifetime: 30m is below the minimum 45m"}},
		{"lifetime long", func(c *Config) { c.Graph.SubscriptionLifetime = 10081 * time.Minute },
			[]string{"graph.subscription_lifetime: 10081m is above the maximum 7d"}},
		{"renew fraction zero", func(c *Config) { c.Graph.RenewWhenRemaining = RenewWhen{} },
			[]string{"graph.renew_when_remaining: 0 is not between 0 and 1 (a fraction of graph.subscription_lifetime like 0.5, or a duration like 24h)"}},
		{"renew fraction one", func(c *Config) { c.Graph.RenewWhenRemaining = RenewWhen{Fraction: 1} },
			[]string{"graph.renew_when_remaining: 1 is not between 0 and 1 (a fraction of graph.subscription_lifetime like 0.5, or a duration like 24h)"}},
		{"renew duration ok", func(c *Config) { c.Graph.RenewWhenRemaining = RenewWhen{Duration: 24 * time.Hour} }, nil},
		{"renew duration too long", func(c *Config) { c.Graph.RenewWhenRemaining = RenewWhen{Duration: 7 * 24 * time.Hour} },
			[]string{"graph.renew_when_remaining: 7d is not shorter than graph.subscription_lifetime (10000m)"}},
		{"extended property", func(c *Config) { c.Graph.ExtendedPropertyID = "Integer {66f5a359-4659-4830-9070-00047ec6ac6e} Name x" },
			[]string{`graph.extended_property_id: "Integer {66f5a359-4659-4830-9070-00047ec6ac6e} Name x" is not a String single-value extended property id (use "String {GUID} Name NAME", like "String {9e3413e8-252f-4aeb-b786-be55309c8c60} Name BookingId")`}},
		{"extended property id form ok", func(c *Config) {
			c.Graph.ExtendedPropertyID = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Id 0x8001"
		}, nil},
		{"concurrency", func(c *Config) { c.Graph.MaxConcurrencyPerMailbox = 5 },
			[]string{"graph.max_concurrency_per_mailbox: 5 is outside 1..4 (Graph allows 4 concurrent requests per app and mailbox)"}},

		// Dataverse.
		{"org_url missing", func(c *Config) { c.Dataverse.OrgURL = ""; c.Dataverse.APIBase = ""; c.Dataverse.Scope = "" },
			[]string{"dataverse.org_url: required (the environment URL, like https://contoso.crm.dynamics.com)"}},
		{"org_url path allowed (proxy, emulator)", func(c *Config) { c.Dataverse.OrgURL = "https://proxy.contoso.example/dataverse" }, nil},
		{"api_base http", func(c *Config) { c.Dataverse.APIBase = "http://contoso.crm.dynamics.com/api/data/v9.2" },
			[]string{`dataverse.api_base: "http://contoso.crm.dynamics.com/api/data/v9.2" must use https (http is allowed only for localhost and loopback addresses)`}},
		{"dataverse scope", func(c *Config) { c.Dataverse.Scope = "https://contoso.crm.dynamics.com/user_impersonation" },
			[]string{`dataverse.scope: "https://contoso.crm.dynamics.com/user_impersonation" does not end in /.default (app-only tokens use the resource's /.default scope)`}},
		{"columns", func(c *Config) { c.Dataverse.OptInColumn = "Bsync_OutlookSync"; c.Dataverse.StatusColumn = "" }, []string{
			`dataverse.optin_column: "Bsync_OutlookSync" is not a Dataverse logical name (logical names are lower case, like bsync_outlooksync)`,
			`dataverse.status_column: "" is not a Dataverse logical name (logical names are lower case, like bsync_outlooksync)`,
		}},
		{"optin values equal", func(c *Config) { c.Dataverse.OptInNotAllowed = c.Dataverse.OptInAllowed },
			[]string{"dataverse.optin_not_allowed: 100000000 equals dataverse.optin_allowed"}},
		{"webhook key missing", func(c *Config) { c.Dataverse.WebhookKey = Secret{} },
			[]string{"dataverse.webhook_key: required (set BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY or dataverse.webhook_key_file)"}},
		{"webhook key short", func(c *Config) { c.Dataverse.WebhookKey = NewSecret("abc") },
			[]string{"dataverse.webhook_key: must be at least 16 characters"}},
		{"webhook header", func(c *Config) { c.Dataverse.WebhookKeyHeader = "x key" },
			[]string{`dataverse.webhook_key_header: "x key" is not an HTTP header name`}},
		{"poll intervals", func(c *Config) {
			c.Dataverse.PollInterval = time.Second
			c.Dataverse.OptInPollInterval = 48 * time.Hour
		}, []string{
			"dataverse.poll_interval: 1s is below the minimum 5s",
			"dataverse.optin_poll_interval: 2d is above the maximum 1d",
		}},

		{"max body", func(c *Config) { c.Notifications.MaxBodyBytes = 10 },
			[]string{"notifications.max_body_bytes: 10 is outside 1024..67108864 (the default is 1048576 (1 MiB))"}},

		// Sync.
		{"windows", func(c *Config) { c.Sync.WindowPast = -time.Hour; c.Sync.WindowFuture = 0 }, []string{
			"sync.window_past: -1h is below the minimum 0s",
			"sync.window_future: 0s is below the minimum 1h",
		}},
		{"enums", func(c *Config) {
			c.Sync.OnCancel, c.Sync.EventTimeZone = "keep", "local"
			c.Sync.OnOutlookDelete, c.Sync.OnOutlookCreate = "ignore", "import"
		}, []string{
			`sync.on_cancel: "keep" is not one of delete, mark`,
			`sync.event_time_zone: "local" is not one of utc, resource`,
			`sync.on_outlook_delete: "ignore" is not one of cancel_booking, recreate_event, unlink`,
			`sync.on_outlook_create: "import" is not one of ignore, create_booking`,
		}},
		{"conflict", func(c *Config) { c.Sync.Conflict = "newst_wins" },
			[]string{`sync.conflict: "newst_wins" is not one of d365_wins, outlook_wins, newest_wins, manual`}},
		{"template syntax", func(c *Config) { c.Sync.Templates.Subject = "{{.Booking.Name" },
			[]string{`sync.templates.subject: template: subject:1: unclosed action`}},
		{"template field", func(c *Config) { c.Sync.Templates.Location = "{{.Booking.Adress}}" },
			[]string{`sync.templates.location: template: location:1:10: executing "location" at <.Booking.Adress>: can't evaluate field Adress in type config.BookingData (see TemplateData in docs/config.md for the fields)`}},
		{"template nil work order", func(c *Config) { c.Sync.Templates.Body = "{{.WorkOrder.Number}}" },
			[]string{`sync.templates.body: template: body:1:12: executing "body" at <.WorkOrder.Number>: nil pointer evaluating *config.WorkOrderData.Number (see TemplateData in docs/config.md for the fields)`}},
		{"outlook_may_change", func(c *Config) { c.Sync.OutlookMayChange = []string{"start", "subject", "start"} }, []string{
			`sync.outlook_may_change: "subject" is not one of start, end`,
			`sync.outlook_may_change: "start" is listed twice`,
		}},
		{"outlook_may_change empty ok", func(c *Config) { c.Sync.OutlookMayChange = nil }, nil},
		{"private name empty", func(c *Config) { c.Sync.PrivateBookingName = "" },
			[]string{"sync.private_booking_name: required"}},
		{"private name long", func(c *Config) { c.Sync.PrivateBookingName = strings.Repeat("x", 101) },
			[]string{"sync.private_booking_name: is 101 characters long; booking names hold at most 100"}},
		{"catchup", func(c *Config) { c.Sync.CatchupInterval = 0; c.Sync.CatchupAfterDowntime = 8 * 24 * time.Hour }, []string{
			"sync.catchup_interval: 0s is below the minimum 1m",
			"sync.catchup_after_downtime: 8d is above the maximum 7d",
		}},
		{"mass delete", func(c *Config) { c.Sync.MassDelete.MaxItems = 0; c.Sync.MassDelete.MaxFraction = 1.5 }, []string{
			"sync.mass_delete.max_items: 0 is below the minimum 1 (use sync.mass_delete.disable_deletes to stop all deletes)",
			"sync.mass_delete.max_fraction: 1.5 is not in (0, 1] (like 0.10 for 10%)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig(t)
			tt.mutate(c)
			got := problemStrings(t, c.Validate())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateCertificateParseError(t *testing.T) {
	c := validConfig(t)
	c.Azure.ClientSecret = Secret{}
	c.Azure.Certificate = NewSecret("not a certificate")
	got := problemStrings(t, c.Validate())
	if len(got) != 1 || !strings.HasPrefix(got[0], "azure.certificate: cannot parse certificate: ") ||
		!strings.HasSuffix(got[0], "(no PEM block found; BOOKINGSYNC_AZURE_CERTIFICATE takes the PEM text itself, with CERTIFICATE and unencrypted PRIVATE KEY blocks; for a file path or a PFX use azure.certificate_file)") {
		t.Errorf("problems = %q", got)
	}
}

func TestValidateReportsAllProblemsAtOnce(t *testing.T) {
	c := &Config{}
	err := c.Validate()
	got := problemStrings(t, err)
	if len(got) < 20 {
		t.Fatalf("want every problem of an empty config, got %d:\n%v", len(got), err)
	}
	if !strings.Contains(err.Error(), "\nazure.tenant_id: required (the directory (tenant) ID of the app registration)\n") {
		t.Errorf("message lacks the tenant_id line:\n%v", err)
	}
	var p Problem
	if !errors.As(err, &p) || p.Key != "public_url" {
		t.Errorf("errors.As(Problem) = %+v", p)
	}
}

func TestWarnings(t *testing.T) {
	c := validConfig(t)
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("default warnings = %q", w)
	}
	c.AdminListen = "0.0.0.0:8081"
	c.Graph.SubscriptionLifetime = 10080 * time.Minute
	want := []string{
		`admin_listen: "0.0.0.0:8081" is not a loopback address; the admin UI and metrics are reachable from the network`,
		"graph.subscription_lifetime: 7d is above 10070m, which Graph has been seen to reject",
	}
	if diff := cmp.Diff(want, c.Warnings()); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}
