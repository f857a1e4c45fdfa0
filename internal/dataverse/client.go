package dataverse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/bookingsync/bookingsync/internal/httpx"
)

// APIVersionPath is appended to the org URL to form the default API base.
const APIVersionPath = "/api/data/v9.2"

// Defaults for Options.
const (
	DefaultPageSize = 500 // Prefer: odata.maxpagesize; Dataverse allows up to 5,000
	// DefaultMaxConcurrent keeps us well under the 52 concurrent requests
	// per user and web server (reference §5).
	DefaultMaxConcurrent = 16
	// defaultTimeout matches Microsoft's sample HttpClient (reference §5).
	defaultTimeout = 2 * time.Minute
)

// Options configure a Client.
type Options struct {
	// OrgURL is the environment URL, e.g. https://contoso.crm.dynamics.com.
	OrgURL string
	// APIBase overrides OrgURL + "/api/data/v9.2" (an emulator, a proxy).
	APIBase string
	// Scope overrides OrgURL + "/.default".
	Scope string
	// Credential provides bearer tokens. Required unless Doer is set.
	Credential azcore.TokenCredential
	// Doer, if set, sends requests as-is (it must add auth itself, e.g. an
	// *httpx.Client with Tokens). If nil, New builds an *httpx.Client with a
	// TokenSource for Credential/Scope over HTTPClient.
	Doer httpx.Doer
	// HTTPClient is the transport under the built *httpx.Client; nil means
	// an http.Client with a 2-minute timeout.
	HTTPClient *http.Client
	// MaxConcurrent bounds in-flight requests from this Client.
	MaxConcurrent int
	// PageSize is sent as Prefer: odata.maxpagesize.
	PageSize int
}

// Client calls the Dataverse Web API. It is safe for concurrent use.
type Client struct {
	base     *url.URL // API base, no trailing slash
	scope    string
	doer     httpx.Doer
	limiter  *httpx.KeyedLimiter
	pageSize int
}

// New validates opts and returns a Client.
func New(opts Options) (*Client, error) {
	org := strings.TrimRight(opts.OrgURL, "/")
	base := strings.TrimRight(opts.APIBase, "/")
	if base == "" {
		if org == "" {
			return nil, errors.New("dataverse: OrgURL or APIBase is required")
		}
		base = org + APIVersionPath
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("dataverse: invalid API base %q", base)
	}
	scope := opts.Scope
	if scope == "" && org != "" {
		scope = org + "/.default"
	}
	c := &Client{base: u, scope: scope, pageSize: opts.PageSize}
	if c.pageSize <= 0 {
		c.pageSize = DefaultPageSize
	}
	if c.pageSize > 5000 {
		return nil, fmt.Errorf("dataverse: PageSize %d exceeds 5000", c.pageSize)
	}
	n := opts.MaxConcurrent
	if n <= 0 {
		n = DefaultMaxConcurrent
	}
	c.limiter = httpx.NewKeyedLimiter(n)
	switch {
	case opts.Doer != nil:
		c.doer = opts.Doer
	case opts.Credential != nil:
		if scope == "" {
			return nil, errors.New("dataverse: Scope is required when only APIBase is given")
		}
		hc := opts.HTTPClient
		if hc == nil {
			hc = &http.Client{Timeout: defaultTimeout}
		}
		c.doer = &httpx.Client{
			HTTP:   hc,
			Tokens: httpx.NewTokenSource(opts.Credential, scope),
		}
	default:
		return nil, errors.New("dataverse: Credential or Doer is required")
	}
	return c, nil
}

// BaseURL returns the API base, e.g. https://contoso.crm.dynamics.com/api/data/v9.2.
func (c *Client) BaseURL() string { return c.base.String() }

// Scope returns the token scope, e.g. https://contoso.crm.dynamics.com/.default.
func (c *Client) Scope() string { return c.scope }

