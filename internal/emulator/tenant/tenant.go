// Package tenant is the identity half of the emulated Microsoft tenant: the
// Entra ID token endpoint (client credentials with a secret or a certificate
// assertion, and an App Service style managed-identity endpoint), the OpenID
// configuration document azidentity reads, bearer-token checks for the API
// emulators, the shared clock, and the demo directory both API emulators seed from.
//
// The Graph and Dataverse emulators are Sections mounted beside it on one
// HTTPS listener; package emulator composes them.
package tenant

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Fixed identifiers of the emulated tenant, so that docs and scripts can name them.
const (
	DefaultTenantID     = "6f1c1b44-1b7a-4c55-9a3e-4a6f3a5e0c01"
	DefaultClientID     = "2b7e3f7a-93c1-4d3e-8f0e-b5a2c9d1e7a4"
	DefaultClientSecret = "emulator-client-secret"
	// ServicePrincipalID is the object id of the app's service principal; it is
	// the user id Graph and Dataverse report for the app's own writes.
	ServicePrincipalID = "0c3d6a1e-5f27-4b8e-a9d4-7e2f1b6c8a90"
)

// ErrUnauthorized is returned by Authorize for a missing, malformed, expired or
// wrong-audience token.
var ErrUnauthorized = errors.New("unauthorized")

// Config is the tenant's configuration.
type Config struct {
	TenantID      string
	ClientID      string
	ClientSecret  string
	TokenLifetime time.Duration // default 1h
	// IdentityHeader is the secret the managed-identity endpoint expects in
	// X-IDENTITY-HEADER (App Service's IDENTITY_HEADER).
	IdentityHeader string
}

// Claims are what a token check yields.
type Claims struct {
	Audience string
	AppID    string
	TenantID string
	Expires  time.Time
}

// Tenant issues and checks tokens. Safe for concurrent use.
type Tenant struct {
	mu        sync.RWMutex
	cfg       Config
	key       []byte // HMAC key signing our access tokens
	baseURL   string // https://host:port, known once the listener is up
	audiences map[string]bool
	certs     map[string]*x509.Certificate // by base64url SHA-1 thumbprint (x5t)
	offset    time.Duration                // clock offset set through the control API
	tokens    int64
}

// New returns a Tenant with defaults filled in.
func New(cfg Config) *Tenant {
	if cfg.TenantID == "" {
		cfg.TenantID = DefaultTenantID
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = DefaultClientSecret
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = time.Hour
	}
	if cfg.IdentityHeader == "" {
		cfg.IdentityHeader = randomHex(16)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &Tenant{cfg: cfg, key: key, audiences: map[string]bool{}, certs: map[string]*x509.Certificate{}}
}

// Config returns the current configuration.
func (t *Tenant) Config() Config {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.cfg
}

// SetBaseURL records the listener's https://host:port.
func (t *Tenant) SetBaseURL(u string) {
	t.mu.Lock()
	t.baseURL = strings.TrimRight(u, "/")
	t.mu.Unlock()
}

// BaseURL is the listener's https://host:port.
func (t *Tenant) BaseURL() string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.baseURL
}

// AuthorityHost is what azidentity's cloud.Configuration.ActiveDirectoryAuthorityHost takes.
func (t *Tenant) AuthorityHost() string { return t.BaseURL() + "/login/" }

// TokenURL is the client-credentials token endpoint.
func (t *Tenant) TokenURL() string {
	return t.AuthorityHost() + t.Config().TenantID + "/oauth2/v2.0/token"
}

// RegisterAudience makes the token endpoint accept scope "{aud}/.default".
func (t *Tenant) RegisterAudience(aud string) {
	t.mu.Lock()
	t.audiences[strings.TrimRight(aud, "/")] = true
	t.mu.Unlock()
}

// RegisterCertificate lets the app authenticate with client assertions signed
// by this certificate's key (as an app registration's uploaded certificate does).
func (t *Tenant) RegisterCertificate(cert *x509.Certificate) string {
	sum := sha1Thumbprint(cert.Raw)
	t.mu.Lock()
	t.certs[sum] = cert
	t.mu.Unlock()
	return sum
}

// SetTokenLifetime changes the lifetime of tokens issued from now on.
func (t *Tenant) SetTokenLifetime(d time.Duration) {
	t.mu.Lock()
	t.cfg.TokenLifetime = d
	t.mu.Unlock()
}

// Now is the tenant's clock: wall time plus the offset set by Advance. Both API
// emulators read time through it, so tests can move days ahead (change-tracking
// token expiry, sync windows) without waiting.
func (t *Tenant) Now() time.Time {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return time.Now().UTC().Add(t.offset)
}

// Advance moves the tenant's clock forward by d.
func (t *Tenant) Advance(d time.Duration) {
	t.mu.Lock()
	t.offset += d
	t.mu.Unlock()
}

// ClockOffset reports how far Advance has moved the clock.
func (t *Tenant) ClockOffset() time.Duration {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.offset
}

