package d365

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/sync"
)

// statusKeywords are the StatusID inputs that mean "a status with this
// bookingstatus.status value".
var statusKeywords = map[string]int{
	"proposed":  sync.StatusProposed,
	"committed": sync.StatusCommitted,
	"canceled":  sync.StatusCanceled,
	"cancelled": sync.StatusCanceled,
}

// StatusID resolves a configured booking status to its bookingstatusid:
//   - a GUID: that status (it must exist and be active);
//   - "proposed", "committed", "canceled": an active status with that status
//     value — the one named like the keyword if there is one, else the
//     oldest;
//   - otherwise the name of an active status (case-insensitive; ambiguous
//     names are an error, configure the id instead).
//
// Ids differ per environment (reference §1.4), hence the lookup. Results are
// cached for the life of the Source; no match gives ErrUnknownStatus.
func (s *Source) StatusID(ctx context.Context, nameOrID string) (string, error) {
	key := strings.TrimSpace(nameOrID)
	if key == "" {
		return "", fmt.Errorf("booking status: empty name: %w", ErrUnknownStatus)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.resolved[key]; ok {
		return id, nil
	}
	id, err := s.resolveLocked(ctx, key)
	if err != nil {
		return "", fmt.Errorf("booking status %q: %w", key, err)
	}
	s.resolved[key] = id
	return id, nil
}

// resolveLocked looks key up, reloading the statuses once when the cached
// list has no match (a status created since). Callers hold s.mu.
func (s *Source) resolveLocked(ctx context.Context, key string) (string, error) {
	fresh := false
	if s.statuses == nil {
		if err := s.loadLocked(ctx); err != nil {
			return "", err
		}
		fresh = true
	}
	id, err := match(s.statuses, key)
	if fresh || !errors.Is(err, ErrUnknownStatus) {
		return id, err
	}
	if err := s.loadLocked(ctx); err != nil {
		return "", err
	}
	return match(s.statuses, key)
}

func match(all []dataverse.BookingStatus, key string) (string, error) {
	if gid, err := dataverse.ParseID(key); err == nil {
		for _, st := range all {
			if st.ID == gid {
				if st.StateCode != dataverse.StateActive {
					return "", fmt.Errorf("status %s (%s) is inactive", gid, st.Name)
				}
				return gid, nil
			}
		}
		return "", ErrUnknownStatus
	}
	if v, ok := statusKeywords[strings.ToLower(key)]; ok {
		first := ""
		for _, st := range all {
			if st.StateCode != dataverse.StateActive || st.Status != v {
				continue
			}
			if strings.EqualFold(st.Name, key) {
				return st.ID, nil
			}
			if first == "" {
				first = st.ID
			}
		}
		if first != "" {
			return first, nil
		}
		return "", ErrUnknownStatus
	}
	var ids []string
	for _, st := range all {
		if st.StateCode == dataverse.StateActive && strings.EqualFold(st.Name, key) {
			ids = append(ids, st.ID)
		}
	}
	switch len(ids) {
	case 0:
		return "", ErrUnknownStatus
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("%d active statuses are named %q (%s); configure the id", len(ids), key, strings.Join(ids, ", "))
}

// loadLocked reads all booking statuses, oldest first. Callers hold s.mu.
func (s *Source) loadLocked(ctx context.Context) error {
	q := dataverse.Query{
		Select:  dataverse.BookingStatusSelect,
		OrderBy: []dataverse.OrderBy{{Prop: "createdon"}, {Prop: "bookingstatusid"}},
	}
	all, err := dataverse.ListAll[dataverse.BookingStatus](ctx, s.c, dataverse.SetBookingStatuses, q)
	if err != nil {
		return fmt.Errorf("read booking statuses: %w", err)
	}
	if all == nil {
		all = []dataverse.BookingStatus{}
	}
	s.statuses = all
	return nil
}

// statusByID returns a cached status row, reloading once on a miss.
func (s *Source) statusByID(ctx context.Context, id string) (*dataverse.BookingStatus, error) {
	gid, err := dataverse.ParseID(id)
	if err != nil {
		return nil, fmt.Errorf("booking status: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh := false
	if s.statuses == nil {
		if err := s.loadLocked(ctx); err != nil {
			return nil, err
		}
		fresh = true
	}
	if st := findStatus(s.statuses, gid); st != nil || fresh {
		if st == nil {
			return nil, fmt.Errorf("booking status %s: %w", gid, ErrUnknownStatus)
		}
		return st, nil
	}
	if err := s.loadLocked(ctx); err != nil {
		return nil, err
	}
	if st := findStatus(s.statuses, gid); st != nil {
		return st, nil
	}
	return nil, fmt.Errorf("booking status %s: %w", gid, ErrUnknownStatus)
}

func findStatus(all []dataverse.BookingStatus, id string) *dataverse.BookingStatus {
	for i := range all {
		if all[i].ID == id {
			st := all[i]
			return &st
		}
	}
	return nil
}
