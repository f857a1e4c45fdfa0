package tenant_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

const graphAud = "https://graph.microsoft.com"

// startTenant serves the tenant over TLS with the certificates it makes, the
// way package emulator does.
func startTenant(t *testing.T) (*tenant.Tenant, *http.Client) {
	t.Helper()
	certs, err := tenant.NewCertificates()
	if err != nil {
		t.Fatal(err)
	}
	tn := tenant.New(tenant.Config{})
	tn.RegisterAudience(graphAud)
	mux := http.NewServeMux()
	tn.Mount(mux)
	mux.HandleFunc("GET /graph/v1.0/me", func(w http.ResponseWriter, r *http.Request) {
		if _, err := tn.Authorize(r, graphAud); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{certs.Server}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tn.SetBaseURL(srv.URL)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: certs.Pool()}
	return tn, &http.Client{Transport: tr}
}

func clientOptions(tn *tenant.Tenant, hc *http.Client) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: tn.AuthorityHost()},
		Transport: hc,
	}
}

func TestClientSecretCredentialGetsToken(t *testing.T) {
	tn, hc := startTenant(t)
	cfg := tn.Config()
	cred, err := azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(tn, hc), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graphAud + "/.default"}})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if time.Until(tok.ExpiresOn) < 50*time.Minute {
		t.Errorf("token expires in %v, want about an hour", time.Until(tok.ExpiresOn))
	}
	req, _ := http.NewRequest(http.MethodGet, tn.BaseURL()+"/graph/v1.0/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API call with the token: status %d", resp.StatusCode)
	}
	// azidentity caches: a second call must not reach the token endpoint.
	before := tn.TokensIssued()
	if _, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graphAud + "/.default"}}); err != nil {
		t.Fatal(err)
	}
	if got := tn.TokensIssued(); got != before {
		t.Errorf("second GetToken issued a new token (%d → %d); the cache should have answered", before, got)
	}
}

func TestClientSecretCredentialRefusals(t *testing.T) {
	tn, hc := startTenant(t)
	cfg := tn.Config()
	tests := []struct {
		name, tenantID, clientID, secret, scope, want string
	}{
		{"wrong secret", cfg.TenantID, cfg.ClientID, "nope", graphAud + "/.default", "AADSTS7000215"},
		{"unknown client", cfg.TenantID, "11111111-2222-3333-4444-555555555555", cfg.ClientSecret, graphAud + "/.default", "AADSTS700016"},
		{"unknown resource", cfg.TenantID, cfg.ClientID, cfg.ClientSecret, "https://vault.azure.net/.default", "AADSTS500011"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cred, err := azidentity.NewClientSecretCredential(tc.tenantID, tc.clientID, tc.secret,
				&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(tn, hc), DisableInstanceDiscovery: true})
			if err != nil {
				t.Fatal(err)
			}
			_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{tc.scope}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("GetToken error = %v, want one mentioning %s", err, tc.want)
			}
		})
	}
}

func TestClientCertificateCredential(t *testing.T) {
	tn, hc := startTenant(t)
	cfg := tn.Config()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "bookingsync app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	cred, err := azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ClientID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: clientOptions(tn, hc), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	scope := policy.TokenRequestOptions{Scopes: []string{graphAud + "/.default"}}
	if _, err := cred.GetToken(context.Background(), scope); err == nil || !strings.Contains(err.Error(), "AADSTS700027") {
		t.Fatalf("unregistered certificate: err = %v, want AADSTS700027", err)
	}
	tn.RegisterCertificate(cert)
	cred, _ = azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ClientID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: clientOptions(tn, hc), DisableInstanceDiscovery: true})
	if _, err := cred.GetToken(context.Background(), scope); err != nil {
		t.Fatalf("registered certificate: %v", err)
	}
}

func TestAuthorize(t *testing.T) {
	tn := tenant.New(tenant.Config{TokenLifetime: time.Minute})
	good, _ := tn.Issue(graphAud)
	other, _ := tn.Issue("https://org.crm.dynamics.com")
	foreign := tenant.New(tenant.Config{})
	forged, _ := foreign.Issue(graphAud)
	tests := []struct {
		name, header string
		ok           bool
	}{
		{"valid", "Bearer " + good, true},
		{"missing", "", false},
		{"not bearer", "Basic " + good, false},
		{"wrong audience", "Bearer " + other, false},
		{"signed by another tenant", "Bearer " + forged, false},
		{"garbage", "Bearer abc.def.ghi", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			_, err := tn.Authorize(r, graphAud)
			if (err == nil) != tc.ok {
				t.Fatalf("Authorize = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		tn.Advance(2 * time.Minute)
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+good)
		if _, err := tn.Authorize(r, graphAud); err == nil {
			t.Fatal("expired token accepted")
		}
	})
}

func TestManagedIdentityEndpoint(t *testing.T) {
	tn, hc := startTenant(t)
	cfg := tn.Config()
	t.Setenv("IDENTITY_ENDPOINT", tn.BaseURL()+"/msi/token")
	t.Setenv("IDENTITY_HEADER", cfg.IdentityHeader)
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: hc},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graphAud + "/.default"}})
	if err != nil {
		t.Fatalf("managed identity GetToken: %v", err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok.Token)
	if _, err := tn.Authorize(r, graphAud); err != nil {
		t.Fatalf("managed identity token refused: %v", err)
	}
	// Without the identity header the endpoint refuses.
	resp, err := hc.Get(tn.BaseURL() + "/msi/token?api-version=2019-08-01&resource=" + url.QueryEscape(graphAud))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no identity header: status %d, want 401", resp.StatusCode)
	}
}

func TestRouteKey(t *testing.T) {
	tests := []struct{ pattern, base, want string }{
		{"GET /graph/v1.0/users/{uid}/events/{eid}", "/graph/v1.0", "GET /users/{id}/events/{id}"},
		{"POST /graph/v1.0/subscriptions", "/graph/v1.0", "POST /subscriptions"},
		{"/graph/v1.0/users/{uid}", "/graph/v1.0", "/users/{id}"},
	}
	for _, tc := range tests {
		if got := tenant.RouteKey(tc.pattern, tc.base); got != tc.want {
			t.Errorf("RouteKey(%q) = %q, want %q", tc.pattern, got, tc.want)
		}
	}
}
