package engine

import (
	"context"
	"encoding/json"
	"time"

	"github.com/bookingsync/bookingsync/internal/metrics"
	"github.com/bookingsync/bookingsync/internal/store"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
)

// The audit log's before/after: only the synced fields an action changed,
// times in UTC RFC 3339, an event's body as its visible text (shortened),
// so `bookingsync log` can show "start 09:00 → 10:00" without HTML.

// auditBodyMax bounds the body text kept in an audit entry.
const auditBodyMax = 200

// eventFields is the audit view of the fields f of event content c.
func eventFields(c bsync.Content, f bsync.FieldSet) map[string]any {
	m := map[string]any{}
	if f.Has(bsync.FieldSubject) {
		m["subject"] = c.Subject
	}
	if f.Has(bsync.FieldBody) {
		body := []rune(bsync.VisibleText(c.Body))
		if len(body) > auditBodyMax {
			body = append(body[:auditBodyMax], '…')
		}
		m["body"] = string(body)
	}
	if f.Has(bsync.FieldLocation) {
		m["location"] = c.Location
	}
	if f.Has(bsync.FieldStart) {
		m["start"] = auditTime(c.Start)
	}
	if f.Has(bsync.FieldEnd) {
		m["end"] = auditTime(c.End)
	}
	if f.Has(bsync.FieldShowAs) {
		m["showAs"] = c.ShowAs
	}
	return m
}

func auditTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// bookingTimes is the audit view of a booking's times (nil if unknown).
func bookingTimes(b *bsync.Booking) any {
	if b == nil {
		return nil
	}
	return map[string]any{"start": auditTime(b.Start), "end": auditTime(b.End)}
}

// bookingStatus is the audit view of a booking's status (nil if unknown).
func bookingStatus(b *bsync.Booking) any {
	if b == nil {
		return nil
	}
	m := map[string]any{"status": b.Status}
	if b.StatusName != "" {
		m["status_name"] = b.StatusName
	}
	if b.StatusID != "" {
		m["status_id"] = b.StatusID
	}
	return m
}

// eventBefore is the audit view of fields f of event eventID before a
// write: as read, or (not read) the times the link records as agreed.
func (x *execution) eventBefore(eventID string, f bsync.FieldSet) any {
	if x.event != nil && x.event.ID == eventID {
		return eventFields(x.event.Content, f)
	}
	if x.link != nil && x.link.EventID == eventID && f&bsync.FieldTimes != 0 {
		return eventFields(bsync.Content{Start: x.link.AgreedStart, End: x.link.AgreedEnd}, f&bsync.FieldTimes)
	}
	return nil
}

// auditChange records one action with what it changed. A failure to audit
// is logged, not fatal: the write it describes already happened.
func (x *execution) auditChange(ctx context.Context, side store.Side, action, reason, eventID string, before, after any, opErr error) {
	outcome := "ok"
	if opErr != nil {
		outcome, after = "failed", nil
	}
	entry := store.AuditEntry{ResourceID: x.resourceID(), BookingID: x.bookingID, EventID: eventID, Side: side,
		Action: action, Reason: reason, Outcome: outcome}
	entry.Before = auditJSON(before)
	entry.After = auditJSON(after)
	if opErr != nil {
		entry.Error = opErr.Error()
	}
	x.e.writeAudit(ctx, entry)
}

// suppress records a deletion or cancellation that
// sync.mass_delete.disable_deletes kept from happening; the link is kept.
func (x *execution) suppress(ctx context.Context, side store.Side, would, reason, eventID string, before any) {
	x.suppressed = true
	x.e.log.Warn("delete suppressed (sync.mass_delete.disable_deletes)", "would", would, "booking", x.bookingID, "event", eventID)
	entry := store.AuditEntry{ResourceID: x.resourceID(), BookingID: x.bookingID, EventID: eventID, Side: side,
		Action: "delete_suppressed", Reason: "would " + would + ": " + reason + " (sync.mass_delete.disable_deletes)",
		Outcome: "suppressed"}
	entry.Before = auditJSON(before)
	entry.After = auditJSON(map[string]any{"would": would})
	x.e.writeAudit(ctx, entry)
}

func auditJSON(v any) json.RawMessage {
	switch m := v.(type) {
	case nil:
		return nil
	case map[string]any:
		if len(m) == 0 {
			return nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// writeAudit counts and stores one entry.
func (e *Engine) writeAudit(ctx context.Context, entry store.AuditEntry) {
	metrics.CountSyncAction(entry.Action, string(entry.Side), entry.Outcome)
	if _, err := e.cfg.Store.InsertAudit(ctx, e.cfg.Store.DB(), entry); err != nil {
		e.log.Warn("audit write failed", "action", entry.Action, "booking", entry.BookingID, "err", err)
	}
}

// createdBooking is the audit view of a booking we created.
func createdBooking(b *bsync.Booking) any {
	return map[string]any{"booking_id": b.ID, "name": b.Name, "start": auditTime(b.Start), "end": auditTime(b.End),
		"status_id": b.StatusID, "resource_id": b.ResourceID}
}
