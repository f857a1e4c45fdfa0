package httpx

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// A throttled answer without a usable Retry-After (absent, malformed) is
// still retried, with exponential backoff; "Retry-After: 0" retries at once.
func TestThrottledWithoutRetryAfterBacksOff(t *testing.T) {
	tests := []struct {
		name       string
		steps      []step
		wantGaps   []time.Duration
		wantReason []string
	}{
		{"429 without Retry-After",
			[]step{{status: 429}, {status: 429}, {status: 200}},
			[]time.Duration{time.Second, 2 * time.Second}, []string{ReasonStatus, ReasonStatus}},
		{"malformed Retry-After",
			[]step{{status: 429, header: map[string]string{"Retry-After": "soon"}}, {status: 200}},
			[]time.Duration{time.Second}, []string{ReasonStatus}},
		{"Retry-After zero",
			[]step{{status: 503, header: map[string]string{"Retry-After": "0"}}, {status: 200}},
			[]time.Duration{0}, []string{ReasonRetryAfter}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &script{steps: tt.steps}
				var reasons []string
				c := Client{HTTP: &http.Client{Transport: rt}, BaseDelay: time.Second,
					Jitter:  func(d time.Duration) time.Duration { return d },
					OnRetry: func(i RetryInfo) { reasons = append(reasons, i.Reason) }}
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://graph.example/v1.0/x", nil)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 || len(rt.reqs) != len(tt.steps) {
					t.Fatalf("status %d after %d calls", resp.StatusCode, len(rt.reqs))
				}
				var gaps []time.Duration
				for i := 1; i < len(rt.reqs); i++ {
					gaps = append(gaps, rt.reqs[i].at.Sub(rt.reqs[i-1].at))
				}
				if !equalDurations(gaps, tt.wantGaps) || len(reasons) != len(tt.wantReason) {
					t.Fatalf("gaps %v reasons %v, want %v %v", gaps, reasons, tt.wantGaps, tt.wantReason)
				}
				for i := range reasons {
					if reasons[i] != tt.wantReason[i] {
						t.Errorf("reasons %v, want %v", reasons, tt.wantReason)
					}
				}
			})
		})
	}
}
