package outlook

import (
	"context"
	"log/slog"
	"strings"
	stdsync "sync"
	"time"

	"github.com/bookingsync/bookingsync/internal/graph"
)

// ZoneLookup finds a mailbox's Windows time-zone name ("" = UTC).
type ZoneLookup func(ctx context.Context, mailbox string) (string, error)

// ZoneCacheOptions configure a ZoneCache.
type ZoneCacheOptions struct {
	// TTL is how long a mailbox's zone is kept (default 24h: zones rarely change).
	TTL time.Duration
	// RetryAfter is how long a failed lookup waits before the next try
	// (default 1m); meanwhile the last known zone, or UTC, is used.
	RetryAfter time.Duration
	// Timeout bounds one lookup (default 10s).
	Timeout time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// ZoneCache remembers each mailbox's time zone for Options.TimeZone, which
// is called on every event write and has no way to fail: a lookup that
// fails (or names a zone Go cannot resolve) falls back to the last known
// zone, else to UTC. The instant written is right either way; only the
// zone Outlook shows the event in differs. Safe for concurrent use;
// concurrent misses of one mailbox share one lookup.
type ZoneCache struct {
	lookup ZoneLookup
	o      ZoneCacheOptions

	mu      stdsync.Mutex
	entries map[string]*zoneEntry
}

type zoneEntry struct {
	name    string    // last known zone ("" = UTC)
	next    time.Time // when to look again
	pending chan struct{}
}

// NewZoneCache returns a cache over lookup.
func NewZoneCache(lookup ZoneLookup, o ZoneCacheOptions) *ZoneCache {
	if o.TTL <= 0 {
		o.TTL = 24 * time.Hour
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &ZoneCache{lookup: lookup, o: o, entries: map[string]*zoneEntry{}}
}

// TimeZone returns mailbox's zone ("" = UTC); use it as Options.TimeZone.
func (z *ZoneCache) TimeZone(mailbox string) string {
	key := strings.ToLower(mailbox)
	z.mu.Lock()
	for {
		ent := z.entries[key]
		if ent == nil {
			ent = &zoneEntry{}
			z.entries[key] = ent
		}
		if ent.pending != nil {
			// Another caller is looking it up: wait for its answer.
			ch := ent.pending
			z.mu.Unlock()
			<-ch
			z.mu.Lock()
			continue
		}
		if !ent.next.IsZero() && z.o.Now().Before(ent.next) {
			name := ent.name
			z.mu.Unlock()
			return name
		}
		ent.pending = make(chan struct{})
		z.mu.Unlock()
		name, err := z.fetch(mailbox)
		z.mu.Lock()
		close(ent.pending)
		ent.pending = nil
		if err != nil {
			z.o.Logger.Warn("mailbox time zone lookup failed; using the last known zone or UTC",
				"mailbox", mailbox, "last_known", ent.name, "err", err)
			ent.next = z.o.Now().Add(z.o.RetryAfter)
		} else {
			ent.name, ent.next = name, z.o.Now().Add(z.o.TTL)
		}
		name = ent.name
		z.mu.Unlock()
		return name
	}
}

// fetch runs the lookup and checks that the zone can be written.
func (z *ZoneCache) fetch(mailbox string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), z.o.Timeout)
	defer cancel()
	name, err := z.lookup(ctx, mailbox)
	if err != nil {
		return "", err
	}
	name = strings.TrimSpace(name)
	if name == "" || strings.EqualFold(name, "UTC") {
		return "", nil
	}
	if _, err := graph.LoadZone(name); err != nil {
		// Known to Dataverse but not to us: write UTC (right instant)
		// and say so once a TTL rather than on every write.
		z.o.Logger.Warn("mailbox time zone is not a zone we can convert to; writing UTC", "mailbox", mailbox, "zone", name, "err", err)
		return "", nil
	}
	return name, nil
}
