// Package subscriptions keeps exactly one Graph change-notification
// subscription alive for every opted-in mailbox: it creates (never twice),
// renews before expiry, recreates what Graph removed, deletes on opt-out, and
// answers lifecycle notifications. Enrollment (which mailboxes are opted in,
// read from Dataverse) is in enroll.go.
package subscriptions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/keylock"
	"github.com/bookingsync/bookingsync/internal/metrics"
	"github.com/bookingsync/bookingsync/internal/store"
)

// ChangeTypes is what we subscribe to. Created and deleted are needed as
// well as updated: a technician may delete a linked event or add a personal
// appointment, and an updated-only subscription (the Power Automate
// concept's choice) never hears of either. Outlook's extra "updated" after a
// create is absorbed by echo detection, not by subscribing to less.
const ChangeTypes = "created,updated,deleted"

// MinLifetime is Graph's floor: shorter requests are raised to 45 minutes.
// It is Config.MinLifetime's default.
const MinLifetime = 45 * time.Minute

// clampMargin is taken off the maximum Graph reports, so the retried request
// is not rejected again by clock skew between us and Graph.
const clampMargin = 5 * time.Minute

// AlertAfterFailures is how many consecutive renewal failures raise an alert.
const AlertAfterFailures = 3

// GraphAPI is the part of the Graph client the manager uses.
type GraphAPI interface {
	CreateSubscription(ctx context.Context, s graph.Subscription) (*graph.Subscription, error)
	RenewSubscription(ctx context.Context, id string, expiration time.Time) (*graph.Subscription, error)
	DeleteSubscription(ctx context.Context, id string) error
	ListSubscriptions(ctx context.Context) ([]graph.Subscription, error)
}

// Store is the persistence the manager needs. StoreAdapter implements it
// over *store.Store; tests use an in-memory one.
type Store interface {
	SubscriptionsByMailbox(ctx context.Context, mailbox string) ([]store.Subscription, error)
	AllSubscriptions(ctx context.Context) ([]store.Subscription, error)
	// GetSubscription returns store.ErrNotFound for an unknown id.
	GetSubscription(ctx context.Context, id string) (store.Subscription, error)
	InsertSubscription(ctx context.Context, s store.Subscription) error
	RecordRenewed(ctx context.Context, id string, expires, at time.Time) error
	RecordRenewFailure(ctx context.Context, id, errText string) error
	DeleteSubscription(ctx context.Context, id string) error
}

// Config configures a Manager.
type Config struct {
	NotificationURL string // {public_url}/notifications/graph
	LifecycleURL    string // {public_url}/notifications/graph/lifecycle
	Lifetime        time.Duration
	// RenewWhenRemaining: renew once less than this fraction of the lifetime is left.
	RenewWhenRemaining float64
	// MinLifetime is the shortest lifetime ever requested (default
	// MinLifetime, Graph's floor), also when clamping to a maximum Graph
	// reports. Only end-to-end tests against an emulator with a lowered
	// floor (min_subscription_seconds) set it lower; it is no configuration key.
	MinLifetime time.Duration

	// WritesPerWindow and RequestsPerWindow pace the manager's own requests
	// to Graph's /subscriptions (create, renew, delete count as writes;
	// every request, list included, counts against RequestsPerWindow) to at
	// most that many per LimitWindow, below Graph's subscription service
	// limits, so that a mass enrollment or a renewal wave waits its turn
	// here instead of collecting 429s. Zero means the default
	// (DefaultWritesPerWindow, DefaultRequestsPerWindow, DefaultLimitWindow),
	// negative means unlimited. The pacing reads the manager's clock, so a
	// test clock that does not advance while sleeping needs -1 here.
	WritesPerWindow   int
	RequestsPerWindow int
	LimitWindow       time.Duration
}

// Manager owns the Graph subscriptions.
type Manager struct {
	cfg     Config
	graph   GraphAPI
	store   Store
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics.Metrics
	// CatchUp is called when a mailbox may have missed changes (subscription
	// recreated, missed or removed lifecycle events). Set by the wiring.
	CatchUp func(ctx context.Context, mailbox, reason string) error
	// OnChange is called after a subscription is created or removed, so the
	// notification endpoint's lookup can refresh.
	OnChange func()
	// OnAlert is called when renewal of a resource's subscription keeps failing.
	OnAlert func(ctx context.Context, sub store.Subscription, err error)

	locks keylock.Map // per mailbox, so two paths never create twice

	// lifetimeMu guards cfg.Lifetime, which shrinks when Graph tells us the
	// tenant's maximum, while other mailboxes are being worked on.
	lifetimeMu sync.Mutex

	pace  *pacer     // nil: unlimited
	index graphIndex // our subscriptions as Graph last listed them, for orphan checks
}

