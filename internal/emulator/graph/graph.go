// Package graph emulates the slice of Microsoft Graph v1.0 that bookingsync
// uses: users, Outlook calendar events (with recurrence, extended
// properties, calendarView and delta), subscriptions with the validation
// handshake, change and lifecycle notifications, $batch, and Outlook's
// throttling. It is a tenant.Section mounted under /graph/v1.0.
package graph

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

// Graph's resource identifiers as the tenant knows them.
const (
	Audience = "https://graph.microsoft.com"
	Scope    = Audience + "/.default"
	basePath = "/graph/v1.0"
)

// Emulator is the Graph section of the emulated tenant.
type Emulator struct {
	t   *tenant.Tenant
	log *slog.Logger

	cfgMu  sync.RWMutex
	opts   Options
	faults Faults

	routes   tenant.Counter
	counters counters
	// limits are the subscription service and Outlook volume limits.
	limits   limiter
	observer atomic.Pointer[Observer] // see Observe

	// mu guards everything below. One lock keeps the model simple; the
	// per-mailbox concurrency limit is accounted separately, lock-free.
	mu       sync.Mutex
	epoch    uint64 // bumped by Reset: stale timers, tokens and queues notice
	seq      uint64 // global modification counter
	users    map[uuid.UUID]*mailbox
	byUPN    map[string]*mailbox // lower-case UPN and mail
	order    []*mailbox
	subs     map[string]*subscription
	subsByMb map[uuid.UUID]map[string]*subscription
	timers   map[*time.Timer]struct{}
	closed   bool
	tokenKey []byte // signs delta tokens

	mux      *http.ServeMux // the shared mux, for $batch
	delivery *deliverer
	stop     chan struct{}
	wg       sync.WaitGroup
}

// mailbox is a user with an Outlook calendar. It stays small until the
// mailbox is used, for the 10,000-mailbox scale test.
type mailbox struct {
	user     tenant.User
	id       uuid.UUID
	inflight atomic.Int32

	events     map[itemKey]*event
	txn        map[string]itemKey // transactionId → event
	tombstones []tombstone        // deleted events, for delta
}

type tombstone struct {
	ev      *event
	seq     uint64
	deleted time.Time
}

// counters are the extra stats reported beside the route counts.
type counters struct {
	notificationsSent, notificationsDropped, notificationRetries, notificationPosts atomic.Int64
	notificationsDuplicated, lifecycleSent, validationsSent, validationsFailed      atomic.Int64
	subscriptionsExpired, throttled, injectedErrors                                 atomic.Int64
	lostResponses, transactionReplays                                               atomic.Int64
	// subscriptionThrottled and mailboxVolumeThrottled break down throttled
	// (which counts every 429); subscriptionWrites are the writes the
	// subscription limits let through.
	subscriptionThrottled, mailboxVolumeThrottled, subscriptionWrites atomic.Int64
}

func (c *counters) reset() {
	for _, a := range []*atomic.Int64{&c.notificationsSent, &c.notificationsDropped, &c.notificationRetries,
		&c.notificationPosts, &c.notificationsDuplicated, &c.lifecycleSent, &c.validationsSent,
		&c.validationsFailed, &c.subscriptionsExpired, &c.throttled, &c.injectedErrors,
		&c.lostResponses, &c.transactionReplays, &c.subscriptionThrottled, &c.mailboxVolumeThrottled,
		&c.subscriptionWrites} {
		a.Store(0)
	}
}

// New builds the Graph section. t.BaseURL must already be set.
func New(t *tenant.Tenant, opts Options, logger *slog.Logger) *Emulator {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t.RegisterAudience(Audience)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	e := &Emulator{
		t:        t,
		log:      logger,
		opts:     opts.withDefaults(),
		tokenKey: key,
		stop:     make(chan struct{}),
	}
	e.resetLocked()
	e.limits.reset()
	e.delivery = newDeliverer(e, opts.HTTPClient)
	e.wg.Add(1)
	go e.sweep()
	return e
}

