package graph

import (
	"encoding/json"
	"time"
)

// ItemBody is graph.itemBody. ContentType is "text" or "html".
type ItemBody struct {
	ContentType string `json:"contentType,omitempty"`
	Content     string `json:"content"`
}

// PhysicalAddress is graph.physicalAddress.
type PhysicalAddress struct {
	Street          string `json:"street,omitempty"`
	City            string `json:"city,omitempty"`
	State           string `json:"state,omitempty"`
	PostalCode      string `json:"postalCode,omitempty"`
	CountryOrRegion string `json:"countryOrRegion,omitempty"`
}

// Location is graph.location (the subset we write).
type Location struct {
	DisplayName string           `json:"displayName,omitempty"`
	Address     *PhysicalAddress `json:"address,omitempty"`
}

// SingleValueLegacyExtendedProperty is graph.singleValueLegacyExtendedProperty.
// ID has the form "String {guid} Name D365BookingId".
type SingleValueLegacyExtendedProperty struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// Removed is the "@removed" annotation of a delta item.
type Removed struct {
	Reason string `json:"reason"`
}

// Event is graph.event as we read and create it. Pointer booleans are
// omitted when nil so that a create body does not reset server defaults by
// accident (isReminderOn defaults to true in Outlook).
type Event struct {
	ID        string `json:"id,omitempty"`
	ODataEtag string `json:"@odata.etag,omitempty"`
	// Removed is set only on calendarView/delta items that were removed.
	Removed *Removed `json:"@removed,omitempty"`

	Subject      string            `json:"subject,omitempty"`
	Body         *ItemBody         `json:"body,omitempty"`
	Start        *DateTimeTimeZone `json:"start,omitempty"`
	End          *DateTimeTimeZone `json:"end,omitempty"`
	Location     *Location         `json:"location,omitempty"`
	ShowAs       string            `json:"showAs,omitempty"`     // freeBusyStatus
	Categories   []string          `json:"categories,omitempty"` // outlookItem
	IsReminderOn *bool             `json:"isReminderOn,omitempty"`
	IsCancelled  *bool             `json:"isCancelled,omitempty"`
	Sensitivity  string            `json:"sensitivity,omitempty"` // normal, personal, private, confidential
	IsAllDay     *bool             `json:"isAllDay,omitempty"`

	Type           string `json:"type,omitempty"` // singleInstance, occurrence, exception, seriesMaster (read-only)
	SeriesMasterID string `json:"seriesMasterId,omitempty"`
	ICalUID        string `json:"iCalUId,omitempty"`
	ChangeKey      string `json:"changeKey,omitempty"`

	CreatedDateTime      time.Time `json:"createdDateTime,omitzero"`
	LastModifiedDateTime time.Time `json:"lastModifiedDateTime,omitzero"`

	// TransactionID makes POST idempotent for client retries; it can only
	// be set on create.
	TransactionID string `json:"transactionId,omitempty"`

	SingleValueExtendedProperties []SingleValueLegacyExtendedProperty `json:"singleValueExtendedProperties,omitempty"`

	// Recurrence is graph.patternedRecurrence, kept raw: we only carry it.
	Recurrence json.RawMessage `json:"recurrence,omitempty"`
}

// ExtendedProperty returns the value of the single-value extended property
// with the given id (exact match; Graph treats the Name part case-sensitively).
func (e *Event) ExtendedProperty(id string) (string, bool) {
	for _, p := range e.SingleValueExtendedProperties {
		if p.ID == id {
			return p.Value, true
		}
	}
	return "", false
}

