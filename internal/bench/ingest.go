// Package bench holds the bench commands' drivers: they run the real
// components in-process over loopback and report figures as JSON.
package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bookingsync/bookingsync/internal/httpapi"
	"github.com/bookingsync/bookingsync/internal/jobs"
	"github.com/bookingsync/bookingsync/internal/metrics"
	"github.com/bookingsync/bookingsync/internal/store"
)

// IngestOptions configure Ingest.
type IngestOptions struct {
	// Store is "sqlite" (a fresh file in a temporary directory) or a
	// postgres:// URL.
	Store string
	// Rate is the fixed-rate phase's notifications per second; Duration
	// each phase's length.
	Rate     int
	Duration time.Duration
	// Concurrency is the number of client connections in the fast phase.
	Concurrency   int
	Subscriptions int
	Logger        *slog.Logger
}

// IngestResult is the bench's JSON line. Field names are fixed: other tools
// read them.
type IngestResult struct {
	Backend          string  `json:"backend"`
	Notifications    int64   `json:"notifications"`
	Persisted        int64   `json:"persisted"`
	Lost             int64   `json:"lost"`
	AckP50Ms         float64 `json:"ack_p50_ms"`
	AckP99Ms         float64 `json:"ack_p99_ms"`
	Rate             int     `json:"rate_per_s"`
	ThroughputPerS   float64 `json:"throughput_per_s"`
	BaselineAckP99Ms float64 `json:"baseline_ack_p99_ms"`
	BaselineAckP50Ms float64 `json:"baseline_ack_p50_ms"`
	Requests         int64   `json:"requests"`
	Errors           int64   `json:"errors"`
}

type fixedSubs map[string]store.Subscription

func (f fixedSubs) LookupSubscription(_ context.Context, id string) (store.Subscription, bool, error) {
	s, ok := f[id]
	return s, ok, nil
}

// Ingest measures the notification endpoint: acknowledgement latency at a
// fixed rate, durable throughput flat out, and that nothing acknowledged is
// lost, against a bare 202 handler measured the same way in the same run.
func Ingest(ctx context.Context, o IngestOptions) (IngestResult, error) {
	if o.Rate <= 0 {
		o.Rate = 2000
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.Subscriptions <= 0 {
		o.Subscriptions = 50
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	url := o.Store
	if url == "" || url == "sqlite" {
		dir, err := os.MkdirTemp("", "bookingsync-bench-")
		if err != nil {
			return IngestResult{}, err
		}
		defer os.RemoveAll(dir)
		url = "sqlite:" + filepath.Join(dir, "bench.db")
	}
	st, err := store.Open(ctx, url, o.Logger)
	if err != nil {
		return IngestResult{}, err
	}
	defer st.Close()
	res := IngestResult{Backend: string(st.Backend()), Rate: o.Rate}

	// The processing side runs too, as in production: the inbox processor
	// claims and marks every stored row (its writes share the intake's
	// commits), and River works the main database.
	proc := jobs.NewInbox(st, jobs.InboxConfig{Logger: o.Logger})
	in, err := store.NewIntake(st, store.IntakeConfig{Stored: proc.Wake, Logger: o.Logger})
	if err != nil {
		return res, err
	}
	if err := in.Start(ctx); err != nil {
		return res, err
	}
	defer in.Stop()
	if err := proc.Start(ctx); err != nil {
		return res, err
	}
	defer proc.Stop()
	q, err := jobs.New(ctx, st, jobs.Config{Logger: o.Logger, Handlers: jobs.Handlers{
		CatchupMailbox: func(context.Context, jobs.CatchupMailboxArgs) error { return nil }, // River needs a worker
	}})
	if err != nil {
		return res, err
	}
	if err := q.Start(ctx); err != nil {
		return res, err
	}
	defer q.Stop()

	subs := fixedSubs{}
	var ids []string
	for i := range o.Subscriptions {
		id := fmt.Sprintf("bench-sub-%04d", i)
		sub := store.Subscription{ID: id, ResourceID: fmt.Sprintf("res-%d", i), Mailbox: fmt.Sprintf("mbx-%d", i),
			Resource: "users/x/events", ChangeTypes: "created,updated,deleted", ExpiresAt: time.Now().Add(24 * time.Hour),
			ClientStateHash: store.HashClientState("secret-" + id), Lifetime: 24 * time.Hour, CreatedAt: time.Now()}
		if _, err := st.UpsertResource(ctx, st.DB(), store.Resource{ID: sub.ResourceID, Name: sub.ResourceID, Mailbox: sub.Mailbox,
			OptIn: store.OptInAllowed, Active: true}); err != nil {
			return res, err
		}
		if _, err := st.InsertSubscription(ctx, st.DB(), sub); err != nil {
			return res, err
		}
		subs[id] = sub
		ids = append(ids, id)
	}
	m := metrics.New()
	api := httpapi.NewServer(httpapi.Config{}, subs, in, o.Logger, m)
	real := &httpapi.Listener{Name: "bench", Addr: "127.0.0.1:0", Handler: api.PublicHandler(), Logger: o.Logger}
	if err := real.Start(ctx); err != nil {
		return res, err
	}
	defer real.Stop()
	bare := &httpapi.Listener{Name: "baseline", Addr: "127.0.0.1:0", Logger: o.Logger,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusAccepted)
		})}
	if err := bare.Start(ctx); err != nil {
		return res, err
	}
	defer bare.Stop()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}, Timeout: 30 * time.Second}
	gen := &generator{ids: ids}

	// Baseline first, then the real endpoint, at the same fixed rate.
	base := fixedRate(ctx, client, bare.URL()+"/notifications/graph", gen, o.Rate, o.Duration)
	fixed := fixedRate(ctx, client, real.URL()+"/notifications/graph", gen, o.Rate, o.Duration)
	fast := flatOut(ctx, client, real.URL()+"/notifications/graph", gen, o.Concurrency, o.Duration)

	res.BaselineAckP50Ms, res.BaselineAckP99Ms = percentile(base.lat, 0.50), percentile(base.lat, 0.99)
	res.AckP50Ms, res.AckP99Ms = percentile(fixed.lat, 0.50), percentile(fixed.lat, 0.99)
	res.ThroughputPerS = float64(fast.acked) / fast.elapsed.Seconds()
	res.Notifications = fixed.acked + fast.acked
	res.Requests = fixed.requests + fast.requests
	res.Errors = fixed.errors + fast.errors
	persisted, err := countInbox(ctx, st)
	if err != nil {
		return res, err
	}
	res.Persisted = persisted
	res.Lost = res.Notifications - persisted
	return res, nil
}

