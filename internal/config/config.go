// Package config loads, validates and redacts the bookingsync configuration:
// a YAML file overlaid by BOOKINGSYNC_* environment variables, with secrets
// taken only from the environment or from *_file keys. docs/config.md is the
// user-facing reference for every key.
package config

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Env var names. EnvPrefix starts every override; EnvConfigFile is not a key:
// the CLI reads it as the default for --config, so Load does not warn about it.
const (
	EnvPrefix     = "BOOKINGSYNC_"
	EnvConfigFile = "BOOKINGSYNC_CONFIG"
)

// ChildEnv is environ without any BOOKINGSYNC_* setting, followed by
// settings: the environment of a `bookingsync serve` started by a bench or
// a test, configured by settings alone whatever the caller's shell has.
func ChildEnv(environ, settings []string) []string {
	env := make([]string, 0, len(environ)+len(settings))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, EnvPrefix) {
			env = append(env, kv)
		}
	}
	return append(env, settings...)
}

// Defaults that later code may want to refer to.
const (
	DefaultListen                   = ":8080"
	DefaultAdminListen              = "127.0.0.1:8081"
	DefaultAuthorityHost            = "https://login.microsoftonline.com/"
	DefaultGraphBaseURL             = "https://graph.microsoft.com/v1.0"
	DefaultGraphScope               = "https://graph.microsoft.com/.default"
	DefaultSubscriptionLifetime     = 10000 * time.Minute
	DefaultExtendedPropertyID       = "String {9e3413e8-252f-4aeb-b786-be55309c8c60} Name BookingId"
	DefaultMaxConcurrencyPerMailbox = 4
	DefaultDataverseAPIPath         = "/api/data/v9.2"
	DefaultOptInColumn              = "bsync_outlooksync"
	DefaultOptInAllowed             = 100000000
	DefaultOptInNotAllowed          = 100000001
	DefaultStatusColumn             = "bsync_outlooksyncstatus"
	DefaultWebhookKeyHeader         = "x-bookingsync-key"
	DefaultMaxBodyBytes             = 1 << 20
	DefaultPrivateBookingName       = "Private appointment"
	DefaultRetentionNotifications   = 7 * 24 * time.Hour
	DefaultRetentionAudit           = 90 * 24 * time.Hour
	DefaultRetentionJobs            = 24 * time.Hour

	// Graph enforces these on Outlook event subscriptions (graph-api.md §1.1, §1.3).
	MinSubscriptionLifetime = 45 * time.Minute
	MaxSubscriptionLifetime = 10080 * time.Minute
	// A live test saw Graph reject anything above 10,070 minutes; we warn.
	SafeSubscriptionLifetime = 10070 * time.Minute
	// Graph allows 4 concurrent requests per app and mailbox (graph-api.md §6.2).
	MaxConcurrencyPerMailboxLimit = 4
)

// Default templates for the Outlook event; see TemplateData for the fields.
const (
	DefaultSubjectTemplate  = `{{with .WorkOrder}}{{.Number}}{{with .Customer}} · {{.}}{{end}}{{with .IncidentType}} · {{.}}{{end}}{{else}}{{.Booking.Name}}{{end}}`
	DefaultLocationTemplate = `{{with .WorkOrder}}{{.Address}}{{end}}`
	DefaultBodyTemplate     = `{{with .WorkOrder}}Work order {{.Number}}{{with .Customer}} for {{.}}{{end}}{{with .IncidentType}} ({{.}}){{end}}
{{with .Summary}}{{.}}
{{end}}{{with .Instructions}}Instructions: {{.}}
{{end}}
{{end}}Booking: {{.Booking.Name}} ({{.Booking.Status}})
Open in Dynamics 365: {{.Booking.URL}}
This event is kept in sync with Dynamics 365 by bookingsync.
`
)

// Config is the whole configuration. Field order is the order of
// docs/config.md and of the Redacted YAML.
type Config struct {
	PublicURL     string        `yaml:"public_url"`
	Listen        string        `yaml:"listen"`
	AdminListen   string        `yaml:"admin_listen"`
	DataDir       string        `yaml:"data_dir"`
	Store         string        `yaml:"store"`
	Log           Log           `yaml:"log"`
	Admin         Admin         `yaml:"admin"`
	Azure         Azure         `yaml:"azure"`
	Graph         Graph         `yaml:"graph"`
	Dataverse     Dataverse     `yaml:"dataverse"`
	Notifications Notifications `yaml:"notifications"`
	Sync          Sync          `yaml:"sync"`
	Retention     Retention     `yaml:"retention"`

	// origins maps a key path to where its value came from ("file.yaml:12"
	// or "$BOOKINGSYNC_X"), so problems can point there.
	origins map[string]string
}

