package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/riverqueue/river"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/jobs"
	"github.com/bookingsync/bookingsync/internal/store"
	"github.com/bookingsync/bookingsync/internal/subscriptions"
)

// ReconcileResourceArgs asks for one bookable resource's enrollment to be
// brought in line with Dataverse. Deliberately not a unique job: River's
// uniqueness also covers running (and by default completed) jobs, so a
// change arriving while a reconciliation runs would be dropped. Repeats are
// cheap and idempotent; the enroller serialises them per resource.
type ReconcileResourceArgs struct {
	ResourceID string `json:"resource_id"`
}

func (ReconcileResourceArgs) Kind() string { return "reconcile_resource" }
func (ReconcileResourceArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance}
}

// processNotifications is the process_notifications worker. Lifecycle
// notifications go to the subscription manager, resource changes to
// enrollment, booking and event changes to the sync engine.
func (s *Service) processNotifications(ctx context.Context, ns []store.Notification) error {
	var errs []error
	done := make([]int64, 0, len(ns))
	var changes []store.Notification
	for _, n := range ns {
		var err error
		switch {
		case n.Source == store.SourceGraphLifecycle:
			err = s.Manager.HandleLifecycle(ctx, n.SubscriptionID, n.ChangeType)
		case n.Source == store.SourceDataverse && n.ChangeType == "Update:bookableresource":
			err = s.dataverseChange(ctx, n)
		case n.Source == store.SourceDataverse && !strings.HasSuffix(n.ChangeType, ":bookableresourcebooking") &&
			!strings.HasSuffix(n.ChangeType, ":msdyn_workorder"):
			err = s.dataverseChange(ctx, n)
		default:
			changes = append(changes, n)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("notification %d: %w", n.ID, err))
			continue
		}
		done = append(done, n.ID)
	}
	failed := s.syncChanges(ctx, changes)
	for _, n := range changes {
		if err := failed[n.ID]; err != nil {
			errs = append(errs, fmt.Errorf("notification %d: %w", n.ID, err))
			continue
		}
		done = append(done, n.ID)
	}
	// One write for the rows that succeeded: a retry of this job redoes only
	// what failed.
	if len(done) > 0 {
		if _, err := s.Store.MarkNotificationsProcessed(ctx, s.Store.DB(), done, s.Store.Now()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Service) dataverseChange(ctx context.Context, n store.Notification) error {
	rec, err := dataverse.ParseRemoteExecutionContext(n.Payload)
	if err != nil {
		return fmt.Errorf("parse stored webhook: %w", err)
	}
	if rec.PrimaryEntityName != "bookableresource" {
		return nil // registered for a table we do not sync
	}
	if target, _ := rec.Target(); target != nil && rec.MessageName == "Update" {
		relevant := false
		for _, col := range subscriptions.EnrollmentColumns(s.cfg.Dataverse.OptInColumn) {
			if target.Has(col) {
				relevant = true
			}
		}
		if !relevant {
			s.log.Debug("resource update without enrollment columns (echo of our status write?) skipped", "resource", n.ItemID)
			return nil
		}
	}
	// Payload without record data (over 256 KB) or a Create/Delete: re-read.
	_, err = s.Queue.Insert(ctx, ReconcileResourceArgs{ResourceID: n.ItemID}, nil)
	return err
}

func (s *Service) renewSubscriptions(ctx context.Context) error {
	n, err := s.Manager.RenewDue(ctx)
	if n > 0 {
		s.log.Info("subscriptions renewed", "count", n)
	}
	return err
}

// catchupMailbox is the catchup_mailbox worker (enqueued on missed and
// subscriptionRemoved, after a 404 on renewal, after downtime and
// periodically): the Graph catch-up of one mailbox (catchup.go).
func (s *Service) catchupMailbox(ctx context.Context, args jobs.CatchupMailboxArgs) error {
	_, err := s.CatchupMailbox(ctx, args.Mailbox, args.Reason)
	return err
}

// subscriptionIndex answers the notification endpoint's "which subscription
// is this?" from memory, falling back to the store for ids it has not seen
// (created by another instance, or since the last refresh).
type subscriptionIndex struct {
	store *store.Store
	mu    sync.RWMutex
	byID  map[string]store.Subscription
}

func (x *subscriptionIndex) invalidate() {
	x.mu.Lock()
	x.byID = nil
	x.mu.Unlock()
}

func (x *subscriptionIndex) LookupSubscription(ctx context.Context, id string) (store.Subscription, bool, error) {
	x.mu.RLock()
	sub, ok := x.byID[id]
	x.mu.RUnlock()
	if ok {
		return sub, true, nil
	}
	sub, err := x.store.GetSubscription(ctx, x.store.DB(), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Subscription{}, false, nil
	}
	if err != nil {
		return store.Subscription{}, false, err
	}
	x.mu.Lock()
	if x.byID == nil {
		x.byID = map[string]store.Subscription{}
	}
	x.byID[id] = sub
	x.mu.Unlock()
	return sub, true, nil
}