// New returns a Manager. now may be nil (time.Now).
func New(cfg Config, g GraphAPI, s Store, log *slog.Logger, m *metrics.Metrics, now func() time.Time) *Manager {
	if cfg.MinLifetime <= 0 {
		cfg.MinLifetime = MinLifetime
	}
	if cfg.Lifetime < cfg.MinLifetime {
		cfg.Lifetime = cfg.MinLifetime
	}
	if cfg.RenewWhenRemaining <= 0 || cfg.RenewWhenRemaining >= 1 {
		cfg.RenewWhenRemaining = 0.5
	}
	if now == nil {
		now = time.Now
	}
	if m == nil {
		m = metrics.New()
	}
	if cfg.LimitWindow <= 0 {
		cfg.LimitWindow = DefaultLimitWindow
	}
	p := newPacer(budget(cfg.WritesPerWindow, DefaultWritesPerWindow),
		budget(cfg.RequestsPerWindow, DefaultRequestsPerWindow), cfg.LimitWindow, now)
	return &Manager{cfg: cfg, graph: g, store: s, log: log, now: now, metrics: m, pace: p}
}

func (m *Manager) lock(mailbox string) func() { return m.locks.Lock(mailbox) }

// lifetime is the lifetime to request now.
func (m *Manager) lifetime() time.Duration {
	m.lifetimeMu.Lock()
	defer m.lifetimeMu.Unlock()
	return m.cfg.Lifetime
}

// learnMaximum lowers the lifetime to what Graph said the tenant accepts,
// for every later create and renewal, and returns it.
func (m *Manager) learnMaximum(maxMinutes int) time.Duration {
	life := clampLifetime(maxMinutes, m.cfg.MinLifetime)
	m.lifetimeMu.Lock()
	defer m.lifetimeMu.Unlock()
	if life < m.cfg.Lifetime {
		m.cfg.Lifetime = life
	}
	return life
}

// ResourcePath is the Graph resource we subscribe to for a mailbox.
func ResourcePath(mailbox string) string { return "users/" + mailbox + "/events" }

// Ensure makes sure exactly one live subscription exists for the mailbox and
// returns it. It looks in our store first, then in Graph's list for
// subscriptions we lost track of (a crash between Graph's 201 and our commit):
// those cannot be verified (we never keep the clientState secret), so they
// are deleted before a fresh one is created.
func (m *Manager) Ensure(ctx context.Context, resourceID, mailbox string) (store.Subscription, error) {
	defer m.lock(mailbox)()
	subs, err := m.store.SubscriptionsByMailbox(ctx, mailbox)
	if err != nil {
		return store.Subscription{}, fmt.Errorf("ensure subscription for %s: %w", mailbox, err)
	}
	now := m.now()
	for _, s := range subs {
		if s.ExpiresAt.After(now) {
			return s, nil
		}
		// Lapsed: Graph has dropped it already; forget it.
		if err := m.store.DeleteSubscription(ctx, s.ID); err != nil {
			return store.Subscription{}, fmt.Errorf("forget lapsed subscription %s: %w", s.ID, err)
		}
		m.index.forget(mailbox, s.ID)
	}
	if err := m.deleteOrphans(ctx, mailbox, nil, false); err != nil {
		return store.Subscription{}, err
	}
	return m.create(ctx, resourceID, mailbox, true)
}

// deleteOrphans removes Graph subscriptions on the mailbox's events that point
// at our notification URL but are not in our store (keep lists those that are).
// It uses the manager's index of Graph's list unless fresh is set or the
// index is older than orphanListTTL (see graphIndex).
func (m *Manager) deleteOrphans(ctx context.Context, mailbox string, keep map[string]bool, fresh bool) error {
	ids, err := m.index.ids(ctx, m, mailbox, fresh)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if keep[id] {
			continue
		}
		m.log.Warn("deleting subscription we have no record of", "subscription", id, "mailbox", mailbox)
		if err := m.paced(ctx, "delete orphaned subscription "+id, true); err != nil {
			return err
		}
		if err := m.graph.DeleteSubscription(ctx, id); err != nil && !errors.Is(err, graph.ErrNotFound) {
			return fmt.Errorf("delete orphaned subscription %s: %w", id, err)
		}
		m.index.forget(mailbox, id)
		m.metrics.SubscriptionOps.WithLabelValues("delete_orphan", "ok").Inc()
	}
	return nil
}

