package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// CreateSubscription creates sub (POST /subscriptions). Graph validates the
// notification URLs synchronously before answering. A 409 (ErrConflict)
// means a subscription with the same resource and changeType exists.
func (c *Client) CreateSubscription(ctx context.Context, sub Subscription) (*Subscription, error) {
	if sub.Resource == "" || sub.ChangeType == "" || sub.NotificationURL == "" || sub.ExpirationDateTime.IsZero() {
		return nil, errors.New("create subscription: resource, changeType, notificationUrl and expirationDateTime are required")
	}
	sub.ID, sub.ApplicationID, sub.CreatorID = "", "", ""
	sub.ExpirationDateTime = sub.ExpirationDateTime.UTC()
	var out Subscription
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/subscriptions", body: sub, out: &out}); err != nil {
		return nil, fmt.Errorf("create subscription for %s: %w", sub.Resource, err)
	}
	return &out, nil
}

// GetSubscription reads one subscription (clientState is not returned).
func (c *Client) GetSubscription(ctx context.Context, id string) (*Subscription, error) {
	var out Subscription
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/subscriptions/" + pathSegment(id), out: &out}); err != nil {
		return nil, fmt.Errorf("get subscription %s: %w", id, err)
	}
	return &out, nil
}

// ListSubscriptions lists this app's subscriptions, following @odata.nextLink.
func (c *Client) ListSubscriptions(ctx context.Context) ([]Subscription, error) {
	subs, err := list[Subscription](ctx, c, call{method: http.MethodGet, path: "/subscriptions"})
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	return subs, nil
}

// RenewSubscription sets a new expiration (PATCH). It also reauthorizes, so
// don't call ReauthorizeSubscription for the same subscription within 10 minutes.
func (c *Client) RenewSubscription(ctx context.Context, id string, expiration time.Time) (*Subscription, error) {
	body := struct {
		ExpirationDateTime time.Time `json:"expirationDateTime"`
	}{expiration.UTC()}
	var out Subscription
	if _, err := c.do(ctx, call{method: http.MethodPatch, path: "/subscriptions/" + pathSegment(id), body: body, out: &out}); err != nil {
		return nil, fmt.Errorf("renew subscription %s: %w", id, err)
	}
	return &out, nil
}

// DeleteSubscription deletes a subscription (204).
func (c *Client) DeleteSubscription(ctx context.Context, id string) error {
	if _, err := c.do(ctx, call{method: http.MethodDelete, path: "/subscriptions/" + pathSegment(id)}); err != nil {
		return fmt.Errorf("delete subscription %s: %w", id, err)
	}
	return nil
}

// ReauthorizeSubscription answers a reauthorizationRequired lifecycle
// notification without changing the expiration (POST …/reauthorize, 204).
func (c *Client) ReauthorizeSubscription(ctx context.Context, id string) error {
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/subscriptions/" + pathSegment(id) + "/reauthorize"}); err != nil {
		return fmt.Errorf("reauthorize subscription %s: %w", id, err)
	}
	return nil
}
