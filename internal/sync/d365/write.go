package d365

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/sync"
)

// wireTime formats a booking time: UTC with Z, as the Web API expects for
// UserLocal columns (reference §2, Date/time); Dataverse keeps seconds.
func wireTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// durationMinutes is the booking's duration column (minutes).
func durationMinutes(start, end time.Time) int {
	return int(end.Sub(start).Round(time.Minute) / time.Minute)
}

func checkSpan(start, end time.Time) error {
	if start.IsZero() || !end.After(start) {
		return fmt.Errorf("invalid booking times %s–%s: end must be after start", wireTime(start), wireTime(end))
	}
	return nil
}

// UpdateBookingTimes moves a booking: starttime, endtime and duration.
// etag "" writes unconditionally (but never creates a missing row).
// A stale etag gives ErrPreconditionFailed, a missing booking ErrNotFound.
func (s *Source) UpdateBookingTimes(ctx context.Context, id, etag string, start, end time.Time) (*sync.Booking, error) {
	if err := checkSpan(start, end); err != nil {
		return nil, fmt.Errorf("update booking %s times: %w", id, err)
	}
	body := dataverse.Body{
		"starttime": wireTime(start),
		"endtime":   wireTime(end),
		"duration":  durationMinutes(start, end),
	}
	return s.update(ctx, fmt.Sprintf("update booking %s times", id), id, etag, body)
}

// SetBookingStatus points the booking at another bookingstatus row.
func (s *Source) SetBookingStatus(ctx context.Context, id, etag, statusID string) (*sync.Booking, error) {
	// Check the status first: a bind to a missing row is a 404 too, which
	// must not read as "booking deleted".
	if _, err := s.statusByID(ctx, statusID); err != nil {
		return nil, fmt.Errorf("set booking %s status: %w", id, err)
	}
	body := dataverse.Body{}
	if err := body.Bind(s.navStatus, dataverse.SetBookingStatuses, statusID); err != nil {
		return nil, fmt.Errorf("set booking %s status: %w", id, err)
	}
	return s.update(ctx, fmt.Sprintf("set booking %s status", id), id, etag, body)
}