// paced waits for the request budget (see Config.WritesPerWindow).
func (m *Manager) paced(ctx context.Context, op string, write bool) error {
	return m.pace.wait(ctx, op, write)
}

// clampLifetime is the lifetime to use when Graph says the maximum is max
// minutes, never below floor.
func clampLifetime(maxMinutes int, floor time.Duration) time.Duration {
	return max(time.Duration(maxMinutes)*time.Minute-clampMargin, floor)
}

// normResource is how resource paths compare: Graph may echo them with
// another case or a leading slash.
func normResource(s string) string { return strings.ToLower(strings.Trim(s, "/")) }

// create makes a new subscription. On Graph's "can only be N minutes in the
// future" it clamps the lifetime and retries (the message is the documented
// way to learn the tenant's maximum); on 409 it clears orphans and retries once.
func (m *Manager) create(ctx context.Context, resourceID, mailbox string, retryConflict bool) (store.Subscription, error) {
	secret, err := newClientState()
	if err != nil {
		return store.Subscription{}, err
	}
	lifetime := m.lifetime()
	for attempt := 0; ; attempt++ {
		now := m.now()
		req := graph.Subscription{
			Resource:                  ResourcePath(mailbox),
			ChangeType:                ChangeTypes,
			NotificationURL:           m.cfg.NotificationURL,
			LifecycleNotificationURL:  m.cfg.LifecycleURL,
			ExpirationDateTime:        now.Add(lifetime).UTC(),
			ClientState:               secret,
			LatestSupportedTLSVersion: "v1_2",
		}
		if err := m.paced(ctx, "create subscription for "+mailbox, true); err != nil {
			return store.Subscription{}, err
		}
		created, err := m.graph.CreateSubscription(ctx, req)
		if err == nil {
			sub := store.Subscription{
				ID:              created.ID,
				ResourceID:      resourceID,
				Mailbox:         mailbox,
				Resource:        req.Resource,
				ChangeTypes:     ChangeTypes,
				ExpiresAt:       created.ExpirationDateTime,
				ClientStateHash: store.HashClientState(secret),
				Lifetime:        lifetime,
				CreatedAt:       now,
			}
			if sub.ExpiresAt.IsZero() {
				sub.ExpiresAt = req.ExpirationDateTime
			}
			if err := m.store.InsertSubscription(ctx, sub); err != nil {
				// Graph has it, we don't: delete it so it doesn't become an orphan.
				dctx := context.WithoutCancel(ctx)
				derr := m.paced(dctx, "delete unrecorded subscription "+created.ID, true)
				if derr == nil {
					derr = m.graph.DeleteSubscription(dctx, created.ID)
				}
				if derr != nil {
					m.index.add(mailbox, created.ID) // so the next Ensure deletes it
					m.log.Error("subscription created but neither recorded nor deleted; it will be cleaned up as an orphan",
						"subscription", created.ID, "mailbox", mailbox, "err", derr)
				}
				return store.Subscription{}, fmt.Errorf("record subscription %s: %w", created.ID, err)
			}
			m.index.add(mailbox, sub.ID)
			m.metrics.SubscriptionOps.WithLabelValues("create", "ok").Inc()
			m.log.Info("subscription created", "subscription", sub.ID, "mailbox", mailbox, "expires", sub.ExpiresAt)
			if m.OnChange != nil {
				m.OnChange()
			}
			return sub, nil
		}
		if max, ok := graph.MaxExpirationMinutes(err); ok && attempt == 0 {
			clamped := m.learnMaximum(max)
			m.log.Warn("Graph refused the subscription lifetime; clamping to its maximum as the error message states",
				"requested", lifetime, "graph_max_minutes", max, "using", clamped)
			m.metrics.SubscriptionOps.WithLabelValues("create", "clamped").Inc()
			lifetime = clamped
			continue
		}
		if errors.Is(err, graph.ErrConflict) && retryConflict {
			m.metrics.SubscriptionOps.WithLabelValues("create", "conflict").Inc()
			if derr := m.deleteOrphans(ctx, mailbox, nil, true); derr != nil {
				return store.Subscription{}, fmt.Errorf("create subscription for %s: %w (resolving: %v)", mailbox, err, derr)
			}
			retryConflict = false
			continue
		}
		m.metrics.SubscriptionOps.WithLabelValues("create", "error").Inc()
		return store.Subscription{}, fmt.Errorf("create subscription for %s: %w", mailbox, err)
	}
}

