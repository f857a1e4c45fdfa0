package graph

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

// Request-volume limits: Graph's subscription service limits (per app and
// per tenant, writes and requests of any kind per 20 s) and Outlook's
// 10,000 requests per 10 minutes per app and mailbox. Each is a fixed
// window that opens with the first request counted after the previous one
// ended, so a test that finishes within a window never sees a boundary.
// Time is the tenant's clock, so POST /_emulator/clock moves windows on.
// A refused request is not counted: the Retry-After it gets is exact.

// window counts requests from start until start+length.
type window struct {
	start time.Time
	n     int
}

// roll opens a new window if the current one has ended (or never began).
func (w *window) roll(now time.Time, length time.Duration) {
	if w.start.IsZero() || !now.Before(w.start.Add(length)) || now.Before(w.start) {
		w.start, w.n = now, 0
	}
}

// full reports whether the window has no room under limit (negative:
// unlimited) and, if so, how long until it ends.
func (w *window) full(now time.Time, length time.Duration, limit int) (time.Duration, bool) {
	if limit < 0 || w.n < limit {
		return 0, false
	}
	return max(w.start.Add(length).Sub(now), time.Second), true
}

// subWindows are the two subscription windows of one app or tenant.
type subWindows struct{ writes, all window }

type mailboxKey struct {
	app string
	mb  uuid.UUID
}

// limiter holds the windows; its own lock keeps it off the model's.
type limiter struct {
	mu        sync.Mutex
	subApp    map[string]*subWindows // by app id (the token's appid)
	subTenant map[string]*subWindows // by tenant id (the token's tid)
	mailbox   map[mailboxKey]window
}

func (l *limiter) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subApp = map[string]*subWindows{}
	l.subTenant = map[string]*subWindows{}
	l.mailbox = map[mailboxKey]window{}
}

// isSubscriptionWrite: Graph counts POST, PUT, DELETE and PATCH as writes.
func isSubscriptionWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
		return true
	}
	return false
}

// admitSubscription counts a request on /subscriptions against the app's
// and the tenant's windows, or refuses it with a 429 if any of them is
// full. All four windows are checked before any is counted, so a refused
// request uses none of the quota.
func (l *limiter) admitSubscription(c tenant.Claims, write bool, now time.Time, o Options) *apiError {
	l.mu.Lock()
	defer l.mu.Unlock()
	get := func(m map[string]*subWindows, k string) *subWindows {
		w := m[k]
		if w == nil {
			w = &subWindows{}
			m[k] = w
		}
		w.writes.roll(now, o.SubscriptionLimitWindow)
		w.all.roll(now, o.SubscriptionLimitWindow)
		return w
	}
	app, ten := get(l.subApp, c.AppID), get(l.subTenant, c.TenantID)
	type check struct {
		w     *window
		limit int
		what  string
	}
	checks := []check{
		{&app.all, o.SubscriptionRequestsPerWindow, "requests per application"},
		{&ten.all, o.TenantSubscriptionRequestsPerWindow, "requests per tenant"},
	}
	if write {
		checks = append(checks,
			check{&app.writes, o.SubscriptionWritesPerWindow, "write requests per application"},
			check{&ten.writes, o.TenantSubscriptionWritesPerWindow, "write requests per tenant"})
	}
	var wait time.Duration
	var over *check
	for i := range checks {
		// The client must wait until every full window has room.
		if d, full := checks[i].w.full(now, o.SubscriptionLimitWindow, checks[i].limit); full && d > wait {
			wait, over = d, &checks[i]
		}
	}
	if over != nil {
		return &apiError{status: http.StatusTooManyRequests, code: codeThrottled, retryAfter: wait,
			message: fmt.Sprintf("Application is over its subscription service limit of %d %s in %s.", over.limit, over.what, o.SubscriptionLimitWindow)}
	}
	for _, ch := range checks {
		ch.w.n++
	}
	return nil
}

// admitMailbox counts a request to an Outlook route against the app and
// mailbox's window, or refuses it with a 429 if the window is full.
func (l *limiter) admitMailbox(app string, mb uuid.UUID, now time.Time, o Options) *apiError {
	if o.MailboxRequestsPerWindow < 0 {
		return nil // unlimited: no entry, so 10,000 idle mailboxes stay small
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := mailboxKey{app, mb}
	w := l.mailbox[k]
	w.roll(now, o.MailboxRequestWindow)
	if d, full := w.full(now, o.MailboxRequestWindow, o.MailboxRequestsPerWindow); full {
		l.mailbox[k] = w
		return &apiError{status: http.StatusTooManyRequests, code: codeThrottled, retryAfter: d,
			message: fmt.Sprintf("Application is over its limit of %d requests in %s for this mailbox.", o.MailboxRequestsPerWindow, o.MailboxRequestWindow)}
	}
	w.n++
	l.mailbox[k] = w
	return nil
}
