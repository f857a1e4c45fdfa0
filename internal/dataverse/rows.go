package dataverse

import (
	"context"
	"fmt"
)

// Typed shortcuts over Get/List for the rows the sync reads most.

// GetBooking reads a booking with the BookingSelect columns.
func (c *Client) GetBooking(ctx context.Context, id string) (*Booking, error) {
	var b Booking
	if err := c.Get(ctx, SetBookings, id, Query{Select: BookingSelect}, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// GetBookableResource reads a resource with BookableResourceSelect plus the
// given extra columns (the configured opt-in and status columns).
func (c *Client) GetBookableResource(ctx context.Context, id string, extraColumns ...string) (*BookableResource, error) {
	var r BookableResource
	sel := append(append([]string(nil), BookableResourceSelect...), extraColumns...)
	if err := c.Get(ctx, SetResources, id, Query{Select: sel}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// GetSystemUser reads a systemuser (addressed by GUID only: systemuser has
// no usable named key on the Web API, reference §1.2).
func (c *Client) GetSystemUser(ctx context.Context, id string) (*SystemUser, error) {
	var u SystemUser
	if err := c.Get(ctx, SetSystemUsers, id, Query{Select: SystemUserSelect}, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// GetWorkOrder reads a work order with the account and incident type names.
func (c *Client) GetWorkOrder(ctx context.Context, id string) (*WorkOrder, error) {
	var w WorkOrder
	if err := c.Get(ctx, SetWorkOrders, id, Query{Select: WorkOrderSelect, Expand: WorkOrderExpand}, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// ListBookingStatuses reads all active booking statuses; their ids differ
// per environment, so resolve them by Status/FieldServiceStatus at start-up.
func (c *Client) ListBookingStatuses(ctx context.Context) ([]BookingStatus, error) {
	out, err := ListAll[BookingStatus](ctx, c, SetBookingStatuses, Query{
		Select: BookingStatusSelect,
		Filter: Eq("statecode", Int(StateActive)),
	})
	if err != nil {
		return nil, fmt.Errorf("booking statuses: %w", err)
	}
	return out, nil
}