// Name implements tenant.Section.
func (e *Emulator) Name() string { return "graph" }

// BaseURL is https://host:port/graph/v1.0.
func (e *Emulator) BaseURL() string { return e.t.BaseURL() + basePath }

// Info implements tenant.Section.
func (e *Emulator) Info() map[string]string {
	return map[string]string{"graph_base_url": e.BaseURL(), "graph_scope": Scope}
}

// Reset implements tenant.Section: drops all state and seeds "demo" or "empty".
func (e *Emulator) Reset(seed string) error {
	var users []tenant.User
	switch seed {
	case "demo":
		users = tenant.DemoUsers()
	case "empty":
	default:
		return fmt.Errorf("graph: unknown seed %q (want demo or empty)", seed)
	}
	e.mu.Lock()
	e.resetLocked()
	for _, u := range users {
		if _, err := e.addUserLocked(u); err != nil {
			e.mu.Unlock()
			return fmt.Errorf("graph: seed user %s: %w", u.UserPrincipalName, err)
		}
	}
	e.mu.Unlock()
	e.delivery.clear()
	e.routes.Reset()
	e.counters.reset()
	e.limits.reset()
	return nil
}

func (e *Emulator) resetLocked() {
	e.epoch++
	e.users = map[uuid.UUID]*mailbox{}
	e.byUPN = map[string]*mailbox{}
	e.order = nil
	e.subs = map[string]*subscription{}
	e.subsByMb = map[uuid.UUID]map[string]*subscription{}
	for tm := range e.timers {
		tm.Stop()
	}
	e.timers = map[*time.Timer]struct{}{}
}

// Close implements tenant.Section: stops the sweeper, timers and delivery.
func (e *Emulator) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	for tm := range e.timers {
		tm.Stop()
	}
	e.timers = nil
	e.mu.Unlock()
	close(e.stop)
	e.delivery.close()
	e.wg.Wait()
}

func (e *Emulator) options() Options {
	e.cfgMu.RLock()
	defer e.cfgMu.RUnlock()
	return e.opts
}

func (e *Emulator) currentFaults() Faults {
	e.cfgMu.RLock()
	defer e.cfgMu.RUnlock()
	return e.faults
}

// SetFaults implements tenant.Section.
func (e *Emulator) SetFaults(raw json.RawMessage) error {
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	f, err := applyFaults(e.faults, raw)
	if err != nil {
		return err
	}
	e.faults = f
	return nil
}

// Faults implements tenant.Section.
func (e *Emulator) Faults() any { return e.currentFaults() }

// SetSettings implements tenant.Section.
func (e *Emulator) SetSettings(raw json.RawMessage) error {
	var s settingsJSON
	if err := decodeStrict(raw, &s); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	o, err := s.apply(e.opts)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	e.opts = o
	return nil
}

// Settings implements tenant.Section.
func (e *Emulator) Settings() any { return settingsOf(e.options()) }

// Stats implements tenant.Section.
func (e *Emulator) Stats() (map[string]int64, map[string]int64) {
	c := &e.counters
	return e.routes.Snapshot(), map[string]int64{
		"notifications_sent":           c.notificationsSent.Load(),
		"notifications_dropped":        c.notificationsDropped.Load(),
		"notification_retries":         c.notificationRetries.Load(),
		"notification_posts":           c.notificationPosts.Load(),
		"notifications_duplicated":     c.notificationsDuplicated.Load(),
		"lifecycle_notifications_sent": c.lifecycleSent.Load(),
		"validations_sent":             c.validationsSent.Load(),
		"validations_failed":           c.validationsFailed.Load(),
		"subscriptions_expired":        c.subscriptionsExpired.Load(),
		"graph_throttled_requests":     c.throttled.Load(),
		"graph_injected_errors":        c.injectedErrors.Load(),
		"graph_lost_responses":         c.lostResponses.Load(),
		"graph_transaction_replays":    c.transactionReplays.Load(),

		// The request-volume limits; graph_throttled_requests also counts their 429s.
		"graph_subscription_throttled":   c.subscriptionThrottled.Load(),
		"graph_mailbox_volume_throttled": c.mailboxVolumeThrottled.Load(),
		"graph_subscription_writes":      c.subscriptionWrites.Load(),
	}
}

