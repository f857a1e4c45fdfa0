package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Options are the emulator's tunables. The zero value means "real Graph's
// numbers"; tests shrink the durations (through Go, flags or the control
// API's settings) so that expiry and retry happen in seconds.
type Options struct {
	// MaxSubscriptionMinutes is the largest expirationDateTime accepted for
	// events, in minutes from now (default 10,070: what a live tenant
	// accepted in 2026; 4,230 behaves like older tenants).
	MaxSubscriptionMinutes int
	// MinSubscriptionSeconds is Graph's floor: a shorter expirationDateTime
	// is raised to this many seconds from now (default 2,700 = 45 minutes).
	// Tests lower it so that renewal and expiry happen in seconds.
	MinSubscriptionSeconds int
	// SubscriptionsPerMailbox caps active subscriptions per mailbox (default 1,000).
	SubscriptionsPerMailbox int

	// NotificationRetryWindow is how long a failing notification is retried
	// (default 4h, as Graph documents).
	NotificationRetryWindow time.Duration
	// NotificationBackoff is the first retry delay; each later one doubles,
	// up to NotificationBackoffMax (defaults 30s and 30m).
	NotificationBackoff    time.Duration
	NotificationBackoffMax time.Duration
	// DeliveryTimeout is how long a receiver has to answer a first delivery
	// (default 3s); RetryDeliveryTimeout applies to retries (default 10s).
	DeliveryTimeout      time.Duration
	RetryDeliveryTimeout time.Duration
	// ValidationTimeout bounds the subscription validation handshake (default 10s).
	ValidationTimeout time.Duration
	// NotificationDelay holds notifications back before a POST so that
	// several pile up into one changeNotificationCollection (default 0).
	NotificationDelay time.Duration
	// NotificationBatchMax caps notifications per POST (default 50).
	NotificationBatchMax int
	// NotificationQueueMax bounds each target's queue; overflow is dropped
	// and reported to the subscription as a "missed" lifecycle event (default 10,000).
	NotificationQueueMax int

	// NoExtraUpdate turns off Outlook's second modification right after a
	// create (on by default, as in Outlook).
	NoExtraUpdate bool
	// ExtraUpdateDelay is when that modification happens (default 500ms).
	ExtraUpdateDelay time.Duration

	// ReauthorizationLead is how long before expiry reauthorizationRequired
	// is first sent (default 1h); ReauthorizationInterval repeats it until the
	// subscription is renewed or reauthorized (default 15m).
	ReauthorizationLead     time.Duration
	ReauthorizationInterval time.Duration

	// MailboxConcurrency is Outlook's concurrent-request limit per mailbox (default 4).
	MailboxConcurrency int
	// MailboxRequestsPerWindow is Outlook's request volume limit per app and
	// mailbox: at most this many requests to a mailbox's Outlook routes
	// (events, calendarView, delta; $batch steps count one by one) in
	// MailboxRequestWindow, then 429 until the window ends (defaults
	// 10,000 and 10m, Outlook's numbers). Negative means unlimited, for
	// tests that hammer one mailbox.
	MailboxRequestsPerWindow int
	MailboxRequestWindow     time.Duration

	// Graph's subscription service limits on requests to /subscriptions
	// (create, renew, delete, get, list, reauthorize) in each
	// SubscriptionLimitWindow (default 20s): per app (the token's appid),
	// SubscriptionWritesPerWindow POST/PUT/PATCH/DELETE requests (default
	// 1,000) and SubscriptionRequestsPerWindow requests of any kind
	// (default 5,000); per tenant, TenantSubscriptionWritesPerWindow (default
	// 2,000) and TenantSubscriptionRequestsPerWindow (default 10,000). Over
	// any of them → 429 with Retry-After. Negative means unlimited, for tests
	// that enrol thousands of mailboxes quickly.
	SubscriptionWritesPerWindow         int
	SubscriptionRequestsPerWindow       int
	TenantSubscriptionWritesPerWindow   int
	TenantSubscriptionRequestsPerWindow int
	SubscriptionLimitWindow             time.Duration

	// RetryAfter is the Retry-After sent with 429 responses (default 1s).
	RetryAfter time.Duration
	// PageSize is the default page size of event lists, calendarView and
	// delta (default 10, Outlook's default).
	PageSize int
	// DeltaTokenLifetime is how long delta and skip tokens stay valid (default 7 days).
	DeltaTokenLifetime time.Duration
	// SweepInterval is how often expiry and reauthorization are checked (default 1s).
	SweepInterval time.Duration

	// HTTPClient sends validation requests and notifications. nil means a
	// client with the system roots that does not follow redirects.
	HTTPClient *http.Client
}