// TokensIssued counts tokens handed out since start.
func (t *Tenant) TokensIssued() int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.tokens
}

// Issue mints an access token for the audience. Exposed for tests and for the
// emulator's own outbound calls; clients get theirs from the token endpoint.
func (t *Tenant) Issue(aud string) (string, time.Duration) {
	t.mu.Lock()
	t.tokens++
	cfg := t.cfg
	issuer := "https://sts.windows.net/" + cfg.TenantID + "/"
	t.mu.Unlock()
	now := t.Now()
	claims := jwt.MapClaims{
		"aud":   aud,
		"iss":   issuer,
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(cfg.TokenLifetime).Unix(),
		"appid": cfg.ClientID,
		"tid":   cfg.TenantID,
		"oid":   ServicePrincipalID,
		"sub":   ServicePrincipalID,
		"idtyp": "app",
		"roles": []string{"Calendars.ReadWrite", "User.Read.All"},
		"ver":   "1.0",
		"uti":   randomHex(8),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	s, err := tok.SignedString(t.key)
	if err != nil {
		panic(fmt.Sprintf("sign token: %v", err)) // HS256 with a fixed key cannot fail
	}
	return s, cfg.TokenLifetime
}

// Authorize checks r's bearer token for the audience.
func (t *Tenant) Authorize(r *http.Request, aud string) (Claims, error) {
	h := r.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || raw == "" {
		return Claims{}, fmt.Errorf("%w: no bearer token", ErrUnauthorized)
	}
	var mc jwt.MapClaims
	_, err := jwt.ParseWithClaims(raw, &mc, func(*jwt.Token) (any, error) { return t.key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(t.Now), jwt.WithAudience(aud))
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	c := Claims{Audience: aud}
	c.AppID, _ = mc["appid"].(string)
	c.TenantID, _ = mc["tid"].(string)
	if exp, err := mc.GetExpirationTime(); err == nil && exp != nil {
		c.Expires = exp.Time
	}
	return c, nil
}

// Mount registers the identity endpoints on mux.
func (t *Tenant) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /login/{tenant}/v2.0/.well-known/openid-configuration", t.openIDConfiguration)
	// MSAL keeps only the scheme and host of a custom authority host and asks
	// for discovery at the root; the document then points it back to /login.
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", t.openIDConfiguration)
	mux.HandleFunc("POST /login/{tenant}/oauth2/v2.0/token", t.token)
	mux.HandleFunc("GET /msi/token", t.managedIdentityToken)
}

func (t *Tenant) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	tid := r.PathValue("tenant")
	if !t.knownTenant(tid) {
		writeAADError(w, http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant '"+tid+"' not found.")
		return
	}
	base := t.AuthorityHost() + tid
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"issuer":                                t.AuthorityHost() + t.Config().TenantID + "/v2.0",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"tenant_region_scope":                   "EU",
	})
}

func (t *Tenant) knownTenant(tid string) bool {
	cfg := t.Config()
	return strings.EqualFold(tid, cfg.TenantID) || tid == "organizations" || tid == "common"
}