func countInbox(ctx context.Context, st *store.Store) (int64, error) {
	var n int64
	err := st.InboxReadDB().QueryRowContext(ctx, `SELECT COUNT(*) FROM notifications`).Scan(&n)
	return n, err
}

// generator makes valid, distinct change notifications.
type generator struct {
	ids []string
	seq atomic.Int64
}

// body returns a collection of n notifications. It appends the JSON by hand
// (the same bytes json.Marshal would produce for these fields): the client
// shares the two cores with the server, so it must cost little CPU. Bodies
// are made as they are sent rather than ahead of time, so that no large
// pre-built pool inflates the heap and thins out the server's GC.
func (g *generator) body(n int) []byte {
	exp := time.Now().Add(time.Hour).UTC().AppendFormat(nil, time.RFC3339Nano)
	b := make([]byte, 0, 16+n*470)
	b = append(b, `{"value":[`...)
	for i := range n {
		seq := g.seq.Add(1)
		sub := g.ids[int(seq)%len(g.ids)]
		var eidBuf [64]byte
		eid := append(eidBuf[:0], "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A"...)
		eid = appendPadded(eid, seq%5000, 12)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"subscriptionId":"`...)
		b = append(b, sub...)
		b = append(b, `","subscriptionExpirationDateTime":"`...)
		b = append(b, exp...)
		b = append(b, `","changeType":"updated","resource":"Users/mbx/Events/`...)
		b = append(b, eid...)
		b = append(b, `","resourceData":{"@odata.type":"#Microsoft.Graph.Event","@odata.id":"Users/mbx/Events/`...)
		b = append(b, eid...)
		b = append(b, `","@odata.etag":"W/\"DwAAABYAAA`...)
		b = appendPadded(b, seq, 12)
		b = append(b, `\"","id":"`...)
		b = append(b, eid...)
		b = append(b, `"},"clientState":"secret-`...)
		b = append(b, sub...)
		b = append(b, `","tenantId":"tenant"}`...)
	}
	return append(b, "]}"...)
}

// appendPadded appends v in decimal, zero-padded to width digits (%0*d).
func appendPadded(b []byte, v int64, width int) []byte {
	var d [20]byte
	s := strconv.AppendInt(d[:0], v, 10)
	for range width - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

type phase struct {
	lat                     []time.Duration
	acked, requests, errors int64
	elapsed                 time.Duration
}

func post(ctx context.Context, c *http.Client, url string, body []byte) (time.Duration, bool) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), resp.StatusCode == http.StatusAccepted
}

// fixedRate sends batches of 1–20 notifications (uniformly) at an average of
// rate notifications per second, each request on its own goroutine at its
// scheduled time, so a slow answer never delays the next send (no
// coordinated omission).
func fixedRate(ctx context.Context, c *http.Client, url string, g *generator, rate int, d time.Duration) phase {
	var mu sync.Mutex
	var p phase
	var wg sync.WaitGroup
	start := time.Now()
	next := start
	for time.Since(start) < d && ctx.Err() == nil {
		n := 1 + rand.IntN(20)
		body := g.body(n)
		time.Sleep(time.Until(next))
		next = next.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat, ok := post(ctx, c, url, body)
			mu.Lock()
			defer mu.Unlock()
			p.requests++
			if !ok {
				p.errors++
				return
			}
			p.lat = append(p.lat, lat)
			p.acked += int64(n)
		}()
	}
	wg.Wait()
	p.elapsed = time.Since(start)
	return p
}

// flatOut sends batches of 20 from conc goroutines as fast as answers come.
func flatOut(ctx context.Context, c *http.Client, url string, g *generator, conc int, d time.Duration) phase {
	var mu sync.Mutex
	var p phase
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < d && ctx.Err() == nil {
				body := g.body(20)
				lat, ok := post(ctx, c, url, body)
				mu.Lock()
				p.requests++
				if ok {
					p.acked += 20
					p.lat = append(p.lat, lat)
				} else {
					p.errors++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	p.elapsed = time.Since(start)
	return p
}

func percentile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * q)
	return float64(s[i].Microseconds()) / 1000
}
