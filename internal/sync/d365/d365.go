// Package d365 is the Dataverse side of the sync engine: it reads
// bookableresourcebooking rows (with their booking status and work order)
// into the engine's sync.Booking, reports changes through change tracking,
// and performs the engine's writes to bookings with optimistic concurrency.
//
// It sits on the thin client internal/dataverse; facts about the Web API are
// in shared/reference/dataverse-api.md.
package d365

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/sync"
)

// Sentinels callers branch on with errors.Is. Errors that carry one of them
// also match the corresponding dataverse sentinel.
var (
	// ErrNotFound: the booking does not exist (deleted).
	ErrNotFound = errors.New("d365: booking not found")
	// ErrPreconditionFailed: the etag given as If-Match is stale; re-read
	// and decide again.
	ErrPreconditionFailed = errors.New("d365: booking changed since it was read (etag mismatch)")
	// ErrTokenExpired: the change-tracking token is older than the
	// organization keeps changes; start a new round with token "" and
	// compare the whole window.
	ErrTokenExpired = errors.New("d365: change-tracking token expired")
	// ErrAlreadyExists: CreateBookingWithID found a booking with that id
	// (our own earlier create); the existing booking is returned with it.
	ErrAlreadyExists = errors.New("d365: booking already exists")
	// ErrUnknownStatus: StatusID found no matching active booking status.
	ErrUnknownStatus = errors.New("d365: unknown booking status")
)

// Options configure a Source.
type Options struct {
	// OrgURL is the environment URL (https://contoso.crm.dynamics.com), used
	// for links back to records. Empty: derived from the client's API base.
	OrgURL string
	// Nav maps bookableresourcebooking lookup columns to their navigation
	// property names, as returned by dataverse.Client.NavigationProperties
	// ("resource" → "Resource", "bookingstatus" → "BookingStatus"). The
	// casing differs between sources (reference §1.6), so the service should
	// pass what the org says; missing entries fall back to the dataverse.Nav*
	// defaults.
	Nav map[string]string
}

// Source reads and writes bookings. It is safe for concurrent use.
type Source struct {
	c         *dataverse.Client
	orgURL    string
	navStatus string
	navRes    string

	mu       stdsync.Mutex // guards the booking-status cache
	statuses []dataverse.BookingStatus
	resolved map[string]string // StatusID input → bookingstatusid
}

// New returns a Source over c.
func New(c *dataverse.Client, o Options) *Source {
	org := strings.TrimRight(o.OrgURL, "/")
	if org == "" {
		org = strings.TrimSuffix(c.BaseURL(), dataverse.APIVersionPath)
	}
	nav := func(col, def string) string {
		if n := o.Nav[col]; n != "" {
			return n
		}
		return def
	}
	return &Source{
		c:         c,
		orgURL:    org,
		navStatus: nav("bookingstatus", dataverse.NavBookingStatus),
		navRes:    nav("resource", dataverse.NavBookingResource),
		resolved:  map[string]string{},
	}
}

// RecordURL is the link to the booking's form in Dynamics 365.
func (s *Source) RecordURL(id string) string {
	return s.orgURL + "/main.aspx?etn=bookableresourcebooking&id=" + id + "&pagetype=entityrecord"
}

// bookingColumns are the booking columns the engine needs.
var bookingColumns = []string{
	"bookableresourcebookingid", "name", "starttime", "endtime", "statecode",
	"_resource_value", "_bookingstatus_value", "_msdyn_workorder_value",
	"versionnumber", "modifiedon",
}

var statusColumns = []string{"bookingstatusid", "name", "status"}

// bookingQuery reads a booking with its status in one request. The work
// order's account and incident type names sit two hops away; the client has
// no nested $expand, so work orders are read separately (see workOrders).
func (s *Source) bookingQuery() dataverse.Query {
	return dataverse.Query{
		Select: bookingColumns,
		Expand: []dataverse.Expand{{Nav: s.navStatus, Select: statusColumns}},
	}
}

