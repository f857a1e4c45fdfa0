package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const (
	testTenant  = "11111111-2222-3333-4444-555555555555"
	testClient  = "66666666-7777-8888-9999-000000000000"
	testSecret  = "s3cr3t-client-value"
	testWebhook = "webhook-key-0123456789"
	testToken   = "admin-token-0123456789"
)

// validConfig is a minimal valid configuration built in code (no origins).
func validConfig(t *testing.T) *Config {
	t.Helper()
	env := map[string]string{"HOME": "/home/test"}
	c := defaults(env)
	c.PublicURL = "https://sync.example.com"
	c.Azure.TenantID = testTenant
	c.Azure.ClientID = testClient
	c.Azure.ClientSecret = NewSecret(testSecret)
	c.Dataverse.OrgURL = "https://contoso.crm.dynamics.com"
	c.Dataverse.WebhookKey = NewSecret(testWebhook)
	c.finalize(env)
	if err := c.Validate(); err != nil {
		t.Fatalf("validConfig does not validate:\n%v", err)
	}
	return c
}

// baseEnv is the environment of a minimal valid Load without a file.
func baseEnv() []string {
	return []string{
		"HOME=/home/test",
		"PATH=/usr/bin", // unrelated variables are ignored silently
		"BOOKINGSYNC_PUBLIC_URL=https://sync.example.com",
		"BOOKINGSYNC_AZURE_TENANT_ID=" + testTenant,
		"BOOKINGSYNC_AZURE_CLIENT_ID=" + testClient,
		"BOOKINGSYNC_AZURE_CLIENT_SECRET=" + testSecret,
		"BOOKINGSYNC_DATAVERSE_ORG_URL=https://contoso.crm.dynamics.com",
		"BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY=" + testWebhook,
	}
}

// without drops the named variables from env.
func without(env []string, names ...string) []string {
	var out []string
outer:
	for _, kv := range env {
		for _, n := range names {
			if len(kv) > len(n) && kv[:len(n)+1] == n+"=" {
				continue outer
			}
		}
		out = append(out, kv)
	}
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// problemStrings returns the lines of an *Error, failing on other errors.
func problemStrings(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error is %T, not *Error: %v", err, err)
	}
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p.Error()
	}
	return out
}

// testCert returns PEM with a self-signed certificate and its PKCS#8 RSA
// key (Entra ID takes only RSA).
func testCert(t *testing.T, notAfter time.Time) []byte {
	t.Helper()
	return testCertWithKey(t, notAfter, testRSAKey(t))
}

var testRSAKeyOnce = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

func testRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	key, err := testRSAKeyOnce()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func testECDSAKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// testCertWithKey returns PEM with a self-signed certificate for key and the key (PKCS#8).
func testCertWithKey(t *testing.T, notAfter time.Time, key crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bookingsync test"},
		NotBefore:    notAfter.Add(-48 * time.Hour),
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})...)
}
