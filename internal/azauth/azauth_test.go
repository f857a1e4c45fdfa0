package azauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

const (
	testTenant = "11111111-2222-3333-4444-555555555555"
	testClient = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	testScope  = "https://graph.microsoft.com/.default"
)

// fakeSTS is a TLS server with the two endpoints azidentity needs when
// instance discovery is disabled. check validates the token request form.
func fakeSTS(t *testing.T, check func(form map[string]string) string) (srv *httptest.Server, caFile string, tokenCalls *atomic.Int32) {
	t.Helper()
	tokenCalls = new(atomic.Int32)
	mux := http.NewServeMux()
	srv = httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		base := "https://" + r.Host + "/" + r.PathValue("tenant")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"issuer":                 base + "/v2.0",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
		})
	})
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		tokenCalls.Add(1)
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form := map[string]string{"tenant": r.PathValue("tenant")}
		for k := range r.PostForm {
			form[k] = r.PostForm.Get(k)
		}
		if msg := check(form); msg != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": msg})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
			"access_token": "token-for-" + form["client_id"],
		})
	})
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile, tokenCalls
}

func commonChecks(form map[string]string) string {
	switch {
	case form["tenant"] != testTenant:
		return "wrong tenant " + form["tenant"]
	case form["client_id"] != testClient:
		return "wrong client_id"
	case form["grant_type"] != "client_credentials":
		return "wrong grant_type " + form["grant_type"]
	case !strings.Contains(form["scope"], testScope):
		return "wrong scope " + form["scope"]
	}
	return ""
}

func TestClientSecretCredentialAgainstFakeSTS(t *testing.T) {
	srv, caFile, calls := fakeSTS(t, func(form map[string]string) string {
		if msg := commonChecks(form); msg != "" {
			return msg
		}
		if form["client_secret"] != "s3cret" {
			return "bad secret"
		}
		return ""
	})
	cred, err := NewCredential(Config{
		TenantID: testTenant, ClientID: testClient, ClientSecret: "s3cret",
		AuthorityHost: srv.URL, ExtraCAFile: caFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 2 {
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{testScope}})
		if err != nil {
			t.Fatalf("GetToken #%d: %v", i+1, err)
		}
		if tok.Token != "token-for-"+testClient {
			t.Fatalf("token = %q", tok.Token)
		}
	}
	// The second call must come from azidentity's cache.
	if got := calls.Load(); got != 1 {
		t.Errorf("token endpoint called %d times, want 1", got)
	}
}

func TestClientSecretCredentialWrongSecret(t *testing.T) {
	srv, caFile, _ := fakeSTS(t, func(form map[string]string) string {
		if form["client_secret"] != "right" {
			return "bad secret"
		}
		return ""
	})
	cred, err := NewCredential(Config{
		TenantID: testTenant, ClientID: testClient, ClientSecret: "wrong",
		AuthorityHost: srv.URL, ExtraCAFile: caFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{testScope}}); err == nil {
		t.Fatal("GetToken succeeded with a wrong secret")
	}
}

func TestClientCertificateCredentialAgainstFakeSTS(t *testing.T) {
	srv, caFile, calls := fakeSTS(t, func(form map[string]string) string {
		if msg := commonChecks(form); msg != "" {
			return msg
		}
		if form["client_assertion_type"] != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || strings.Count(form["client_assertion"], ".") != 2 {
			return "missing client assertion"
		}
		return ""
	})
	certFile := writeSelfSignedPEM(t)
	cred, err := NewCredential(Config{
		TenantID: testTenant, ClientID: testClient, CertificatePath: certFile,
		AuthorityHost: srv.URL, ExtraCAFile: caFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{testScope}}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Errorf("token endpoint called %d times, want 1", calls.Load())
	}
}

func TestUntrustedSTSFailsWithoutExtraCA(t *testing.T) {
	srv, _, calls := fakeSTS(t, func(map[string]string) string { return "" })
	cred, err := NewCredential(Config{TenantID: testTenant, ClientID: testClient, ClientSecret: "x", AuthorityHost: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{testScope}}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate verification failure", err)
	}
	if calls.Load() != 0 {
		t.Errorf("token endpoint reached despite TLS failure")
	}
}

func TestNewCredentialValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no method", Config{TenantID: testTenant, ClientID: testClient}},
		{"two methods", Config{TenantID: testTenant, ClientID: testClient, ClientSecret: "x", ManagedIdentity: true}},
		{"secret without tenant", Config{ClientID: testClient, ClientSecret: "x"}},
		{"missing cert file", Config{TenantID: testTenant, ClientID: testClient, CertificatePath: filepath.Join(t.TempDir(), "nope.pem")}},
		{"missing CA file", Config{TenantID: testTenant, ClientID: testClient, ClientSecret: "x", ExtraCAFile: filepath.Join(t.TempDir(), "nope.pem")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewCredential(tt.cfg); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
}

func TestIsPublicCloud(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"https://login.microsoftonline.com/", true},
		{"https://login.microsoftonline.com", true},
		{"HTTPS://LOGIN.MICROSOFTONLINE.COM/", true},
		{"https://login.microsoftonline.us/", false},
		{"https://127.0.0.1:8443/", false},
	}
	for _, tt := range tests {
		if got := IsPublicCloud(tt.host); got != tt.want {
			t.Errorf("IsPublicCloud(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestAuthorityHost(t *testing.T) {
	t.Setenv("AZURE_AUTHORITY_HOST", "")
	if got := AuthorityHost(""); got != PublicAuthorityHost {
		t.Errorf("default = %q", got)
	}
	if got := AuthorityHost("https://example.test"); got != "https://example.test/" {
		t.Errorf("explicit = %q", got)
	}
	t.Setenv("AZURE_AUTHORITY_HOST", "https://env.test/")
	if got := AuthorityHost(""); got != "https://env.test/" {
		t.Errorf("env = %q", got)
	}
}

func writeSelfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bookingsync-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	b = append(b, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	p := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