// Booking reads one booking with its status and work order: two requests
// for a work-order booking, one otherwise.
func (s *Source) Booking(ctx context.Context, id string) (*sync.Booking, error) {
	var row dataverse.Booking
	if err := s.c.Get(ctx, dataverse.SetBookings, id, s.bookingQuery(), &row); err != nil {
		return nil, fmt.Errorf("read booking %s: %w", id, mapErr(err))
	}
	b, err := s.convert(ctx, &row)
	if err != nil {
		return nil, fmt.Errorf("read booking %s: %w", id, err)
	}
	if row.WorkOrderID != "" {
		wos, err := s.workOrders(ctx, []string{row.WorkOrderID})
		if err != nil {
			return nil, fmt.Errorf("read booking %s: %w", id, err)
		}
		b.WorkOrder = wos[row.WorkOrderID]
	}
	return &b, nil
}

// resourceChunk bounds the ids per $filter so the GET stays far below the
// 32 KB URL limit (reference §2); each id costs about 70 encoded bytes.
const resourceChunk = 100

// BookingsInWindow lists the bookings of the given resources that overlap
// [from, to), inactive ones included (the engine treats them like deleted
// ones), ordered by start time then id. nil resourceIDs means all resources;
// an empty non-nil slice means none.
func (s *Source) BookingsInWindow(ctx context.Context, resourceIDs []string, from, to time.Time) ([]sync.Booking, error) {
	return s.listBookings(ctx, "list bookings", "_resource_value", resourceIDs, from, to)
}