// Unlimited switches off a request-volume limit (MailboxRequestsPerWindow
// and the subscription limits); any negative value does.
const Unlimited = -1

func (o Options) withDefaults() Options {
	setInt := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	setDur := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	setInt(&o.MaxSubscriptionMinutes, 10070)
	setInt(&o.MinSubscriptionSeconds, 2700)
	setInt(&o.SubscriptionsPerMailbox, 1000)
	setDur(&o.NotificationRetryWindow, 4*time.Hour)
	setDur(&o.NotificationBackoff, 30*time.Second)
	setDur(&o.NotificationBackoffMax, 30*time.Minute)
	setDur(&o.DeliveryTimeout, 3*time.Second)
	setDur(&o.RetryDeliveryTimeout, 10*time.Second)
	setDur(&o.ValidationTimeout, 10*time.Second)
	setInt(&o.NotificationBatchMax, 50)
	setInt(&o.NotificationQueueMax, 10000)
	setDur(&o.ExtraUpdateDelay, 500*time.Millisecond)
	setDur(&o.ReauthorizationLead, time.Hour)
	setDur(&o.ReauthorizationInterval, 15*time.Minute)
	setInt(&o.MailboxConcurrency, 4)
	// Limits: zero means Graph's number, negative means unlimited (-1).
	setLimit := func(p *int, v int) {
		switch {
		case *p == 0:
			*p = v
		case *p < 0:
			*p = Unlimited
		}
	}
	setLimit(&o.MailboxRequestsPerWindow, 10000)
	setDur(&o.MailboxRequestWindow, 10*time.Minute)
	setLimit(&o.SubscriptionWritesPerWindow, 1000)
	setLimit(&o.SubscriptionRequestsPerWindow, 5000)
	setLimit(&o.TenantSubscriptionWritesPerWindow, 2000)
	setLimit(&o.TenantSubscriptionRequestsPerWindow, 10000)
	setDur(&o.SubscriptionLimitWindow, 20*time.Second)
	setDur(&o.RetryAfter, time.Second)
	setInt(&o.PageSize, 10)
	setDur(&o.DeltaTokenLifetime, 7*24*time.Hour)
	setDur(&o.SweepInterval, time.Second)
	if o.NotificationDelay < 0 {
		o.NotificationDelay = 0
	}
	return o
}

