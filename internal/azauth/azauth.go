// Package azauth builds the azcore.TokenCredential the service uses for
// Graph and Dataverse: client secret, client certificate (PEM or PFX) or
// managed identity, against the public cloud or a custom authority host
// (sovereign cloud, or the local emulator), optionally trusting an extra CA.
package azauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// PublicAuthorityHost is Entra ID's public-cloud authority host.
const PublicAuthorityHost = "https://login.microsoftonline.com/"

// Config selects and configures a credential. Exactly one of ClientSecret,
// Certificate, CertificatePath or ManagedIdentity must be set.
type Config struct {
	TenantID string
	ClientID string

	ClientSecret string

	// Certificate is the certificate credential itself (PEM with the
	// certificate and its private key, or PFX/PKCS#12 bytes), e.g. from
	// BOOKINGSYNC_AZURE_CERTIFICATE; CertificatePath names a file holding it.
	Certificate          []byte
	CertificatePath      string // PEM (certificate + private key) or PFX/PKCS#12
	CertificatePassword  string // for an encrypted PFX or PEM key
	SendCertificateChain bool   // x5c header, for subject-name/issuer auth

	ManagedIdentity         bool
	ManagedIdentityClientID string // user-assigned identity; empty = system-assigned

	// AuthorityHost is e.g. "https://login.microsoftonline.us/" or the
	// emulator's URL. Empty means $AZURE_AUTHORITY_HOST, else the public cloud.
	AuthorityHost string
	// ExtraCAFile is a PEM bundle trusted in addition to the system roots,
	// for the token endpoint and for anything using HTTPClient's result.
	ExtraCAFile string
}

var errNoMethod = errors.New("azauth: set exactly one of ClientSecret, Certificate, CertificatePath or ManagedIdentity")

// NewCredential builds the credential described by cfg. Instance discovery
// (a call to login.microsoftonline.com) is disabled whenever the authority
// host is not the public cloud's, so disconnected and emulated clouds work.
func NewCredential(cfg Config) (azcore.TokenCredential, error) {
	n := 0
	for _, set := range []bool{cfg.ClientSecret != "", len(cfg.Certificate) > 0, cfg.CertificatePath != "", cfg.ManagedIdentity} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errNoMethod
	}

	hc, err := HTTPClient(cfg.ExtraCAFile)
	if err != nil {
		return nil, err
	}
	host := AuthorityHost(cfg.AuthorityHost)
	copts := azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: host},
		Transport: hc,
	}
	disableDiscovery := !IsPublicCloud(host)

	switch {
	case cfg.ManagedIdentity:
		opts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: copts}
		if cfg.ManagedIdentityClientID != "" {
			opts.ID = azidentity.ClientID(cfg.ManagedIdentityClientID)
		}
		cred, err := azidentity.NewManagedIdentityCredential(opts)
		if err != nil {
			return nil, fmt.Errorf("managed identity credential: %w", err)
		}
		return cred, nil

	case cfg.ClientSecret != "":
		if err := requireApp(cfg); err != nil {
			return nil, err
		}
		cred, err := azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: copts, DisableInstanceDiscovery: disableDiscovery})
		if err != nil {
			return nil, fmt.Errorf("client secret credential: %w", err)
		}
		return cred, nil

	default:
		if err := requireApp(cfg); err != nil {
			return nil, err
		}
		data, source := cfg.Certificate, "(inline)"
		if len(data) == 0 {
			var err error
			if data, err = os.ReadFile(cfg.CertificatePath); err != nil {
				return nil, fmt.Errorf("read client certificate: %w", err)
			}
			source = cfg.CertificatePath
		}
		var pw []byte
		if cfg.CertificatePassword != "" {
			pw = []byte(cfg.CertificatePassword)
		}
		// The error never quotes data: it holds the private key.
		certs, key, err := azidentity.ParseCertificates(data, pw)
		if err != nil {
			return nil, fmt.Errorf("parse client certificate %s: %w", source, err)
		}
		cred, err := azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{
				ClientOptions:            copts,
				DisableInstanceDiscovery: disableDiscovery,
				SendCertificateChain:     cfg.SendCertificateChain,
			})
		if err != nil {
			return nil, fmt.Errorf("client certificate credential: %w", err)
		}
		return cred, nil
	}
}

func requireApp(cfg Config) error {
	if cfg.TenantID == "" || cfg.ClientID == "" {
		return errors.New("azauth: TenantID and ClientID are required")
	}
	return nil
}

// AuthorityHost resolves the host the same way azidentity does: explicit
// value, then $AZURE_AUTHORITY_HOST, then the public cloud. The result ends
// with "/".
func AuthorityHost(h string) string {
	if h == "" {
		h = os.Getenv("AZURE_AUTHORITY_HOST")
	}
	if h == "" {
		h = PublicAuthorityHost
	}
	if !strings.HasSuffix(h, "/") {
		h += "/"
	}
	return h
}

// IsPublicCloud reports whether host is the public cloud's authority host.
func IsPublicCloud(host string) bool {
	return strings.EqualFold(strings.TrimSuffix(strings.TrimSpace(host), "/"), strings.TrimSuffix(PublicAuthorityHost, "/"))
}

// HTTPClient returns an *http.Client whose TLS config trusts the system
// roots plus the certificates in extraCAFile (PEM). With no file it returns
// a client using a clone of http.DefaultTransport.
func HTTPClient(extraCAFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if extraCAFile != "" {
		pem, err := os.ReadFile(extraCAFile)
		if err != nil {
			return nil, fmt.Errorf("read extra CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("extra CA file %s: no PEM certificates found", extraCAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}
