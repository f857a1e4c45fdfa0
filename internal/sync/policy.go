package sync

import (
	"time"

	"github.com/bookingsync/bookingsync/internal/config"
)

// Values of the enumerated policies; they are the config strings.
const (
	OnCancelDelete = "delete" // a canceled booking's event is deleted
	OnCancelMark   = "mark"   // kept, "Canceled: " subject, shown as free

	OnOutlookDeleteCancelBooking = "cancel_booking"
	OnOutlookDeleteRecreateEvent = "recreate_event"
	OnOutlookDeleteUnlink        = "unlink"

	OnOutlookCreateIgnore        = "ignore"
	OnOutlookCreateCreateBooking = "create_booking"

	ConflictD365Wins    = "d365_wins"
	ConflictOutlookWins = "outlook_wins"
	ConflictNewestWins  = "newest_wins"
	ConflictManual      = "manual"
)

// Policy is the part of the sync: configuration that Decide and Render use.
type Policy struct {
	WindowPast       time.Duration // bookings that ended longer ago are out of scope
	WindowFuture     time.Duration // bookings that start later are out of scope
	RequireWorkOrder bool
	OnCancel         string   // OnCancelDelete | OnCancelMark
	OutlookMayChange FieldSet // fields an Outlook edit of flows back to the booking (subset of FieldTimes)
	// RevertOwnedFields puts back Outlook edits of the fields D365 owns
	// (everything but OutlookMayChange); off: they are recorded and kept.
	RevertOwnedFields  bool
	OnOutlookDelete    string // OnOutlookDelete…
	OnOutlookCreate    string // OnOutlookCreate…
	Conflict           string // Conflict…
	PrivateBookingName string // booking name for private/confidential Outlook events
}

// DefaultPolicy is the policy of the default configuration (a test keeps
// it equal to PolicyFromConfig(config.Default().Sync)).
func DefaultPolicy() Policy {
	return Policy{
		WindowPast:         7 * 24 * time.Hour,
		WindowFuture:       90 * 24 * time.Hour,
		OnCancel:           OnCancelDelete,
		OutlookMayChange:   FieldTimes,
		RevertOwnedFields:  true,
		OnOutlookDelete:    OnOutlookDeleteCancelBooking,
		OnOutlookCreate:    OnOutlookCreateIgnore,
		Conflict:           ConflictD365Wins,
		PrivateBookingName: config.DefaultPrivateBookingName,
	}
}

// PolicyFromConfig maps a validated sync: section. Empty enumerations take
// their default, so a zero config.Sync in a test still means something.
func PolicyFromConfig(s config.Sync) Policy {
	p := Policy{
		WindowPast:         s.WindowPast,
		WindowFuture:       s.WindowFuture,
		RequireWorkOrder:   s.RequireWorkOrder,
		OnCancel:           orDefault(s.OnCancel, OnCancelDelete),
		RevertOwnedFields:  s.RevertOwnedFields,
		OnOutlookDelete:    orDefault(s.OnOutlookDelete, OnOutlookDeleteCancelBooking),
		OnOutlookCreate:    orDefault(s.OnOutlookCreate, OnOutlookCreateIgnore),
		Conflict:           orDefault(s.Conflict, ConflictD365Wins),
		PrivateBookingName: orDefault(s.PrivateBookingName, config.DefaultPrivateBookingName),
	}
	for _, f := range s.OutlookMayChange {
		switch f {
		case "start":
			p.OutlookMayChange |= FieldStart
		case "end":
			p.OutlookMayChange |= FieldEnd
		}
	}
	return p
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Window is the sync window at now: bookings overlapping [from, to) are in it.
func (p Policy) Window(now time.Time) (from, to time.Time) {
	return now.Add(-p.WindowPast), now.Add(p.WindowFuture)
}