// RegisterFlags adds a flag per tunable, named "graph-…", to fs.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	d := Options{}.withDefaults()
	fs.IntVar(&o.MaxSubscriptionMinutes, "graph-max-subscription-minutes", d.MaxSubscriptionMinutes, "largest subscription lifetime for events, in minutes (4230 behaves like older tenants)")
	fs.IntVar(&o.MinSubscriptionSeconds, "graph-min-subscription-seconds", d.MinSubscriptionSeconds, "shortest subscription lifetime, in seconds; shorter requests are raised to it (Graph: 2700 = 45 minutes)")
	fs.DurationVar(&o.NotificationRetryWindow, "graph-notification-retry-window", d.NotificationRetryWindow, "how long failing change notifications are retried")
	fs.DurationVar(&o.NotificationBackoff, "graph-notification-backoff", d.NotificationBackoff, "first notification retry delay (doubles each time)")
	fs.DurationVar(&o.NotificationBackoffMax, "graph-notification-backoff-max", d.NotificationBackoffMax, "largest notification retry delay")
	fs.DurationVar(&o.DeliveryTimeout, "graph-delivery-timeout", d.DeliveryTimeout, "time a receiver has to acknowledge a notification")
	fs.DurationVar(&o.RetryDeliveryTimeout, "graph-retry-delivery-timeout", d.RetryDeliveryTimeout, "time a receiver has to acknowledge a retried notification")
	fs.DurationVar(&o.ValidationTimeout, "graph-validation-timeout", d.ValidationTimeout, "time a receiver has to answer the validation handshake")
	fs.DurationVar(&o.NotificationDelay, "graph-notification-delay", 0, "hold notifications back this long so they pile up into one POST")
	fs.BoolFunc("graph-extra-update-after-create", "Outlook's extra modification right after create (true|false, default true)", func(s string) error {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("graph-extra-update-after-create: %w", err)
		}
		o.NoExtraUpdate = !v
		return nil
	})
	fs.DurationVar(&o.ExtraUpdateDelay, "graph-extra-update-delay", d.ExtraUpdateDelay, "when Outlook's extra modification after create happens")
	fs.DurationVar(&o.ReauthorizationLead, "graph-reauthorization-lead", d.ReauthorizationLead, "how long before expiry reauthorizationRequired is sent")
	fs.DurationVar(&o.ReauthorizationInterval, "graph-reauthorization-interval", d.ReauthorizationInterval, "how often reauthorizationRequired repeats")
	fs.IntVar(&o.MailboxConcurrency, "graph-mailbox-concurrency", d.MailboxConcurrency, "concurrent requests per mailbox before 429")
	fs.IntVar(&o.MailboxRequestsPerWindow, "graph-mailbox-requests-per-window", d.MailboxRequestsPerWindow, "requests per app and mailbox in -graph-mailbox-request-window before 429 (negative: unlimited)")
	fs.DurationVar(&o.MailboxRequestWindow, "graph-mailbox-request-window", d.MailboxRequestWindow, "window of the per-mailbox request volume limit")
	fs.IntVar(&o.SubscriptionWritesPerWindow, "graph-subscription-writes-per-window", d.SubscriptionWritesPerWindow, "POST/PUT/PATCH/DELETE requests on /subscriptions per app in -graph-subscription-limit-window before 429 (negative: unlimited)")
	fs.IntVar(&o.SubscriptionRequestsPerWindow, "graph-subscription-requests-per-window", d.SubscriptionRequestsPerWindow, "requests of any kind on /subscriptions per app in -graph-subscription-limit-window before 429 (negative: unlimited)")
	fs.IntVar(&o.TenantSubscriptionWritesPerWindow, "graph-tenant-subscription-writes-per-window", d.TenantSubscriptionWritesPerWindow, "POST/PUT/PATCH/DELETE requests on /subscriptions per tenant in -graph-subscription-limit-window before 429 (negative: unlimited)")
	fs.IntVar(&o.TenantSubscriptionRequestsPerWindow, "graph-tenant-subscription-requests-per-window", d.TenantSubscriptionRequestsPerWindow, "requests of any kind on /subscriptions per tenant in -graph-subscription-limit-window before 429 (negative: unlimited)")
	fs.DurationVar(&o.SubscriptionLimitWindow, "graph-subscription-limit-window", d.SubscriptionLimitWindow, "window of the subscription service limits")
	fs.DurationVar(&o.DeltaTokenLifetime, "graph-delta-token-lifetime", d.DeltaTokenLifetime, "how long delta tokens stay valid")
}

// settingsJSON is the control API's view of Options (GET/POST /_emulator/settings, member "graph").
type settingsJSON struct {
	MaxSubscriptionMinutes   *int  `json:"max_subscription_minutes"`
	MinSubscriptionSeconds   *int  `json:"min_subscription_seconds"`
	SubscriptionsPerMailbox  *int  `json:"subscriptions_per_mailbox"`
	NotificationRetryWindowS *int  `json:"notification_retry_window_s"`
	NotificationBackoffMS    *int  `json:"notification_backoff_ms"`
	NotificationBackoffMaxMS *int  `json:"notification_backoff_max_ms"`
	DeliveryTimeoutMS        *int  `json:"delivery_timeout_ms"`
	RetryDeliveryTimeoutMS   *int  `json:"retry_delivery_timeout_ms"`
	ValidationTimeoutMS      *int  `json:"validation_timeout_ms"`
	NotificationDelayMS      *int  `json:"notification_delay_ms"`
	NotificationBatchMax     *int  `json:"notification_batch_max"`
	NotificationQueueMax     *int  `json:"notification_queue_max"`
	ExtraUpdateAfterCreate   *bool `json:"extra_update_after_create"`
	ExtraUpdateDelayMS       *int  `json:"extra_update_delay_ms"`
	ReauthorizationLeadS     *int  `json:"reauthorization_lead_s"`
	ReauthorizationIntervalS *int  `json:"reauthorization_interval_s"`
	MailboxConcurrency       *int  `json:"mailbox_concurrency"`
	MailboxRequestsPerWindow *int  `json:"mailbox_requests_per_window"`
	MailboxRequestWindowMS   *int  `json:"mailbox_request_window_ms"`
	RetryAfterS              *int  `json:"retry_after_s"`
	PageSize                 *int  `json:"page_size"`
	DeltaTokenLifetimeS      *int  `json:"delta_token_lifetime_s"`
	SweepIntervalMS          *int  `json:"sweep_interval_ms"`

	// Subscription service limits; negative means unlimited.
	SubscriptionWritesPerWindow         *int `json:"subscription_writes_per_window"`
	SubscriptionRequestsPerWindow       *int `json:"subscription_requests_per_window"`
	TenantSubscriptionWritesPerWindow   *int `json:"tenant_subscription_writes_per_window"`
	TenantSubscriptionRequestsPerWindow *int `json:"tenant_subscription_requests_per_window"`
	SubscriptionLimitWindowMS           *int `json:"subscription_limit_window_ms"`
}

