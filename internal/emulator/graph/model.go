package graph

import "time"

// JSON shapes of the Graph types the emulator emits or accepts. Names and
// types follow graph-v1.0-Prod.csdl; contract_test.go checks them against it.

type itemBody struct {
	ContentType string `json:"contentType"`
	Content     string `json:"content"`
}

type dateTimeTimeZone struct {
	DateTime string `json:"dateTime"`
	TimeZone string `json:"timeZone"`
}

type physicalAddress struct {
	Street          string `json:"street,omitempty"`
	City            string `json:"city,omitempty"`
	State           string `json:"state,omitempty"`
	CountryOrRegion string `json:"countryOrRegion,omitempty"`
	PostalCode      string `json:"postalCode,omitempty"`
}

type outlookGeoCoordinates struct {
	Latitude         *float64 `json:"latitude,omitempty"`
	Longitude        *float64 `json:"longitude,omitempty"`
	Altitude         *float64 `json:"altitude,omitempty"`
	Accuracy         *float64 `json:"accuracy,omitempty"`
	AltitudeAccuracy *float64 `json:"altitudeAccuracy,omitempty"`
}

type location struct {
	DisplayName          string                 `json:"displayName"`
	LocationType         string                 `json:"locationType,omitempty"`
	UniqueID             string                 `json:"uniqueId,omitempty"`
	UniqueIDType         string                 `json:"uniqueIdType,omitempty"`
	LocationEmailAddress string                 `json:"locationEmailAddress,omitempty"`
	LocationURI          string                 `json:"locationUri,omitempty"`
	Address              *physicalAddress       `json:"address,omitempty"`
	Coordinates          *outlookGeoCoordinates `json:"coordinates,omitempty"`
}

type emailAddress struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

type recipient struct {
	EmailAddress emailAddress `json:"emailAddress"`
}

type responseStatus struct {
	Response string `json:"response"`
	Time     string `json:"time"`
}

type attendee struct {
	Type         string          `json:"type"`
	Status       *responseStatus `json:"status,omitempty"`
	EmailAddress emailAddress    `json:"emailAddress"`
}

type recurrencePattern struct {
	Type           string   `json:"type"`
	Interval       int      `json:"interval"`
	Month          int      `json:"month"`
	DayOfMonth     int      `json:"dayOfMonth"`
	DaysOfWeek     []string `json:"daysOfWeek,omitempty"`
	FirstDayOfWeek string   `json:"firstDayOfWeek,omitempty"`
	Index          string   `json:"index,omitempty"`
}

type recurrenceRange struct {
	Type                string `json:"type"`
	StartDate           string `json:"startDate"`
	EndDate             string `json:"endDate"`
	RecurrenceTimeZone  string `json:"recurrenceTimeZone"`
	NumberOfOccurrences int    `json:"numberOfOccurrences"`
}

type patternedRecurrence struct {
	Pattern recurrencePattern `json:"pattern"`
	Range   recurrenceRange   `json:"range"`
}

// singleValueLegacyExtendedProperty.
type extendedProperty struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// onlineMeetingInfo is always null here (no Teams meetings).
type onlineMeetingInfo struct {
	JoinURL string `json:"joinUrl"`
}

