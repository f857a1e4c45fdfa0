package graph

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// deliverer POSTs notifications. Each target (URL, and whether it is the
// lifecycle endpoint) has a bounded queue drained by at most one goroutine,
// which batches whatever piled up, retries with exponential backoff within
// the retry window, and exits when its queue is empty.
type deliverer struct {
	e      *Emulator
	client *http.Client

	mu     sync.Mutex
	queues map[queueKey]*queue
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type queueKey struct {
	url       string
	lifecycle bool
}

type queue struct {
	key     queueKey
	items   []pending
	running bool
	gen     uint64 // bumped by clear, so a running worker drops what it holds
}

type pending struct {
	subID string
	n     changeNotification
}

func newDeliverer(e *Emulator, client *http.Client) *deliverer {
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12} // system roots
		client = &http.Client{
			Transport: tr,
			// Graph does not follow redirects: a 3xx is a failed delivery.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &deliverer{e: e, client: client, queues: map[queueKey]*queue{}, ctx: ctx, cancel: cancel}
}

// enqueue adds a notification, applying the drop and duplicate faults. It
// reports whether the queue overflowed (the notification was lost).
func (d *deliverer) enqueue(target string, lifecycle bool, subID string, n changeNotification) (overflow bool) {
	f := d.e.currentFaults()
	opts := d.e.options()
	if !lifecycle && f.DropNotificationsRate > 0 && chance(f.DropNotificationsRate) {
		d.e.counters.notificationsDropped.Add(1)
		return false
	}
	copies := 1
	if !lifecycle && f.DuplicateNotificationsRate > 0 && chance(f.DuplicateNotificationsRate) {
		copies = 2
		d.e.counters.notificationsDuplicated.Add(1)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	k := queueKey{url: target, lifecycle: lifecycle}
	q := d.queues[k]
	if q == nil {
		q = &queue{key: k}
		d.queues[k] = q
	}
	for range copies {
		if len(q.items) >= opts.NotificationQueueMax {
			d.e.counters.notificationsDropped.Add(1)
			overflow = true
			continue
		}
		q.items = append(q.items, pending{subID: subID, n: n})
	}
	if !q.running {
		q.running = true
		d.wg.Add(1)
		go d.run(q)
	}
	return overflow
}

// clear drops everything queued (Reset).
func (d *deliverer) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, q := range d.queues {
		d.e.counters.notificationsDropped.Add(int64(len(q.items)))
		q.items = nil
		q.gen++
	}
}

func (d *deliverer) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
}

// sleep waits d or until Close; false means stop.
func (d *deliverer) sleep(dur time.Duration) bool {
	if dur <= 0 {
		return d.ctx.Err() == nil
	}
	tm := time.NewTimer(dur)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-d.ctx.Done():
		return false
	}
}

func (d *deliverer) run(q *queue) {
	defer d.wg.Done()
	for {
		opts := d.e.options()
		if !d.sleep(opts.NotificationDelay) {
			return
		}
		d.mu.Lock()
		if len(q.items) == 0 || d.closed {
			q.running = false
			d.mu.Unlock()
			return
		}
		gen := q.gen
		var batch []pending
		if d.e.currentFaults().ReorderNotifications && len(q.items) > 1 {
			// Shuffle what piled up and send it in random-sized POSTs, so
			// later changes can arrive first.
			rand.Shuffle(len(q.items), func(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] })
			n := 1 + rand.IntN(min(len(q.items), opts.NotificationBatchMax))
			batch, q.items = q.items[:n:n], q.items[n:]
		} else {
			n := min(len(q.items), opts.NotificationBatchMax)
			batch, q.items = q.items[:n:n], q.items[n:]
		}
		d.mu.Unlock()
		d.deliver(q, gen, batch)
	}
}

