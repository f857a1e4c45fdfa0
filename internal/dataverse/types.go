package dataverse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Version is a versionnumber (SQL rowversion, Edm.Int64). The Web API sends
// Edm.Int64 as a JSON number (as a string only with the IEEE754Compatible
// format parameter, which we don't request); both forms are accepted and
// parsed exactly, never through float64.
type Version int64

func (v *Version) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*v = 0
		return nil
	}
	if len(b) > 1 && b[0] == '"' {
		b = b[1 : len(b)-1]
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("versionnumber %s: %w", b, err)
	}
	*v = Version(n)
	return nil
}

// Option values used by the sync (reference §1.1–§1.5).
const (
	ResourceTypeGeneric   = 1
	ResourceTypeContact   = 2
	ResourceTypeUser      = 3 // the only kind that maps to a mailbox [inference, reference §1.1]
	ResourceTypeEquipment = 4
	ResourceTypeAccount   = 5
	ResourceTypeCrew      = 6
	ResourceTypeFacility  = 7
	ResourceTypePool      = 8

	BookingTypeSolid  = 1
	BookingTypeLiquid = 2

	StateActive   = 0
	StateInactive = 1

	StatusCodeActive   = 1
	StatusCodeInactive = 2

	BookingStatusProposed  = 1
	BookingStatusCommitted = 2
	BookingStatusCanceled  = 3

	FieldServiceStatusScheduled  = 690970000
	FieldServiceStatusTraveling  = 690970001
	FieldServiceStatusOnBreak    = 690970002
	FieldServiceStatusInProgress = 690970003
	FieldServiceStatusCompleted  = 690970004
	FieldServiceStatusCanceled   = 690970005
)

// Booking is a bookableresourcebooking row.
type Booking struct {
	ID                    string    `json:"bookableresourcebookingid"`
	Name                  string    `json:"name"`
	StartTime             time.Time `json:"starttime"`
	EndTime               time.Time `json:"endtime"`
	Duration              int       `json:"duration"` // minutes [inference, reference §1.3]
	BookingType           int       `json:"bookingtype"`
	StateCode             int       `json:"statecode"`
	StatusCode            int       `json:"statuscode"`
	ResourceID            string    `json:"_resource_value"`
	BookingStatusID       string    `json:"_bookingstatus_value"`
	HeaderID              string    `json:"_header_value"`
	WorkOrderID           string    `json:"_msdyn_workorder_value"`
	ResourceRequirementID string    `json:"_msdyn_resourcerequirement_value"`
	ModifiedByID          string    `json:"_modifiedby_value"`
	VersionNumber         Version   `json:"versionnumber"`
	ModifiedOn            time.Time `json:"modifiedon"`
	CreatedOn             time.Time `json:"createdon"`
	ETag                  string    `json:"@odata.etag"`

	// Raw holds every property as received, including expansions (whose
	// names depend on the navigation-property casing) and custom columns.
	Raw map[string]json.RawMessage `json:"-"`
}

// BookingSelect lists the columns of Booking for $select.
var BookingSelect = []string{
	"bookableresourcebookingid", "name", "starttime", "endtime", "duration", "bookingtype",
	"statecode", "statuscode", "_resource_value", "_bookingstatus_value", "_header_value",
	"_msdyn_workorder_value", "_msdyn_resourcerequirement_value", "_modifiedby_value",
	"versionnumber", "modifiedon", "createdon",
}

func (b *Booking) UnmarshalJSON(data []byte) error {
	type plain Booking
	return decodeRow(data, (*plain)(b), &b.Raw)
}

// Expanded decodes an expanded navigation property (e.g. NavBookingStatus)
// into out. It reports false if the property is absent or null.
func (b *Booking) Expanded(nav string, out any) (bool, error) {
	return expanded(b.Raw, nav, out)
}