// eventOut is an event as Graph returns it, in Graph's property order.
// Nullable properties Graph sends as null are pointers without omitempty.
type eventOut struct {
	ODataType                     string               `json:"@odata.type,omitempty"` // delta items only
	ETag                          string               `json:"@odata.etag"`
	ID                            string               `json:"id"`
	CreatedDateTime               string               `json:"createdDateTime"`
	LastModifiedDateTime          string               `json:"lastModifiedDateTime"`
	ChangeKey                     string               `json:"changeKey"`
	Categories                    []string             `json:"categories"`
	TransactionID                 *string              `json:"transactionId,omitempty"` // "only returned … if an app has set it"
	OriginalStartTimeZone         string               `json:"originalStartTimeZone"`
	OriginalEndTimeZone           string               `json:"originalEndTimeZone"`
	ICalUID                       string               `json:"iCalUId"`
	ReminderMinutesBeforeStart    int                  `json:"reminderMinutesBeforeStart"`
	IsReminderOn                  bool                 `json:"isReminderOn"`
	HasAttachments                bool                 `json:"hasAttachments"`
	Subject                       string               `json:"subject"`
	BodyPreview                   string               `json:"bodyPreview"`
	Importance                    string               `json:"importance"`
	Sensitivity                   string               `json:"sensitivity"`
	IsAllDay                      bool                 `json:"isAllDay"`
	IsCancelled                   bool                 `json:"isCancelled"`
	IsOrganizer                   bool                 `json:"isOrganizer"`
	ResponseRequested             bool                 `json:"responseRequested"`
	SeriesMasterID                *string              `json:"seriesMasterId"`
	ShowAs                        string               `json:"showAs"`
	Type                          string               `json:"type"`
	WebLink                       string               `json:"webLink"`
	OnlineMeetingURL              *string              `json:"onlineMeetingUrl"`
	IsOnlineMeeting               bool                 `json:"isOnlineMeeting"`
	OnlineMeetingProvider         string               `json:"onlineMeetingProvider"`
	AllowNewTimeProposals         bool                 `json:"allowNewTimeProposals"`
	OriginalStart                 *string              `json:"originalStart,omitempty"` // occurrences and exceptions
	IsDraft                       bool                 `json:"isDraft"`
	HideAttendees                 bool                 `json:"hideAttendees"`
	CancelledOccurrences          *[]string            `json:"cancelledOccurrences,omitempty"` // series master, $select only
	ResponseStatus                responseStatus       `json:"responseStatus"`
	Body                          itemBody             `json:"body"`
	Start                         dateTimeTimeZone     `json:"start"`
	End                           dateTimeTimeZone     `json:"end"`
	Location                      location             `json:"location"`
	Locations                     []location           `json:"locations"`
	Recurrence                    *patternedRecurrence `json:"recurrence"`
	Attendees                     []attendee           `json:"attendees"`
	Organizer                     recipient            `json:"organizer"`
	OnlineMeeting                 *onlineMeetingInfo   `json:"onlineMeeting"`
	SingleValueExtendedProperties []extendedProperty   `json:"singleValueExtendedProperties,omitempty"` // $expand only
}

// eventIn holds the writable properties of POST and PATCH bodies; nil means
// "not sent". Read-only properties a client echoes back are ignored (see
// ignoredEventProps), anything else is rejected.
type eventIn struct {
	Subject                       *string              `json:"subject"`
	Body                          *itemBody            `json:"body"`
	Start                         *dateTimeTimeZone    `json:"start"`
	End                           *dateTimeTimeZone    `json:"end"`
	Location                      *location            `json:"location"`
	Locations                     *[]location          `json:"locations"`
	ShowAs                        *string              `json:"showAs"`
	Sensitivity                   *string              `json:"sensitivity"`
	Importance                    *string              `json:"importance"`
	Categories                    *[]string            `json:"categories"`
	IsReminderOn                  *bool                `json:"isReminderOn"`
	ReminderMinutesBeforeStart    *int                 `json:"reminderMinutesBeforeStart"`
	IsCancelled                   *bool                `json:"isCancelled"`
	IsAllDay                      *bool                `json:"isAllDay"`
	ResponseRequested             *bool                `json:"responseRequested"`
	AllowNewTimeProposals         *bool                `json:"allowNewTimeProposals"`
	HideAttendees                 *bool                `json:"hideAttendees"`
	Attendees                     *[]attendee          `json:"attendees"`
	Recurrence                    *patternedRecurrence `json:"recurrence"`
	TransactionID                 *string              `json:"transactionId"`
	SingleValueExtendedProperties *[]extendedProperty  `json:"singleValueExtendedProperties"`
}

// ignoredEventProps are read-only event properties: accepted in a body (a
// client may PATCH back what it read) and ignored.
var ignoredEventProps = []string{
	"id", "changeKey", "createdDateTime", "lastModifiedDateTime", "iCalUId", "type",
	"seriesMasterId", "originalStart", "originalStartTimeZone", "originalEndTimeZone",
	"organizer", "responseStatus", "isOrganizer", "bodyPreview", "webLink",
	"hasAttachments", "isDraft", "onlineMeetingUrl", "onlineMeeting",
	"cancelledOccurrences", "isOnlineMeeting", "onlineMeetingProvider",
}

// event is one stored calendar item: a single instance, a series master, or
// (inside a master's exceptions) a modified occurrence.
type event struct {
	key      itemKey
	seq      uint64 // global modification number: changeKey and delta ordering
	created  time.Time
	modified time.Time

	subject           string
	bodyType          string // "text" or "html"
	bodyContent       string
	start, end        time.Time // instants (UTC)
	startTZ, endTZ    string    // zone names as the client gave them
	isAllDay          bool
	location          location
	locations         []location
	showAs            string
	sensitivity       string
	importance        string
	categories        []string
	isReminderOn      bool
	reminderMinutes   int
	isCancelled       bool
	responseRequested bool
	allowNewProposals bool
	hideAttendees     bool
	attendees         []attendee
	transactionID     string
	iCalUID           string
	ext               map[string]extendedProperty // by normalised id
	recurrence        *patternedRecurrence

	// Series master only: edited occurrences and deleted occurrences, by
	// original start (Unix seconds).
	exceptions map[int64]*event
	cancelled  map[int64]bool
	// Exceptions only.
	originalStart time.Time
}

