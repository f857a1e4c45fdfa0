// Package sync is the sync engine's decision core: given the last state both
// sides agreed on (the link), the current booking and the current event, it
// decides what to write. Decide is a pure function (no I/O, no clock); the
// rules it implements are the table in docs/sync-rules.md.
//
// The types here are the engine's own view of each side, independent of the
// wire types of the Graph and Dataverse clients: loaders fill them in, the
// executor performs the returned actions.
package sync

import "time"

// Booking status values (bookingstatus.status).
const (
	StatusProposed  = 1
	StatusCommitted = 2
	StatusCanceled  = 3
)

// Booking is the synced view of one bookableresourcebooking, with what the
// templates need from its work order.
type Booking struct {
	ID      string
	Version int64  // versionnumber
	ETag    string // @odata.etag, for If-Match on our writes
	Name    string
	Start   time.Time // UTC
	End     time.Time // UTC
	// Status is bookingstatus.status (StatusProposed, …); StatusID and
	// StatusName identify the bookingstatus row.
	Status     int
	StatusID   string
	StatusName string
	Active     bool // statecode 0; inactive bookings are treated like deleted ones
	ResourceID string
	ModifiedOn time.Time
	WorkOrder  *WorkOrder // nil: not a work-order booking
}

// WorkOrder holds the msdyn_workorder fields the event content may use.
type WorkOrder struct {
	ID           string
	Number       string // msdyn_name, e.g. WO-00123
	Customer     string // service account name
	IncidentType string // primary incident type name
	Summary      string // msdyn_workordersummary
	Instructions string // msdyn_instructions
	// Address lines as on the work order; Address() joins the non-empty ones.
	AddressName, Street1, Street2, Street3, City, StateOrProvince, PostalCode, Country string
	// Type and Priority are the names of msdyn_workordertype and
	// msdyn_priority (config.WorkOrderData has them, so templates may use them).
	Type, Priority string
}

// Resource is a bookable resource as far as syncing is concerned.
type Resource struct {
	ID      string
	Name    string
	Mailbox string // Entra object id of the resource's user; "" if none
	OptedIn bool   // enrolled: opt-in column Allowed and a subscription wanted
	// TimeZone is a Windows time-zone name (e.g. "W. Europe Standard Time")
	// for writing event times when sync.event_time_zone is "resource".
	TimeZone string
}

// Event is the synced view of one Outlook event.
type Event struct {
	ID        string
	Mailbox   string
	ChangeKey string
	ETag      string // @odata.etag
	// BookingID is the value of our single-value extended property; "" for
	// events we did not create.
	BookingID   string
	Content     Content
	Sensitivity string // normal, personal, private, confidential
	Type        string // singleInstance, occurrence, exception, seriesMaster
	// SeriesMasterID is the series master of an occurrence or exception.
	SeriesMasterID string
	IsCancelled    bool
	LastModified   time.Time
}

// Content is what an event shows: the fields the sync writes. Times are UTC.
// Body is HTML as sent to Graph; comparisons use NormalizedBody so Outlook's
// rewrapping of the HTML does not count as an edit.
type Content struct {
	Subject  string
	Body     string // HTML
	Location string
	Start    time.Time
	End      time.Time
	ShowAs   string // free, tentative, busy
}

// Link is the last state both sides agreed on for one booking: mirrors
// store.Link, plus the agreed times (to tell an Outlook move from an edit of
// an owned field).
type Link struct {
	BookingID      string
	ResourceID     string
	Mailbox        string
	EventID        string
	BookingVersion int64
	BookingHash    string // ContentHash of the content rendered from the booking
	EventChangeKey string
	EventETag      string
	EventHash      string // ContentHash of the event as last seen/written
	AgreedStart    time.Time
	AgreedEnd      time.Time
	Version        int64 // compare-and-swap counter of the link row
	// Origin is OriginOutlook when the booking was created from an Outlook
	// event (on_outlook_create: create_booking); "" when the event was
	// created from the booking. It decides which fields D365 writes.
	Origin string
	// Detached marks a tombstone: the sync no longer touches this booking or
	// its event (on_outlook_delete: unlink, or a kept event of a removed
	// booking). Kept so that the booking is not synced again.
	Detached bool
}

// Link origins.
const (
	OriginD365    = ""
	OriginOutlook = "outlook"
)

// Event types (event.type in Graph).
const (
	EventSingleInstance = "singleInstance"
	EventOccurrence     = "occurrence"
	EventException      = "exception"
	EventSeriesMaster   = "seriesMaster"
)