// listBookings lists the bookings overlapping [from, to) whose lookup
// column col (e.g. _resource_value) holds one of ids, in chunks of
// resourceChunk ids, converted with their work orders and ordered by start
// time then id. nil ids means no condition on col; an empty non-nil slice
// matches nothing. what starts the error messages.
func (s *Source) listBookings(ctx context.Context, what, col string, ids []string, from, to time.Time) ([]sync.Booking, error) {
	if !to.After(from) {
		return nil, fmt.Errorf("%s: empty window [%s, %s)", what, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	// Filter literals have second precision: widen, never narrow, the window.
	from = from.UTC().Truncate(time.Second)
	if t := to.UTC().Truncate(time.Second); !t.Equal(to) {
		to = t.Add(time.Second)
	}
	window := dataverse.And(
		dataverse.Lt("starttime", dataverse.Time(to)),
		dataverse.Gt("endtime", dataverse.Time(from)),
	)
	var chunks [][]string
	if ids == nil {
		chunks = [][]string{nil}
	} else {
		ids, err := canonical(ids)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		chunks = slices.Collect(slices.Chunk(ids, resourceChunk))
	}

	var rows []dataverse.Booking
	for _, chunk := range chunks {
		f := window
		if chunk != nil {
			or := make([]dataverse.Filter, len(chunk))
			for i, id := range chunk {
				or[i] = dataverse.Eq(col, dataverse.GUID(id))
			}
			f = dataverse.And(window, dataverse.Or(or...))
		}
		q := s.bookingQuery()
		q.Filter = f
		got, err := dataverse.ListAll[dataverse.Booking](ctx, s.c, dataverse.SetBookings, q)
		if err != nil {
			return nil, fmt.Errorf("%s %s–%s: %w", what, from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
		rows = append(rows, got...)
	}

	var woIDs []string
	for i := range rows {
		if rows[i].WorkOrderID != "" {
			woIDs = append(woIDs, rows[i].WorkOrderID)
		}
	}
	wos, err := s.workOrders(ctx, woIDs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := make([]sync.Booking, 0, len(rows))
	for i := range rows {
		b, err := s.convert(ctx, &rows[i])
		if err != nil {
			return nil, fmt.Errorf("%s: booking %s: %w", what, rows[i].ID, err)
		}
		b.WorkOrder = wos[rows[i].WorkOrderID]
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b sync.Booking) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// canonical validates and de-duplicates ids.
func canonical(ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		gid, err := dataverse.ParseID(id)
		if err != nil {
			return nil, err
		}
		if !seen[gid] {
			seen[gid] = true
			out = append(out, gid)
		}
	}
	return out, nil
}

// workOrderChunk is how many work orders one $filter asks for.
const workOrderChunk = 50

// workOrders reads work orders with their account and incident type names,
// one request per chunk of ids. A work order that no longer exists is
// absent from the map: deleting a work order removes the link from its
// bookings (RemoveLink, reference §1.3), so the booking is then simply not
// a work-order booking.
func (s *Source) workOrders(ctx context.Context, ids []string) (map[string]*sync.WorkOrder, error) {
	out := map[string]*sync.WorkOrder{}
	ids, err := canonical(ids)
	if err != nil {
		return nil, fmt.Errorf("read work orders: %w", err)
	}
	for chunk := range slices.Chunk(ids, workOrderChunk) {
		or := make([]dataverse.Filter, len(chunk))
		for i, id := range chunk {
			or[i] = dataverse.Eq("msdyn_workorderid", dataverse.GUID(id))
		}
		q := dataverse.Query{Select: dataverse.WorkOrderSelect, Expand: dataverse.WorkOrderExpand, Filter: dataverse.Or(or...)}
		got, err := dataverse.ListAll[dataverse.WorkOrder](ctx, s.c, dataverse.SetWorkOrders, q)
		if err != nil {
			return nil, fmt.Errorf("read work orders: %w", err)
		}
		for i := range got {
			w := &got[i]
			out[w.ID] = &sync.WorkOrder{
				ID:              w.ID,
				Number:          w.Number,
				Customer:        w.ServiceAccountName(),
				IncidentType:    w.PrimaryIncidentTypeName(),
				Summary:         w.Summary,
				Instructions:    w.Instructions,
				AddressName:     w.AddressName,
				Street1:         w.Address1,
				Street2:         w.Address2,
				Street3:         w.Address3,
				City:            w.City,
				StateOrProvince: w.StateOrProvince,
				PostalCode:      w.PostalCode,
				Country:         w.Country,
			}
		}
	}
	return out, nil
}

// convert maps a booking row (with the status expanded) to the engine's
// type; WorkOrder is left to the caller.
func (s *Source) convert(ctx context.Context, r *dataverse.Booking) (sync.Booking, error) {
	b := sync.Booking{
		ID:         r.ID,
		Version:    int64(r.VersionNumber),
		ETag:       r.ETag,
		Name:       r.Name,
		Start:      r.StartTime.UTC(),
		End:        r.EndTime.UTC(),
		StatusID:   r.BookingStatusID,
		Active:     r.StateCode == dataverse.StateActive,
		ResourceID: r.ResourceID,
		ModifiedOn: r.ModifiedOn.UTC(),
	}
	var st dataverse.BookingStatus
	ok, err := r.Expanded(s.navStatus, &st)
	if err != nil {
		return b, err
	}
	if !ok && b.StatusID != "" {
		// A write's representation has no expansion: use the cache.
		p, err := s.statusByID(ctx, b.StatusID)
		if err != nil {
			return b, err
		}
		st = *p
	}
	b.Status, b.StatusName = st.Status, st.Name
	return b, nil
}

// mapErr adds this package's sentinels to the client's errors; the
// original stays in the chain for logs and for dataverse sentinels.
func mapErr(err error) error {
	switch {
	case errors.Is(err, dataverse.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, dataverse.ErrPreconditionFailed):
		return fmt.Errorf("%w: %w", ErrPreconditionFailed, err)
	case errors.Is(err, dataverse.ErrChangeTrackingExpired):
		return fmt.Errorf("%w: %w", ErrTokenExpired, err)
	}
	return err
}