// Remove deletes every subscription of the mailbox, in Graph and in our store.
func (m *Manager) Remove(ctx context.Context, mailbox string) error {
	defer m.lock(mailbox)()
	subs, err := m.store.SubscriptionsByMailbox(ctx, mailbox)
	if err != nil {
		return fmt.Errorf("remove subscriptions of %s: %w", mailbox, err)
	}
	for _, s := range subs {
		if err := m.paced(ctx, "delete subscription "+s.ID, true); err != nil {
			return err
		}
		if err := m.graph.DeleteSubscription(ctx, s.ID); err != nil && !errors.Is(err, graph.ErrNotFound) {
			m.metrics.SubscriptionOps.WithLabelValues("delete", "error").Inc()
			return fmt.Errorf("delete subscription %s: %w", s.ID, err)
		}
		m.index.forget(mailbox, s.ID)
		if err := m.store.DeleteSubscription(ctx, s.ID); err != nil {
			return fmt.Errorf("forget subscription %s: %w", s.ID, err)
		}
		m.metrics.SubscriptionOps.WithLabelValues("delete", "ok").Inc()
		m.log.Info("subscription deleted", "subscription", s.ID, "mailbox", mailbox)
	}
	if len(subs) > 0 && m.OnChange != nil {
		m.OnChange()
	}
	return nil
}

// DueAt is when a subscription should be renewed: once less than the
// configured fraction of its lifetime is left, moved earlier by up to a tenth
// of the lifetime by a jitter fixed per subscription id. Subscriptions created
// together (a mass enrollment) are thereby renewed spread out rather than in
// one burst, and each renewal keeps its place in the spread.
func (m *Manager) DueAt(s store.Subscription) time.Time {
	life := s.Lifetime
	if life <= 0 {
		life = m.lifetime()
	}
	// A cryptographic hash: ids differ in a few characters, and FNV's
	// output for such strings bunches up.
	sum := sha256.Sum256([]byte(s.ID))
	frac := float64(binary.BigEndian.Uint32(sum[:4])) / float64(1<<32)
	jitter := time.Duration(float64(life) * 0.1 * frac)
	return s.ExpiresAt.Add(-time.Duration(float64(life)*m.cfg.RenewWhenRemaining) - jitter)
}

// RenewDue renews every subscription that is due. It returns how many it
// renewed and the first error (after trying all). Two errors end the round
// early, leaving the rest to the next tick: Graph still answering 429 once
// the HTTP client's retries are spent (more requests now only prolong the
// throttling), and a cancelled ctx (which must not be recorded as a renewal
// failure of every remaining subscription).
func (m *Manager) RenewDue(ctx context.Context) (int, error) {
	subs, err := m.store.AllSubscriptions(ctx)
	if err != nil {
		return 0, fmt.Errorf("renew: list subscriptions: %w", err)
	}
	now := m.now()
	var nearest time.Time
	renewed := 0
	var firstErr error
	stop := false
	for _, s := range subs {
		if stop || m.DueAt(s).After(now) {
			if nearest.IsZero() || s.ExpiresAt.Before(nearest) {
				nearest = s.ExpiresAt
			}
			continue
		}
		got, err := m.Renew(ctx, s)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			if errors.Is(err, graph.ErrThrottled) || ctx.Err() != nil {
				stop = true
			}
			got = s
		} else {
			renewed++
		}
		if nearest.IsZero() || got.ExpiresAt.Before(nearest) {
			nearest = got.ExpiresAt
		}
	}
	if !nearest.IsZero() {
		m.metrics.SubscriptionNearestExpiry.Set(float64(nearest.Unix()))
	}
	return renewed, firstErr
}