// request is one Web API call.
type request struct {
	method  string
	path    string // relative to base, e.g. "bookableresourcebookings(…)"; or
	abs     string // an absolute nextLink/deltaLink, used verbatim
	query   string // raw, already escaped
	body    any
	headers map[string]string
}

// do sends r and returns the response for 2xx; other statuses become *Error.
// The caller closes the body.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	var target string
	if r.abs != "" {
		if err := c.sameOrigin(r.abs); err != nil {
			return nil, err
		}
		target = r.abs
	} else {
		target = c.base.String() + "/" + r.path
		if r.query != "" {
			target += "?" + r.query
		}
	}
	var body io.Reader
	if r.body != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // keep <, >, & literal: authvalue and ParameterXml are XML
		if err := enc.Encode(r.body); err != nil {
			return nil, fmt.Errorf("dataverse: encode %s body: %w", r.method, err)
		}
		body = bytes.NewReader(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))) // replayable: NewRequest sets GetBody
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("dataverse: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-MaxVersion", "4.0")
	req.Header.Set("OData-Version", "4.0")
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}

	release, err := c.limiter.Acquire(ctx, "dataverse")
	if err != nil {
		return nil, fmt.Errorf("dataverse: %s %s: %w", r.method, redactURL(target), err)
	}
	defer release()
	resp, err := c.doer.Do(req)
	if err != nil {
		return nil, fmt.Errorf("dataverse: %s %s: %w", r.method, redactURL(target), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, parseError(resp)
	}
	return resp, nil
}

// doJSON sends r and decodes a JSON body into out (if out is non-nil).
func (c *Client) doJSON(ctx context.Context, r request, out any) (*http.Response, error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp, fmt.Errorf("dataverse: decode %s %s: %w", r.method, r.path, err)
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp, nil
}

// sameOrigin refuses links that point elsewhere: nextLink/deltaLink come
// from the server, but we attach a bearer token to them.
func (c *Client) sameOrigin(link string) error {
	u, err := url.Parse(link)
	if err != nil {
		return fmt.Errorf("dataverse: bad link %q: %w", link, err)
	}
	if !strings.EqualFold(u.Scheme, c.base.Scheme) || !strings.EqualFold(u.Host, c.base.Host) {
		return fmt.Errorf("dataverse: link %s is not on %s", redactURL(link), c.base.Host)
	}
	return nil
}

// WhoAmI returns the ids of the calling (application) user.
func (c *Client) WhoAmI(ctx context.Context) (*WhoAmIResponse, error) {
	var out WhoAmIResponse
	if _, err := c.doJSON(ctx, request{method: http.MethodGet, path: "WhoAmI"}, &out); err != nil {
		return nil, fmt.Errorf("who am i: %w", err)
	}
	return &out, nil
}

// Get reads one row into out (a *Booking, *BookableResource, map, …).
func (c *Client) Get(ctx context.Context, entitySet, id string, q Query, out any) error {
	p, err := rowPath(entitySet, id)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	qs, err := q.Encode()
	if err != nil {
		return fmt.Errorf("get %s: %w", entitySet, err)
	}
	if _, err := c.doJSON(ctx, request{method: http.MethodGet, path: p, query: qs}, out); err != nil {
		return fmt.Errorf("get %s: %w", entitySet, err)
	}
	return nil
}

type page struct {
	Value     []json.RawMessage `json:"value"`
	NextLink  string            `json:"@odata.nextLink"`
	DeltaLink string            `json:"@odata.deltaLink"`
}

