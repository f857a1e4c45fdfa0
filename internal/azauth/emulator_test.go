package azauth

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/bookingsync/bookingsync/internal/emulator"
)

// startEmulator starts the emulated tenant and returns its info
// (tenant_id, client_id, authority_host, ca_file, graph_scope, …).
func startEmulator(t *testing.T) (*emulator.Server, emulator.Info) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	emu, err := emulator.New(emulator.Options{Addr: "127.0.0.1:0", Seed: "empty", CAOut: filepath.Join(t.TempDir(), "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Stop(); cancel() })
	return emu, emu.Info()
}

// registerPEM registers the certificate of a PEM bundle with the emulated
// app registration, as uploading it in the Entra admin center does.
func registerPEM(t *testing.T, emu *emulator.Server, bundle []byte) {
	t.Helper()
	block, _ := pem.Decode(bundle)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	emu.Tenant().RegisterCertificate(cert)
}

// TestCertificateAgainstEmulator gets a Graph token from the emulator's token
// endpoint with a client certificate, given inline (BOOKINGSYNC_AZURE_CERTIFICATE)
// and as a file (azure.certificate_file); the emulator verifies the signed
// client assertion against the registered certificate.
func TestCertificateAgainstEmulator(t *testing.T) {
	emu, info := startEmulator(t)
	certFile := writeSelfSignedPEM(t)
	bundle, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	base := Config{TenantID: info["tenant_id"], ClientID: info["client_id"], AuthorityHost: info["authority_host"], ExtraCAFile: info["ca_file"]}
	scope := policy.TokenRequestOptions{Scopes: []string{info["graph_scope"]}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	inline, file := base, base
	inline.Certificate = bundle
	file.CertificatePath = certFile

	// Not yet registered: the emulator refuses the assertion, as Entra does.
	cred, err := NewCredential(inline)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cred.GetToken(ctx, scope); err == nil || !strings.Contains(err.Error(), "AADSTS700027") {
		t.Fatalf("unregistered certificate: err = %v, want AADSTS700027", err)
	}

	registerPEM(t, emu, bundle)
	for name, cfg := range map[string]Config{"inline": inline, "file": file} {
		t.Run(name, func(t *testing.T) {
			before := emu.Tenant().TokensIssued()
			cred, err := NewCredential(cfg)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := cred.GetToken(ctx, scope)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Token == "" || !tok.ExpiresOn.After(time.Now()) {
				t.Fatalf("token %+v", tok)
			}
			if n := emu.Tenant().TokensIssued() - before; n != 1 {
				t.Errorf("emulator issued %d tokens, want 1", n)
			}
		})
	}
}

// TestInlineCertificateValidation: inline and file forms are one credential
// kind, so setting both is refused, and a bad inline value's error does not
// quote it.
func TestInlineCertificateValidation(t *testing.T) {
	bundle, err := os.ReadFile(writeSelfSignedPEM(t))
	if err != nil {
		t.Fatal(err)
	}
	both := Config{TenantID: testTenant, ClientID: testClient, Certificate: bundle, CertificatePath: writeSelfSignedPEM(t)}
	if _, err := NewCredential(both); err == nil {
		t.Error("Certificate and CertificatePath together accepted")
	}
	if _, err := NewCredential(Config{TenantID: testTenant, ClientID: testClient, Certificate: bundle, ClientSecret: "x"}); err == nil {
		t.Error("Certificate and ClientSecret together accepted")
	}
	if _, err := NewCredential(Config{Certificate: bundle}); err == nil {
		t.Error("Certificate without tenant and client accepted")
	}
	secret := "-----BEGIN PRIVATE KEY-----\nnot-base64-but-secret\n-----END PRIVATE KEY-----\n"
	_, err = NewCredential(Config{TenantID: testTenant, ClientID: testClient, Certificate: []byte(secret)})
	if err == nil {
		t.Fatal("unparseable certificate accepted")
	}
	if strings.Contains(err.Error(), "not-base64-but-secret") || !strings.Contains(err.Error(), "(inline)") {
		t.Errorf("error = %v", err)
	}
}