func ptr[T any](v T) *T { return &v }

func settingsOf(o Options) settingsJSON {
	ms := func(d time.Duration) *int { return ptr(int(d / time.Millisecond)) }
	s := func(d time.Duration) *int { return ptr(int(d / time.Second)) }
	return settingsJSON{
		MaxSubscriptionMinutes:   ptr(o.MaxSubscriptionMinutes),
		MinSubscriptionSeconds:   ptr(o.MinSubscriptionSeconds),
		SubscriptionsPerMailbox:  ptr(o.SubscriptionsPerMailbox),
		NotificationRetryWindowS: s(o.NotificationRetryWindow),
		NotificationBackoffMS:    ms(o.NotificationBackoff),
		NotificationBackoffMaxMS: ms(o.NotificationBackoffMax),
		DeliveryTimeoutMS:        ms(o.DeliveryTimeout),
		RetryDeliveryTimeoutMS:   ms(o.RetryDeliveryTimeout),
		ValidationTimeoutMS:      ms(o.ValidationTimeout),
		NotificationDelayMS:      ms(o.NotificationDelay),
		NotificationBatchMax:     ptr(o.NotificationBatchMax),
		NotificationQueueMax:     ptr(o.NotificationQueueMax),
		ExtraUpdateAfterCreate:   ptr(!o.NoExtraUpdate),
		ExtraUpdateDelayMS:       ms(o.ExtraUpdateDelay),
		ReauthorizationLeadS:     s(o.ReauthorizationLead),
		ReauthorizationIntervalS: s(o.ReauthorizationInterval),
		MailboxConcurrency:       ptr(o.MailboxConcurrency),
		MailboxRequestsPerWindow: ptr(o.MailboxRequestsPerWindow),
		MailboxRequestWindowMS:   ms(o.MailboxRequestWindow),
		RetryAfterS:              s(o.RetryAfter),
		PageSize:                 ptr(o.PageSize),
		DeltaTokenLifetimeS:      s(o.DeltaTokenLifetime),
		SweepIntervalMS:          ms(o.SweepInterval),

		SubscriptionWritesPerWindow:         ptr(o.SubscriptionWritesPerWindow),
		SubscriptionRequestsPerWindow:       ptr(o.SubscriptionRequestsPerWindow),
		TenantSubscriptionWritesPerWindow:   ptr(o.TenantSubscriptionWritesPerWindow),
		TenantSubscriptionRequestsPerWindow: ptr(o.TenantSubscriptionRequestsPerWindow),
		SubscriptionLimitWindowMS:           ms(o.SubscriptionLimitWindow),
	}
}