// List calls each for every row matching q, following @odata.nextLink
// verbatim with the same Prefer: odata.maxpagesize until there is none.
func (c *Client) List(ctx context.Context, entitySet string, q Query, each func(json.RawMessage) error) error {
	if err := checkIdent(entitySet); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	qs, err := q.Encode()
	if err != nil {
		return fmt.Errorf("list %s: %w", entitySet, err)
	}
	prefer := map[string]string{"Prefer": "odata.maxpagesize=" + strconv.Itoa(c.pageSize)}
	if q.Top > 0 {
		prefer = nil // Dataverse ignores $top when maxpagesize is set (reference §2)
	}
	r := request{method: http.MethodGet, path: entitySet, query: qs, headers: prefer}
	seen := map[string]bool{}
	for {
		var pg page
		if _, err := c.doJSON(ctx, r, &pg); err != nil {
			return fmt.Errorf("list %s: %w", entitySet, err)
		}
		for _, row := range pg.Value {
			if err := each(row); err != nil {
				return err
			}
		}
		if pg.NextLink == "" {
			return nil
		}
		if seen[pg.NextLink] {
			return fmt.Errorf("list %s: server repeated a nextLink", entitySet)
		}
		seen[pg.NextLink] = true
		r = request{method: http.MethodGet, abs: pg.NextLink, headers: prefer}
	}
}

