package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestInlineCertificate: BOOKINGSYNC_AZURE_CERTIFICATE carries the PEM
// (certificate and key) itself. It is a secret: only from the environment,
// exactly one credential kind, never shown.
func TestInlineCertificate(t *testing.T) {
	pemText := string(testCert(t, time.Now().Add(365*24*time.Hour)))
	certEnv := "BOOKINGSYNC_AZURE_CERTIFICATE=" + pemText
	// with returns a fresh environment without the client secret, plus extra.
	with := func(extra ...string) []string {
		return append(without(baseEnv(), "BOOKINGSYNC_AZURE_CLIENT_SECRET"), extra...)
	}

	t.Run("loads", func(t *testing.T) {
		c, warnings, err := Load("", with(certEnv))
		if err != nil || len(warnings) > 0 {
			t.Fatalf("Load: %v %q", err, warnings)
		}
		if c.Azure.Certificate.Reveal() != pemText {
			t.Error("certificate content changed")
		}
		if k := c.Azure.CredentialKind(); k != CredentialCertificate {
			t.Errorf("CredentialKind = %q", k)
		}

		// Redacted everywhere the configuration is shown.
		var settings Setting
		for _, s := range c.Settings() {
			if s.Key == "azure.certificate" {
				settings = s
			}
		}
		want := Setting{Key: "azure.certificate", Env: "BOOKINGSYNC_AZURE_CERTIFICATE", Value: RedactedText, Source: "$BOOKINGSYNC_AZURE_CERTIFICATE", Secret: true}
		if diff := cmp.Diff(want, settings); diff != "" {
			t.Errorf("setting (-want +got):\n%s", diff)
		}
		y, err := c.RedactedYAML()
		if err != nil {
			t.Fatal(err)
		}
		j, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var logged bytes.Buffer
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", c, "azure", c.Azure)
		keyLine := strings.Split(pemText[strings.Index(pemText, "PRIVATE KEY-----\n")+len("PRIVATE KEY-----\n"):], "\n")[0]
		for what, out := range map[string]string{
			"RedactedYAML": string(y), "JSON": string(j), "slog": logged.String(),
			"%v": fmt.Sprintf("%v", c), "%+v azure": fmt.Sprintf("%+v", c.Azure), "%#v azure": fmt.Sprintf("%#v", c.Azure),
		} {
			if strings.Contains(out, keyLine) || strings.Contains(out, "BEGIN") {
				t.Errorf("%s shows the certificate:\n%s", what, out)
			}
		}
		if !strings.Contains(string(y), "certificate: "+RedactedText) {
			t.Errorf("RedactedYAML lacks the redacted certificate:\n%s", y)
		}
	})

	expired := string(testCert(t, time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC)))
	ecdsa := string(testCertWithKey(t, time.Now().Add(time.Hour), testECDSAKey(t)))
	certFile := writeFile(t, "app.pem", pemText)
	tests := []struct {
		name string
		env  []string
		want []string
		// hint: a parse error (azidentity's words, not pinned) with this hint.
		hint string
	}{
		{name: "and a client secret", env: append(baseEnv(), certEnv), want: []string{
			"azure: more than one credential configured: client_secret ($BOOKINGSYNC_AZURE_CLIENT_SECRET), certificate ($BOOKINGSYNC_AZURE_CERTIFICATE) (configure exactly one)",
		}},
		{name: "and managed identity", env: with(certEnv, "BOOKINGSYNC_AZURE_MANAGED_IDENTITY=true"), want: []string{
			"azure: more than one credential configured: certificate ($BOOKINGSYNC_AZURE_CERTIFICATE), managed_identity ($BOOKINGSYNC_AZURE_MANAGED_IDENTITY) (configure exactly one)",
		}},
		{name: "and certificate_file", env: with(certEnv, "BOOKINGSYNC_AZURE_CERTIFICATE_FILE="+certFile), want: []string{
			"azure.certificate: set both by BOOKINGSYNC_AZURE_CERTIFICATE and by azure.certificate_file (use only one; $BOOKINGSYNC_AZURE_CERTIFICATE)",
		}},
		{name: "literal \\n instead of line breaks", env: with("BOOKINGSYNC_AZURE_CERTIFICATE=" + strings.ReplaceAll(pemText, "\n", `\n`)),
			hint: `the value has literal \n sequences instead of line breaks; BOOKINGSYNC_AZURE_CERTIFICATE takes the PEM text itself, with CERTIFICATE and unencrypted PRIVATE KEY blocks, e.g. BOOKINGSYNC_AZURE_CERTIFICATE="$(cat app.pem)", or use azure.certificate_file`},
		{name: "a path instead of the PEM", env: with("BOOKINGSYNC_AZURE_CERTIFICATE=/etc/bookingsync/app.pem"),
			hint: "no PEM block found; BOOKINGSYNC_AZURE_CERTIFICATE takes the PEM text itself, with CERTIFICATE and unencrypted PRIVATE KEY blocks; for a file path or a PFX use azure.certificate_file"},
		{name: "certificate without key", env: with("BOOKINGSYNC_AZURE_CERTIFICATE=" + pemText[:strings.Index(pemText, "-----BEGIN PRIVATE KEY")]), want: []string{
			"azure.certificate: cannot parse certificate: found no private key (BOOKINGSYNC_AZURE_CERTIFICATE takes the PEM text itself, with CERTIFICATE and unencrypted PRIVATE KEY blocks; use azure.certificate_file for a PFX; $BOOKINGSYNC_AZURE_CERTIFICATE)",
		}},
		{name: "ECDSA key", env: with("BOOKINGSYNC_AZURE_CERTIFICATE=" + ecdsa), want: []string{
			"azure.certificate: the private key is ECDSA; Entra ID client certificates need an RSA key ($BOOKINGSYNC_AZURE_CERTIFICATE)",
		}},
		{name: "expired", env: with("BOOKINGSYNC_AZURE_CERTIFICATE=" + expired), want: []string{
			"azure.certificate: certificate expired on 2020-01-02 ($BOOKINGSYNC_AZURE_CERTIFICATE)",
		}},
		{name: "with a password", env: with(certEnv, "BOOKINGSYNC_AZURE_CERTIFICATE_PASSWORD=pw"), want: []string{
			"azure.certificate_password: set with BOOKINGSYNC_AZURE_CERTIFICATE, which takes PEM with an unencrypted key (a password is only for a PFX in azure.certificate_file; $BOOKINGSYNC_AZURE_CERTIFICATE_PASSWORD)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load("", tt.env)
			got := problemStrings(t, err)
			if tt.hint != "" {
				if len(got) != 1 || !strings.HasPrefix(got[0], "azure.certificate: cannot parse certificate: ") ||
					!strings.HasSuffix(got[0], " ("+tt.hint+"; $BOOKINGSYNC_AZURE_CERTIFICATE)") {
					t.Errorf("problems = %q", got)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			for _, p := range got {
				if strings.Contains(p, "BEGIN") || strings.Contains(p, "MII") {
					t.Errorf("problem quotes the certificate: %s", p)
				}
			}
		})
	}
}
