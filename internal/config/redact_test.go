package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "update golden files instead of checking against them")

const (
	fullSecret  = "full-client-secret-XYZ"
	fullWebhook = "full-webhook-key-XYZ-0123"
	fullToken   = "full-admin-token-XYZ-0123"
	pgPassword  = "pg-password-123"
)

// loadFull loads testdata/full.yaml with every secret set from env.
func loadFull(t *testing.T) *Config {
	t.Helper()
	c, warnings, err := Load(filepath.Join("testdata", "full.yaml"), []string{
		"HOME=/home/test",
		"BOOKINGSYNC_AZURE_CLIENT_SECRET=" + fullSecret,
		"BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY=" + fullWebhook,
		"BOOKINGSYNC_ADMIN_TOKEN=" + fullToken,
	})
	if err != nil || len(warnings) > 0 {
		t.Fatalf("Load full.yaml: %v %q", err, warnings)
	}
	return c
}

// assertNoSecrets fails if out contains any secret of loadFull.
func assertNoSecrets(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range []string{fullSecret, fullWebhook, fullToken, pgPassword} {
		if strings.Contains(out, s) {
			t.Errorf("%s contains secret %q:\n%s", what, s, out)
		}
	}
}

func TestSecretFormatting(t *testing.T) {
	s := NewSecret("hunter2")
	type holder struct {
		Name string
		Key  Secret
		Ptr  *Secret
	}
	h := holder{Name: "n", Key: s, Ptr: &s}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%T %v"} {
		for _, arg := range []any{s, &s, h, &h, []Secret{s}, map[string]Secret{"k": s}} {
			out := fmt.Sprintf(format, arg)
			if strings.Contains(out, "hunter2") || strings.Contains(out, fmt.Sprintf("%x", "hunter2")) {
				t.Errorf("Sprintf(%q, %T) = %q", format, arg, out)
			}
		}
	}
	if got := fmt.Sprint(s); got != RedactedText {
		t.Errorf("Sprint = %q", got)
	}
	if got := fmt.Sprintf("%#v", s); got != `config.Secret("<redacted>")` {
		t.Errorf("%%#v = %q", got)
	}
	if got := fmt.Sprint(Secret{}); got != "" {
		t.Errorf("unset Sprint = %q", got)
	}
	if got := s.Reveal(); got != "hunter2" {
		t.Errorf("Reveal = %q", got)
	}
	if NewSecret("").IsSet() || !s.IsSet() || !s.Equal(NewSecret("hunter2")) || s.Equal(Secret{}) {
		t.Error("IsSet/Equal wrong")
	}
}

func TestSecretEncoding(t *testing.T) {
	type holder struct {
		Key   Secret `json:"key" yaml:"key"`
		Unset Secret `json:"unset" yaml:"unset"`
	}
	h := holder{Key: NewSecret("hunter2")}
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(j), `{"key":"\u003credacted\u003e","unset":""}`; got != want {
		t.Errorf("JSON = %s, want %s", got, want)
	}
	y, err := yaml.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(y), "key: <redacted>\nunset: \"\"\n"; got != want {
		t.Errorf("YAML = %q, want %q", got, want)
	}
	var back holder
	if err := yaml.Unmarshal([]byte("key: hunter2\n"), &back); err == nil {
		t.Error("yaml.Unmarshal accepted an inline secret")
	}
}

func TestSecretSlog(t *testing.T) {
	c := loadFull(t)
	for _, h := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
	} {
		var buf bytes.Buffer
		log := slog.New(h.new(&buf))
		log.Info("secrets",
			"secret", c.Azure.ClientSecret,
			slog.Any("ptr", &c.Dataverse.WebhookKey),
			"azure", c.Azure, // a struct without LogValue
			"admin", &c.Admin,
			"config", c,
			"configValue", *c,
		)
		out := buf.String()
		assertNoSecrets(t, h.name+" handler", out)
		if !strings.Contains(out, RedactedText) || !strings.Contains(out, "graph.base_url") {
			t.Errorf("%s handler output lacks expected content:\n%s", h.name, out)
		}
	}
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	c := loadFull(t)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, arg := range []any{c, *c, c.Azure, &c.Azure, c.Dataverse, c.Admin} {
			assertNoSecrets(t, fmt.Sprintf("Sprintf(%q, %T)", format, arg), fmt.Sprintf(format, arg))
		}
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "json", string(j))
	var fromJSON map[string]any
	if err := json.Unmarshal(j, &fromJSON); err != nil {
		t.Fatalf("Config JSON does not parse: %v\n%s", err, j)
	}
	if got := fromJSON["sync"].(map[string]any)["mass_delete"].(map[string]any)["max_fraction"]; got != 0.1 {
		t.Errorf("JSON sync.mass_delete.max_fraction = %v", got)
	}
	if got := fromJSON["dataverse"].(map[string]any)["webhook_key"]; got != RedactedText {
		t.Errorf("JSON dataverse.webhook_key = %v", got)
	}
	y, err := yaml.Marshal(c.Azure)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "yaml", string(y))
	for _, s := range c.Settings() {
		assertNoSecrets(t, "Settings", s.Value)
	}
	// Problems never quote secrets either.
	c.Admin.Token = NewSecret("short-XYZ")
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "short-XYZ") {
		t.Errorf("Validate = %v", err)
	}
}

