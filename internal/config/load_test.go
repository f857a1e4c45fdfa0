package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestLoadDefaultsAndEnvOnly(t *testing.T) {
	c, warnings, err := Load("", baseEnv())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %q", warnings)
	}
	want := validConfig(t)
	if diff := cmp.Diff(want, c, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if got := c.Azure.ClientSecret.Reveal(); got != testSecret {
		t.Errorf("client secret = %q", got)
	}
}

func TestLoadPrecedence(t *testing.T) {
	path := writeFile(t, "c.yaml", `
listen: ":9000"
admin_listen: "127.0.0.1:9001"
log:
  level: debug
graph:
  max_concurrency_per_mailbox: 2
  subscription_lifetime: 3d
sync:
  outlook_may_change: [start]
  mass_delete:
    max_fraction: 0.25
`)
	env := append(baseEnv(),
		"BOOKINGSYNC_LISTEN=:7000",                       // env beats file
		"BOOKINGSYNC_LOG_FORMAT=text",                    // env beats default
		"BOOKINGSYNC_SYNC_MASS_DELETE_MAX_ITEMS=50",      // nested key with underscores
		"BOOKINGSYNC_SYNC_OUTLOOK_MAY_CHANGE=start, end", // list from env
		"BOOKINGSYNC_SYNC_WINDOW_PAST=",                  // empty: ignored
		"BOOKINGSYNC_LISTEN=:7001",                       // later entries win
	)
	c, _, err := Load(path, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"listen", c.Listen, ":7001"},
		{"admin_listen", c.AdminListen, "127.0.0.1:9001"},
		{"log.level", c.Log.Level, "debug"},
		{"log.format", c.Log.Format, "text"},
		{"graph.max_concurrency_per_mailbox", c.Graph.MaxConcurrencyPerMailbox, 2},
		{"graph.subscription_lifetime", c.Graph.SubscriptionLifetime, 72 * time.Hour},
		{"graph.scope", c.Graph.Scope, DefaultGraphScope},
		{"sync.mass_delete.max_items", c.Sync.MassDelete.MaxItems, 50},
		{"sync.mass_delete.max_fraction", c.Sync.MassDelete.MaxFraction, 0.25},
		{"sync.outlook_may_change", strings.Join(c.Sync.OutlookMayChange, "|"), "start|end"},
		{"sync.window_past", c.Sync.WindowPast, 168 * time.Hour},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
		}
	}
	srcs := map[string]string{}
	for _, s := range c.Settings() {
		srcs[s.Key] = s.Source
	}
	for key, want := range map[string]string{
		"listen":                      "$BOOKINGSYNC_LISTEN",
		"admin_listen":                path + ":3",
		"graph.subscription_lifetime": path + ":8",
		"graph.scope":                 "default",
		"azure.client_secret":         "$BOOKINGSYNC_AZURE_CLIENT_SECRET",
	} {
		if srcs[key] != want {
			t.Errorf("source of %s = %q, want %q", key, srcs[key], want)
		}
	}
}

func TestLoadDerived(t *testing.T) {
	tests := []struct {
		name                           string
		env                            []string
		dataDir, store, apiBase, scope string
	}{
		{"home", nil, "/home/test/.local/state/bookingsync", "sqlite:/home/test/.local/state/bookingsync/bookingsync.db",
			"https://contoso.crm.dynamics.com/api/data/v9.2", "https://contoso.crm.dynamics.com/.default"},
		{"xdg", []string{"XDG_STATE_HOME=/var/state"}, "/var/state/bookingsync", "sqlite:/var/state/bookingsync/bookingsync.db", "", ""},
		{"relative xdg ignored", []string{"XDG_STATE_HOME=state"}, "/home/test/.local/state/bookingsync", "", "", ""},
		{"data_dir tilde", []string{"BOOKINGSYNC_DATA_DIR=~/bs"}, "/home/test/bs", "sqlite:/home/test/bs/bookingsync.db", "", ""},
		{"store explicit", []string{"BOOKINGSYNC_STORE=postgres://bs@db/bs"}, "", "postgres://bs@db/bs", "", ""},
		{"org url trailing slash", []string{"BOOKINGSYNC_DATAVERSE_ORG_URL=https://org.crm4.dynamics.com/"}, "", "",
			"https://org.crm4.dynamics.com/api/data/v9.2", "https://org.crm4.dynamics.com/.default"},
		{"overrides", []string{
			"BOOKINGSYNC_DATAVERSE_API_BASE=https://emu.localhost:8443/api/data/v9.2/",
			"BOOKINGSYNC_DATAVERSE_SCOPE=api://emulator/.default",
		}, "", "", "https://emu.localhost:8443/api/data/v9.2", "api://emulator/.default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Load("", append(baseEnv(), tt.env...))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			for _, ch := range []struct{ key, got, want string }{
				{"data_dir", c.DataDir, tt.dataDir},
				{"store", c.Store, tt.store},
				{"api_base", c.DataverseAPIBase(), tt.apiBase},
				{"scope", c.DataverseScope(), tt.scope},
			} {
				if ch.want != "" && ch.got != ch.want {
					t.Errorf("%s = %q, want %q", ch.key, ch.got, ch.want)
				}
			}
		})
	}
}

func TestLoadNoHome(t *testing.T) {
	_, _, err := Load("", without(baseEnv(), "HOME"))
	got := problemStrings(t, err)
	want := []string{
		"data_dir: required (no $XDG_STATE_HOME or $HOME to derive the default from)",
		"store: required",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		want []string
	}{
		{"unknown top-level key", "pubic_url: https://x.example.com\n", nil,
			[]string{`pubic_url: unknown key (did you mean "public_url"?; FILE:1)`}},
		{"unknown nested key", "log:\n  level: info\n  levle: debug\n", nil,
			[]string{`log.levle: unknown key (did you mean "level"?; FILE:3)`}},
		{"unknown nested key without suggestion", "sync:\n  mass_delete:\n    whatever: 1\n", nil,
			[]string{`sync.mass_delete.whatever: unknown key (known keys: max_items, max_fraction, disable_deletes; FILE:3)`}},
		{"duplicate key", "listen: ':1'\nlisten: ':2'\n", nil,
			[]string{`listen: duplicate key, first set on line 1 (FILE:2)`}},
		{"section is scalar", "graph: fast\n", nil,
			[]string{`graph: expected a mapping of keys, found a single value (FILE:1)`}},
		{"scalar is mapping", "listen:\n  port: 1\n", nil,
			[]string{`listen: expected a single value, found a mapping (FILE:2)`}},
		{"bad int", "graph:\n  max_concurrency_per_mailbox: many\n", nil,
			[]string{`graph.max_concurrency_per_mailbox: "many" is not an integer (FILE:2)`}},
		{"bad bool", "sync:\n  require_work_order: yes please\n", nil,
			[]string{`sync.require_work_order: "yes please" is not a boolean (use true or false; FILE:2)`}},
		{"duration without unit", "dataverse:\n  poll_interval: 60\n", nil,
			[]string{`dataverse.poll_interval: "60" is not a duration (use a Go duration like 90s, 10m, 168h, or days like 7d; FILE:2)`}},
		{"duration null", "sync:\n  window_past:\n", nil,
			[]string{`sync.window_past: no value given (use a Go duration like 90s, 10m, 168h, or days like 7d; FILE:2)`}},
		{"list is scalar", "sync:\n  outlook_may_change: start\n", nil,
			[]string{`sync.outlook_may_change: expected a list, found a single value (use a YAML list, or a comma-separated list in the environment; FILE:2)`}},
		{"managed identity bad", "azure:\n  managed_identity: maybe\n", nil,
			[]string{`azure.managed_identity: "maybe" is neither true/false nor a client id (GUID) of a user-assigned identity (use true for a system-assigned identity or the client id of a user-assigned one; FILE:2)`}},
		{"renew bad", "graph:\n  renew_when_remaining: soon\n", nil,
			[]string{`graph.renew_when_remaining: "soon" is neither a fraction of the lifetime (like 0.5) nor a duration (like 24h or 2d) (use a fraction like 0.5 or a duration like 24h; FILE:2)`}},
		{"validation problems point at the file line", "sync:\n  conflict: newst_wins\n", nil,
			[]string{`sync.conflict: "newst_wins" is not one of d365_wins, outlook_wins, newest_wins, manual (FILE:2)`}},
		{"validation problems point at the env var", "", []string{"BOOKINGSYNC_SYNC_CONFLICT=newst_wins"},
			[]string{`sync.conflict: "newst_wins" is not one of d365_wins, outlook_wins, newest_wins, manual ($BOOKINGSYNC_SYNC_CONFLICT)`}},
		{"bad env value", "", []string{"BOOKINGSYNC_SYNC_MASS_DELETE_MAX_ITEMS=lots"},
			[]string{`sync.mass_delete.max_items: "lots" is not an integer ($BOOKINGSYNC_SYNC_MASS_DELETE_MAX_ITEMS)`}},
		{"several at once", "log:\n  colour: red\nlisten: [1]\n", []string{"BOOKINGSYNC_NOTIFICATIONS_MAX_BODY_BYTES=big"}, []string{
			`log.colour: unknown key (known keys: level, format; FILE:2)`,
			`listen: expected a single value, found a list (FILE:3)`,
			`notifications.max_body_bytes: "big" is not an integer ($BOOKINGSYNC_NOTIFICATIONS_MAX_BODY_BYTES)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "bookingsync.yaml", tt.yaml)
			_, _, err := Load(path, append(baseEnv(), tt.env...))
			got := problemStrings(t, err)
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = strings.ReplaceAll(w, "FILE", path)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadUnreadableOrMalformed(t *testing.T) {
	if _, _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), baseEnv()); err == nil ||
		!strings.Contains(err.Error(), "missing.yaml: no such file or directory") {
		t.Errorf("missing file: err = %v", err)
	}
	path := writeFile(t, "bad.yaml", "listen: [\n")
	if c, _, err := Load(path, baseEnv()); err == nil || c != nil || !strings.HasPrefix(err.Error(), "config: parse "+path+": ") {
		t.Errorf("malformed file: c = %v, err = %v", c != nil, err)
	}
	path = writeFile(t, "two.yaml", "listen: ':1'\n---\nlisten: ':2'\n")
	if _, _, err := Load(path, baseEnv()); err == nil || !strings.Contains(err.Error(), "only one YAML document") {
		t.Errorf("two documents: err = %v", err)
	}
	path = writeFile(t, "empty.yaml", "# nothing yet\n")
	if _, _, err := Load(path, baseEnv()); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

func TestLoadInlineSecretRefused(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"azure:\n  client_secret: hunter2hunter2\n",
			`azure.client_secret: secrets may not be written in the config file (set BOOKINGSYNC_AZURE_CLIENT_SECRET or azure.client_secret_file instead; FILE:2)`},
		{"azure:\n  certificate_password: hunter2\n",
			`azure.certificate_password: secrets may not be written in the config file (set BOOKINGSYNC_AZURE_CERTIFICATE_PASSWORD or azure.certificate_password_file instead; FILE:2)`},
		{"azure:\n  certificate: |\n    -----BEGIN CERTIFICATE-----\n",
			`azure.certificate: secrets may not be written in the config file (set BOOKINGSYNC_AZURE_CERTIFICATE or azure.certificate_file instead; FILE:2)`},
		{"dataverse:\n  webhook_key: hunter2hunter2\n",
			`dataverse.webhook_key: secrets may not be written in the config file (set BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY or dataverse.webhook_key_file instead; FILE:2)`},
		{"admin:\n  token: hunter2hunter2\n",
			`admin.token: secrets may not be written in the config file (set BOOKINGSYNC_ADMIN_TOKEN or admin.token_file instead; FILE:2)`},
	}
	for _, tt := range tests {
		path := writeFile(t, "c.yaml", tt.yaml)
		_, _, err := Load(path, baseEnv())
		want := []string{strings.ReplaceAll(tt.want, "FILE", path)}
		got := problemStrings(t, err)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error echoes the secret: %v", err)
		}
	}
	// An empty placeholder is not a secret.
	path := writeFile(t, "c.yaml", "admin:\n  token: \"\"\n  token_file:\n")
	if _, _, err := Load(path, baseEnv()); err != nil {
		t.Errorf("empty secret placeholder: %v", err)
	}
}

func TestLoadSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secretFile := write("client_secret", "from-file-secret\n")
	webhookFile := write("webhook", "webhook-key-from-file-0123\r\n")
	tokenFile := write("token", "token-from-file-0123456789\n\n")
	emptyFile := write("empty", "\n")
	cert := testCert(t, time.Now().Add(24*time.Hour))
	certFile := write("cert.pem", string(cert))

	t.Run("read and trimmed", func(t *testing.T) {
		cfgPath := writeFile(t, "c.yaml", "azure:\n  client_secret_file: "+secretFile+"\nadmin:\n  token_file: "+tokenFile+"\n")
		env := append(without(baseEnv(), "BOOKINGSYNC_AZURE_CLIENT_SECRET", "BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY"),
			"BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY_FILE="+webhookFile)
		c, _, err := Load(cfgPath, env)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		for _, ch := range []struct{ name, got, want string }{
			{"client secret", c.Azure.ClientSecret.Reveal(), "from-file-secret"},
			{"webhook key", c.Dataverse.WebhookKey.Reveal(), "webhook-key-from-file-0123"},
			{"admin token", c.Admin.Token.Reveal(), "token-from-file-0123456789"},
		} {
			if ch.got != ch.want {
				t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
			}
		}
	})
	t.Run("certificate kept byte for byte", func(t *testing.T) {
		env := append(without(baseEnv(), "BOOKINGSYNC_AZURE_CLIENT_SECRET"), "BOOKINGSYNC_AZURE_CERTIFICATE_FILE="+certFile)
		c, _, err := Load("", env)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if c.Azure.Certificate.Reveal() != string(cert) {
			t.Error("certificate content changed")
		}
		if k := c.Azure.CredentialKind(); k != CredentialCertificate {
			t.Errorf("CredentialKind = %q", k)
		}
	})
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"missing file", []string{"BOOKINGSYNC_ADMIN_TOKEN_FILE=" + filepath.Join(dir, "nope")},
			[]string{`admin.token_file: cannot read "` + filepath.Join(dir, "nope") + `": no such file or directory ($BOOKINGSYNC_ADMIN_TOKEN_FILE)`}},
		{"empty file", []string{"BOOKINGSYNC_ADMIN_TOKEN_FILE=" + emptyFile},
			[]string{`admin.token_file: "` + emptyFile + `" is empty ($BOOKINGSYNC_ADMIN_TOKEN_FILE)`}},
		{"env and file", []string{"BOOKINGSYNC_AZURE_CLIENT_SECRET_FILE=" + secretFile},
			[]string{`azure.client_secret: set both by BOOKINGSYNC_AZURE_CLIENT_SECRET and by azure.client_secret_file (use only one; $BOOKINGSYNC_AZURE_CLIENT_SECRET)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load("", append(baseEnv(), tt.env...))
			if diff := cmp.Diff(tt.want, problemStrings(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadEnvWarnings(t *testing.T) {
	env := append(baseEnv(),
		"BOOKINGSYNC_GRAPH_BASEURL=https://x",      // typo
		"BOOKINGSYNC_NONSENSE_THING=1",             // no close match
		"BOOKINGSYNC_NONSENSE_THING=2",             // warned once
		"BOOKINGSYNC_CONFIG=/etc/bookingsync.yaml", // the CLI's, not a key
		"BOOKINGSYNC_ADMIN_LISTEN=0.0.0.0:8081",
		"BOOKINGSYNC_ADMIN_TOKEN="+testToken,
	)
	_, warnings, err := Load("", env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []string{
		"BOOKINGSYNC_GRAPH_BASEURL: unknown environment variable, ignored (did you mean BOOKINGSYNC_GRAPH_BASE_URL?)",
		"BOOKINGSYNC_NONSENSE_THING: unknown environment variable, ignored",
		`admin_listen: "0.0.0.0:8081" is not a loopback address; the admin UI and metrics are reachable from the network`,
	}
	if diff := cmp.Diff(want, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestLoadWarningsWithError(t *testing.T) {
	_, warnings, err := Load("", append(baseEnv(), "BOOKINGSYNC_BOGUS=1", "BOOKINGSYNC_LOG_LEVEL=loud"))
	if err == nil || len(warnings) != 1 {
		t.Errorf("err = %v, warnings = %q; want both", err, warnings)
	}
}

func TestLoadManagedIdentityAndRenewForms(t *testing.T) {
	tests := []struct {
		yaml  string
		mi    ManagedIdentity
		renew time.Duration
	}{
		{"azure:\n  managed_identity: true\ngraph:\n  renew_when_remaining: 0.25\n", ManagedIdentity{Enabled: true}, 2500 * time.Minute},
		{"azure:\n  managed_identity: " + testClient + "\ngraph:\n  renew_when_remaining: 1d\n", ManagedIdentity{Enabled: true, ClientID: testClient}, 24 * time.Hour},
		{"azure:\n  managed_identity: false\n  client_secret_file: ''\n", ManagedIdentity{}, 5000 * time.Minute},
	}
	for _, tt := range tests {
		path := writeFile(t, "c.yaml", tt.yaml)
		env := baseEnv()
		if tt.mi.Enabled {
			env = without(env, "BOOKINGSYNC_AZURE_CLIENT_SECRET")
		}
		c, _, err := Load(path, env)
		if err != nil {
			t.Fatalf("%s: %v", tt.yaml, err)
		}
		if c.Azure.ManagedIdentity != tt.mi {
			t.Errorf("%s: managed identity = %+v, want %+v", tt.yaml, c.Azure.ManagedIdentity, tt.mi)
		}
		if got := c.Graph.RenewBefore(); got != tt.renew {
			t.Errorf("%s: RenewBefore = %v, want %v", tt.yaml, got, tt.renew)
		}
	}
}

func TestEnvNames(t *testing.T) {
	for key, want := range map[string]string{
		"azure.client_secret":           "BOOKINGSYNC_AZURE_CLIENT_SECRET",
		"azure.client_secret_file":      "BOOKINGSYNC_AZURE_CLIENT_SECRET_FILE",
		"graph.base_url":                "BOOKINGSYNC_GRAPH_BASE_URL",
		"sync.mass_delete.max_fraction": "BOOKINGSYNC_SYNC_MASS_DELETE_MAX_FRACTION",
		"public_url":                    "BOOKINGSYNC_PUBLIC_URL",
		"no.such.key":                   "",
	} {
		if got := EnvName(key); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, want)
		}
	}
	// Every key can be set from its env var (a round trip through Load).
	if n := len(Keys()); n < 60 {
		t.Errorf("only %d keys", n)
	}
}

func TestEveryKeyIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	for _, k := range Keys() {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/config.md does not mention `%s`", k)
		}
		if !strings.Contains(string(doc), "`"+EnvName(k)+"`") {
			t.Errorf("docs/config.md does not mention `%s`", EnvName(k))
		}
	}
}

func TestHelpers(t *testing.T) {
	c := validConfig(t)
	c.PublicURL = "https://sync.example.com/bs"
	for _, ch := range []struct{ name, got, want string }{
		{"NotificationURL", c.NotificationURL(), "https://sync.example.com/bs/notifications/graph"},
		{"LifecycleURL", c.LifecycleURL(), "https://sync.example.com/bs/notifications/graph/lifecycle"},
		{"DataverseWebhookURL", c.DataverseWebhookURL(), "https://sync.example.com/bs/notifications/dataverse"},
		{"StoreKind", c.StoreKind(), StoreSQLite},
		{"SQLitePath", c.SQLitePath(), "/home/test/.local/state/bookingsync/bookingsync.db"},
		{"CredentialKind", string(c.Azure.CredentialKind()), string(CredentialClientSecret)},
	} {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	c.Store = "postgresql://db/bs"
	if c.StoreKind() != StorePostgres || c.SQLitePath() != "" {
		t.Errorf("postgres store: kind %q path %q", c.StoreKind(), c.SQLitePath())
	}
	c.Azure.ManagedIdentity.Enabled = true
	if k := c.Azure.CredentialKind(); k != CredentialNone {
		t.Errorf("two credentials: CredentialKind = %q", k)
	}
	if pool, err := c.RootCAs(); pool != nil || err != nil {
		t.Errorf("RootCAs without ca_file = %v, %v", pool, err)
	}
	c.Azure.CAFile = writeFile(t, "ca.pem", string(testCert(t, time.Now().Add(time.Hour))))
	if pool, err := c.RootCAs(); pool == nil || err != nil {
		t.Errorf("RootCAs = %v, %v", pool, err)
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.Listen != ":8080" || c.AdminListen != "127.0.0.1:8081" || c.Graph.SubscriptionLifetime != 10000*time.Minute ||
		c.Sync.Conflict != "d365_wins" || c.Notifications.MaxBodyBytes != 1<<20 {
		t.Errorf("unexpected defaults:\n%v", c)
	}
	// Default alone is incomplete: the tenant-specific keys are required.
	got := problemStrings(t, c.Validate())
	if len(got) == 0 || got[0] != "public_url: required (the https URL at which Graph and Dataverse reach this service)" {
		t.Errorf("problems = %q", got)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"90s", 90 * time.Second, false},
		{"10000m", 10000 * time.Minute, false},
		{"168h", 168 * time.Hour, false},
		{"7d", 7 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{" 2d ", 48 * time.Hour, false},
		{"0", 0, false},
		{"60", 0, true},
		{"d", 0, true},
		{"1.5d", 0, true},
		{"1d-1h", 0, true},
		{"7days", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	for d, want := range map[time.Duration]string{
		0: "0s", 90 * time.Second: "90s", 10000 * time.Minute: "10000m", 168 * time.Hour: "7d",
		6 * time.Hour: "6h", 1500 * time.Millisecond: "1.5s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestChildEnv(t *testing.T) {
	got := ChildEnv([]string{"PATH=/bin", "BOOKINGSYNC_STORE=sqlite:/home/me/db", "HOME=/root", "BOOKINGSYNC_LOG_LEVEL=debug"},
		[]string{"BOOKINGSYNC_STORE=sqlite:/tmp/x.db"})
	want := []string{"PATH=/bin", "HOME=/root", "BOOKINGSYNC_STORE=sqlite:/tmp/x.db"}
	if !slices.Equal(got, want) {
		t.Errorf("ChildEnv = %q, want %q", got, want)
	}
}