// update PATCHes a booking with If-Match and Prefer: return=representation:
// one request, and the version returned is the one this write produced. (A
// PATCH followed by a GET would return whatever someone else wrote in
// between, and the engine would record their change as our own echo.)
//
// Dataverse ignores $expand on this request, so the status comes from the
// status cache, and the work order — which these writes never change — is
// read separately, only for a work-order booking. Neither read touches the
// booking row, so neither can move the version we return.
func (s *Source) update(ctx context.Context, what, id, etag string, body dataverse.Body) (*sync.Booking, error) {
	var row dataverse.Booking
	if err := s.c.UpdateReturn(ctx, dataverse.SetBookings, id, body, etag, dataverse.Query{Select: bookingColumns}, &row); err != nil {
		return nil, fmt.Errorf("%s: %w", what, mapErr(err))
	}
	b, err := s.written(ctx, &row)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

// written converts the representation a write returned, adding the work
// order (one read, only if the booking has one).
func (s *Source) written(ctx context.Context, row *dataverse.Booking) (*sync.Booking, error) {
	if row.ID == "" || row.ETag == "" || row.VersionNumber == 0 {
		// Re-reading would not give the version of our own write.
		return nil, fmt.Errorf("response has no id, etag or versionnumber (id %q, etag %q)", row.ID, row.ETag)
	}
	b, err := s.convert(ctx, row)
	if err != nil {
		return nil, fmt.Errorf("booking %s: %w", row.ID, err)
	}
	if row.WorkOrderID != "" {
		wos, err := s.workOrders(ctx, []string{row.WorkOrderID})
		if err != nil {
			return nil, fmt.Errorf("booking %s: %w", row.ID, err)
		}
		b.WorkOrder = wos[row.WorkOrderID]
	}
	return &b, nil
}

// maxName is bookableresourcebooking.name's length (String(100)).
const maxName = 100

// createBody validates a new booking and builds its body.
func (s *Source) createBody(ctx context.Context, resourceID, statusID, name string, start, end time.Time) (dataverse.Body, error) {
	if err := checkSpan(start, end); err != nil {
		return nil, err
	}
	if _, err := s.statusByID(ctx, statusID); err != nil {
		return nil, err
	}
	body := dataverse.Body{
		"name":      cut(name, maxName),
		"starttime": wireTime(start),
		"endtime":   wireTime(end),
		"duration":  durationMinutes(start, end),
	}
	if err := body.Bind(s.navRes, dataverse.SetResources, resourceID); err != nil {
		return nil, err
	}
	if err := body.Bind(s.navStatus, dataverse.SetBookingStatuses, statusID); err != nil {
		return nil, err
	}
	return body, nil
}

// CreateBooking creates a booking for resourceID with the given status and
// name (cut to 100 characters) and returns it as created, in one request.
// Dataverse picks the id, so a retry after a lost response creates a
// second booking: the engine should prefer CreateBookingWithID.
func (s *Source) CreateBooking(ctx context.Context, resourceID, statusID, name string, start, end time.Time) (*sync.Booking, error) {
	body, err := s.createBody(ctx, resourceID, statusID, name, start, end)
	if err != nil {
		return nil, fmt.Errorf("create booking: %w", err)
	}
	// $expand with return=representation on create is not documented
	// (reference §2 names $select only); the status comes from the cache.
	var row dataverse.Booking
	if err := s.c.CreateReturn(ctx, dataverse.SetBookings, body, dataverse.Query{Select: bookingColumns}, &row); err != nil {
		if errors.Is(err, dataverse.ErrNotFound) {
			return nil, fmt.Errorf("create booking: resource %s or status %s does not exist: %w", resourceID, statusID, err)
		}
		return nil, fmt.Errorf("create booking: %w", err)
	}
	b, err := s.written(ctx, &row)
	if err != nil {
		return nil, fmt.Errorf("create booking: %w", err)
	}
	return b, nil
}

// CreateBookingWithID is CreateBooking under an id the caller chose
// (BookingIDForEvent), so that it is idempotent: the create is an upsert
// that may not update (If-None-Match: *, reference §2), in one request.
//
// If a booking with that id exists already — a retry after a crash or a
// lost response — nothing is written: the existing booking is read and
// returned together with an error matching ErrAlreadyExists. A caller that
// only wants the booking to exist treats that as success; note that the
// booking returned may have been changed since our first create (its
// version is then not ours), so compare it rather than recording it as the
// echo of this call.
func (s *Source) CreateBookingWithID(ctx context.Context, id, resourceID, statusID, name string, start, end time.Time) (*sync.Booking, error) {
	gid, err := dataverse.ParseID(id)
	if err != nil {
		return nil, fmt.Errorf("create booking: %w", err)
	}
	what := "create booking " + gid
	body, err := s.createBody(ctx, resourceID, statusID, name, start, end)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var row dataverse.Booking
	err = s.c.CreateWithIDReturn(ctx, dataverse.SetBookings, gid, body, dataverse.Query{Select: bookingColumns}, &row)
	switch {
	case errors.Is(err, dataverse.ErrAlreadyExists):
		b, rerr := s.Booking(ctx, gid)
		if rerr != nil {
			return nil, fmt.Errorf("%s: exists, but reading it failed: %w", what, rerr)
		}
		return b, fmt.Errorf("%s: %w: %w", what, ErrAlreadyExists, err)
	case errors.Is(err, dataverse.ErrNotFound):
		return nil, fmt.Errorf("%s: resource %s or status %s does not exist: %w", what, resourceID, statusID, err)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	b, err := s.written(ctx, &row)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

// BookingIDForEvent derives the bookableresourcebookingid of the booking
// created from an Outlook event: a name-based GUID (the first 16 bytes of a
// SHA-256 of the mailbox and the event id, with the version set to 8 and
// the RFC 9562 variant, as in its Appendix B.2 example), stable across
// processes and retries. The mailbox is compared case-insensitively, the
// event id (an immutable id) exactly.
func BookingIDForEvent(mailbox, eventID string) string {
	h := sha256.New()
	h.Write([]byte("bookingsync:booking-for-event\x00"))
	m := strings.ToLower(strings.TrimSpace(mailbox))
	h.Write(binary.AppendUvarint(nil, uint64(len(m))))
	h.Write([]byte(m))
	h.Write([]byte(eventID))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // variant 10
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// cut shortens s to at most n characters without splitting a rune.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}