// afterFunc runs f after d unless Reset or Close comes first.
func (e *Emulator) afterFuncLocked(d time.Duration, f func()) {
	if e.closed {
		return
	}
	epoch := e.epoch
	var tm *time.Timer
	tm = time.AfterFunc(d, func() {
		e.mu.Lock()
		if e.closed || e.epoch != epoch {
			e.mu.Unlock()
			return
		}
		delete(e.timers, tm)
		e.mu.Unlock()
		f()
	})
	e.timers[tm] = struct{}{}
}

// nextSeqLocked returns a fresh modification number.
func (e *Emulator) nextSeqLocked() uint64 {
	e.seq++
	return e.seq
}

// --- users -----------------------------------------------------------------

func (e *Emulator) addUserLocked(u tenant.User) (*mailbox, error) {
	id, err := uuid.Parse(u.ID)
	if err != nil {
		return nil, fmt.Errorf("user id %q is not a GUID: %w", u.ID, err)
	}
	if u.UserPrincipalName == "" {
		return nil, fmt.Errorf("user %s has no userPrincipalName", u.ID)
	}
	if _, dup := e.users[id]; dup {
		return nil, fmt.Errorf("user %s already exists", u.ID)
	}
	upn := strings.ToLower(u.UserPrincipalName)
	if _, dup := e.byUPN[upn]; dup {
		return nil, fmt.Errorf("userPrincipalName %s already exists", u.UserPrincipalName)
	}
	u.ID = id.String()
	if u.TimeZone == "" {
		u.TimeZone = "UTC"
	}
	mb := &mailbox{user: u, id: id}
	e.users[id] = mb
	e.byUPN[upn] = mb
	if u.Mail != "" {
		e.byUPN[strings.ToLower(u.Mail)] = mb
	}
	e.order = append(e.order, mb)
	return mb, nil
}

// lookupUserLocked resolves an id or userPrincipalName from a URL.
func (e *Emulator) lookupUserLocked(s string) *mailbox {
	if id, err := uuid.Parse(s); err == nil {
		return e.users[id]
	}
	return e.byUPN[strings.ToLower(s)]
}

func (e *Emulator) lookupUser(s string) *mailbox {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lookupUserLocked(s)
}

// --- request plumbing ------------------------------------------------------

type ctxKey int

const inBatchKey ctxKey = 1

// reqCtx is what every API handler gets besides w and r.
type reqCtx struct {
	claims tenant.Claims
	mb     *mailbox // for /users/{uid}/… Outlook routes
	prefs  preferences
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError

// route options.
const (
	plain   = 0
	outlook = 1 // resolves {uid} to a mailbox and applies Outlook's limits
	// write marks the event writes the lost-response fault applies to.
	write = 2
	// subscriptionAPI marks /subscriptions routes, subject to Graph's
	// subscription service limits.
	subscriptionAPI = 4
)

// handle registers an API route: stats, request ids, auth, faults,
// mailbox resolution, the per-mailbox volume and concurrency limits and
// the subscription service limits.
func (e *Emulator) handle(mux *http.ServeMux, pattern string, kind int, h handlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		route := tenant.RouteKey(r.Pattern, basePath)
		e.routes.Add(route)
		e.observeRequest(r.Method, r.URL.Path, route)
		if kind&write != 0 && r.Context().Value(inBatchKey) == nil {
			if f := e.currentFaults(); f.losesResponse(r.Method) && chance(f.LoseResponseRate) {
				e.serveLosingResponse(w, r, kind, h, f.LoseResponseMode)
				return
			}
		}
		if aerr := e.serve(w, r, kind, h); aerr != nil {
			e.writeError(w, aerr)
		}
	})
}