// apply copies the fields present in s onto o, rejecting nonsense values.
func (s settingsJSON) apply(o Options) (Options, error) {
	var errs []error
	posInt := func(name string, src *int, dst *int) {
		if src == nil {
			return
		}
		if *src < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1, got %d", name, *src))
			return
		}
		*dst = *src
	}
	dur := func(name string, src *int, unit time.Duration, min int, dst *time.Duration) {
		if src == nil {
			return
		}
		if *src < min {
			errs = append(errs, fmt.Errorf("%s must be at least %d, got %d", name, min, *src))
			return
		}
		*dst = time.Duration(*src) * unit
	}
	posInt("max_subscription_minutes", s.MaxSubscriptionMinutes, &o.MaxSubscriptionMinutes)
	posInt("min_subscription_seconds", s.MinSubscriptionSeconds, &o.MinSubscriptionSeconds)
	posInt("subscriptions_per_mailbox", s.SubscriptionsPerMailbox, &o.SubscriptionsPerMailbox)
	dur("notification_retry_window_s", s.NotificationRetryWindowS, time.Second, 1, &o.NotificationRetryWindow)
	dur("notification_backoff_ms", s.NotificationBackoffMS, time.Millisecond, 1, &o.NotificationBackoff)
	dur("notification_backoff_max_ms", s.NotificationBackoffMaxMS, time.Millisecond, 1, &o.NotificationBackoffMax)
	dur("delivery_timeout_ms", s.DeliveryTimeoutMS, time.Millisecond, 1, &o.DeliveryTimeout)
	dur("retry_delivery_timeout_ms", s.RetryDeliveryTimeoutMS, time.Millisecond, 1, &o.RetryDeliveryTimeout)
	dur("validation_timeout_ms", s.ValidationTimeoutMS, time.Millisecond, 1, &o.ValidationTimeout)
	dur("notification_delay_ms", s.NotificationDelayMS, time.Millisecond, 0, &o.NotificationDelay)
	posInt("notification_batch_max", s.NotificationBatchMax, &o.NotificationBatchMax)
	posInt("notification_queue_max", s.NotificationQueueMax, &o.NotificationQueueMax)
	if s.ExtraUpdateAfterCreate != nil {
		o.NoExtraUpdate = !*s.ExtraUpdateAfterCreate
	}
	dur("extra_update_delay_ms", s.ExtraUpdateDelayMS, time.Millisecond, 1, &o.ExtraUpdateDelay)
	dur("reauthorization_lead_s", s.ReauthorizationLeadS, time.Second, 1, &o.ReauthorizationLead)
	dur("reauthorization_interval_s", s.ReauthorizationIntervalS, time.Second, 1, &o.ReauthorizationInterval)
	posInt("mailbox_concurrency", s.MailboxConcurrency, &o.MailboxConcurrency)
	// A limit is at least 1, or negative for unlimited; 0 is refused as
	// ambiguous (Go's zero value means Graph's number, JSON's need not).
	limit := func(name string, src *int, dst *int) {
		switch {
		case src == nil:
		case *src == 0:
			errs = append(errs, fmt.Errorf("%s must be at least 1, or negative for unlimited, got 0", name))
		case *src < 0:
			*dst = Unlimited
		default:
			*dst = *src
		}
	}
	limit("mailbox_requests_per_window", s.MailboxRequestsPerWindow, &o.MailboxRequestsPerWindow)
	dur("mailbox_request_window_ms", s.MailboxRequestWindowMS, time.Millisecond, 1, &o.MailboxRequestWindow)
	limit("subscription_writes_per_window", s.SubscriptionWritesPerWindow, &o.SubscriptionWritesPerWindow)
	limit("subscription_requests_per_window", s.SubscriptionRequestsPerWindow, &o.SubscriptionRequestsPerWindow)
	limit("tenant_subscription_writes_per_window", s.TenantSubscriptionWritesPerWindow, &o.TenantSubscriptionWritesPerWindow)
	limit("tenant_subscription_requests_per_window", s.TenantSubscriptionRequestsPerWindow, &o.TenantSubscriptionRequestsPerWindow)
	dur("subscription_limit_window_ms", s.SubscriptionLimitWindowMS, time.Millisecond, 1, &o.SubscriptionLimitWindow)
	dur("retry_after_s", s.RetryAfterS, time.Second, 1, &o.RetryAfter)
	posInt("page_size", s.PageSize, &o.PageSize)
	dur("delta_token_lifetime_s", s.DeltaTokenLifetimeS, time.Second, 1, &o.DeltaTokenLifetime)
	dur("sweep_interval_ms", s.SweepIntervalMS, time.Millisecond, 1, &o.SweepInterval)
	if o.MinSubscriptionSeconds > 60*o.MaxSubscriptionMinutes {
		errs = append(errs, fmt.Errorf("min_subscription_seconds (%d) must not exceed max_subscription_minutes (%d) × 60",
			o.MinSubscriptionSeconds, o.MaxSubscriptionMinutes))
	}
	if o.PageSize > 1000 {
		errs = append(errs, fmt.Errorf("page_size must be at most 1000, got %d", o.PageSize))
	}
	return o, errors.Join(errs...)
}

