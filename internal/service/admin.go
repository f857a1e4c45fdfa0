package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bookingsync/bookingsync/internal/engine"
	"github.com/bookingsync/bookingsync/internal/httpapi"
	"github.com/bookingsync/bookingsync/internal/store"
)

// adminBackend answers the admin API from the store and the manager, so the
// CLI's operational commands work the same on every backend and instance.
type adminBackend struct{ s *Service }

func (a *adminBackend) Status(ctx context.Context) ([]httpapi.ResourceStatus, error) {
	st := a.s.Store
	resources, err := st.ListResources(ctx, st.DB(), store.ResourceFilter{})
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.ResourceStatus, 0, len(resources))
	for _, r := range resources {
		row := httpapi.ResourceStatus{ResourceID: r.ID, Name: r.Name, UPN: r.UPN, Mailbox: r.Mailbox,
			OptIn: string(r.OptIn), Active: r.Active}
		if r.LastStatusText != nil {
			row.StatusText = *r.LastStatusText
		}
		if r.Mailbox != "" {
			subs, err := st.ListSubscriptionsByMailbox(ctx, st.DB(), r.Mailbox)
			if err != nil {
				return nil, err
			}
			for _, sub := range subs {
				exp := sub.ExpiresAt
				row.SubscriptionID, row.Expires = sub.ID, &exp
				row.RenewFailures, row.LastError, row.LastNotified = sub.RenewFailures, sub.LastError, sub.LastNotificationAt
			}
		}
		out = append(out, row)
	}
	return out, nil
}

// resolve finds a resource by bookableresourceid, UPN or Entra object id.
func (a *adminBackend) resolve(ctx context.Context, name string) (store.Resource, error) {
	st := a.s.Store
	resources, err := st.ListResources(ctx, st.DB(), store.ResourceFilter{})
	if err != nil {
		return store.Resource{}, err
	}
	for _, r := range resources {
		if strings.EqualFold(r.ID, name) || strings.EqualFold(r.Mailbox, name) || (r.UPN != "" && strings.EqualFold(r.UPN, name)) {
			return r, nil
		}
	}
	return store.Resource{}, fmt.Errorf("%w: %q", httpapi.ErrUnknownResource, name)
}

func (a *adminBackend) RenewSubscriptions(ctx context.Context, resource string) (int, error) {
	st := a.s.Store
	var subs []store.Subscription
	var err error
	if resource == "" {
		subs, err = st.ListSubscriptions(ctx, st.DB())
	} else {
		var r store.Resource
		if r, err = a.resolve(ctx, resource); err == nil {
			subs, err = st.ListSubscriptionsByMailbox(ctx, st.DB(), r.Mailbox)
		}
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, sub := range subs {
		if _, err := a.s.Manager.Renew(ctx, sub); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func (a *adminBackend) DeleteSubscriptions(ctx context.Context, resource string) (int, error) {
	r, err := a.resolve(ctx, resource)
	if err != nil {
		return 0, err
	}
	st := a.s.Store
	subs, err := st.ListSubscriptionsByMailbox(ctx, st.DB(), r.Mailbox)
	if err != nil {
		return 0, err
	}
	if err := a.s.Manager.Remove(ctx, r.Mailbox); err != nil {
		return 0, err
	}
	return len(subs), nil
}

// Conflicts lists the conflicts left for a person (open ones; all: the
// resolved ones too), with their resources' names.
func (a *adminBackend) Conflicts(ctx context.Context, all bool) ([]httpapi.Conflict, error) {
	st := a.s.Store
	cs, err := st.ListConflicts(ctx, st.DB(), store.ConflictFilter{Open: !all})
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	out := make([]httpapi.Conflict, 0, len(cs))
	for _, c := range cs {
		name, ok := names[c.ResourceID]
		if !ok && c.ResourceID != "" {
			if r, err := st.GetResource(ctx, st.DB(), c.ResourceID); err == nil {
				name = r.Name
			}
			names[c.ResourceID] = name
		}
		out = append(out, httpapi.Conflict{BookingID: c.BookingID, ResourceID: c.ResourceID, Resource: name,
			Mailbox: c.Mailbox, EventID: c.EventID, Rule: c.Rule, Reason: c.Reason,
			DetectedAt: c.DetectedAt, ResolvedAt: c.ResolvedAt, Resolution: c.Resolution})
	}
	return out, nil
}

// ResolveConflict keeps one side of a booking's open conflict through the
// engine (which writes what that side's policy would have written). Booking
// ids are GUIDs: one pasted in upper case still finds its conflict.
func (a *adminBackend) ResolveConflict(ctx context.Context, bookingID, keep string) (httpapi.ConflictResolution, error) {
	out, err := a.s.Engine.ResolveConflict(ctx, bookingID, keep)
	if errors.Is(err, engine.ErrNoOpenConflict) && strings.ToLower(bookingID) != bookingID {
		bookingID = strings.ToLower(bookingID)
		out, err = a.s.Engine.ResolveConflict(ctx, bookingID, keep)
	}
	switch {
	case errors.Is(err, engine.ErrNoOpenConflict):
		return httpapi.ConflictResolution{}, fmt.Errorf("%w: %s", httpapi.ErrNoConflict, bookingID)
	case err != nil:
		return httpapi.ConflictResolution{}, err
	}
	// The engine's reason is "<resolution>: <the deciding rule's reason>".
	resolution, reason, _ := strings.Cut(out.Reason, ": ")
	return httpapi.ConflictResolution{BookingID: bookingID, Keep: keep, Resolution: resolution, Rule: out.Rule,
		Reason: reason, Writes: out.Writes}, nil
}
