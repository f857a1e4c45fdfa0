package d365

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/sync"
)

// A dispatcher who edits a work order (instructions, address, …) does not
// touch its bookings, yet their events show the work order. The engine
// learns of such edits from change tracking on msdyn_workorder (or a
// webhook step on its Update, filtered on WorkOrderColumns) and refreshes
// the events of the bookings BookingsOfWorkOrders returns.

// WorkOrderChange is one msdyn_workorder reported by change tracking.
type WorkOrderChange struct {
	WorkOrderID string
	Deleted     bool
}

// workOrderTrackColumns is all a poll needs: the engine reads the bookings
// (and with them the work orders) itself.
var workOrderTrackColumns = []string{"msdyn_workorderid"}

// WorkOrderChanges polls change tracking on work orders, with the token
// rules and errors of Changes: token "" starts a new round and reports
// every current work order; otherwise it returns what changed since token,
// updated and created rows first, then deletions. Store next only after
// the changes have been handled. An expired token gives ErrTokenExpired.
// Tokens are relative to the API base; only msdyn_workorders links are
// accepted.
//
// Change tracking must be enabled on msdyn_workorder (an admin setting, as
// for bookings). Every column counts: a change the events do not show is
// reported too, and costs one listing of the work order's bookings.
func (s *Source) WorkOrderChanges(ctx context.Context, token string) ([]WorkOrderChange, string, error) {
	ch, err := s.track(ctx, dataverse.SetWorkOrders, workOrderTrackColumns, token)
	if err != nil {
		return nil, "", fmt.Errorf("work order changes: %w", mapErr(err))
	}
	out := make([]WorkOrderChange, 0, len(ch.Rows)+len(ch.Deleted))
	for _, raw := range ch.Rows {
		var r struct {
			ID string `json:"msdyn_workorderid"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, "", fmt.Errorf("work order changes: decode row: %w", err)
		}
		id, err := dataverse.ParseID(r.ID)
		if err != nil {
			return nil, "", fmt.Errorf("work order changes: %w", err)
		}
		out = append(out, WorkOrderChange{WorkOrderID: id})
	}
	for _, id := range ch.Deleted {
		out = append(out, WorkOrderChange{WorkOrderID: id, Deleted: true})
	}
	return out, s.token(ch.DeltaLink), nil
}

// BookingsOfWorkOrders returns the bookings of these work orders that
// overlap [from, to), inactive ones included, converted as
// BookingsInWindow converts them (with their work order) and ordered by
// start time then id. Ids are validated and de-duplicated, and asked for
// in chunks as resource ids are. No ids (nil or empty) means no bookings
// and no request.
//
// Deleting a work order removes the link from its bookings (reference
// §1.3), so a deleted work order has no bookings left to list here: the
// bookings' own change tracking reports them.
func (s *Source) BookingsOfWorkOrders(ctx context.Context, workOrderIDs []string, from, to time.Time) ([]sync.Booking, error) {
	if workOrderIDs == nil {
		workOrderIDs = []string{} // nil would mean all bookings to listBookings
	}
	return s.listBookings(ctx, "list bookings of work orders", "_msdyn_workorder_value", workOrderIDs, from, to)
}

// workOrderColumns are the msdyn_workorder attributes (logical names, as
// filteringattributes wants them: lookups without _…_value) behind the
// sync.WorkOrder fields that workOrders fills.
var workOrderColumns = []string{
	"msdyn_name",                // Number
	"msdyn_serviceaccount",      // Customer (the account's name)
	"msdyn_primaryincidenttype", // IncidentType (the incident type's name)
	"msdyn_workordersummary",    // Summary
	"msdyn_instructions",        // Instructions
	"msdyn_addressname",         // AddressName
	"msdyn_address1",            // Street1
	"msdyn_address2",            // Street2
	"msdyn_address3",            // Street3
	"msdyn_city",                // City
	"msdyn_stateorprovince",     // StateOrProvince
	"msdyn_postalcode",          // PostalCode
	"msdyn_country",             // Country
}

// WorkOrderColumns are the msdyn_workorder columns the event content uses
// (logical attribute names, lookups by their attribute name, e.g.
// msdyn_serviceaccount). A webhook step on work-order Update should filter
// on exactly these, so that edits of other columns cost nothing.
//
// Renaming the service account or the incident type changes what the
// events show without updating the work order: no work-order step sees it.
func WorkOrderColumns() []string { return slices.Clone(workOrderColumns) }