// deliver POSTs one batch until a 2xx, the retry window closes, or every
// notification in it belongs to a subscription that is gone.
func (d *deliverer) deliver(q *queue, gen uint64, batch []pending) {
	opts := d.e.options()
	c := &d.e.counters
	start := time.Now()
	backoff := opts.NotificationBackoff
	for attempt := 0; ; attempt++ {
		if !q.key.lifecycle {
			live := batch[:0]
			for _, p := range batch {
				if d.e.subscriptionLive(p.subID) {
					live = append(live, p)
				} else {
					c.notificationsDropped.Add(1)
				}
			}
			batch = live
		}
		d.mu.Lock()
		stale := q.gen != gen
		d.mu.Unlock()
		if len(batch) == 0 || stale {
			return
		}
		timeout := opts.DeliveryTimeout
		if attempt > 0 {
			timeout = opts.RetryDeliveryTimeout
		}
		err := d.post(q.key.url, batch, timeout)
		c.notificationPosts.Add(1)
		if err == nil {
			if q.key.lifecycle {
				c.lifecycleSent.Add(int64(len(batch)))
			} else {
				c.notificationsSent.Add(int64(len(batch)))
			}
			return
		}
		if time.Since(start)+backoff > opts.NotificationRetryWindow {
			c.notificationsDropped.Add(int64(len(batch)))
			d.e.log.Warn("notifications discarded after retry window", "url", q.key.url, "count", len(batch), "err", err)
			return
		}
		c.notificationRetries.Add(1)
		d.e.log.Debug("notification delivery failed, retrying", "url", q.key.url, "attempt", attempt+1, "in", backoff, "err", err)
		if !d.sleep(backoff) {
			return
		}
		backoff = min(backoff*2, opts.NotificationBackoffMax)
	}
}

func (d *deliverer) post(target string, batch []pending, timeout time.Duration) error {
	coll := changeNotificationCollection{Value: make([]changeNotification, 0, len(batch))}
	for _, p := range batch {
		coll.Value = append(coll.Value, p.n)
	}
	body, err := json.Marshal(coll)
	if err != nil {
		return fmt.Errorf("encode notifications: %w", err)
	}
	ctx, cancel := context.WithTimeout(d.ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notification request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Microsoft-Graph-ChangeNotifications/1.0 (bookingsync emulator)")
	req.Header.Set("client-request-id", uuid.NewString())
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("post notifications: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("post notifications: status %d", resp.StatusCode)
	}
	return nil
}

// --- validation handshake --------------------------------------------------

var pctEscape = regexp.MustCompile(`%[0-9A-F]{2}`)

// validationToken is human-readable with spaces and punctuation, like the
// real ones, so a receiver that echoes it still encoded fails.
func validationToken() string {
	return fmt.Sprintf("Validation: Testing client application reachability for subscription Request-Id: %s & nonce=%s+/?", uuid.NewString(), randomToken(6))
}

// encodeToken is .NET's UrlEncode: spaces as '+', lower-case escapes.
func encodeValidationToken(tok string) string {
	return pctEscape.ReplaceAllStringFunc(url.QueryEscape(tok), strings.ToLower)
}

// validateEndpoint performs Graph's handshake: POST ?validationToken=… with
// text/plain; the endpoint must answer 200 with the decoded token in time.
func (e *Emulator) validateEndpoint(ctx context.Context, target string) *apiError {
	tok := validationToken()
	u := target
	if strings.Contains(u, "?") {
		u += "&"
	} else {
		u += "?"
	}
	u += "validationToken=" + encodeValidationToken(tok)
	e.counters.validationsSent.Add(1)
	failed := func(msg string) *apiError {
		e.counters.validationsFailed.Add(1)
		return errorf(400, codeInvalidRequest, msg)
	}
	const notOK = "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
	ctx, cancel := context.WithTimeout(ctx, e.options().ValidationTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return failed(notOK)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := e.delivery.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return failed("Subscription validation request timed out.")
		}
		e.log.Debug("validation request failed", "url", target, "err", err)
		return failed(notOK)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return failed("Subscription validation request timed out.")
		}
		return failed(notOK)
	}
	if resp.StatusCode != http.StatusOK {
		return failed(notOK)
	}
	if string(got) != tok {
		return failed("Subscription validation request failed. Response must exactly match validationToken query parameter.")
	}
	return nil
}
