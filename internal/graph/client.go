// Package graph is a thin typed Microsoft Graph v1.0 client for the parts
// bookingsync uses: subscriptions, Outlook events (CRUD, extended-property
// lookup, calendarView and its delta), $batch and users. It sends requests
// through an httpx.Doer (normally *httpx.Client, which adds the token and
// retries) and limits concurrency per mailbox, as Outlook allows only four
// concurrent requests per app and mailbox.
package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bookingsync/bookingsync/internal/httpx"
)

// Defaults.
const (
	DefaultBaseURL            = "https://graph.microsoft.com/v1.0"
	DefaultMailboxConcurrency = 4 // Outlook's per app+mailbox limit
	// Scope is the token scope for Graph with application permissions.
	Scope = "https://graph.microsoft.com/.default"
)

// preferImmutableID keeps event ids stable when items move between folders.
// It only applies to the request that carries it, so every request does.
const preferImmutableID = `IdType="ImmutableId"`

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 1 << 20

// Options configure a Client. Zero values select the defaults.
type Options struct {
	BaseURL            string // e.g. the emulator's https://127.0.0.1:8443/v1.0
	MailboxConcurrency int    // in-flight requests per mailbox
	Now                func() time.Time
}

// Client is a Graph client. It is safe for concurrent use.
type Client struct {
	baseURL *url.URL
	doer    httpx.Doer
	limiter *httpx.KeyedLimiter
	now     func() time.Time
}

// New returns a Client sending requests through doer.
func New(doer httpx.Doer, opts Options) (*Client, error) {
	raw := opts.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("graph: invalid base URL %q", raw)
	}
	n := opts.MailboxConcurrency
	if n <= 0 {
		n = DefaultMailboxConcurrency
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Client{baseURL: u, doer: doer, limiter: httpx.NewKeyedLimiter(n), now: now}, nil
}

// BaseURL returns the base URL without a trailing slash.
func (c *Client) BaseURL() string { return c.baseURL.String() }

// call describes one request.
type call struct {
	method  string
	path    string     // relative to the base URL ("/users/x/events"), or an absolute next/delta link
	query   url.Values // added to path
	body    any        // JSON-encoded when non-nil
	header  http.Header
	mailbox string // concurrency key; "" means no per-mailbox limit
	noRetry bool
	out     any // JSON-decoded on 2xx when non-nil
}

// resolve turns a relative path or an absolute link into a URL, refusing
// links that point away from the Graph host (they would receive our token).
func (c *Client) resolve(path string, q url.Values) (string, error) {
	if strings.HasPrefix(path, "https://") || strings.HasPrefix(path, "http://") {
		u, err := url.Parse(path)
		if err != nil {
			return "", fmt.Errorf("parse link: %w", err)
		}
		if !strings.EqualFold(u.Scheme, c.baseURL.Scheme) || !strings.EqualFold(u.Host, c.baseURL.Host) {
			return "", fmt.Errorf("link %s is not on %s", u.Redacted(), c.baseURL.Host)
		}
		if len(q) > 0 {
			return "", fmt.Errorf("query parameters cannot be added to a link")
		}
		return u.String(), nil
	}
	s := c.baseURL.String() + path
	if len(q) > 0 {
		s += "?" + encodeQuery(q)
	}
	return s, nil
}

// encodeQuery is url.Values.Encode with two changes: spaces become %20
// rather than "+" (OData filters are full of spaces and "+" is ambiguous),
// and "$" stays literal as in the Graph docs ($filter, $expand).
func encodeQuery(q url.Values) string {
	esc := func(s string) string {
		s = url.QueryEscape(s) // a literal "+" becomes %2B, so "+" below is always a space
		s = strings.ReplaceAll(s, "+", "%20")
		return strings.ReplaceAll(s, "%24", "$")
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range q[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(esc(k))
			b.WriteByte('=')
			b.WriteString(esc(v))
		}
	}
	return b.String()
}

func (c *Client) do(ctx context.Context, cl call) (http.Header, error) {
	target, err := c.resolve(cl.path, cl.query)
	if err != nil {
		return nil, err
	}
	var body io.Reader
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return nil, fmt.Errorf("encode request body: %w", err)
		}
		body = bytes.NewReader(b) // bytes.Reader gives GetBody, so retries can replay it
	}
	if cl.noRetry {
		ctx = httpx.WithNoRetry(ctx)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, vs := range cl.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Add("Prefer", preferImmutableID)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	if cl.mailbox != "" {
		release, err := c.limiter.Acquire(ctx, strings.ToLower(cl.mailbox))
		if err != nil {
			return nil, fmt.Errorf("wait for mailbox slot: %w", err)
		}
		defer release()
	}
	resp, err := c.doer.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return resp.Header, parseError(resp.StatusCode, resp.Header, b, c.now())
	}
	if cl.out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(cl.out); err != nil {
			return resp.Header, fmt.Errorf("decode response: %w", err)
		}
	}
	return resp.Header, nil
}

// page is one page of a collection response.
type page[T any] struct {
	Value     []T    `json:"value"`
	NextLink  string `json:"@odata.nextLink"`
	DeltaLink string `json:"@odata.deltaLink"`
}

// list follows @odata.nextLink until the last page.
func list[T any](ctx context.Context, c *Client, first call) ([]T, error) {
	var all []T
	cl := first
	for {
		var p page[T]
		cl.out = &p
		if _, err := c.do(ctx, cl); err != nil {
			return nil, err
		}
		all = append(all, p.Value...)
		if p.NextLink == "" {
			return all, nil
		}
		cl = call{method: http.MethodGet, path: p.NextLink, header: first.header, mailbox: first.mailbox}
	}
}

// userPath returns /users/{id} with the id path-escaped.
func userPath(userID string) string {
	return "/users/" + pathSegment(userID)
}

// pathSegment escapes an id as one path segment. url.PathEscape leaves "."
// unescaped, so an id of "." or ".." would be a dot segment that a server
// (or a proxy) resolves, and /users/x/events/.. would address /users/x:
// those are escaped in full.
func pathSegment(id string) string {
	if id == "." || id == ".." {
		return strings.Repeat("%2E", len(id))
	}
	return url.PathEscape(id)
}

// quote renders an OData string literal: single quotes are doubled.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