// EventPatch is the body of PATCH /users/{id}/events/{id}: only non-nil
// fields are sent. To clear categories send a pointer to an empty slice; to
// remove recurrence set Recurrence to json.RawMessage("null").
type EventPatch struct {
	Subject      *string           `json:"subject,omitempty"`
	Body         *ItemBody         `json:"body,omitempty"`
	Start        *DateTimeTimeZone `json:"start,omitempty"`
	End          *DateTimeTimeZone `json:"end,omitempty"`
	Location     *Location         `json:"location,omitempty"`
	ShowAs       *string           `json:"showAs,omitempty"`
	Categories   *[]string         `json:"categories,omitempty"`
	IsReminderOn *bool             `json:"isReminderOn,omitempty"`
	Sensitivity  *string           `json:"sensitivity,omitempty"`
	IsAllDay     *bool             `json:"isAllDay,omitempty"`

	SingleValueExtendedProperties []SingleValueLegacyExtendedProperty `json:"singleValueExtendedProperties,omitempty"`

	Recurrence json.RawMessage `json:"recurrence,omitempty"`
}

// Subscription is graph.subscription. ClientState is never returned by
// Graph on GET/list; keep it in our own store.
type Subscription struct {
	ID                        string    `json:"id,omitempty"`
	Resource                  string    `json:"resource,omitempty"`
	ChangeType                string    `json:"changeType,omitempty"` // e.g. "created,updated,deleted"
	NotificationURL           string    `json:"notificationUrl,omitempty"`
	LifecycleNotificationURL  string    `json:"lifecycleNotificationUrl,omitempty"`
	ExpirationDateTime        time.Time `json:"expirationDateTime,omitzero"`
	ClientState               string    `json:"clientState,omitempty"`
	LatestSupportedTLSVersion string    `json:"latestSupportedTlsVersion,omitempty"`
	IncludeResourceData       *bool     `json:"includeResourceData,omitempty"`
	ApplicationID             string    `json:"applicationId,omitempty"` // read-only
	CreatorID                 string    `json:"creatorId,omitempty"`     // read-only
}

// ResourceData is graph.resourceData, an open type: Outlook sends the
// annotations plus a dynamic "id" property.
type ResourceData struct {
	ODataType string `json:"@odata.type,omitempty"`
	ODataID   string `json:"@odata.id,omitempty"`
	ODataEtag string `json:"@odata.etag,omitempty"`
	ID        string `json:"id,omitempty" csdl:"dynamic"`
}

// Change types and lifecycle events, as sent by Graph.
const (
	ChangeCreated = "created"
	ChangeUpdated = "updated"
	ChangeDeleted = "deleted"

	LifecycleMissed                  = "missed"
	LifecycleSubscriptionRemoved     = "subscriptionRemoved"
	LifecycleReauthorizationRequired = "reauthorizationRequired"
)

// ChangeNotification is graph.changeNotification. Exactly one of ChangeType
// (change notification) and LifecycleEvent (lifecycle notification) is set.
type ChangeNotification struct {
	ID                             string          `json:"id,omitempty"` // optional; not a dedup key
	SubscriptionID                 string          `json:"subscriptionId"`
	SubscriptionExpirationDateTime time.Time       `json:"subscriptionExpirationDateTime"`
	ChangeType                     string          `json:"changeType,omitempty"`
	LifecycleEvent                 string          `json:"lifecycleEvent,omitempty"`
	Resource                       string          `json:"resource,omitempty"`
	ResourceData                   *ResourceData   `json:"resourceData,omitempty"`
	ClientState                    string          `json:"clientState,omitempty"`
	TenantID                       string          `json:"tenantId,omitempty"`
	EncryptedContent               json.RawMessage `json:"encryptedContent,omitempty"` // rich notifications only
}

// IsLifecycle reports whether n is a lifecycle notification.
func (n *ChangeNotification) IsLifecycle() bool { return n.LifecycleEvent != "" }

// ChangeNotificationCollection is the body Graph POSTs to our webhook.
type ChangeNotificationCollection struct {
	Value            []ChangeNotification `json:"value"`
	ValidationTokens []string             `json:"validationTokens,omitempty"`
}

// User is the subset of graph.user we need.
type User struct {
	ID                string `json:"id"`
	DisplayName       string `json:"displayName,omitempty"`
	Mail              string `json:"mail,omitempty"`
	UserPrincipalName string `json:"userPrincipalName,omitempty"`
}