// BookableResource is a bookableresource row. The opt-in choice column and
// the status text column have configurable names, so they are read through
// Choice and Text rather than fixed fields.
type BookableResource struct {
	ID            string    `json:"bookableresourceid"`
	Name          string    `json:"name"`
	ResourceType  int       `json:"resourcetype"`
	UserID        string    `json:"_userid_value"`
	TimeZone      int       `json:"timezone"` // Dataverse time-zone code, not IANA
	StateCode     int       `json:"statecode"`
	VersionNumber Version   `json:"versionnumber"`
	ModifiedOn    time.Time `json:"modifiedon"`
	ETag          string    `json:"@odata.etag"`

	Raw map[string]json.RawMessage `json:"-"`
}

// BookableResourceSelect lists the fixed columns of BookableResource;
// append the configured opt-in and status column names.
var BookableResourceSelect = []string{
	"bookableresourceid", "name", "resourcetype", "_userid_value", "timezone", "statecode",
	"versionnumber", "modifiedon",
}

func (r *BookableResource) UnmarshalJSON(data []byte) error {
	type plain BookableResource
	return decodeRow(data, (*plain)(r), &r.Raw)
}

// Choice returns the integer value of a choice column; ok is false if the
// column is absent or null (for the opt-in column null means Not Allowed).
func (r *BookableResource) Choice(column string) (v int, ok bool, err error) {
	raw, present := r.Raw[column]
	if !present || isNull(raw) {
		return 0, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, false, fmt.Errorf("column %s: %w", column, err)
	}
	return v, true, nil
}

// Text returns a text column; ok is false if absent or null.
func (r *BookableResource) Text(column string) (s string, ok bool, err error) {
	raw, present := r.Raw[column]
	if !present || isNull(raw) {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, fmt.Errorf("column %s: %w", column, err)
	}
	return s, true, nil
}

// IsUserResource reports whether the resource can map to a mailbox:
// resourcetype User with a linked systemuser [inference, reference §1.1].
func (r *BookableResource) IsUserResource() bool {
	return r.ResourceType == ResourceTypeUser && r.UserID != ""
}

// BookingHeader is a bookableresourcebookingheader row (the summary a
// booking's Header lookup points to).
type BookingHeader struct {
	ID            string    `json:"bookableresourcebookingheaderid"`
	Name          string    `json:"name"`
	StartTime     time.Time `json:"starttime"`
	EndTime       time.Time `json:"endtime"`
	Duration      int       `json:"duration"`
	StateCode     int       `json:"statecode"`
	StatusCode    int       `json:"statuscode"`
	VersionNumber Version   `json:"versionnumber"`
	ModifiedOn    time.Time `json:"modifiedon"`
	ETag          string    `json:"@odata.etag"`
}

// SystemUser is a systemuser row.
type SystemUser struct {
	ID                   string `json:"systemuserid"`
	FullName             string `json:"fullname"`
	InternalEmailAddress string `json:"internalemailaddress"`
	DomainName           string `json:"domainname"`
	// AADObjectID is the Entra object id, usable as the Graph /users/{id} key.
	AADObjectID string `json:"azureactivedirectoryobjectid"`
	IsDisabled  bool   `json:"isdisabled"`
}

// SystemUserSelect lists the columns of SystemUser.
var SystemUserSelect = []string{"systemuserid", "fullname", "internalemailaddress", "domainname", "azureactivedirectoryobjectid", "isdisabled"}

// BookingStatus is a bookingstatus row. Ids differ per environment; resolve
// by Status / FieldServiceStatus at runtime.
type BookingStatus struct {
	ID                 string `json:"bookingstatusid"`
	Name               string `json:"name"`
	Status             int    `json:"status"`                   // 1 Proposed, 2 Committed, 3 Canceled
	FieldServiceStatus *int   `json:"msdyn_fieldservicestatus"` // nil without Field Service or when unset
	StateCode          int    `json:"statecode"`
}

// BookingStatusSelect lists the columns of BookingStatus.
var BookingStatusSelect = []string{"bookingstatusid", "name", "status", "msdyn_fieldservicestatus", "statecode"}