func (ev *event) isSeriesMaster() bool { return ev.recurrence != nil }

// clone copies ev deeply enough for an exception to diverge from its master.
func (ev *event) clone() *event {
	c := *ev
	c.categories = append([]string(nil), ev.categories...)
	c.attendees = append([]attendee(nil), ev.attendees...)
	c.locations = append([]location(nil), ev.locations...)
	c.ext = nil
	c.recurrence = nil
	c.exceptions = nil
	c.cancelled = nil
	return &c
}

// changeNotification and changeNotificationCollection are the webhook payloads.
type changeNotification struct {
	ID                             string        `json:"id,omitempty"`
	SubscriptionID                 string        `json:"subscriptionId"`
	SubscriptionExpirationDateTime string        `json:"subscriptionExpirationDateTime"`
	ClientState                    *string       `json:"clientState"`
	ChangeType                     string        `json:"changeType,omitempty"`
	LifecycleEvent                 string        `json:"lifecycleEvent,omitempty"`
	Resource                       string        `json:"resource,omitempty"`
	TenantID                       string        `json:"tenantId"`
	ResourceData                   *resourceData `json:"resourceData,omitempty"`
}

type resourceData struct {
	ODataType string `json:"@odata.type"`
	ODataID   string `json:"@odata.id"`
	ODataETag string `json:"@odata.etag"`
	ID        string `json:"id" csdl:"dynamic"` // resourceData is an open type
}

type changeNotificationCollection struct {
	Value            []changeNotification `json:"value"`
	ValidationTokens []string             `json:"validationTokens,omitempty"`
}

// subscriptionOut is a subscription as Graph returns it.
type subscriptionOut struct {
	ODataContext              string  `json:"@odata.context,omitempty"`
	ID                        string  `json:"id"`
	Resource                  string  `json:"resource"`
	ApplicationID             string  `json:"applicationId"`
	ChangeType                string  `json:"changeType"`
	ClientState               *string `json:"clientState"`
	NotificationURL           string  `json:"notificationUrl"`
	NotificationQueryOptions  *string `json:"notificationQueryOptions,omitempty"` // absent from the documented response
	LifecycleNotificationURL  *string `json:"lifecycleNotificationUrl"`
	ExpirationDateTime        string  `json:"expirationDateTime"`
	CreatorID                 string  `json:"creatorId"`
	IncludeResourceData       *bool   `json:"includeResourceData"`
	LatestSupportedTLSVersion string  `json:"latestSupportedTlsVersion"`
	EncryptionCertificate     *string `json:"encryptionCertificate"`
	EncryptionCertificateID   *string `json:"encryptionCertificateId"`
	NotificationURLAppID      *string `json:"notificationUrlAppId"`
}

// subscriptionIn is the body of POST and PATCH /subscriptions.
type subscriptionIn struct {
	ChangeType                *string `json:"changeType"`
	NotificationURL           *string `json:"notificationUrl"`
	Resource                  *string `json:"resource"`
	ExpirationDateTime        *string `json:"expirationDateTime"`
	ClientState               *string `json:"clientState"`
	LifecycleNotificationURL  *string `json:"lifecycleNotificationUrl"`
	LatestSupportedTLSVersion *string `json:"latestSupportedTlsVersion"`
	IncludeResourceData       *bool   `json:"includeResourceData"`
	EncryptionCertificate     *string `json:"encryptionCertificate"`
	EncryptionCertificateID   *string `json:"encryptionCertificateId"`
	NotificationURLAppID      *string `json:"notificationUrlAppId"`
	NotificationQueryOptions  *string `json:"notificationQueryOptions,omitempty"` // absent from the documented response
}

// userOut is a directory user.
type userOut struct {
	BusinessPhones    []string `json:"businessPhones"`
	DisplayName       string   `json:"displayName"`
	GivenName         *string  `json:"givenName"`
	JobTitle          *string  `json:"jobTitle"`
	Mail              *string  `json:"mail"`
	MobilePhone       *string  `json:"mobilePhone"`
	OfficeLocation    *string  `json:"officeLocation"`
	PreferredLanguage *string  `json:"preferredLanguage"`
	Surname           *string  `json:"surname"`
	UserPrincipalName string   `json:"userPrincipalName"`
	ID                string   `json:"id"`
}