// serveLosingResponse serves a write whose response is to be lost: the
// write runs to completion (into a recorder), and if it succeeded the
// client gets a 504 or a reset instead of the answer, as when a gateway
// gives up or the connection drops after Exchange committed. A write that
// failed is answered as usual: nothing happened, nothing is lost.
func (e *Emulator) serveLosingResponse(w http.ResponseWriter, r *http.Request, kind int, h handlerFunc, mode string) {
	rec := newRecorder()
	if aerr := e.serve(rec, r, kind, h); aerr != nil {
		e.writeError(rec, aerr)
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	if status < 200 || status > 299 {
		for k, vs := range rec.header {
			w.Header()[k] = vs
		}
		w.WriteHeader(status)
		_, _ = w.Write(rec.buf.Bytes())
		return
	}
	e.counters.lostResponses.Add(1)
	if mode == LoseReset {
		// The server closes the connection (HTTP/1.1) or resets the
		// stream (HTTP/2) without writing a response.
		panic(http.ErrAbortHandler)
	}
	for _, k := range []string{"request-id", "client-request-id"} {
		w.Header().Set(k, rec.header.Get(k))
	}
	e.writeError(w, errorf(http.StatusGatewayTimeout, "UnknownError", "The operation has timed out."))
}

func (e *Emulator) serve(w http.ResponseWriter, r *http.Request, kind int, h handlerFunc) *apiError {
	reqID := uuid.NewString()
	w.Header().Set("request-id", reqID)
	crid := r.Header.Get("client-request-id")
	if crid == "" {
		crid = reqID
	}
	w.Header().Set("client-request-id", crid)
	claims, err := e.t.Authorize(r, Audience)
	if err != nil {
		return authError(r, err)
	}
	rc := &reqCtx{claims: claims, prefs: parsePrefer(r.Header)}
	if kind&outlook != 0 {
		uid := r.PathValue("uid")
		mb := e.lookupUser(uid)
		if mb == nil {
			return errorf(404, codeInvalidUser, fmt.Sprintf("The requested user '%s' is invalid.", uid))
		}
		rc.mb = mb
		opts := e.options()
		// The volume limit is checked first: a request it refuses never
		// reaches the mailbox, so it takes no concurrency slot.
		if aerr := e.limits.admitMailbox(claims.AppID, mb.id, e.t.Now(), opts); aerr != nil {
			e.counters.throttled.Add(1)
			e.counters.mailboxVolumeThrottled.Add(1)
			return aerr
		}
		if n := mb.inflight.Add(1); int(n) > opts.MailboxConcurrency {
			mb.inflight.Add(-1)
			e.counters.throttled.Add(1)
			return &apiError{status: 429, code: codeThrottled, message: "Application is over its MailboxConcurrency limit.", retryAfter: opts.RetryAfter}
		}
		defer mb.inflight.Add(-1)
	}
	if kind&subscriptionAPI != 0 {
		// Checked before the handler runs, so a refused request creates
		// nothing and sends no validation handshake.
		isWrite := isSubscriptionWrite(r.Method)
		if aerr := e.limits.admitSubscription(claims, isWrite, e.t.Now(), e.options()); aerr != nil {
			e.counters.throttled.Add(1)
			e.counters.subscriptionThrottled.Add(1)
			return aerr
		}
		if isWrite {
			e.counters.subscriptionWrites.Add(1)
		}
	}
	if aerr := e.injectFaults(r.Context()); aerr != nil {
		return aerr
	}
	return h(w, r, rc)
}

func authError(r *http.Request, err error) *apiError {
	msg := "Access token validation failure. Invalid audience."
	switch s := err.Error(); {
	case strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer")) == "":
		msg = "Access token is empty."
	case strings.Contains(s, "expired"):
		msg = "Lifetime validation failed, the token is expired."
	case !strings.Contains(s, "audience"):
		msg = "Access token validation failure."
	}
	return errorf(401, codeInvalidAuthToken, msg)
}

// injectFaults applies latency, then an injected 429 or 5xx. Latency is
// served while the mailbox slot is held, as a slow Exchange call would.
func (e *Emulator) injectFaults(ctx context.Context) *apiError {
	f := e.currentFaults()
	if f.LatencyMS > 0 {
		tm := time.NewTimer(time.Duration(f.LatencyMS) * time.Millisecond)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return errorf(499, "RequestCanceled", "The client closed the request.")
		}
	}
	if f.ThrottleRate > 0 && chance(f.ThrottleRate) {
		e.counters.throttled.Add(1)
		return &apiError{status: 429, code: "TooManyRequests", message: "Too many requests.", retryAfter: e.options().RetryAfter}
	}
	if f.ErrorRate > 0 && chance(f.ErrorRate) {
		e.counters.injectedErrors.Add(1)
		switch randIntN(3) {
		case 0:
			return errorf(500, "generalException", "An unexpected error occurred.")
		case 1:
			return &apiError{status: 503, code: "serviceNotAvailable", message: "The service is temporarily unavailable.", retryAfter: e.options().RetryAfter}
		default:
			return errorf(504, "UnknownError", "The operation has timed out.")
		}
	}
	return nil
}

