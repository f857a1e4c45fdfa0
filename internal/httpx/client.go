// Package httpx is the HTTP plumbing shared by the Graph and Dataverse
// clients: bearer tokens from an azcore.TokenCredential, one token refresh on
// 401, Retry-After on 429/503, exponential backoff with full jitter on
// 502/503/504 and network errors, and a keyed concurrency limiter.
package httpx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"
)

// Doer sends an HTTP request. *http.Client and *Client implement it.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Defaults used when the corresponding Client field is zero.
const (
	DefaultMaxAttempts = 4
	DefaultMaxWait     = 2 * time.Minute
	DefaultBaseDelay   = 500 * time.Millisecond
	DefaultMaxDelay    = 30 * time.Second
)

// Retry reasons passed to OnRetry.
const (
	ReasonUnauthorized = "unauthorized" // 401: token refreshed, request re-sent once
	ReasonRetryAfter   = "retry-after"  // 429/503 with a Retry-After header
	ReasonStatus       = "status"       // 429/502/503/504 without Retry-After: backoff
	ReasonNetwork      = "network"      // transport error: backoff
)

// RetryInfo describes one retry, for metrics and logs.
type RetryInfo struct {
	Request    *http.Request
	Attempt    int           // the attempt that just failed, starting at 1
	StatusCode int           // 0 for network errors
	Err        error         // transport error, if any
	Reason     string        // one of the Reason* constants
	Delay      time.Duration // how long the client waits before the next attempt
}

// Client sends requests with a bearer token and retries transient failures.
// The zero value is usable (no auth, http.DefaultClient, default policy).
//
// A retry happens only when the request is replayable: no body, or a body
// with GetBody set (http.NewRequest sets it for bytes/strings readers).
// Callers can opt a request out with WithNoRetry. A 401 is retried once
// after a forced token refresh even when other retries are disabled, as
// long as the body can be replayed.
type Client struct {
	HTTP   Doer         // underlying transport; nil means http.DefaultClient
	Tokens *TokenSource // nil means requests are sent without Authorization

	MaxAttempts int           // total attempts including the first, excluding the 401 re-send
	MaxWait     time.Duration // budget for the sum of all waits; a wait that would exceed it is not taken
	BaseDelay   time.Duration // backoff base: attempt n waits up to BaseDelay*2^(n-1)
	MaxDelay    time.Duration // cap on a single backoff wait (not on Retry-After)

	// Sleep waits for d or until ctx is done. nil means a timer-based sleep,
	// which testing/synctest fakes as well.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is used to resolve HTTP-date Retry-After values; nil means time.Now.
	Now func() time.Time
	// Jitter returns a random duration in [0, max]; nil means math/rand/v2.
	Jitter func(max time.Duration) time.Duration
	// OnRetry, if set, is called before every retry wait.
	OnRetry func(RetryInfo)
	// OnResponse, if set, is called after every attempt that reached the
	// transport (so retries and the 401 re-send are each seen), before the
	// response is retried or returned. It must not read the body.
	OnResponse func(ResponseInfo)
}

// ResponseInfo describes one attempt's result, for metrics.
type ResponseInfo struct {
	Request    *http.Request
	Attempt    int           // starting at 1; the 401 re-send repeats the number
	StatusCode int           // 0 when Err is set
	Header     http.Header   // nil when Err is set
	Err        error         // transport error, if any
	Duration   time.Duration // time spent in the transport for this attempt
}

type noRetryKey struct{}

// WithNoRetry marks requests made with the returned context as
// non-retryable (apart from the single 401 token refresh).
func WithNoRetry(ctx context.Context) context.Context {
	return context.WithValue(ctx, noRetryKey{}, true)
}

func noRetry(ctx context.Context) bool {
	v, _ := ctx.Value(noRetryKey{}).(bool)
	return v
}

// errBodyNotReplayable marks a GetBody failure; such an attempt is not retried.
var errBodyNotReplayable = errors.New("request body is not replayable")

// Do sends req, retrying as described on Client. On success or on a
// non-retryable status it returns the response as-is (the caller closes the
// body). When retries are exhausted it returns the last response, or the
// last transport error wrapped with the attempt count.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	maxAttempts := c.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	if noRetry(ctx) {
		maxAttempts = 1
	}
	maxWait := c.MaxWait
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil

	var (
		waited       time.Duration
		sent         int
		refreshed    bool
		forceRefresh bool
		claims       string
	)
	for attempt := 1; ; attempt++ {
		began := time.Now()
		resp, err := c.send(req, sent > 0, forceRefresh, claims)
		sent++
		c.observe(req, attempt, resp, err, time.Since(began))
		forceRefresh = false
		if err != nil && resp == nil && ctx.Err() != nil {
			return nil, err
		}
		if err != nil && resp == nil && errors.Is(err, errTokenSource) {
			return nil, err
		}

		if err == nil && resp.StatusCode == http.StatusUnauthorized && c.Tokens != nil && !refreshed && replayable {
			// One forced refresh: the cached token may have been revoked
			// or the resource may demand new claims (CAE).
			refreshed, forceRefresh = true, true
			claims = ChallengeClaims(resp.Header.Get("WWW-Authenticate"))
			c.notify(RetryInfo{Request: req, Attempt: attempt, StatusCode: resp.StatusCode, Reason: ReasonUnauthorized})
			drain(resp)
			attempt-- // the re-send does not use up a retry attempt
			continue
		}

		delay, reason, retry := c.classify(resp, err, attempt)
		if !retry || attempt >= maxAttempts || !replayable || waited+delay > maxWait {
			if err != nil {
				return nil, fmt.Errorf("%s %s: after %d attempt(s): %w", req.Method, req.URL.Redacted(), attempt, err)
			}
			return resp, nil
		}
		info := RetryInfo{Request: req, Attempt: attempt, Err: err, Reason: reason, Delay: delay}
		if resp != nil {
			info.StatusCode = resp.StatusCode
			drain(resp)
		}
		c.notify(info)
		if err := c.sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("%s %s: waiting to retry: %w", req.Method, req.URL.Redacted(), err)
		}
		waited += delay
	}
}

var errTokenSource = errors.New("acquire token")

// send issues one attempt. Attempts after the first use a clone with a fresh body.
func (c *Client) send(orig *http.Request, replay, forceRefresh bool, claims string) (*http.Response, error) {
	req := orig
	if replay || c.Tokens != nil {
		req = orig.Clone(orig.Context())
		if replay && orig.GetBody != nil {
			body, err := orig.GetBody()
			if err != nil {
				return nil, fmt.Errorf("%w: %w", errBodyNotReplayable, err)
			}
			req.Body = body
		}
	}
	if c.Tokens != nil {
		var (
			tok string
			err error
		)
		if forceRefresh {
			tok, err = c.Tokens.Refresh(req.Context(), claims)
		} else {
			tok, err = c.Tokens.Token(req.Context())
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errTokenSource, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	return hc.Do(req)
}

// classify decides whether a result is retryable and how long to wait.
func (c *Client) classify(resp *http.Response, err error, attempt int) (time.Duration, string, bool) {
	if err != nil {
		if errors.Is(err, errBodyNotReplayable) {
			return 0, "", false
		}
		return c.backoff(attempt), ReasonNetwork, true
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		now := time.Now
		if c.Now != nil {
			now = c.Now
		}
		if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), now()); ok {
			return d, ReasonRetryAfter, true
		}
		return c.backoff(attempt), ReasonStatus, true
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return c.backoff(attempt), ReasonStatus, true
	}
	return 0, "", false
}

// backoff is "full jitter": uniform in [0, min(MaxDelay, BaseDelay*2^(attempt-1))].
func (c *Client) backoff(attempt int) time.Duration {
	base, maxDelay := c.BaseDelay, c.MaxDelay
	if base <= 0 {
		base = DefaultBaseDelay
	}
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}
	ceil := maxDelay
	if attempt-1 < 32 {
		if d := base << (attempt - 1); d > 0 && d < maxDelay {
			ceil = d
		}
	}
	if c.Jitter != nil {
		return min(max(c.Jitter(ceil), 0), ceil)
	}
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// observe reports one attempt to OnResponse. Token and body-replay
// failures never reached the network and are not reported.
func (c *Client) observe(req *http.Request, attempt int, resp *http.Response, err error, d time.Duration) {
	if c.OnResponse == nil || err != nil && (errors.Is(err, errTokenSource) || errors.Is(err, errBodyNotReplayable)) {
		return
	}
	info := ResponseInfo{Request: req, Attempt: attempt, Err: err, Duration: d}
	if resp != nil {
		info.StatusCode, info.Header = resp.StatusCode, resp.Header
	}
	c.OnResponse(info)
}

func (c *Client) notify(info RetryInfo) {
	if c.OnRetry != nil {
		c.OnRetry(info)
	}
}

// drain discards a little of the body so the connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	_ = resp.Body.Close()
}
