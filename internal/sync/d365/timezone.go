package d365

import (
	"context"
	"errors"
	"fmt"
	"strings"
	stdsync "sync"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
)

// SetTimeZoneDefinitions is the entity set of timezonedefinition (reference §1.7).
const SetTimeZoneDefinitions = "timezonedefinitions"

// ErrUnknownTimeZone: a resource's time-zone code is not in the org's
// timezonedefinitions.
var ErrUnknownTimeZone = errors.New("d365: unknown time-zone code")

// TimeZones finds a bookable resource's time zone the way Dynamics 365
// keeps it: bookableresource.timezone is a Dataverse time-zone code, and
// timezonedefinition maps codes (timezonecode) to Windows time-zone names
// (standardname), which is what Graph's dateTimeTimeZone wants. The
// definitions are read once, in one request, and again after Refresh or
// when a code is missing (at most once a minute). It is safe for concurrent
// use.
type TimeZones struct {
	c *dataverse.Client
	// Refresh is how old the definitions may get (default 24h).
	Refresh time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu     stdsync.Mutex
	names  map[int]string
	loaded time.Time
}

// NewTimeZones returns a TimeZones reading through c.
func NewTimeZones(c *dataverse.Client) *TimeZones {
	return &TimeZones{c: c}
}

// missReload bounds how often an unknown code reloads the definitions.
const missReload = time.Minute

func (z *TimeZones) now() time.Time {
	if z.Now != nil {
		return z.Now()
	}
	return time.Now()
}

// Name returns the Windows time-zone name of a Dataverse time-zone code
// (ErrUnknownTimeZone if the org has no such definition).
func (z *TimeZones) Name(ctx context.Context, code int) (string, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	refresh := z.Refresh
	if refresh <= 0 {
		refresh = 24 * time.Hour
	}
	age := z.now().Sub(z.loaded)
	name, ok := z.names[code]
	if z.names == nil || age >= refresh || (!ok && age >= missReload) {
		if err := z.loadLocked(ctx); err != nil {
			if ok {
				return name, nil // keep what we had; the next call tries again
			}
			return "", err
		}
		name, ok = z.names[code]
	}
	if !ok {
		return "", fmt.Errorf("%w: %d", ErrUnknownTimeZone, code)
	}
	return name, nil
}

func (z *TimeZones) loadLocked(ctx context.Context) error {
	type def struct {
		Code *int   `json:"timezonecode"`
		Name string `json:"standardname"`
	}
	defs, err := dataverse.ListAll[def](ctx, z.c, SetTimeZoneDefinitions,
		dataverse.Query{Select: []string{"timezonecode", "standardname"}})
	if err != nil {
		return fmt.Errorf("read time-zone definitions: %w", err)
	}
	names := make(map[int]string, len(defs))
	for _, d := range defs {
		if d.Code != nil && strings.TrimSpace(d.Name) != "" {
			names[*d.Code] = strings.TrimSpace(d.Name)
		}
	}
	z.names, z.loaded = names, z.now()
	return nil
}

// ResourceTimeZone returns the Windows time-zone name of a bookable
// resource: its timezone column mapped through timezonedefinition.
func (z *TimeZones) ResourceTimeZone(ctx context.Context, resourceID string) (string, error) {
	var row struct {
		TimeZone *int `json:"timezone"`
	}
	if err := z.c.Get(ctx, dataverse.SetResources, resourceID, dataverse.Query{Select: []string{"timezone"}}, &row); err != nil {
		return "", fmt.Errorf("read time zone of resource %s: %w", resourceID, err)
	}
	if row.TimeZone == nil {
		return "", nil // SystemRequired, but an empty value is no reason to fail a write
	}
	name, err := z.Name(ctx, *row.TimeZone)
	if err != nil {
		return "", fmt.Errorf("time zone of resource %s: %w", resourceID, err)
	}
	return name, nil
}