// Log configures the slog handler.
type Log struct {
	Level  string `yaml:"level"`  // debug|info|warn|error
	Format string `yaml:"format"` // json|text
}

// Admin configures the admin UI/API.
type Admin struct {
	Token     Secret `yaml:"token" secret:"token_file"`
	TokenFile string `yaml:"token_file"`
}

// Azure holds the Entra ID app credentials. Exactly one credential kind is
// configured; see CredentialKind.
type Azure struct {
	TenantID                string          `yaml:"tenant_id"`
	ClientID                string          `yaml:"client_id"`
	ClientSecret            Secret          `yaml:"client_secret" secret:"client_secret_file"`
	ClientSecretFile        string          `yaml:"client_secret_file"`
	Certificate             Secret          `yaml:"certificate" secret:"certificate_file,raw"`
	CertificateFile         string          `yaml:"certificate_file"`
	CertificatePassword     Secret          `yaml:"certificate_password" secret:"certificate_password_file"`
	CertificatePasswordFile string          `yaml:"certificate_password_file"`
	ManagedIdentity         ManagedIdentity `yaml:"managed_identity"`
	AuthorityHost           string          `yaml:"authority_host"`
	CAFile                  string          `yaml:"ca_file"`
}

// Graph configures Microsoft Graph access and subscriptions.
type Graph struct {
	BaseURL                  string        `yaml:"base_url"`
	Scope                    string        `yaml:"scope"`
	SubscriptionLifetime     time.Duration `yaml:"subscription_lifetime"`
	RenewWhenRemaining       RenewWhen     `yaml:"renew_when_remaining"`
	ExtendedPropertyID       string        `yaml:"extended_property_id"`
	MaxConcurrencyPerMailbox int           `yaml:"max_concurrency_per_mailbox"`
}

// Dataverse configures the Dataverse Web API, the opt-in column and the
// webhook that Dataverse calls.
type Dataverse struct {
	OrgURL            string        `yaml:"org_url"`
	APIBase           string        `yaml:"api_base"`
	Scope             string        `yaml:"scope"`
	OptInColumn       string        `yaml:"optin_column"`
	OptInAllowed      int           `yaml:"optin_allowed"`
	OptInNotAllowed   int           `yaml:"optin_not_allowed"`
	StatusColumn      string        `yaml:"status_column"`
	WebhookKey        Secret        `yaml:"webhook_key" secret:"webhook_key_file"`
	WebhookKeyFile    string        `yaml:"webhook_key_file"`
	WebhookKeyHeader  string        `yaml:"webhook_key_header"`
	PollInterval      time.Duration `yaml:"poll_interval"`
	OptInPollInterval time.Duration `yaml:"optin_poll_interval"`
}

