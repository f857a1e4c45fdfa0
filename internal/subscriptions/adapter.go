package subscriptions

import (
	"context"
	"time"

	"github.com/bookingsync/bookingsync/internal/store"
)

// StoreAdapter gives the manager and the enroller the store's repository
// functions outside any transaction.
type StoreAdapter struct{ S *store.Store }

var (
	_ Store         = StoreAdapter{}
	_ ResourceStore = StoreAdapter{}
)

func (a StoreAdapter) SubscriptionsByMailbox(ctx context.Context, mailbox string) ([]store.Subscription, error) {
	return a.S.ListSubscriptionsByMailbox(ctx, a.S.DB(), mailbox)
}

func (a StoreAdapter) AllSubscriptions(ctx context.Context) ([]store.Subscription, error) {
	return a.S.ListSubscriptions(ctx, a.S.DB())
}

func (a StoreAdapter) GetSubscription(ctx context.Context, id string) (store.Subscription, error) {
	return a.S.GetSubscription(ctx, a.S.DB(), id)
}

func (a StoreAdapter) InsertSubscription(ctx context.Context, s store.Subscription) error {
	_, err := a.S.InsertSubscription(ctx, a.S.DB(), s)
	return err
}

func (a StoreAdapter) RecordRenewed(ctx context.Context, id string, expires, at time.Time) error {
	return a.S.RecordSubscriptionRenewed(ctx, a.S.DB(), id, expires, at)
}

func (a StoreAdapter) RecordRenewFailure(ctx context.Context, id, errText string) error {
	return a.S.RecordSubscriptionRenewFailure(ctx, a.S.DB(), id, errText)
}

func (a StoreAdapter) DeleteSubscription(ctx context.Context, id string) error {
	return a.S.DeleteSubscription(ctx, a.S.DB(), id)
}

func (a StoreAdapter) UpsertResource(ctx context.Context, r store.Resource) error {
	_, err := a.S.UpsertResource(ctx, a.S.DB(), r)
	return err
}

func (a StoreAdapter) GetResource(ctx context.Context, id string) (store.Resource, error) {
	return a.S.GetResource(ctx, a.S.DB(), id)
}

func (a StoreAdapter) ListResources(ctx context.Context) ([]store.Resource, error) {
	return a.S.ListResources(ctx, a.S.DB(), store.ResourceFilter{})
}

func (a StoreAdapter) SetResourceStatusText(ctx context.Context, id, text string) (bool, error) {
	return a.S.SetResourceStatusText(ctx, a.S.DB(), id, text)
}