// Renew extends one subscription by its lifetime. A 404 means Graph no longer
// has it: recreate and catch the mailbox up.
func (m *Manager) Renew(ctx context.Context, s store.Subscription) (store.Subscription, error) {
	defer m.lock(s.Mailbox)()
	life := s.Lifetime
	if limit := m.lifetime(); life <= 0 || life > limit {
		life = limit
	}
	// A wait for the budget that ends with ctx is no Graph failure: return
	// before it is recorded as one.
	if err := m.paced(ctx, "renew subscription "+s.ID, true); err != nil {
		return s, err
	}
	now := m.now()
	got, err := m.graph.RenewSubscription(ctx, s.ID, now.Add(life).UTC())
	if max, ok := graph.MaxExpirationMinutes(err); ok {
		life = m.learnMaximum(max)
		if err := m.paced(ctx, "renew subscription "+s.ID, true); err != nil {
			return s, err
		}
		got, err = m.graph.RenewSubscription(ctx, s.ID, now.Add(life).UTC())
	}
	switch {
	case err == nil:
		exp := got.ExpirationDateTime
		if exp.IsZero() {
			exp = now.Add(life).UTC()
		}
		if err := m.store.RecordRenewed(ctx, s.ID, exp, now); err != nil {
			return s, fmt.Errorf("record renewal of %s: %w", s.ID, err)
		}
		m.metrics.SubscriptionOps.WithLabelValues("renew", "ok").Inc()
		m.metrics.SubscriptionRenewalFailing.DeleteLabelValues(s.ResourceID)
		s.ExpiresAt, s.RenewFailures, s.LastError = exp, 0, ""
		return s, nil
	case errors.Is(err, graph.ErrNotFound):
		m.metrics.SubscriptionOps.WithLabelValues("renew", "gone").Inc()
		m.log.Warn("subscription gone at renewal; recreating", "subscription", s.ID, "mailbox", s.Mailbox)
		if err := m.store.DeleteSubscription(ctx, s.ID); err != nil {
			return s, fmt.Errorf("forget vanished subscription %s: %w", s.ID, err)
		}
		m.index.forget(s.Mailbox, s.ID)
		created, err := m.create(ctx, s.ResourceID, s.Mailbox, true)
		if err != nil {
			return s, err
		}
		m.catchUp(ctx, s.Mailbox, "subscription recreated after 404 on renewal")
		return created, nil
	default:
		m.metrics.SubscriptionOps.WithLabelValues("renew", "error").Inc()
		if rerr := m.store.RecordRenewFailure(ctx, s.ID, err.Error()); rerr != nil {
			m.log.Error("record renewal failure", "subscription", s.ID, "err", rerr)
		}
		s.RenewFailures++
		if s.RenewFailures >= AlertAfterFailures {
			m.metrics.SubscriptionRenewalFailing.WithLabelValues(s.ResourceID).Set(1)
			m.log.Error("subscription renewal keeps failing", "subscription", s.ID, "mailbox", s.Mailbox,
				"failures", s.RenewFailures, "expires", s.ExpiresAt, "err", err)
			if m.OnAlert != nil {
				m.OnAlert(ctx, s, err)
			}
		}
		return s, fmt.Errorf("renew subscription %s: %w", s.ID, err)
	}
}

// HandleLifecycle acts on a lifecycle notification for a subscription we know.
func (m *Manager) HandleLifecycle(ctx context.Context, subID, event string) error {
	found, err := m.store.GetSubscription(ctx, subID)
	if errors.Is(err, store.ErrNotFound) {
		m.log.Info("lifecycle notification for a subscription we no longer have", "subscription", subID, "event", event)
		return nil
	}
	if err != nil {
		return fmt.Errorf("lifecycle %s for %s: %w", event, subID, err)
	}
	sub := &found
	switch event {
	case graph.LifecycleReauthorizationRequired:
		// A renewal PATCH also reauthorizes; doing both within 10 minutes is
		// what Graph warns against, so we only PATCH.
		_, err := m.Renew(ctx, *sub)
		return err
	case graph.LifecycleSubscriptionRemoved:
		unlock := m.lock(sub.Mailbox)
		err := m.store.DeleteSubscription(ctx, sub.ID)
		m.index.forget(sub.Mailbox, sub.ID)
		unlock()
		if err != nil {
			return fmt.Errorf("forget removed subscription %s: %w", sub.ID, err)
		}
		if _, err := m.Ensure(ctx, sub.ResourceID, sub.Mailbox); err != nil {
			return err
		}
		m.catchUp(ctx, sub.Mailbox, "subscriptionRemoved")
		return nil
	case graph.LifecycleMissed:
		m.catchUp(ctx, sub.Mailbox, "missed")
		return nil
	default:
		m.log.Warn("unknown lifecycle event ignored", "subscription", subID, "event", event)
		return nil
	}
}

func (m *Manager) catchUp(ctx context.Context, mailbox, reason string) {
	if m.CatchUp == nil {
		return
	}
	if err := m.CatchUp(ctx, mailbox, reason); err != nil {
		m.log.Error("schedule catch-up", "mailbox", mailbox, "reason", reason, "err", err)
	}
}

// newClientState returns a fresh random secret: 32 random bytes, base64url,
// 43 characters (Graph allows up to 128).
func newClientState() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate clientState: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