// WorkOrder is an msdyn_workorder row with the service account and primary
// incident type names taken from $expand (see WorkOrderExpand) or, failing
// that, from the FormattedValue annotation on the lookup.
type WorkOrder struct {
	ID                         string   `json:"msdyn_workorderid"`
	Number                     string   `json:"msdyn_name"` // "Work Order Number"
	ServiceAccountID           string   `json:"_msdyn_serviceaccount_value"`
	PrimaryIncidentTypeID      string   `json:"_msdyn_primaryincidenttype_value"`
	AddressName                string   `json:"msdyn_addressname"`
	Address1                   string   `json:"msdyn_address1"`
	Address2                   string   `json:"msdyn_address2"`
	Address3                   string   `json:"msdyn_address3"`
	City                       string   `json:"msdyn_city"`
	StateOrProvince            string   `json:"msdyn_stateorprovince"`
	PostalCode                 string   `json:"msdyn_postalcode"`
	Country                    string   `json:"msdyn_country"`
	Latitude                   *float64 `json:"msdyn_latitude"`
	Longitude                  *float64 `json:"msdyn_longitude"`
	Instructions               string   `json:"msdyn_instructions"`
	PrimaryIncidentDescription string   `json:"msdyn_primaryincidentdescription"`
	Summary                    string   `json:"msdyn_workordersummary"`
	SystemStatus               *int     `json:"msdyn_systemstatus"`

	ServiceAccount *struct {
		Name string `json:"name"`
	} `json:"msdyn_serviceaccount"`
	PrimaryIncidentType *struct {
		Name string `json:"msdyn_name"`
	} `json:"msdyn_primaryincidenttype"`

	ServiceAccountFormatted      string `json:"_msdyn_serviceaccount_value@OData.Community.Display.V1.FormattedValue"`
	PrimaryIncidentTypeFormatted string `json:"_msdyn_primaryincidenttype_value@OData.Community.Display.V1.FormattedValue"`
}

// WorkOrderSelect and WorkOrderExpand read a WorkOrder. The navigation names
// msdyn_serviceaccount / msdyn_primaryincidenttype are not in the reference
// [unverified]; they follow the Field Service convention of naming the
// navigation property after the lookup column.
var (
	WorkOrderSelect = []string{
		"msdyn_workorderid", "msdyn_name", "_msdyn_serviceaccount_value", "_msdyn_primaryincidenttype_value",
		"msdyn_addressname", "msdyn_address1", "msdyn_address2", "msdyn_address3", "msdyn_city",
		"msdyn_stateorprovince", "msdyn_postalcode", "msdyn_country", "msdyn_latitude", "msdyn_longitude",
		"msdyn_instructions", "msdyn_primaryincidentdescription", "msdyn_workordersummary", "msdyn_systemstatus",
	}
	WorkOrderExpand = []Expand{
		{Nav: "msdyn_serviceaccount", Select: []string{"name"}},
		{Nav: "msdyn_primaryincidenttype", Select: []string{"msdyn_name"}},
	}
)

// ServiceAccountName is the account's name from $expand or the annotation.
func (w *WorkOrder) ServiceAccountName() string {
	if w.ServiceAccount != nil && w.ServiceAccount.Name != "" {
		return w.ServiceAccount.Name
	}
	return w.ServiceAccountFormatted
}

// PrimaryIncidentTypeName is the incident type's name from $expand or the annotation.
func (w *WorkOrder) PrimaryIncidentTypeName() string {
	if w.PrimaryIncidentType != nil && w.PrimaryIncidentType.Name != "" {
		return w.PrimaryIncidentType.Name
	}
	return w.PrimaryIncidentTypeFormatted
}

// WhoAmIResponse is the result of the WhoAmI function.
type WhoAmIResponse struct {
	BusinessUnitID string `json:"BusinessUnitId"`
	UserID         string `json:"UserId"`
	OrganizationID string `json:"OrganizationId"`
}

// decodeRow unmarshals data into the typed struct and keeps all properties in raw.
func decodeRow(data []byte, typed any, raw *map[string]json.RawMessage) error {
	if err := json.Unmarshal(data, typed); err != nil {
		return err
	}
	return json.Unmarshal(data, raw)
}

func expanded(raw map[string]json.RawMessage, nav string, out any) (bool, error) {
	v, ok := raw[nav]
	if !ok || isNull(v) {
		return false, nil
	}
	if err := json.Unmarshal(v, out); err != nil {
		return false, fmt.Errorf("expanded %s: %w", nav, err)
	}
	return true, nil
}

func isNull(b json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }
