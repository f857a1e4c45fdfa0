package httpx

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// TokenSource hands out bearer tokens for one scope (for example
// "https://graph.microsoft.com/.default" or "https://org.crm.dynamics.com/.default").
//
// It keeps no cache of its own: azidentity credentials cache tokens in memory
// and refresh them before expiry, so Token is cheap to call per request.
type TokenSource struct {
	Cred  azcore.TokenCredential
	Scope string
	// Now is used to build the cache-bypass claims; nil means time.Now.
	Now func() time.Time
}

// NewTokenSource returns a TokenSource for cred and scope.
func NewTokenSource(cred azcore.TokenCredential, scope string) *TokenSource {
	return &TokenSource{Cred: cred, Scope: scope}
}

// Token returns a (possibly cached) access token.
func (ts *TokenSource) Token(ctx context.Context) (string, error) {
	return ts.get(ctx, "")
}

// Refresh returns a token that does not come from the credential's cache.
//
// azidentity only skips its cache when TokenRequestOptions.Claims is
// non-empty (MSAL's silent flow is bypassed for claims requests). So Refresh
// sends claims: the challenge's claims when the 401 carried a CAE claims
// challenge, otherwise a harmless "nbf" claims request
// {"access_token":{"nbf":{"essential":true,"value":"<unix now>"}}}, which
// the Microsoft identity platform accepts and which forces a new token.
func (ts *TokenSource) Refresh(ctx context.Context, challengeClaims string) (string, error) {
	claims := challengeClaims
	if claims == "" {
		now := time.Now
		if ts.Now != nil {
			now = ts.Now
		}
		claims = `{"access_token":{"nbf":{"essential":true,"value":"` + strconv.FormatInt(now().Unix(), 10) + `"}}}`
	}
	return ts.get(ctx, claims)
}

func (ts *TokenSource) get(ctx context.Context, claims string) (string, error) {
	if ts == nil || ts.Cred == nil {
		return "", errors.New("token source has no credential")
	}
	tok, err := ts.Cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{ts.Scope}, Claims: claims})
	if err != nil {
		return "", fmt.Errorf("get token for %s: %w", ts.Scope, err)
	}
	return tok.Token, nil
}

// ChallengeClaims extracts and decodes the claims parameter of a Bearer
// WWW-Authenticate challenge (CAE "insufficient_claims"), or "" if absent.
func ChallengeClaims(wwwAuthenticate string) string {
	const key = `claims="`
	i := strings.Index(wwwAuthenticate, key)
	if i < 0 {
		return ""
	}
	rest := wwwAuthenticate[i+len(key):]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	raw := rest[:j]
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(raw); err == nil {
			return string(b)
		}
	}
	return ""
}
