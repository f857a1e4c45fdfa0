package httpx

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// script is an in-process RoundTripper: step i answers attempt i.
type script struct {
	mu    sync.Mutex
	steps []step
	reqs  []recorded
}

type step struct {
	status int
	header map[string]string
	err    error
}

type recorded struct {
	at     time.Time
	auth   string
	body   string
	method string
}

func (s *script) RoundTrip(r *http.Request) (*http.Response, error) {
	var body string
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		body = string(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := len(s.reqs)
	s.reqs = append(s.reqs, recorded{at: time.Now(), auth: r.Header.Get("Authorization"), body: body, method: r.Method})
	if i >= len(s.steps) {
		return nil, errors.New("script exhausted")
	}
	st := s.steps[i]
	if st.err != nil {
		return nil, st.err
	}
	rec := httptest.NewRecorder()
	for k, v := range st.header {
		rec.Header().Set(k, v)
	}
	rec.WriteHeader(st.status)
	_, _ = rec.WriteString(`{}`)
	return rec.Result(), nil
}

// fakeCred counts token requests and returns a new token for each request
// carrying claims (what azidentity does when it bypasses its cache).
type fakeCred struct {
	mu      sync.Mutex
	plain   int
	claims  []string
	current string
}

func (f *fakeCred) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current == "" {
		f.current = "tok-0"
	}
	if o.Claims != "" {
		f.claims = append(f.claims, o.Claims)
		f.current = "tok-" + string(rune('0'+len(f.claims)))
	} else {
		f.plain++
	}
	return azcore.AccessToken{Token: f.current, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

var errNet = errors.New("connection reset")

func TestClientRetryTiming(t *testing.T) {
	tests := []struct {
		name       string
		steps      []step
		client     Client
		method     string
		body       string
		noGetBody  bool
		noRetryCtx bool
		wantCalls  int
		wantStatus int // 0: expect an error
		wantGaps   []time.Duration
		wantReason []string
	}{
		{
			name:       "429 retry-after seconds",
			steps:      []step{{status: 429, header: map[string]string{"Retry-After": "7"}}, {status: 200}},
			wantCalls:  2,
			wantStatus: 200,
			wantGaps:   []time.Duration{7 * time.Second},
			wantReason: []string{ReasonRetryAfter},
		},
		{
			name: "503 retry-after http date",
			// synctest's clock starts at 2000-01-01 00:00:00 UTC.
			steps:      []step{{status: 503, header: map[string]string{"Retry-After": "Sat, 01 Jan 2000 00:00:42 GMT"}}, {status: 204}},
			wantCalls:  2,
			wantStatus: 204,
			wantGaps:   []time.Duration{42 * time.Second},
			wantReason: []string{ReasonRetryAfter},
		},
		{
			name:       "backoff doubles, jitter takes the ceiling",
			steps:      []step{{status: 502}, {status: 504}, {status: 503}, {status: 200}},
			client:     Client{BaseDelay: time.Second, MaxDelay: 10 * time.Second, MaxAttempts: 5, Jitter: func(d time.Duration) time.Duration { return d }},
			wantCalls:  4,
			wantStatus: 200,
			wantGaps:   []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second},
			wantReason: []string{ReasonStatus, ReasonStatus, ReasonStatus},
		},
		{
			name:       "backoff capped by MaxDelay",
			steps:      []step{{status: 502}, {status: 502}, {status: 502}, {status: 200}},
			client:     Client{BaseDelay: 4 * time.Second, MaxDelay: 5 * time.Second, Jitter: func(d time.Duration) time.Duration { return d }},
			wantCalls:  4,
			wantStatus: 200,
			wantGaps:   []time.Duration{4 * time.Second, 5 * time.Second, 5 * time.Second},
			wantReason: []string{ReasonStatus, ReasonStatus, ReasonStatus},
		},
		{
			name:       "full jitter uses the jitter value",
			steps:      []step{{status: 504}, {status: 200}},
			client:     Client{BaseDelay: 8 * time.Second, Jitter: func(d time.Duration) time.Duration { return d / 4 }},
			wantCalls:  2,
			wantStatus: 200,
			wantGaps:   []time.Duration{2 * time.Second},
			wantReason: []string{ReasonStatus},
		},
		{
			name:       "network error retried then gives up",
			steps:      []step{{err: errNet}, {err: errNet}, {err: errNet}},
			client:     Client{MaxAttempts: 3, BaseDelay: time.Second, Jitter: func(d time.Duration) time.Duration { return d }},
			wantCalls:  3,
			wantGaps:   []time.Duration{time.Second, 2 * time.Second},
			wantReason: []string{ReasonNetwork, ReasonNetwork},
		},
		{
			name:       "max attempts returns last response",
			steps:      []step{{status: 429, header: map[string]string{"Retry-After": "1"}}, {status: 429, header: map[string]string{"Retry-After": "1"}}},
			client:     Client{MaxAttempts: 2},
			wantCalls:  2,
			wantStatus: 429,
			wantGaps:   []time.Duration{time.Second},
			wantReason: []string{ReasonRetryAfter},
		},
		{
			name:       "retry-after beyond MaxWait is not waited",
			steps:      []step{{status: 429, header: map[string]string{"Retry-After": "120"}}},
			client:     Client{MaxWait: time.Minute},
			wantCalls:  1,
			wantStatus: 429,
		},
		{
			name: "MaxWait budget spans attempts",
			steps: []step{
				{status: 429, header: map[string]string{"Retry-After": "30"}},
				{status: 429, header: map[string]string{"Retry-After": "30"}},
				{status: 429, header: map[string]string{"Retry-After": "30"}},
			},
			client:     Client{MaxWait: 70 * time.Second, MaxAttempts: 10},
			wantCalls:  3,
			wantStatus: 429,
			wantGaps:   []time.Duration{30 * time.Second, 30 * time.Second},
			wantReason: []string{ReasonRetryAfter, ReasonRetryAfter},
		},
		{
			name:       "400 not retried",
			steps:      []step{{status: 400}},
			wantCalls:  1,
			wantStatus: 400,
		},
		{
			name:       "500 not retried",
			steps:      []step{{status: 500}},
			wantCalls:  1,
			wantStatus: 500,
		},
		{
			name:       "replayable body retried with same bytes",
			steps:      []step{{status: 503, header: map[string]string{"Retry-After": "2"}}, {status: 201}},
			method:     http.MethodPost,
			body:       `{"a":1}`,
			wantCalls:  2,
			wantStatus: 201,
			wantGaps:   []time.Duration{2 * time.Second},
			wantReason: []string{ReasonRetryAfter},
		},
		{
			name:       "body without GetBody not retried",
			steps:      []step{{status: 503, header: map[string]string{"Retry-After": "2"}}},
			method:     http.MethodPost,
			body:       `{"a":1}`,
			noGetBody:  true,
			wantCalls:  1,
			wantStatus: 503,
		},
		{
			name:       "WithNoRetry not retried",
			steps:      []step{{status: 429, header: map[string]string{"Retry-After": "1"}}},
			noRetryCtx: true,
			wantCalls:  1,
			wantStatus: 429,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &script{steps: tt.steps}
				c := tt.client
				c.HTTP = &http.Client{Transport: rt}
				var infos []RetryInfo
				c.OnRetry = func(i RetryInfo) { infos = append(infos, i) }

				method := tt.method
				if method == "" {
					method = http.MethodGet
				}
				ctx := context.Background()
				if tt.noRetryCtx {
					ctx = WithNoRetry(ctx)
				}
				var body io.Reader
				if tt.body != "" {
					body = strings.NewReader(tt.body)
				}
				req, err := http.NewRequestWithContext(ctx, method, "https://graph.example/v1.0/x", body)
				if err != nil {
					t.Fatal(err)
				}
				if tt.noGetBody {
					req.GetBody = nil
				}
				start := time.Now()
				resp, err := c.Do(req)
				if tt.wantStatus == 0 {
					if err == nil {
						t.Fatalf("want error, got status %d", resp.StatusCode)
					}
					if !errors.Is(err, errNet) {
						t.Errorf("error %v does not wrap the transport error", err)
					}
				} else {
					if err != nil {
						t.Fatalf("Do: %v", err)
					}
					resp.Body.Close()
					if resp.StatusCode != tt.wantStatus {
						t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
					}
				}
				if len(rt.reqs) != tt.wantCalls {
					t.Fatalf("calls = %d, want %d", len(rt.reqs), tt.wantCalls)
				}
				prev := start
				var gaps []time.Duration
				for i, r := range rt.reqs {
					if i > 0 {
						gaps = append(gaps, r.at.Sub(prev))
					}
					prev = r.at
					if r.body != tt.body {
						t.Errorf("attempt %d body = %q, want %q", i+1, r.body, tt.body)
					}
				}
				if !equalDurations(gaps, tt.wantGaps) {
					t.Errorf("gaps = %v, want %v", gaps, tt.wantGaps)
				}
				var reasons []string
				for i, info := range infos {
					reasons = append(reasons, info.Reason)
					if info.Delay != tt.wantGaps[i] {
						t.Errorf("OnRetry[%d].Delay = %v, want %v", i, info.Delay, tt.wantGaps[i])
					}
					if info.Attempt != i+1 {
						t.Errorf("OnRetry[%d].Attempt = %d", i, info.Attempt)
					}
				}
				if strings.Join(reasons, ",") != strings.Join(tt.wantReason, ",") {
					t.Errorf("OnRetry reasons = %v, want %v", reasons, tt.wantReason)
				}
			})
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestClientDefaultJitterWithinCeiling(t *testing.T) {
	c := &Client{BaseDelay: time.Second, MaxDelay: 8 * time.Second}
	for attempt := 1; attempt <= 6; attempt++ {
		ceil := min(time.Second<<(attempt-1), 8*time.Second)
		for range 200 {
			if d := c.backoff(attempt); d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", attempt, d, ceil)
			}
		}
	}
}

func TestClient401RefreshesOnce(t *testing.T) {
	tests := []struct {
		name       string
		steps      []step
		wantAuth   []string
		wantClaims []string
		wantStatus int
	}{
		{
			name:       "refresh then success",
			steps:      []step{{status: 401}, {status: 200}},
			wantAuth:   []string{"Bearer tok-0", "Bearer tok-1"},
			wantClaims: []string{`{"access_token":{"nbf":{"essential":true,"value":"946684800"}}}`},
			wantStatus: 200,
		},
		{
			name:       "second 401 returned",
			steps:      []step{{status: 401}, {status: 401}},
			wantAuth:   []string{"Bearer tok-0", "Bearer tok-1"},
			wantClaims: []string{`{"access_token":{"nbf":{"essential":true,"value":"946684800"}}}`},
			wantStatus: 401,
		},
		{
			name: "CAE claims challenge is used",
			steps: []step{{status: 401, header: map[string]string{
				// base64 of {"access_token":{"nbf":{"essential":true,"value":"1"}}}
				"WWW-Authenticate": `Bearer realm="", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwidmFsdWUiOiIxIn19fQ=="`,
			}}, {status: 200}},
			wantAuth:   []string{"Bearer tok-0", "Bearer tok-1"},
			wantClaims: []string{`{"access_token":{"nbf":{"essential":true,"value":"1"}}}`},
			wantStatus: 200,
		},
		{
			name:       "refresh does not consume retry attempts",
			steps:      []step{{status: 401}, {status: 429, header: map[string]string{"Retry-After": "1"}}, {status: 200}},
			wantAuth:   []string{"Bearer tok-0", "Bearer tok-1", "Bearer tok-1"},
			wantClaims: []string{`{"access_token":{"nbf":{"essential":true,"value":"946684800"}}}`},
			wantStatus: 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &script{steps: tt.steps}
				cred := &fakeCred{}
				c := &Client{HTTP: &http.Client{Transport: rt}, Tokens: NewTokenSource(cred, "https://graph.microsoft.com/.default"), MaxAttempts: 2}
				var retries int
				c.OnRetry = func(RetryInfo) { retries++ }
				req, _ := http.NewRequest(http.MethodPatch, "https://graph.example/v1.0/x", strings.NewReader(`{"s":1}`))
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tt.wantStatus {
					t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
				}
				var auths []string
				for _, r := range rt.reqs {
					auths = append(auths, r.auth)
					if r.body != `{"s":1}` {
						t.Errorf("body not replayed: %q", r.body)
					}
				}
				if strings.Join(auths, "|") != strings.Join(tt.wantAuth, "|") {
					t.Errorf("auth headers = %v, want %v", auths, tt.wantAuth)
				}
				if strings.Join(cred.claims, "|") != strings.Join(tt.wantClaims, "|") {
					t.Errorf("claims requests = %v, want %v", cred.claims, tt.wantClaims)
				}
				if retries != len(tt.steps)-1 {
					t.Errorf("OnRetry called %d times, want %d", retries, len(tt.steps)-1)
				}
			})
		})
	}
}

func TestClientContextCancelDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &script{steps: []step{{status: 429, header: map[string]string{"Retry-After": "60"}}, {status: 200}}}
		c := &Client{HTTP: &http.Client{Transport: rt}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://graph.example/x", nil)
		start := time.Now()
		_, err := c.Do(req)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
		if el := time.Since(start); el != 10*time.Second {
			t.Errorf("returned after %v, want 10s", el)
		}
		if len(rt.reqs) != 1 {
			t.Errorf("calls = %d, want 1", len(rt.reqs))
		}
	})
}

func TestClientInjectedSleep(t *testing.T) {
	rt := &script{steps: []step{{status: 503, header: map[string]string{"Retry-After": "3"}}, {status: 200}}}
	var slept []time.Duration
	c := &Client{HTTP: &http.Client{Transport: rt}, Sleep: func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}}
	req, _ := http.NewRequest(http.MethodGet, "https://graph.example/x", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(slept) != 1 || slept[0] != 3*time.Second {
		t.Errorf("slept %v, want [3s]", slept)
	}
}

func TestTokenErrorNotRetried(t *testing.T) {
	rt := &script{}
	c := &Client{HTTP: &http.Client{Transport: rt}, Tokens: NewTokenSource(errCred{}, "s")}
	req, _ := http.NewRequest(http.MethodGet, "https://graph.example/x", nil)
	if _, err := c.Do(req); err == nil {
		t.Fatal("want error")
	}
	if len(rt.reqs) != 0 {
		t.Errorf("request sent without a token")
	}
}

type errCred struct{}

func (errCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, errors.New("sts down")
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"Fri, 02 Jan 2026 03:04:35 GMT", 30 * time.Second, true},
		{"Friday, 02-Jan-26 03:05:05 GMT", time.Minute, true}, // RFC 850
		{"Fri, 02 Jan 2026 03:00:00 GMT", 0, true},            // past
		{"", 0, false},
		{"-3", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestChallengeClaims(t *testing.T) {
	tests := []struct{ in, want string }{
		{`Bearer error="insufficient_claims", claims="eyJhIjoxfQ=="`, `{"a":1}`},
		{`Bearer claims="eyJhIjoxfQ"`, `{"a":1}`},
		{`Bearer realm=""`, ""},
		{`Bearer claims="%%%"`, ""},
	}
	for _, tt := range tests {
		if got := ChallengeClaims(tt.in); got != tt.want {
			t.Errorf("ChallengeClaims(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
