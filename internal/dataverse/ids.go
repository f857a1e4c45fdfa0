package dataverse

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"
)

// ErrInvalidID is returned when a row id is not a canonical GUID.
var ErrInvalidID = errors.New("dataverse: id is not a GUID")

// ErrInvalidName is returned for an entity set, column or navigation
// property name that is not a plain OData identifier.
var ErrInvalidName = errors.New("dataverse: invalid identifier")

// ParseID validates a row id and returns it in the lower-case canonical form
// Dataverse uses (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx). Braced, URN and
// hyphen-less forms are rejected so that an id can be placed unquoted in a
// URL path or $filter without any chance of changing its meaning.
func ParseID(s string) (string, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("%w: %q", ErrInvalidID, s)
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q", ErrInvalidID, s)
	}
	return u.String(), nil
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkIdent validates a single OData identifier (entity set, column,
// navigation property).
func checkIdent(s string) error {
	if !identRE.MatchString(s) {
		return fmt.Errorf("%w: %q", ErrInvalidName, s)
	}
	return nil
}

// checkPath validates a property path such as "BookingStatus/status".
func checkPath(s string) error {
	for _, p := range strings.Split(s, "/") {
		if err := checkIdent(p); err != nil {
			return fmt.Errorf("%w: %q", ErrInvalidName, s)
		}
	}
	return nil
}

// rowPath returns "entityset(id)" after validating both parts.
func rowPath(entitySet, id string) (string, error) {
	if err := checkIdent(entitySet); err != nil {
		return "", err
	}
	gid, err := ParseID(id)
	if err != nil {
		return "", err
	}
	return entitySet + "(" + gid + ")", nil
}

// Bind returns the key and value that set a lookup column when creating or
// updating a row: Bind("Resource", "bookableresources", id) →
// ("Resource@odata.bind", "/bookableresources(<id>)"). Navigation property
// names are case-sensitive; use the Nav* constants or, better, the names
// learned at start-up from [Client.NavigationProperties].
func Bind(navProp, entitySet, id string) (key, value string, err error) {
	if err := checkIdent(navProp); err != nil {
		return "", "", fmt.Errorf("bind: %w", err)
	}
	p, err := rowPath(entitySet, id)
	if err != nil {
		return "", "", fmt.Errorf("bind %s: %w", navProp, err)
	}
	return navProp + "@odata.bind", "/" + p, nil
}

// Body is a JSON object sent to Create/Update. Only put the columns you mean
// to change in it: unchanged values still fire plug-ins and audit
// (reference §2).
type Body map[string]any

// Bind sets a lookup through its navigation property (see [Bind]).
func (b Body) Bind(navProp, entitySet, id string) error {
	k, v, err := Bind(navProp, entitySet, id)
	if err != nil {
		return err
	}
	b[k] = v
	return nil
}

// Unbind clears a lookup on update by binding it to null.
func (b Body) Unbind(navProp string) error {
	if err := checkIdent(navProp); err != nil {
		return fmt.Errorf("unbind: %w", err)
	}
	b[navProp+"@odata.bind"] = nil
	return nil
}

// Navigation property names for single-valued lookups, as given by the
// current Microsoft reference (dataverse-api.md §1.3/§1.6). The casing is
// marked as uncertain there (an older generated dump uses "resource",
// "bookingstatus", "msdyn_WorkOrder"); resolve them at start-up with
// [Client.NavigationProperties] and treat these as defaults only.
const (
	NavBookingResource            = "Resource"                  // bookableresourcebooking.resource → bookableresources
	NavBookingStatus              = "BookingStatus"             // bookableresourcebooking.bookingstatus → bookingstatuses
	NavBookingHeader              = "Header"                    // bookableresourcebooking.header → bookableresourcebookingheaders
	NavBookingWorkOrder           = "msdyn_workorder"           // bookableresourcebooking.msdyn_workorder → msdyn_workorders
	NavBookingResourceRequirement = "msdyn_ResourceRequirement" // bookableresourcebooking.msdyn_resourcerequirement
	NavResourceUser               = "UserId"                    // bookableresource.userid → systemusers
)

// Entity set names.
const (
	SetBookings          = "bookableresourcebookings"
	SetResources         = "bookableresources"
	SetBookingHeaders    = "bookableresourcebookingheaders"
	SetBookingStatuses   = "bookingstatuses"
	SetSystemUsers       = "systemusers"
	SetWorkOrders        = "msdyn_workorders"
	SetServiceEndpoints  = "serviceendpoints"
	SetSteps             = "sdkmessageprocessingsteps"
	SetStepImages        = "sdkmessageprocessingstepimages"
	SetSdkMessages       = "sdkmessages"
	SetSdkMessageFilters = "sdkmessagefilters"
	SetOrganizations     = "organizations"
)