func TestRedacted(t *testing.T) {
	c := loadFull(t)
	r := c.Redacted()
	for _, s := range []Secret{r.Azure.ClientSecret, r.Dataverse.WebhookKey, r.Admin.Token} {
		if s.Reveal() != RedactedText {
			t.Errorf("Redacted copy reveals %q", s.Reveal())
		}
	}
	if r.Azure.CertificatePassword.IsSet() {
		t.Error("unset secret became set")
	}
	if want := "postgres://bookingsync:<redacted>@db.internal:5432/bookingsync?sslmode=require"; r.Store != want {
		t.Errorf("Store = %q, want %q", r.Store, want)
	}
	// The original is untouched.
	if c.Azure.ClientSecret.Reveal() != fullSecret || !strings.Contains(c.Store, pgPassword) {
		t.Error("Redacted modified the original")
	}
	r.Sync.OutlookMayChange[0] = "changed"
	if c.Sync.OutlookMayChange[0] != "start" {
		t.Error("Redacted shares the outlook_may_change slice")
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:p@h/db":              "postgres://u:<redacted>@h/db",
		"postgres://u@h/db":                "postgres://u@h/db",
		"postgresql://h/db?password=p&x=1": "postgresql://h/db?password=<redacted>&x=1",
		"postgres://u:p%zz@h/db":           "postgres://<redacted>",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactedYAMLGolden(t *testing.T) {
	c := loadFull(t)
	got, err := c.RedactedYAML()
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "RedactedYAML", string(got))
	golden := filepath.Join("testdata", "redacted.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("RedactedYAML (-want +got):\n%s", diff)
	}

	// The redacted output, with secrets supplied again, loads back to the
	// same configuration: it is a faithful rendering. Secret keys must be
	// dropped first since they cannot be written in YAML.
	var doc map[string]any
	if err := yaml.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	doc["store"] = c.Store
	for _, sec := range []struct{ section, key string }{
		{"azure", "client_secret"}, {"azure", "certificate"}, {"azure", "certificate_password"},
		{"dataverse", "webhook_key"}, {"admin", "token"},
	} {
		delete(doc[sec.section].(map[string]any), sec.key)
	}
	round, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "round.yaml", string(round))
	c2, _, err := Load(path, []string{
		"HOME=/home/test",
		"BOOKINGSYNC_AZURE_CLIENT_SECRET=" + fullSecret,
		"BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY=" + fullWebhook,
		"BOOKINGSYNC_ADMIN_TOKEN=" + fullToken,
	})
	if err != nil {
		t.Fatalf("Load round trip: %v", err)
	}
	if diff := cmp.Diff(c, c2, cmp.AllowUnexported(Config{}), cmp.Comparer(func(a, b map[string]string) bool { return true })); diff != "" {
		t.Errorf("round trip (-orig +reloaded):\n%s", diff)
	}
}

func TestSettings(t *testing.T) {
	c := loadFull(t)
	byKey := map[string]Setting{}
	for _, s := range c.Settings() {
		byKey[s.Key] = s
	}
	for _, want := range []Setting{
		{Key: "azure.client_secret", Env: "BOOKINGSYNC_AZURE_CLIENT_SECRET", Value: RedactedText, Source: "$BOOKINGSYNC_AZURE_CLIENT_SECRET", Secret: true},
		{Key: "azure.certificate_password", Env: "BOOKINGSYNC_AZURE_CERTIFICATE_PASSWORD", Value: "", Source: "default", Secret: true},
		{Key: "sync.window_past", Env: "BOOKINGSYNC_SYNC_WINDOW_PAST", Value: "7d", Source: "testdata/full.yaml:22"},
		{Key: "graph.renew_when_remaining", Env: "BOOKINGSYNC_GRAPH_RENEW_WHEN_REMAINING", Value: "1d", Source: "testdata/full.yaml:16"},
		{Key: "sync.outlook_may_change", Env: "BOOKINGSYNC_SYNC_OUTLOOK_MAY_CHANGE", Value: "start,end", Source: "testdata/full.yaml:27"},
		{Key: "azure.managed_identity", Env: "BOOKINGSYNC_AZURE_MANAGED_IDENTITY", Value: "false", Source: "default"},
	} {
		if diff := cmp.Diff(want, byKey[want.Key]); diff != "" {
			t.Errorf("setting %s (-want +got):\n%s", want.Key, diff)
		}
	}
}
