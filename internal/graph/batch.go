package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// MaxBatchRequests is Graph's JSON batching limit.
const MaxBatchRequests = 20

// BatchRequest is one request inside a $batch. URL is relative to the
// version root ("/users/{id}/events/{id}"); an absolute URL on the base
// URL is made relative. Body is JSON-encoded; Content-Type is added when
// a body is present, and Prefer: IdType="ImmutableId" on every request.
type BatchRequest struct {
	ID        string
	Method    string
	URL       string
	Headers   map[string]string
	Body      any
	DependsOn []string
}

// BatchResponse is one inner response, in the order of the requests.
type BatchResponse struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// Err returns nil for a 2xx response and an *Error otherwise, so the
// package sentinels work on inner responses (424 marks a failed dependency).
func (r BatchResponse) Err() error {
	if r.Status >= 200 && r.Status <= 299 {
		return nil
	}
	var h http.Header
	if len(r.Headers) > 0 {
		h = http.Header{}
		for k, v := range r.Headers {
			h.Set(k, v)
		}
	}
	return parseError(r.Status, h, r.Body, time.Now())
}

// Decode unmarshals the inner body into v.
func (r BatchResponse) Decode(v any) error {
	if len(r.Body) == 0 {
		return fmt.Errorf("batch response %s: empty body", r.ID)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("batch response %s: %w", r.ID, err)
	}
	return nil
}

type batchWireRequest struct {
	ID        string            `json:"id"`
	DependsOn []string          `json:"dependsOn,omitempty"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      any               `json:"body,omitempty"`
}

// Batch sends up to 20 requests in one POST /$batch and returns the inner
// responses reordered to match reqs (Graph may answer out of order). The
// outer call fails only if the batch as a whole fails; check each
// response's Err. Batches containing a POST are not retried by the doer,
// since some inner requests may already have run.
//
// The per-mailbox limiter is held for each distinct mailbox in the batch
// (one slot each, acquired in sorted order to avoid deadlocks); note that
// Outlook may run up to four unordered inner requests at once.
func (c *Client) Batch(ctx context.Context, reqs []BatchRequest) ([]BatchResponse, error) {
	wire, mailboxes, hasPost, err := c.buildBatch(reqs)
	if err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	for _, mb := range mailboxes {
		release, err := c.limiter.Acquire(ctx, mb)
		if err != nil {
			return nil, fmt.Errorf("batch: wait for mailbox slot: %w", err)
		}
		defer release()
	}
	var out struct {
		Responses []BatchResponse `json:"responses"`
	}
	body := struct {
		Requests []batchWireRequest `json:"requests"`
	}{wire}
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/$batch", body: body, out: &out, noRetry: hasPost}); err != nil {
		return nil, fmt.Errorf("batch of %d: %w", len(reqs), err)
	}
	byID := make(map[string]BatchResponse, len(out.Responses))
	for _, r := range out.Responses {
		byID[r.ID] = r
	}
	res := make([]BatchResponse, len(reqs))
	for i, r := range reqs {
		resp, ok := byID[r.ID]
		if !ok {
			return nil, fmt.Errorf("batch of %d: no response for request %q", len(reqs), r.ID)
		}
		res[i] = resp
	}
	return res, nil
}

func (c *Client) buildBatch(reqs []BatchRequest) (wire []batchWireRequest, mailboxes []string, hasPost bool, err error) {
	if len(reqs) == 0 {
		return nil, nil, false, errors.New("no requests")
	}
	if len(reqs) > MaxBatchRequests {
		return nil, nil, false, fmt.Errorf("%d requests, Graph allows at most %d", len(reqs), MaxBatchRequests)
	}
	ids := make(map[string]bool, len(reqs))
	for _, r := range reqs {
		if r.ID == "" {
			return nil, nil, false, errors.New("request without id")
		}
		if ids[r.ID] {
			return nil, nil, false, fmt.Errorf("duplicate request id %q", r.ID)
		}
		ids[r.ID] = true
	}
	base := c.baseURL.String()
	for _, r := range reqs {
		for _, d := range r.DependsOn {
			if !ids[d] || d == r.ID {
				return nil, nil, false, fmt.Errorf("request %q depends on unknown request %q", r.ID, d)
			}
		}
		u := r.URL
		if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
			if !strings.HasPrefix(u, base+"/") {
				return nil, nil, false, fmt.Errorf("request %q: URL %s is not under %s", r.ID, u, base)
			}
			u = strings.TrimPrefix(u, base)
		}
		if !strings.HasPrefix(u, "/") {
			u = "/" + u
		}
		method := strings.ToUpper(r.Method)
		if method == "" {
			return nil, nil, false, fmt.Errorf("request %q without method", r.ID)
		}
		hasPost = hasPost || method == http.MethodPost
		h := map[string]string{}
		for k, v := range r.Headers {
			h[k] = v
		}
		if !hasHeader(h, "Prefer") {
			h["Prefer"] = preferImmutableID
		}
		if r.Body != nil && !hasHeader(h, "Content-Type") {
			h["Content-Type"] = "application/json"
		}
		wire = append(wire, batchWireRequest{ID: r.ID, DependsOn: r.DependsOn, Method: method, URL: u, Headers: h, Body: r.Body})
		if mb := mailboxOf(u); mb != "" && !slices.Contains(mailboxes, mb) {
			mailboxes = append(mailboxes, mb)
		}
	}
	slices.Sort(mailboxes)
	return wire, mailboxes, hasPost, nil
}

func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// mailboxOf extracts the lower-cased user segment of "/users/{id}/…".
func mailboxOf(u string) string {
	rest, ok := strings.CutPrefix(strings.ToLower(u), "/users/")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if un, err := url.PathUnescape(rest); err == nil {
		rest = un
	}
	return rest
}