func (t *Tenant) token(w http.ResponseWriter, r *http.Request) {
	tid := r.PathValue("tenant")
	if !t.knownTenant(tid) || tid == "common" || tid == "organizations" {
		writeAADError(w, http.StatusBadRequest, "invalid_request",
			"AADSTS90002: Tenant '"+tid+"' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeAADError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
		return
	}
	cfg := t.Config()
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		writeAADError(w, http.StatusBadRequest, "unsupported_grant_type",
			"AADSTS70003: The app requested an unsupported grant type '"+gt+"'.")
		return
	}
	clientID := r.PostForm.Get("client_id")
	if u, p, ok := r.BasicAuth(); ok { // client_secret_basic
		clientID = u
		r.PostForm.Set("client_secret", p)
	}
	if clientID != cfg.ClientID {
		writeAADError(w, http.StatusBadRequest, "unauthorized_client",
			"AADSTS700016: Application with identifier '"+clientID+"' was not found in the directory.")
		return
	}
	switch {
	case r.PostForm.Get("client_assertion") != "":
		if err := t.checkAssertion(r.PostForm.Get("client_assertion_type"), r.PostForm.Get("client_assertion")); err != nil {
			writeAADError(w, http.StatusUnauthorized, "invalid_client", err.Error())
			return
		}
	case r.PostForm.Get("client_secret") != "":
		if !hmac.Equal([]byte(r.PostForm.Get("client_secret")), []byte(cfg.ClientSecret)) {
			writeAADError(w, http.StatusUnauthorized, "invalid_client",
				"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
			return
		}
	default:
		writeAADError(w, http.StatusUnauthorized, "invalid_client",
			"AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}
	aud, err := t.audienceForScope(r.PostForm.Get("scope"))
	if err != nil {
		writeAADError(w, http.StatusBadRequest, "invalid_scope", err.Error())
		return
	}
	tok, life := t.Issue(aud)
	secs := int(life / time.Second)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

// audienceForScope accepts exactly one "{resource}/.default" scope for a
// registered resource, as the v2 endpoint does for client credentials.
func (t *Tenant) audienceForScope(scope string) (string, error) {
	var fields []string
	for _, f := range strings.Fields(scope) {
		switch f {
		case "openid", "profile", "offline_access", "email": // MSAL adds these; the STS ignores them here
		default:
			fields = append(fields, f)
		}
	}
	if len(fields) != 1 || !strings.HasSuffix(fields[0], "/.default") {
		return "", fmt.Errorf("AADSTS1002012: The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)
	}
	aud := strings.TrimSuffix(fields[0], "/.default")
	t.mu.RLock()
	ok := t.audiences[aud]
	t.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("AADSTS500011: The resource principal named %s was not found in the tenant named %s.", aud, t.Config().TenantID)
	}
	return aud, nil
}

// checkAssertion verifies a certificate client assertion (private_key_jwt):
// signed with RS256 or PS256 by a registered certificate named by x5t (or
// x5t#S256), audience the token endpoint, iss and sub the client id.
func (t *Tenant) checkAssertion(typ, assertion string) error {
	if typ != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return errors.New("AADSTS700024: Client assertion type is not supported.")
	}
	cfg := t.Config()
	var mc jwt.MapClaims
	_, err := jwt.ParseWithClaims(assertion, &mc, func(tok *jwt.Token) (any, error) {
		cert := t.certificateFor(tok.Header)
		if cert == nil {
			return nil, errors.New("no registered certificate matches the assertion's x5t or x5t#S256")
		}
		return cert.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256", "PS256"}), jwt.WithTimeFunc(t.Now), jwt.WithAudience(t.TokenURL()))
	if err != nil {
		return fmt.Errorf("AADSTS700027: Client assertion failed signature validation or is malformed (%v).", err)
	}
	if iss, _ := mc["iss"].(string); iss != cfg.ClientID {
		return errors.New("AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter.")
	}
	if sub, _ := mc["sub"].(string); sub != cfg.ClientID {
		return errors.New("AADSTS700023: Client assertion subject doesn't match 'client_id' parameter.")
	}
	return nil
}

// managedIdentityToken serves the App Service managed-identity protocol
// (IDENTITY_ENDPOINT + IDENTITY_HEADER, api-version 2019-08-01), which
// azidentity.ManagedIdentityCredential uses when those variables are set.
func (t *Tenant) managedIdentityToken(w http.ResponseWriter, r *http.Request) {
	cfg := t.Config()
	if !hmac.Equal([]byte(r.Header.Get("X-IDENTITY-HEADER")), []byte(cfg.IdentityHeader)) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"statusCode": 401, "message": "Unauthorized: X-IDENTITY-HEADER is missing or wrong."})
		return
	}
	resource := strings.TrimRight(r.URL.Query().Get("resource"), "/")
	resource = strings.TrimSuffix(resource, "/.default")
	t.mu.RLock()
	ok := t.audiences[resource]
	t.mu.RUnlock()
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "message": "AADSTS500011: The resource principal named " + resource + " was not found in the tenant."})
		return
	}
	tok, life := t.Issue(resource)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"expires_on":   fmt.Sprint(t.Now().Add(life).Unix()),
		"resource":     resource,
		"token_type":   "Bearer",
		"client_id":    cfg.ClientID,
	})
}

func writeAADError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": desc + "\r\nTrace ID: " + NewGUID() + "\r\nCorrelation ID: " + NewGUID() + "\r\nTimestamp: " + time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"error_codes":       []int{aadCode(desc)},
		"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          NewGUID(),
		"correlation_id":    NewGUID(),
	})
}

func aadCode(desc string) int {
	var n int
	if _, err := fmt.Sscanf(desc, "AADSTS%d", &n); err != nil {
		return 0
	}
	return n
}

// WriteJSON writes v as a JSON response; shared by the emulator packages.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// NewGUID returns a random RFC 4122 version 4 GUID in lower case.
func NewGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// certificateFor finds the registered certificate a client assertion names.
// Thumbprints arrive base64 (MSAL) or base64url (RFC 7515); accept both.
func (t *Tenant) certificateFor(header map[string]any) *x509.Certificate {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for name, sum := range map[string]func([]byte) []byte{
		"x5t":      func(b []byte) []byte { s := sha1.Sum(b); return s[:] },
		"x5t#S256": func(b []byte) []byte { s := sha256.Sum256(b); return s[:] },
	} {
		v, _ := header[name].(string)
		want := decodeThumbprint(v)
		if want == nil {
			continue
		}
		for _, c := range t.certs {
			if hmac.Equal(sum(c.Raw), want) {
				return c
			}
		}
	}
	return nil
}

func decodeThumbprint(v string) []byte {
	if v == "" {
		return nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			return b
		}
	}
	return nil
}

func sha1Thumbprint(der []byte) string {
	s := sha1.Sum(der)
	return base64.RawURLEncoding.EncodeToString(s[:])
}
