package subscriptions

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// orphanListTTL is how long one listing of Graph's subscriptions serves
// Ensure's orphan check. Graph's GET /subscriptions cannot filter by
// resource, so listing per Ensure costs every enrollment a walk over all of
// the app's subscriptions: quadratic in requests (paged, each counting
// against Graph's 5,000 per 20 s) and in memory when 10,000 mailboxes are
// enrolled at once. Orphans come from a crash between Graph's 201 and our
// commit, i.e. from an earlier process (the first listing here sees them) or
// from this one (recorded with add). One another instance leaves behind
// while this listing is fresh is found at the next listing, or lapses by
// itself since nobody renews it.
const orphanListTTL = 15 * time.Minute

// graphIndex is the ids of the subscriptions pointing at our notification
// URL, by resource, as Graph last listed them and as we created and deleted
// them since. Its size follows the number of subscriptions, not of calls.
type graphIndex struct {
	mu       sync.Mutex
	loadedAt time.Time // zero: never listed
	byRes    map[string][]string
}

func indexKey(mailbox string) string {
	return normResource(ResourcePath(mailbox))
}

// ids returns the subscription ids Graph has on the mailbox's events, listing
// Graph first when fresh is set or the index is missing or stale. The lock
// is held while listing so that concurrent enrollments wait for one listing
// instead of each starting its own.
func (x *graphIndex) ids(ctx context.Context, m *Manager, mailbox string, fresh bool) ([]string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if now := m.now(); fresh || x.loadedAt.IsZero() || now.Sub(x.loadedAt) >= orphanListTTL {
		if err := m.paced(ctx, "list subscriptions", false); err != nil {
			return nil, err
		}
		list, err := m.graph.ListSubscriptions(ctx)
		if err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", err)
		}
		byRes := make(map[string][]string, len(list))
		for _, gs := range list {
			if gs.NotificationURL != m.cfg.NotificationURL {
				continue
			}
			k := normResource(gs.Resource)
			byRes[k] = append(byRes[k], gs.ID)
		}
		x.byRes, x.loadedAt = byRes, now
	}
	return slices.Clone(x.byRes[indexKey(mailbox)]), nil
}

// add records a subscription we created (a no-op before the first listing,
// which will include it).
func (x *graphIndex) add(mailbox, id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byRes == nil {
		return
	}
	k := indexKey(mailbox)
	if !slices.Contains(x.byRes[k], id) {
		x.byRes[k] = append(x.byRes[k], id)
	}
}

// forget drops a subscription Graph no longer has.
func (x *graphIndex) forget(mailbox, id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := indexKey(mailbox)
	ids := slices.DeleteFunc(x.byRes[k], func(s string) bool { return s == id })
	if len(ids) == 0 {
		delete(x.byRes, k)
	} else {
		x.byRes[k] = ids
	}
}
