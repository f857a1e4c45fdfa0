package dataverse

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Dataverse refuses more than 52 concurrent requests per user and web
// server (service protection limits, reference §5): a Client keeps its own
// requests in flight to MaxConcurrent (default 16), queueing the rest.
func TestConcurrencyCap(t *testing.T) {
	for _, tt := range []struct {
		name     string
		max      int
		requests int
		want     int
	}{
		{"default", 0, 40, DefaultMaxConcurrent},
		{"configured", 3, 10, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				inFlight, peak := 0, 0
				f := &fake{t: t, handler: func(w http.ResponseWriter, r *http.Request, _ []byte) {
					mu.Lock()
					inFlight++
					peak = max(peak, inFlight)
					mu.Unlock()
					time.Sleep(time.Second) // fake clock: each request takes 1s
					mu.Lock()
					inFlight--
					mu.Unlock()
					writeJSON(w, 200, map[string]string{"UserId": gid})
				}}
				c, err := New(Options{OrgURL: "https://contoso.crm.dynamics.com", Doer: &http.Client{Transport: f}, MaxConcurrent: tt.max})
				if err != nil {
					t.Fatal(err)
				}
				if tt.want >= 52 {
					t.Fatalf("cap %d is not below Dataverse's 52", tt.want)
				}
				var wg sync.WaitGroup
				start := time.Now()
				for range tt.requests {
					wg.Go(func() {
						if _, err := c.WhoAmI(context.Background()); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
				if peak != tt.want {
					t.Errorf("peak in flight = %d, want %d", peak, tt.want)
				}
				rounds := (tt.requests + tt.want - 1) / tt.want
				if el := time.Since(start); el != time.Duration(rounds)*time.Second {
					t.Errorf("elapsed %v, want %ds (%d requests, %d at a time)", el, rounds, tt.requests, tt.want)
				}
			})
		})
	}
}
