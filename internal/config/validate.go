package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

var (
	// Graph id format "String {guid} Name name" or "String {guid} Id 0x8001"
	// (graph-api.md §5.5); the value must be a String to hold a booking id.
	extendedPropertyRE = regexp.MustCompile(`^String \{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\} (Name \S(.*\S)?|Id (0x[0-9a-fA-F]{1,4}|[0-9]{1,5}))$`)
	logicalNameRE      = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	domainRE           = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$`)
	headerTokenRE      = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
)

const minSecretLen = 16

// Validate checks every key and returns an *Error listing all problems, or
// nil. It reads azure.ca_file and parses the certificate, so a config that
// validates can be used to build credentials.
func (c *Config) Validate() error {
	ps := &problems{origins: c.origins}
	v := validator{c: c, ps: ps}
	v.top()
	v.azure()
	v.graph()
	v.dataverse()
	v.sync()
	v.retention()
	if n := c.Notifications.MaxBodyBytes; n < 1<<10 || n > 64<<20 {
		ps.add("notifications.max_body_bytes", fmt.Sprintf("%d is outside 1024..67108864", n), "the default is 1048576 (1 MiB)")
	}
	return ps.err()
}

// Warnings returns advice about settings that are valid but risky.
func (c *Config) Warnings() []string {
	var ws []string
	if host, _, err := net.SplitHostPort(c.AdminListen); err == nil && !isLoopbackHost(host) {
		ws = append(ws, fmt.Sprintf("admin_listen: %q is not a loopback address; the admin UI and metrics are reachable from the network", c.AdminListen))
	}
	if l := c.Graph.SubscriptionLifetime; l > SafeSubscriptionLifetime && l <= MaxSubscriptionLifetime {
		ws = append(ws, fmt.Sprintf("graph.subscription_lifetime: %s is above 10070m, which Graph has been seen to reject", FormatDuration(l)))
	}
	return ws
}

type validator struct {
	c  *Config
	ps *problems
}

func (v *validator) oneOf(key, got string, allowed []string) {
	if !slices.Contains(allowed, got) {
		v.ps.add(key, oneOfMsg(got, allowed), "")
	}
}

func (v *validator) durationRange(key string, d, lo, hi time.Duration) {
	switch {
	case d < lo:
		v.ps.add(key, fmt.Sprintf("%s is below the minimum %s", FormatDuration(d), FormatDuration(lo)), "")
	case d > hi:
		v.ps.add(key, fmt.Sprintf("%s is above the maximum %s", FormatDuration(d), FormatDuration(hi)), "")
	}
}

// serviceURL checks an absolute https URL; http is allowed for loopback hosts
// so tests and emulators can run without TLS.
func (v *validator) serviceURL(key, s string, allowPath bool) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		v.ps.add(key, fmt.Sprintf("%q is not a URL: %v", s, err), "")
		return nil
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http" || u.Host == "":
		v.ps.add(key, fmt.Sprintf("%q is not an absolute https URL", s), "")
	case u.Scheme == "http" && !isLoopbackURL(u):
		v.ps.add(key, fmt.Sprintf("%q must use https", s), "http is allowed only for localhost and loopback addresses")
	case u.User != nil:
		v.ps.add(key, fmt.Sprintf("%q must not contain credentials", s), "")
	case u.RawQuery != "" || u.Fragment != "":
		v.ps.add(key, fmt.Sprintf("%q must not have a query or fragment", s), "")
	case !allowPath && u.Path != "" && u.Path != "/":
		v.ps.add(key, fmt.Sprintf("%q must not have a path", s), "use only scheme and host, like https://contoso.crm.dynamics.com")
	default:
		return u
	}
	return nil
}

func (v *validator) listenAddr(key, s string) (host string, port int, ok bool) {
	if s == "" {
		v.ps.add(key, "required", "")
		return "", 0, false
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		v.ps.add(key, fmt.Sprintf("%q is not host:port", s), "like :8080 or 127.0.0.1:8081")
		return "", 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		v.ps.add(key, fmt.Sprintf("%q has an invalid port", s), "use a number from 0 to 65535")
		return "", 0, false
	}
	return h, n, true
}

func isUnspecifiedHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "" || ip != nil && ip.IsUnspecified()
}

func (v *validator) top() {
	c, ps := v.c, v.ps
	if c.PublicURL == "" {
		ps.add("public_url", "required", "the https URL at which Graph and Dataverse reach this service")
	} else {
		v.serviceURL("public_url", c.PublicURL, true)
	}
	lh, lp, lok := v.listenAddr("listen", c.Listen)
	ah, ap, aok := v.listenAddr("admin_listen", c.AdminListen)
	// admin_listen equal to listen means one listener for everything (the
	// sandbox's layout); any other overlap is a mistake.
	if lok && aok && lp != 0 && lp == ap && c.AdminListen != c.Listen && (lh == ah || isUnspecifiedHost(lh) || isUnspecifiedHost(ah)) {
		ps.add("admin_listen", fmt.Sprintf("%q uses the same port as listen %q", c.AdminListen, c.Listen),
			"use another port, or exactly the same address to serve the admin API on the public listener")
	}
	if c.AdminListen == c.Listen && !c.Admin.Token.IsSet() && aok && isLoopbackHost(ah) {
		ps.add("admin.token", "required when admin_listen equals listen (the admin API is then public)",
			"set BOOKINGSYNC_ADMIN_TOKEN or admin.token_file")
	}
	if aok && !isLoopbackHost(ah) && !c.Admin.Token.IsSet() {
		ps.add("admin.token", "required when admin_listen is not a loopback address",
			"set BOOKINGSYNC_ADMIN_TOKEN or admin.token_file")
	}
	if t := c.Admin.Token.Reveal(); t != "" && len(t) < minSecretLen {
		ps.add("admin.token", fmt.Sprintf("must be at least %d characters", minSecretLen), "")
	}
	if c.DataDir == "" {
		ps.add("data_dir", "required", "no $XDG_STATE_HOME or $HOME to derive the default from")
	}
	switch c.StoreKind() {
	case StoreSQLite:
		if c.SQLitePath() == "" {
			ps.add("store", "sqlite: needs a path", "like sqlite:/var/lib/bookingsync/bookingsync.db")
		}
	case StorePostgres:
		if u, err := url.Parse(c.Store); err != nil || u.Host == "" && u.Query().Get("host") == "" {
			// url.Error would echo the URL, password included.
			ps.add("store", "is not a valid postgres URL", "like postgres://user@host:5432/bookingsync")
		}
	default:
		if c.Store == "" {
			ps.add("store", "required", "")
		} else {
			scheme, _, _ := strings.Cut(c.Store, ":")
			ps.add("store", fmt.Sprintf("unsupported scheme %q", scheme), "use sqlite:PATH, postgres://… or postgresql://…")
		}
	}
	v.oneOf("log.level", c.Log.Level, LogLevels)
	v.oneOf("log.format", c.Log.Format, LogFormats)
}

func (v *validator) azure() {
	a, ps := &v.c.Azure, v.ps
	kinds := a.credentialKinds()
	switch len(kinds) {
	case 0:
		ps.add("azure", "no credential configured",
			"set one of BOOKINGSYNC_AZURE_CLIENT_SECRET, azure.client_secret_file, BOOKINGSYNC_AZURE_CERTIFICATE, azure.certificate_file or azure.managed_identity")
	case 1:
	default:
		names := make([]string, len(kinds))
		for i, k := range kinds {
			names[i] = string(k)
			if src := v.c.origins[credentialKeys[k]]; src != "" {
				names[i] += " (" + src + ")"
			}
		}
		ps.add("azure", "more than one credential configured: "+strings.Join(names, ", "), "configure exactly one")
	}
	needApp := len(kinds) != 1 || kinds[0] != CredentialManagedIdentity
	switch {
	case a.TenantID == "" && needApp:
		ps.add("azure.tenant_id", "required", "the directory (tenant) ID of the app registration")
	case a.TenantID != "" && !isGUID(a.TenantID) && !domainRE.MatchString(a.TenantID):
		ps.add("azure.tenant_id", fmt.Sprintf("%q is not a tenant id", a.TenantID), "use the directory (tenant) GUID or a domain like contoso.onmicrosoft.com")
	}
	switch {
	case a.ClientID == "" && needApp:
		ps.add("azure.client_id", "required", "the application (client) ID of the app registration")
	case a.ClientID != "" && !isGUID(a.ClientID):
		ps.add("azure.client_id", fmt.Sprintf("%q is not a GUID", a.ClientID), "the application (client) ID of the app registration")
	}
	if a.CertificatePassword.IsSet() && !slices.Contains(kinds, CredentialCertificate) {
		ps.add("azure.certificate_password", "set, but no certificate is configured", "set BOOKINGSYNC_AZURE_CERTIFICATE or azure.certificate_file")
	}
	if a.Certificate.IsSet() {
		key, hint := "azure.certificate_file", "use PEM with CERTIFICATE and PRIVATE KEY blocks, or PFX with azure.certificate_password"
		if a.CertificateFile == "" {
			key, hint = "azure.certificate", inlineCertificateHint(a.Certificate.Reveal())
		}
		switch certs, pk, err := a.Certificates(); {
		case a.CertificateFile == "" && a.CertificatePassword.IsSet():
			// azidentity then reads the value as PKCS#12 only.
			ps.add("azure.certificate_password", "set with BOOKINGSYNC_AZURE_CERTIFICATE, which takes PEM with an unencrypted key",
				"a password is only for a PFX in azure.certificate_file")
		case err != nil:
			ps.add(key, err.Error(), hint)
		case !isRSA(pk):
			ps.add(key, fmt.Sprintf("the private key is %s; Entra ID client certificates need an RSA key", keyKind(pk)), "")
		case time.Now().After(certs[0].NotAfter):
			ps.add(key, "certificate expired on "+certs[0].NotAfter.UTC().Format(time.DateOnly), "")
		}
	}
	if u := v.serviceURL("azure.authority_host", a.AuthorityHost, true); u != nil && u.Scheme != "https" {
		ps.add("azure.authority_host", fmt.Sprintf("%q must use https", a.AuthorityHost), "azidentity refuses authority hosts without https")
	}
	if a.CAFile != "" {
		if _, err := readCAFile(a.CAFile); err != nil {
			ps.add("azure.ca_file", err.Error(), "")
		}
	}
}

// credentialKeys is the key that configures each credential kind (its
// origin says where a conflicting one was set).
var credentialKeys = map[CredentialKind]string{
	CredentialClientSecret:    "azure.client_secret",
	CredentialCertificate:     "azure.certificate",
	CredentialManagedIdentity: "azure.managed_identity",
}

// inlineCertificateHint says how to fix a BOOKINGSYNC_AZURE_CERTIFICATE that
// does not parse, from the commonest mistakes made when putting a PEM file
// into a variable. It never quotes the value: it holds a private key.
func inlineCertificateHint(v string) string {
	const want = "BOOKINGSYNC_AZURE_CERTIFICATE takes the PEM text itself, with CERTIFICATE and unencrypted PRIVATE KEY blocks"
	switch {
	case strings.Contains(v, `\n`) && !strings.Contains(v, "\n"):
		return `the value has literal \n sequences instead of line breaks; ` + want +
			`, e.g. BOOKINGSYNC_AZURE_CERTIFICATE="$(cat app.pem)", or use azure.certificate_file`
	case !strings.Contains(v, "-----BEGIN "):
		return "no PEM block found; " + want + "; for a file path or a PFX use azure.certificate_file"
	}
	return want + "; use azure.certificate_file for a PFX"
}

func isRSA(k crypto.PrivateKey) bool { _, ok := k.(*rsa.PrivateKey); return ok }

func keyKind(k crypto.PrivateKey) string {
	switch k.(type) {
	case *ecdsa.PrivateKey:
		return "ECDSA"
	case ed25519.PrivateKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", k)
}

// Certificates parses the certificate credential (PEM or PFX) the way
// azidentity does; the first certificate is the leaf.
func (a *Azure) Certificates() ([]*x509.Certificate, crypto.PrivateKey, error) {
	certs, key, err := azidentity.ParseCertificates([]byte(a.Certificate.Reveal()), []byte(a.CertificatePassword.Reveal()))
	if err != nil {
		return nil, nil, fmt.Errorf("cannot parse certificate: %w", err)
	}
	if len(certs) == 0 || key == nil {
		return nil, nil, errors.New("cannot parse certificate: need a certificate and its private key")
	}
	return certs, key, nil
}

// RootCAs returns the system roots plus azure.ca_file (nil if ca_file is
// unset, meaning "use the system roots"), for every outbound HTTPS client.
func (c *Config) RootCAs() (*x509.CertPool, error) {
	if c.Azure.CAFile == "" {
		return nil, nil
	}
	extra, err := readCAFile(c.Azure.CAFile)
	if err != nil {
		return nil, fmt.Errorf("config: azure.ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, cert := range extra {
		pool.AddCert(cert)
	}
	return pool, nil
}

func readCAFile(name string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read %q: %w", name, err)
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", name, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%q contains no PEM certificates", name)
	}
	return certs, nil
}

func (v *validator) graph() {
	g, ps := &v.c.Graph, v.ps
	if g.BaseURL == "" {
		ps.add("graph.base_url", "required", "")
	} else {
		v.serviceURL("graph.base_url", g.BaseURL, true)
	}
	v.scope("graph.scope", g.Scope)
	v.durationRange("graph.subscription_lifetime", g.SubscriptionLifetime, MinSubscriptionLifetime, MaxSubscriptionLifetime)
	r := g.RenewWhenRemaining
	switch {
	case r.Duration < 0:
		ps.add("graph.renew_when_remaining", FormatDuration(r.Duration)+" is negative", "")
	case r.Duration > 0 && r.Duration >= g.SubscriptionLifetime:
		ps.add("graph.renew_when_remaining", fmt.Sprintf("%s is not shorter than graph.subscription_lifetime (%s)",
			FormatDuration(r.Duration), FormatDuration(g.SubscriptionLifetime)), "")
	case r.Duration == 0 && (r.Fraction <= 0 || r.Fraction >= 1):
		ps.add("graph.renew_when_remaining", fmt.Sprintf("%g is not between 0 and 1", r.Fraction),
			"a fraction of graph.subscription_lifetime like 0.5, or a duration like 24h")
	}
	if !extendedPropertyRE.MatchString(g.ExtendedPropertyID) {
		ps.add("graph.extended_property_id", fmt.Sprintf("%q is not a String single-value extended property id", g.ExtendedPropertyID),
			`use "String {GUID} Name NAME", like "`+DefaultExtendedPropertyID+`"`)
	}
	if n := g.MaxConcurrencyPerMailbox; n < 1 || n > MaxConcurrencyPerMailboxLimit {
		ps.add("graph.max_concurrency_per_mailbox", fmt.Sprintf("%d is outside 1..%d", n, MaxConcurrencyPerMailboxLimit),
			"Graph allows 4 concurrent requests per app and mailbox")
	}
}

func (v *validator) scope(key, s string) {
	switch {
	case s == "":
		v.ps.add(key, "required", "")
	case !strings.HasSuffix(s, "/.default"):
		v.ps.add(key, fmt.Sprintf("%q does not end in /.default", s), "app-only tokens use the resource's /.default scope")
	}
}

func (v *validator) dataverse() {
	c, d, ps := v.c, &v.c.Dataverse, v.ps
	if d.OrgURL == "" {
		ps.add("dataverse.org_url", "required", "the environment URL, like https://contoso.crm.dynamics.com")
	} else {
		// A path is unusual for a real org but normal behind a proxy or for
		// the emulator (https://127.0.0.1:7070/dataverse).
		v.serviceURL("dataverse.org_url", d.OrgURL, true)
	}
	if d.APIBase != "" {
		v.serviceURL("dataverse.api_base", d.APIBase, true)
	}
	if d.OrgURL != "" || d.Scope != "" {
		v.scope("dataverse.scope", c.DataverseScope())
	}
	for _, col := range []struct{ key, val string }{
		{"dataverse.optin_column", d.OptInColumn},
		{"dataverse.status_column", d.StatusColumn},
	} {
		if !logicalNameRE.MatchString(col.val) {
			ps.add(col.key, fmt.Sprintf("%q is not a Dataverse logical name", col.val), "logical names are lower case, like "+DefaultOptInColumn)
		}
	}
	if d.OptInAllowed == d.OptInNotAllowed {
		ps.add("dataverse.optin_not_allowed", fmt.Sprintf("%d equals dataverse.optin_allowed", d.OptInNotAllowed), "")
	}
	switch k := d.WebhookKey.Reveal(); {
	case k == "":
		ps.add("dataverse.webhook_key", "required", "set BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY or dataverse.webhook_key_file")
	case len(k) < minSecretLen:
		ps.add("dataverse.webhook_key", fmt.Sprintf("must be at least %d characters", minSecretLen), "")
	}
	if !headerTokenRE.MatchString(d.WebhookKeyHeader) {
		ps.add("dataverse.webhook_key_header", fmt.Sprintf("%q is not an HTTP header name", d.WebhookKeyHeader), "")
	}
	v.durationRange("dataverse.poll_interval", d.PollInterval, 5*time.Second, 24*time.Hour)
	v.durationRange("dataverse.optin_poll_interval", d.OptInPollInterval, 5*time.Second, 24*time.Hour)
}

func (v *validator) retention() {
	r := &v.c.Retention
	const day = 24 * time.Hour
	v.durationRange("retention.notifications", r.Notifications, time.Hour, 3650*day)
	v.durationRange("retention.audit", r.Audit, day, 3650*day)
	v.durationRange("retention.jobs", r.Jobs, time.Hour, 365*day)
}

func (v *validator) sync() {
	s, ps := &v.c.Sync, v.ps
	const maxWindow = 3650 * 24 * time.Hour
	v.durationRange("sync.window_past", s.WindowPast, 0, maxWindow)
	v.durationRange("sync.window_future", s.WindowFuture, time.Hour, maxWindow)
	v.oneOf("sync.on_cancel", s.OnCancel, OnCancelValues)
	v.oneOf("sync.event_time_zone", s.EventTimeZone, EventTimeZones)
	for _, t := range []struct{ name, src string }{
		{"subject", s.Templates.Subject}, {"body", s.Templates.Body}, {"location", s.Templates.Location},
	} {
		key := "sync.templates." + t.name
		tmpl, err := parseTemplate(t.name, t.src)
		if err != nil {
			ps.add(key, strings.TrimPrefix(err.Error(), "config: "+key+": "), "")
			continue
		}
		for _, d := range SampleTemplateData() {
			if err := tmpl.Execute(io.Discard, d); err != nil {
				ps.add(key, err.Error(), "see TemplateData in docs/config.md for the fields")
				break
			}
		}
	}
	seen := map[string]bool{}
	for _, f := range s.OutlookMayChange {
		switch {
		case !slices.Contains(OutlookFields, f):
			ps.add("sync.outlook_may_change", oneOfMsg(f, OutlookFields), "")
		case seen[f]:
			ps.add("sync.outlook_may_change", fmt.Sprintf("%q is listed twice", f), "")
		}
		seen[f] = true
	}
	v.oneOf("sync.on_outlook_delete", s.OnOutlookDelete, OnOutlookDeletes)
	v.oneOf("sync.on_outlook_create", s.OnOutlookCreate, OnOutlookCreates)
	switch n := len([]rune(s.PrivateBookingName)); {
	case n == 0:
		ps.add("sync.private_booking_name", "required", "")
	case n > 100:
		ps.add("sync.private_booking_name", fmt.Sprintf("is %d characters long; booking names hold at most 100", n), "")
	}
	v.oneOf("sync.conflict", s.Conflict, ConflictPolicies)
	v.durationRange("sync.catchup_interval", s.CatchupInterval, time.Minute, 7*24*time.Hour)
	v.durationRange("sync.catchup_after_downtime", s.CatchupAfterDowntime, 0, 7*24*time.Hour)
	if s.MassDelete.MaxItems < 1 {
		ps.add("sync.mass_delete.max_items", fmt.Sprintf("%d is below the minimum 1", s.MassDelete.MaxItems), "use sync.mass_delete.disable_deletes to stop all deletes")
	}
	if f := s.MassDelete.MaxFraction; f <= 0 || f > 1 {
		ps.add("sync.mass_delete.max_fraction", fmt.Sprintf("%g is not in (0, 1]", f), "like 0.10 for 10%")
	}
}