// unknownSegment answers paths Graph does not know, as Graph does.
func (e *Emulator) unknownSegment(w http.ResponseWriter, r *http.Request, _ *reqCtx) *apiError {
	rest := strings.TrimPrefix(r.URL.Path, basePath+"/")
	seg, _, _ := strings.Cut(rest, "/")
	if strings.EqualFold(seg, "me") {
		return errorf(400, codeBadRequest, "/me request is only valid with delegated authentication flow.")
	}
	return errorf(400, codeBadRequest, fmt.Sprintf("Resource not found for the segment '%s'.", seg))
}

// Mount implements tenant.Section.
func (e *Emulator) Mount(mux *http.ServeMux) {
	e.mux = mux
	b := basePath
	e.handle(mux, "GET "+b+"/users", plain, e.listUsers)
	e.handle(mux, "GET "+b+"/users/{uid}", plain, e.getUser)
	for _, events := range []string{"/users/{uid}/events", "/users/{uid}/calendar/events"} {
		e.handle(mux, "POST "+b+events, outlook|write, e.createEvent)
		e.handle(mux, "GET "+b+events, outlook, e.listEvents)
		e.handle(mux, "GET "+b+events+"/{eid}", outlook, e.getEvent)
		e.handle(mux, "PATCH "+b+events+"/{eid}", outlook|write, e.updateEvent)
		e.handle(mux, "DELETE "+b+events+"/{eid}", outlook, e.deleteEvent)
		e.handle(mux, "GET "+b+events+"/{eid}/instances", outlook, e.listInstances)
	}
	for _, cv := range []string{"/users/{uid}/calendarView", "/users/{uid}/calendar/calendarView"} {
		e.handle(mux, "GET "+b+cv, outlook, e.calendarView)
		e.handle(mux, "GET "+b+cv+"/delta", outlook, e.delta)
	}
	e.handle(mux, "POST "+b+"/subscriptions", subscriptionAPI, e.createSubscription)
	e.handle(mux, "GET "+b+"/subscriptions", subscriptionAPI, e.listSubscriptions)
	e.handle(mux, "GET "+b+"/subscriptions/{sid}", subscriptionAPI, e.getSubscription)
	e.handle(mux, "PATCH "+b+"/subscriptions/{sid}", subscriptionAPI, e.updateSubscription)
	e.handle(mux, "DELETE "+b+"/subscriptions/{sid}", subscriptionAPI, e.deleteSubscription)
	e.handle(mux, "POST "+b+"/subscriptions/{sid}/reauthorize", subscriptionAPI, e.reauthorizeSubscription)
	e.handle(mux, "POST "+b+"/$batch", plain, e.batch)
	e.handle(mux, b+"/", plain, e.unknownSegment)

	mux.HandleFunc("POST /_emulator/lifecycle", e.controlLifecycle)
	mux.HandleFunc("POST /_emulator/graph/users", e.controlCreateUsers)
}