// ListAll collects every row matching q as T.
func ListAll[T any](ctx context.Context, c *Client, entitySet string, q Query) ([]T, error) {
	var out []T
	err := c.List(ctx, entitySet, q, func(raw json.RawMessage) error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("list %s: decode row: %w", entitySet, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// Create inserts a row and returns its id, taken from the OData-EntityId
// header of the 204 response.
func (c *Client) Create(ctx context.Context, entitySet string, body any) (string, error) {
	if err := checkIdent(entitySet); err != nil {
		return "", fmt.Errorf("create: %w", err)
	}
	resp, err := c.doJSON(ctx, request{method: http.MethodPost, path: entitySet, body: body}, nil)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", entitySet, err)
	}
	id, err := entityIDFromHeader(resp.Header.Get("OData-EntityId"))
	if err != nil {
		return "", fmt.Errorf("create %s: %w", entitySet, err)
	}
	return id, nil
}

// CreateReturn inserts a row with Prefer: return=representation and decodes
// the 201 body (the created row, honouring q's $select) into out.
func (c *Client) CreateReturn(ctx context.Context, entitySet string, body any, q Query, out any) error {
	if err := checkIdent(entitySet); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	qs, err := q.Encode()
	if err != nil {
		return fmt.Errorf("create %s: %w", entitySet, err)
	}
	r := request{method: http.MethodPost, path: entitySet, query: qs, body: body,
		headers: map[string]string{"Prefer": "return=representation"}}
	if _, err := c.doJSON(ctx, r, out); err != nil {
		return fmt.Errorf("create %s: %w", entitySet, err)
	}
	return nil
}

// entityIDFromHeader extracts the GUID from
// "https://org/api/data/v9.2/entityset(<guid>)".
func entityIDFromHeader(h string) (string, error) {
	i, j := strings.LastIndexByte(h, '('), strings.LastIndexByte(h, ')')
	if h == "" || i < 0 || j != len(h)-1 || j < i {
		return "", fmt.Errorf("dataverse: missing or malformed OData-EntityId %q", h)
	}
	return ParseID(h[i+1 : j])
}

// Update PATCHes a row. ifMatch is an etag (W/"…") for optimistic
// concurrency; "" sends If-Match: * so a missing row is a 404 instead of
// an accidental upsert-create. A stale etag yields ErrPreconditionFailed.
func (c *Client) Update(ctx context.Context, entitySet, id string, body any, ifMatch string) error {
	p, err := rowPath(entitySet, id)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if ifMatch == "" {
		ifMatch = "*"
	}
	r := request{method: http.MethodPatch, path: p, body: body, headers: map[string]string{"If-Match": ifMatch}}
	if _, err := c.doJSON(ctx, r, nil); err != nil {
		return fmt.Errorf("update %s: %w", entitySet, err)
	}
	return nil
}

// UpdateReturn PATCHes a row like Update, with Prefer: return=representation
// ("Update with data returned"): the 200 response carries the row as this
// write left it, with its @odata.etag and (if selected) versionnumber,
// decoded into out. Nothing can come between the write and what is
// returned, unlike a PATCH followed by a GET.
//
// q.Select chooses the columns (the primary key and @odata.etag always
// come back); Dataverse ignores $expand on this request, so q.Expand (and
// $filter, $orderby, $top) are refused. ifMatch is as for Update.
func (c *Client) UpdateReturn(ctx context.Context, entitySet, id string, body any, ifMatch string, q Query, out any) error {
	p, err := rowPath(entitySet, id)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	qs, err := selectOnly(q)
	if err != nil {
		return fmt.Errorf("update %s: %w", entitySet, err)
	}
	if ifMatch == "" {
		ifMatch = "*"
	}
	h := map[string]string{"If-Match": ifMatch, "Prefer": "return=representation"}
	if err := c.writeReturn(ctx, request{method: http.MethodPatch, path: p, query: qs, body: body, headers: h}, out); err != nil {
		return fmt.Errorf("update %s: %w", entitySet, err)
	}
	return nil
}

// CreateWithIDReturn creates a row under a key the caller chose, as an
// upsert that may not update (PATCH /set(id) with If-None-Match: *,
// reference §2), and decodes the created row (q's $select, as for
// UpdateReturn) into out. If a row with that id exists — a retry of a
// create that got through — nothing is written and the error matches
// ErrAlreadyExists.
func (c *Client) CreateWithIDReturn(ctx context.Context, entitySet, id string, body any, q Query, out any) error {
	p, err := rowPath(entitySet, id)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	qs, err := selectOnly(q)
	if err != nil {
		return fmt.Errorf("create %s: %w", entitySet, err)
	}
	h := map[string]string{"If-None-Match": "*", "Prefer": "return=representation"}
	if err := c.writeReturn(ctx, request{method: http.MethodPatch, path: p, query: qs, body: body, headers: h}, out); err != nil {
		return fmt.Errorf("create %s(%s): %w", entitySet, id, err)
	}
	return nil
}

// selectOnly encodes q for a write with data returned, where only $select
// applies.
func selectOnly(q Query) (string, error) {
	if len(q.Expand) > 0 || !q.Filter.IsZero() || len(q.OrderBy) > 0 || q.Top > 0 {
		return "", errors.New("dataverse: a write with data returned takes $select only ($expand is ignored by the service)")
	}
	return q.Encode()
}

// writeReturn sends a write with Prefer: return=representation and decodes
// the row. A 204 means the preference was not applied: an error, since the
// caller relies on the version of its own write.
func (c *Client) writeReturn(ctx context.Context, r request, out any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return fmt.Errorf("dataverse: %s %s: 204 without the row (return=representation not applied)", r.method, r.path)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("dataverse: decode %s %s: %w", r.method, r.path, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return nil
}

// Delete removes a row; ifMatch "" deletes unconditionally.
func (c *Client) Delete(ctx context.Context, entitySet, id, ifMatch string) error {
	p, err := rowPath(entitySet, id)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	r := request{method: http.MethodDelete, path: p}
	if ifMatch != "" {
		r.headers = map[string]string{"If-Match": ifMatch}
	}
	if _, err := c.doJSON(ctx, r, nil); err != nil {
		return fmt.Errorf("delete %s: %w", entitySet, err)
	}
	return nil
}

// ExpireChangeTrackingInDays reads organization.expirechangetrackingindays:
// delta links older than this fail with ErrChangeTrackingExpired.
func (c *Client) ExpireChangeTrackingInDays(ctx context.Context) (int, error) {
	var out struct {
		Value []struct {
			Days int `json:"expirechangetrackingindays"`
		} `json:"value"`
	}
	r := request{method: http.MethodGet, path: SetOrganizations, query: "$select=expirechangetrackingindays"}
	if _, err := c.doJSON(ctx, r, &out); err != nil {
		return 0, fmt.Errorf("read expirechangetrackingindays: %w", err)
	}
	if len(out.Value) != 1 {
		return 0, fmt.Errorf("read expirechangetrackingindays: %d organization rows", len(out.Value))
	}
	return out.Value[0].Days, nil
}