// Faults are the injected failures (POST /_emulator/faults, member "graph").
type Faults struct {
	ThrottleRate               float64 `json:"throttle_rate"`
	ErrorRate                  float64 `json:"error_rate"`
	LatencyMS                  int     `json:"latency_ms"`
	DropNotificationsRate      float64 `json:"drop_notifications_rate"`
	DuplicateNotificationsRate float64 `json:"duplicate_notifications_rate"`
	ReorderNotifications       bool    `json:"reorder_notifications"`
	// LoseResponseRate is the share of event writes (POST and PATCH on
	// /users/{id}/events…, outside $batch) that are applied and then lose
	// their response, as when a gateway times out or the connection drops
	// between Exchange's commit and the client: the client cannot tell
	// whether the write happened. LoseResponseMode chooses what the client
	// gets: "timeout" (default: 504 GatewayTimeout) or "reset" (the
	// connection or HTTP/2 stream is reset before any byte of a response).
	// LoseResponseMethod limits the fault to POST (creates) or PATCH
	// (updates); "" means both.
	LoseResponseRate   float64 `json:"lose_response_rate"`
	LoseResponseMode   string  `json:"lose_response_mode"`
	LoseResponseMethod string  `json:"lose_response_method"`
}

// Lost-response modes (Faults.LoseResponseMode).
const (
	LoseTimeout = "timeout"
	LoseReset   = "reset"
)

// losesResponse reports whether a write with this method is subject to
// the lost-response fault (rate aside).
func (f Faults) losesResponse(method string) bool {
	if f.LoseResponseRate <= 0 || (method != http.MethodPost && method != http.MethodPatch) {
		return false
	}
	return f.LoseResponseMethod == "" || f.LoseResponseMethod == method
}

type faultsJSON struct {
	ThrottleRate               *float64 `json:"throttle_rate"`
	ErrorRate                  *float64 `json:"error_rate"`
	LatencyMS                  *int     `json:"latency_ms"`
	DropNotificationsRate      *float64 `json:"drop_notifications_rate"`
	DuplicateNotificationsRate *float64 `json:"duplicate_notifications_rate"`
	ReorderNotifications       *bool    `json:"reorder_notifications"`
	LoseResponseRate           *float64 `json:"lose_response_rate"`
	LoseResponseMode           *string  `json:"lose_response_mode"`
	LoseResponseMethod         *string  `json:"lose_response_method"`
}

// applyFaults merges raw onto f: omitted fields stay, {} clears everything.
func applyFaults(f Faults, raw json.RawMessage) (Faults, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return f, fmt.Errorf("faults: %w", err)
	}
	if len(probe) == 0 {
		return Faults{}, nil
	}
	var in faultsJSON
	if err := decodeStrict(raw, &in); err != nil {
		return f, fmt.Errorf("faults: %w", err)
	}
	var errs []error
	rate := func(name string, src *float64, dst *float64) {
		if src == nil {
			return
		}
		if *src < 0 || *src > 1 {
			errs = append(errs, fmt.Errorf("%s must be between 0 and 1, got %v", name, *src))
			return
		}
		*dst = *src
	}
	rate("throttle_rate", in.ThrottleRate, &f.ThrottleRate)
	rate("error_rate", in.ErrorRate, &f.ErrorRate)
	rate("drop_notifications_rate", in.DropNotificationsRate, &f.DropNotificationsRate)
	rate("duplicate_notifications_rate", in.DuplicateNotificationsRate, &f.DuplicateNotificationsRate)
	if in.LatencyMS != nil {
		if *in.LatencyMS < 0 {
			errs = append(errs, fmt.Errorf("latency_ms must not be negative, got %d", *in.LatencyMS))
		} else {
			f.LatencyMS = *in.LatencyMS
		}
	}
	if in.ReorderNotifications != nil {
		f.ReorderNotifications = *in.ReorderNotifications
	}
	rate("lose_response_rate", in.LoseResponseRate, &f.LoseResponseRate)
	if in.LoseResponseMode != nil {
		switch m := *in.LoseResponseMode; m {
		case "", LoseTimeout, LoseReset:
			f.LoseResponseMode = m
		default:
			errs = append(errs, fmt.Errorf("lose_response_mode must be %q or %q, got %q", LoseTimeout, LoseReset, m))
		}
	}
	if in.LoseResponseMethod != nil {
		switch m := strings.ToUpper(*in.LoseResponseMethod); m {
		case "", http.MethodPost, http.MethodPatch:
			f.LoseResponseMethod = m
		default:
			errs = append(errs, fmt.Errorf("lose_response_method must be POST, PATCH or \"\" (both), got %q", *in.LoseResponseMethod))
		}
	}
	return f, errors.Join(errs...)
}

// decodeStrict decodes one JSON value, rejecting unknown fields so that a
// misspelt setting is an error instead of a silent no-op.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