// Notifications configures the public notification endpoints.
type Notifications struct {
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// Sync holds the sync engine's policies.
type Sync struct {
	WindowPast                  time.Duration `yaml:"window_past"`
	WindowFuture                time.Duration `yaml:"window_future"`
	RequireWorkOrder            bool          `yaml:"require_work_order"`
	OnCancel                    string        `yaml:"on_cancel"`       // delete|mark
	EventTimeZone               string        `yaml:"event_time_zone"` // utc|resource
	Templates                   Templates     `yaml:"templates"`
	CanceledBookingStatus       string        `yaml:"canceled_booking_status"`
	RevertOwnedFields           bool          `yaml:"revert_owned_fields"`
	OutlookMayChange            []string      `yaml:"outlook_may_change"`
	OnOutlookDelete             string        `yaml:"on_outlook_delete"` // cancel_booking|recreate_event|unlink
	OnOutlookCreate             string        `yaml:"on_outlook_create"` // ignore|create_booking
	OutlookCreatedBookingStatus string        `yaml:"outlook_created_booking_status"`
	PrivateBookingName          string        `yaml:"private_booking_name"`
	Conflict                    string        `yaml:"conflict"` // d365_wins|outlook_wins|newest_wins|manual
	CatchupInterval             time.Duration `yaml:"catchup_interval"`
	CatchupAfterDowntime        time.Duration `yaml:"catchup_after_downtime"`
	MassDelete                  MassDelete    `yaml:"mass_delete"`
}

// Retention bounds how long finished work is kept. A periodic job (run by
// the leader) deletes processed inbox rows and audit entries; finished River
// jobs are removed by River's own cleaner with the Jobs period.
type Retention struct {
	Notifications time.Duration `yaml:"notifications"`
	Audit         time.Duration `yaml:"audit"`
	Jobs          time.Duration `yaml:"jobs"`
}

// Templates are text/template sources for the Outlook event fields.
type Templates struct {
	Subject  string `yaml:"subject"`
	Body     string `yaml:"body"`
	Location string `yaml:"location"`
}

// MassDelete is the circuit breaker for delete bursts.
type MassDelete struct {
	MaxItems       int     `yaml:"max_items"`
	MaxFraction    float64 `yaml:"max_fraction"`
	DisableDeletes bool    `yaml:"disable_deletes"`
}

// Allowed values of the enumerated keys.
var (
	LogLevels        = []string{"debug", "info", "warn", "error"}
	LogFormats       = []string{"json", "text"}
	OnCancelValues   = []string{"delete", "mark"}
	EventTimeZones   = []string{"utc", "resource"}
	OutlookFields    = []string{"start", "end"}
	OnOutlookDeletes = []string{"cancel_booking", "recreate_event", "unlink"}
	OnOutlookCreates = []string{"ignore", "create_booking"}
	ConflictPolicies = []string{"d365_wins", "outlook_wins", "newest_wins", "manual"}
)

// Default returns the defaults, with data_dir derived from this process's
// environment. Load starts from the same values.
func Default() *Config {
	env := envMap(os.Environ())
	c := defaults(env)
	c.finalize(env)
	return c
}

func defaults(env map[string]string) *Config {
	return &Config{
		Listen:      DefaultListen,
		AdminListen: DefaultAdminListen,
		DataDir:     defaultDataDir(env),
		Log:         Log{Level: "info", Format: "json"},
		Azure:       Azure{AuthorityHost: DefaultAuthorityHost},
		Graph: Graph{
			BaseURL:                  DefaultGraphBaseURL,
			Scope:                    DefaultGraphScope,
			SubscriptionLifetime:     DefaultSubscriptionLifetime,
			RenewWhenRemaining:       RenewWhen{Fraction: 0.5},
			ExtendedPropertyID:       DefaultExtendedPropertyID,
			MaxConcurrencyPerMailbox: DefaultMaxConcurrencyPerMailbox,
		},
		Dataverse: Dataverse{
			OptInColumn:       DefaultOptInColumn,
			OptInAllowed:      DefaultOptInAllowed,
			OptInNotAllowed:   DefaultOptInNotAllowed,
			StatusColumn:      DefaultStatusColumn,
			WebhookKeyHeader:  DefaultWebhookKeyHeader,
			PollInterval:      60 * time.Second,
			OptInPollInterval: 5 * time.Minute,
		},
		Notifications: Notifications{MaxBodyBytes: DefaultMaxBodyBytes},
		Sync: Sync{
			WindowPast:    168 * time.Hour,
			WindowFuture:  2160 * time.Hour,
			OnCancel:      "delete",
			EventTimeZone: "utc",
			Templates: Templates{
				Subject:  DefaultSubjectTemplate,
				Body:     DefaultBodyTemplate,
				Location: DefaultLocationTemplate,
			},
			RevertOwnedFields:    true,
			OutlookMayChange:     []string{"start", "end"},
			OnOutlookDelete:      "cancel_booking",
			OnOutlookCreate:      "ignore",
			PrivateBookingName:   DefaultPrivateBookingName,
			Conflict:             "d365_wins",
			CatchupInterval:      6 * time.Hour,
			CatchupAfterDowntime: 15 * time.Minute,
			MassDelete:           MassDelete{MaxItems: 20, MaxFraction: 0.10},
		},
		Retention: Retention{
			Notifications: DefaultRetentionNotifications,
			Audit:         DefaultRetentionAudit,
			Jobs:          DefaultRetentionJobs,
		},
	}
}

// defaultDataDir follows the XDG base directory spec: $XDG_STATE_HOME if it
// is absolute, else ~/.local/state.
func defaultDataDir(env map[string]string) string {
	if x := env["XDG_STATE_HOME"]; filepath.IsAbs(x) {
		return filepath.Join(x, "bookingsync")
	}
	if h := env["HOME"]; h != "" {
		return filepath.Join(h, ".local", "state", "bookingsync")
	}
	return ""
}

// finalize fills values derived from other keys, after file and env.
func (c *Config) finalize(env map[string]string) {
	if h := env["HOME"]; h != "" && (c.DataDir == "~" || strings.HasPrefix(c.DataDir, "~/")) {
		c.DataDir = filepath.Join(h, strings.TrimPrefix(c.DataDir, "~"))
	}
	if c.Store == "" && c.DataDir != "" {
		c.Store = "sqlite:" + filepath.Join(c.DataDir, "bookingsync.db")
	}
	if c.Azure.AuthorityHost != "" && !strings.HasSuffix(c.Azure.AuthorityHost, "/") {
		c.Azure.AuthorityHost += "/"
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	c.Graph.BaseURL = strings.TrimRight(c.Graph.BaseURL, "/")
	c.Dataverse.OrgURL = strings.TrimRight(c.Dataverse.OrgURL, "/")
	c.Dataverse.APIBase = strings.TrimRight(c.Dataverse.APIBase, "/")
	if c.Dataverse.APIBase == "" {
		c.Dataverse.APIBase = c.DataverseAPIBase()
	}
	if c.Dataverse.Scope == "" {
		c.Dataverse.Scope = c.DataverseScope()
	}
}

// DataverseAPIBase is dataverse.api_base, or {org_url}/api/data/v9.2.
func (c *Config) DataverseAPIBase() string {
	if c.Dataverse.APIBase != "" {
		return strings.TrimRight(c.Dataverse.APIBase, "/")
	}
	if c.Dataverse.OrgURL == "" {
		return ""
	}
	return strings.TrimRight(c.Dataverse.OrgURL, "/") + DefaultDataverseAPIPath
}

// DataverseScope is dataverse.scope, or {org_url}/.default.
func (c *Config) DataverseScope() string {
	if c.Dataverse.Scope != "" {
		return c.Dataverse.Scope
	}
	if c.Dataverse.OrgURL == "" {
		return ""
	}
	return strings.TrimRight(c.Dataverse.OrgURL, "/") + "/.default"
}

func (c *Config) publicURL(path string) string {
	return strings.TrimRight(c.PublicURL, "/") + path
}

// NotificationURL is where Graph delivers change notifications.
func (c *Config) NotificationURL() string { return c.publicURL("/notifications/graph") }

// LifecycleURL is where Graph delivers lifecycle notifications.
func (c *Config) LifecycleURL() string { return c.publicURL("/notifications/graph/lifecycle") }

// DataverseWebhookURL is the URL registered as the Dataverse webhook.
func (c *Config) DataverseWebhookURL() string { return c.publicURL("/notifications/dataverse") }

// Store kinds returned by StoreKind.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// StoreKind is StoreSQLite or StorePostgres, or "" if store has neither form.
func (c *Config) StoreKind() string {
	switch {
	case strings.HasPrefix(c.Store, "sqlite:"):
		return StoreSQLite
	case strings.HasPrefix(c.Store, "postgres://"), strings.HasPrefix(c.Store, "postgresql://"):
		return StorePostgres
	}
	return ""
}

// SQLitePath is the database path of a sqlite: store ("" otherwise).
func (c *Config) SQLitePath() string {
	if c.StoreKind() != StoreSQLite {
		return ""
	}
	return strings.TrimPrefix(c.Store, "sqlite:")
}

// RenewBefore is how long before expiry a subscription is renewed.
func (g *Graph) RenewBefore() time.Duration {
	return g.RenewWhenRemaining.Of(g.SubscriptionLifetime)
}

// CredentialKind names the configured Azure credential.
type CredentialKind string

// Credential kinds.
const (
	CredentialNone            CredentialKind = ""
	CredentialClientSecret    CredentialKind = "client_secret"
	CredentialCertificate     CredentialKind = "certificate"
	CredentialManagedIdentity CredentialKind = "managed_identity"
)

// credentialKinds lists every configured kind; Validate wants exactly one.
func (a *Azure) credentialKinds() []CredentialKind {
	var ks []CredentialKind
	if a.ClientSecret.IsSet() || a.ClientSecretFile != "" {
		ks = append(ks, CredentialClientSecret)
	}
	if a.Certificate.IsSet() || a.CertificateFile != "" {
		ks = append(ks, CredentialCertificate)
	}
	if a.ManagedIdentity.Enabled {
		ks = append(ks, CredentialManagedIdentity)
	}
	return ks
}

// CredentialKind is the configured credential, or CredentialNone if zero or
// several are configured (Validate reports that).
func (a *Azure) CredentialKind() CredentialKind {
	if ks := a.credentialKinds(); len(ks) == 1 {
		return ks[0]
	}
	return CredentialNone
}

// isLoopbackHost reports whether host (no port) is localhost or a loopback IP.
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isLoopbackURL reports whether u points at a loopback host.
func isLoopbackURL(u *url.URL) bool { return isLoopbackHost(u.Hostname()) }
