package dataverse

import (
	"sort"
	"strings"

	"github.com/google/uuid"
)

// kind is a column's Dataverse attribute type.
type kind int

const (
	kGUID     kind = iota // Uniqueidentifier (primary key)
	kString               // String
	kMemo                 // Memo (multi-line text)
	kInt                  // Integer
	kBigInt               // BigInt (versionnumber)
	kDouble               // Double
	kBool                 // Boolean
	kDateTime             // DateTime (stored and served as UTC)
	kChoice               // Picklist
	kState                // State (statecode)
	kStatus               // Status (statuscode)
	kLookup               // Lookup
	kOwner                // Owner (ownerid)
)

func (k kind) isChoice() bool { return k == kChoice || k == kState || k == kStatus }
func (k kind) isLookup() bool { return k == kLookup || k == kOwner }

// attributeType is the AttributeMetadata.AttributeType name.
func (k kind) attributeType() string {
	return [...]string{"Uniqueidentifier", "String", "Memo", "Integer", "BigInt", "Double", "Boolean",
		"DateTime", "Picklist", "State", "Status", "Lookup", "Owner"}[k]
}

// metadataType is the derived AttributeMetadata type in the Microsoft.Dynamics.CRM namespace.
func (k kind) metadataType() string {
	return [...]string{"UniqueIdentifierAttributeMetadata", "StringAttributeMetadata", "MemoAttributeMetadata",
		"IntegerAttributeMetadata", "BigIntAttributeMetadata", "DoubleAttributeMetadata", "BooleanAttributeMetadata",
		"DateTimeAttributeMetadata", "PicklistAttributeMetadata", "StateAttributeMetadata", "StatusAttributeMetadata",
		"LookupAttributeMetadata", "LookupAttributeMetadata"}[k]
}

type option struct {
	Value int
	Label string
	State int // for status options: the statecode it belongs to
}

// target is one entity a lookup can point to, with the navigation property
// (ReferencingEntityNavigationPropertyName) clients bind through.
type target struct {
	Entity       string
	Nav          string
	Relationship string
}

type column struct {
	Name      string // logical name
	Schema    string
	Display   string
	Kind      kind
	MaxLength int
	Min, Max  int64
	Options   []option
	Targets   []target
	Required  string // None, ApplicationRequired, SystemRequired
	ReadOnly  bool   // not valid for create/update (system columns); writes are ignored
	Hidden    bool   // IsValidForRead false (serviceendpoint.authvalue)
	Custom    bool
	Default   any
	MetaID    string
}

func (c *column) option(v int) (option, bool) {
	for _, o := range c.Options {
		if o.Value == v {
			return o, true
		}
	}
	return option{}, false
}

// valueName is the Web API property name of the column: _x_value for lookups.
func (c *column) valueName() string {
	if c.Kind.isLookup() {
		return "_" + c.Name + "_value"
	}
	return c.Name
}

type table struct {
	Logical     string
	Set         string
	Schema      string
	Display     string
	PrimaryID   string
	PrimaryName string
	OTC         int
	MetaID      string
	UserOwned   bool
	// ChangeTracking is EntityMetadata.ChangeTrackingEnabled; it can only be
	// switched on.
	ChangeTracking    bool
	CanChangeTracking bool
	Custom            bool

	Columns []*column
	byName  map[string]*column
}

func (t *table) col(name string) *column { return t.byName[name] }

// byValueName resolves a Web API property name (a column, or _x_value for a lookup).
func (t *table) byValueName(name string) *column {
	if strings.HasPrefix(name, "_") && strings.HasSuffix(name, "_value") {
		c := t.byName[strings.TrimSuffix(strings.TrimPrefix(name, "_"), "_value")]
		if c != nil && c.Kind.isLookup() {
			return c
		}
		return nil
	}
	c := t.byName[name]
	if c == nil || c.Kind.isLookup() {
		return nil
	}
	return c
}

// navigation finds the lookup column and target entity for a single-valued
// navigation property. Names are case-sensitive, as in Dataverse.
func (t *table) navigation(nav string) (*column, target, bool) {
	for _, c := range t.Columns {
		for _, tg := range c.Targets {
			if tg.Nav == nav {
				return c, tg, true
			}
		}
	}
	return nil, target{}, false
}

func (t *table) addColumn(c *column) {
	if c.MetaID == "" {
		c.MetaID = stableID("attribute", t.Logical, c.Name)
	}
	if c.Required == "" {
		c.Required = "None"
	}
	t.Columns = append(t.Columns, c)
	t.byName[c.Name] = c
}

func (t *table) clone() *table {
	n := *t
	n.Columns = make([]*column, len(t.Columns))
	n.byName = make(map[string]*column, len(t.Columns))
	for i, c := range t.Columns {
		cc := *c
		n.Columns[i] = &cc
		n.byName[cc.Name] = &cc
	}
	return &n
}

// namespace for deterministic ids, so seeded rows and metadata keep their
// ids across resets and docs/tests can name them.
var idSpace = uuid.MustParse("3c0ac2a1-8a8e-4b77-9f5e-2f63d1c0b5a7")

func stableID(parts ...string) string {
	return uuid.NewSHA1(idSpace, []byte(strings.Join(parts, "\x00"))).String()
}

// Column constructors keep the table definitions below readable.
func guidCol(name string) *column { return &column{Name: name, Kind: kGUID, ReadOnly: false} }
func str(name string, max int) *column {
	return &column{Name: name, Kind: kString, MaxLength: max}
}
func memo(name string, max int) *column { return &column{Name: name, Kind: kMemo, MaxLength: max} }
func integer(name string, min, max int64) *column {
	return &column{Name: name, Kind: kInt, Min: min, Max: max}
}
func double(name string) *column   { return &column{Name: name, Kind: kDouble} }
func boolean(name string) *column  { return &column{Name: name, Kind: kBool} }
func datetime(name string) *column { return &column{Name: name, Kind: kDateTime} }
func choice(name string, def any, opts ...option) *column {
	return &column{Name: name, Kind: kChoice, Options: opts, Default: def}
}
func lookup(name string, targets ...target) *column {
	return &column{Name: name, Kind: kLookup, Targets: targets}
}
func req(c *column) *column { c.Required = "SystemRequired"; return c }
func ro(c *column) *column  { c.ReadOnly = true; return c }

func opts(pairs ...any) []option {
	var out []option
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, option{Value: pairs[i].(int), Label: pairs[i+1].(string)})
	}
	return out
}

// Option values, from shared/reference/dataverse-api.md.
var (
	resourceTypeOptions = opts(1, "Generic", 2, "Contact", 3, "User", 4, "Equipment", 5, "Account", 6, "Crew", 7, "Facility", 8, "Pool")
	bookingTypeOptions  = opts(1, "Solid", 2, "Liquid")
	bookingStatusStatus = opts(1, "Proposed", 2, "Committed", 3, "Canceled")
	fieldServiceStatus  = opts(690970000, "Scheduled", 690970001, "Traveling", 690970002, "On Break",
		690970003, "In Progress", 690970004, "Completed", 690970005, "Canceled")
	bookingMethodOptions = opts(192350000, "Optimization", 690970001, "Schedule Board", 690970002, "Mobile",
		690970003, "Manual", 690970004, "Schedule Assistant", 690970005, "System - Agreement Schedule")
	woSystemStatus = opts(690970000, "Unscheduled", 690970001, "Scheduled", 690970002, "In Progress",
		690970003, "Completed", 690970004, "Posted", 690970005, "Canceled")
)

// Field Service statuses by value, used by the seed.
const (
	fsScheduled  = 690970000
	fsTraveling  = 690970001
	fsOnBreak    = 690970002
	fsInProgress = 690970003
	fsCompleted  = 690970004
	fsCanceled   = 690970005
)

// newTable starts a table with the columns every table has: the primary
// key, state/status, version and audit columns and, for user-owned
// tables, ownerid.
func newTable(logical, set, schema, display string, otc int, userOwned bool, primaryName string) *table {
	t := &table{Logical: logical, Set: set, Schema: schema, Display: display, PrimaryID: logical + "id",
		PrimaryName: primaryName, OTC: otc, UserOwned: userOwned, byName: map[string]*column{},
		MetaID: stableID("entity", logical), CanChangeTracking: true}
	t.addColumn(guidCol(logical + "id"))
	sysUser := func(nav string) target {
		return target{Entity: "systemuser", Nav: nav, Relationship: "lk_" + logical + "_" + nav}
	}
	t.addColumn(ro(&column{Name: "createdon", Kind: kDateTime}))
	t.addColumn(ro(lookup("createdby", sysUser("createdby"))))
	t.addColumn(ro(&column{Name: "modifiedon", Kind: kDateTime}))
	t.addColumn(ro(lookup("modifiedby", sysUser("modifiedby"))))
	t.addColumn(ro(lookup("modifiedonbehalfby", sysUser("modifiedonbehalfby"))))
	t.addColumn(ro(&column{Name: "versionnumber", Kind: kBigInt}))
	t.addColumn(&column{Name: "statecode", Kind: kState, Options: []option{{0, "Active", 0}, {1, "Inactive", 1}}, Default: 0, Required: "SystemRequired"})
	t.addColumn(&column{Name: "statuscode", Kind: kStatus, Options: []option{{1, "Active", 0}, {2, "Inactive", 1}}, Default: 1})
	if userOwned {
		t.addColumn(&column{Name: "ownerid", Kind: kOwner, Targets: []target{{Entity: "systemuser", Nav: "ownerid", Relationship: "owner_" + logical}}, Required: "SystemRequired"})
	}
	return t
}

// CustomColumns names the two columns bookingsync adds to bookableresource
// for the per-resource opt-in (reference appendix).
type CustomColumns struct {
	OptIn         string // Choice; default bsync_outlooksync
	OptInStatus   string // Single line of text; default bsync_outlooksyncstatus
	Allowed       int    // default 100000000
	NotAllowed    int    // default 100000001
	StatusMaxSize int    // default 400
}

func (c *CustomColumns) fill() {
	if c.OptIn == "" {
		c.OptIn = "bsync_outlooksync"
	}
	if c.OptInStatus == "" {
		c.OptInStatus = "bsync_outlooksyncstatus"
	}
	if c.Allowed == 0 {
		c.Allowed = 100000000
	}
	if c.NotAllowed == 0 {
		c.NotAllowed = 100000001
	}
	if c.StatusMaxSize == 0 {
		c.StatusMaxSize = 400
	}
}

func (c CustomColumns) columns() []*column {
	return []*column{
		{Name: c.OptIn, Schema: schemaName(c.OptIn), Display: "Outlook Sync", Kind: kChoice, Custom: true,
			Options: []option{{Value: c.Allowed, Label: "Allowed"}, {Value: c.NotAllowed, Label: "Not Allowed"}}},
		{Name: c.OptInStatus, Schema: schemaName(c.OptInStatus), Display: "Outlook Sync Status", Kind: kString, Custom: true, MaxLength: c.StatusMaxSize},
	}
}

// schemaName guesses a SchemaName for a logical name (prefix_Rest).
func schemaName(logical string) string {
	p, rest, ok := strings.Cut(logical, "_")
	if !ok || rest == "" {
		return strings.ToUpper(logical[:1]) + logical[1:]
	}
	return p + "_" + strings.ToUpper(rest[:1]) + rest[1:]
}

// buildSchema returns fresh table definitions. Names follow
// shared/reference/dataverse-api.md §1; navigation property names are the
// current reference's (Resource, BookingStatus, Header, msdyn_workorder,
// msdyn_ResourceRequirement, UserId).
func buildSchema(cc CustomColumns, withCustom bool) map[string]*table {
	tables := map[string]*table{}
	add := func(t *table) { tables[t.Logical] = t }

	su := newTable("systemuser", "systemusers", "SystemUser", "User", 8, false, "fullname")
	su.addColumn(str("fullname", 200))
	su.addColumn(str("firstname", 64))
	su.addColumn(str("lastname", 64))
	su.addColumn(req(str("internalemailaddress", 100)))
	su.addColumn(req(str("domainname", 1024)))
	su.addColumn(&column{Name: "azureactivedirectoryobjectid", Kind: kGUID})
	su.addColumn(&column{Name: "applicationid", Kind: kGUID})
	su.addColumn(boolean("isdisabled"))
	su.addColumn(choice("accessmode", 0, opts(0, "Read-Write", 1, "Administrative", 2, "Read", 3, "Support User", 4, "Non-interactive", 5, "Delegated Admin")...))
	su.addColumn(integer("timezonecode", -1500, 1500))
	add(su)

	acc := newTable("account", "accounts", "Account", "Account", 1, true, "name")
	acc.addColumn(str("name", 160))
	acc.addColumn(str("accountnumber", 20))
	acc.addColumn(str("telephone1", 50))
	acc.addColumn(str("fax", 50))
	acc.addColumn(str("address1_line1", 250))
	acc.addColumn(str("address1_city", 80))
	acc.addColumn(str("address1_postalcode", 20))
	acc.addColumn(str("address1_country", 80))
	// The columns of the documentation's create/update examples, so they can
	// be replayed verbatim (revenue, a Money column with its currency, is not
	// modelled).
	acc.addColumn(memo("description", 2000))
	acc.addColumn(boolean("creditonhold"))
	acc.addColumn(double("address1_latitude"))
	acc.addColumn(choice("accountcategorycode", nil, opts(1, "Preferred Customer", 2, "Standard")...))
	acc.addColumn(lookup("primarycontactid", target{Entity: "contact", Nav: "primarycontactid", Relationship: "account_primary_contact"}))
	add(acc)

	// contact exists so the documentation's own @odata.bind example
	// (account.primarycontactid) can be replayed verbatim.
	con := newTable("contact", "contacts", "Contact", "Contact", 2, true, "fullname")
	con.addColumn(str("fullname", 160))
	con.addColumn(str("firstname", 50))
	con.addColumn(str("lastname", 50))
	con.addColumn(str("emailaddress1", 100))
	add(con)

	it := newTable("msdyn_incidenttype", "msdyn_incidenttypes", "msdyn_incidenttype", "Incident Type", 10400, false, "msdyn_name")
	it.addColumn(str("msdyn_name", 100))
	it.addColumn(memo("msdyn_description", 2000))
	it.addColumn(integer("msdyn_estimatedduration", 0, 2147483647))
	add(it)

	wo := newTable("msdyn_workorder", "msdyn_workorders", "msdyn_workorder", "Work Order", 10401, true, "msdyn_name")
	wo.addColumn(str("msdyn_name", 100))
	wo.addColumn(lookup("msdyn_serviceaccount", target{Entity: "account", Nav: "msdyn_serviceaccount", Relationship: "msdyn_account_msdyn_workorder_ServiceAccount"}))
	for _, n := range []string{"msdyn_address1", "msdyn_address2", "msdyn_address3", "msdyn_addressname"} {
		wo.addColumn(str(n, 250))
	}
	wo.addColumn(str("msdyn_city", 80))
	wo.addColumn(str("msdyn_stateorprovince", 50))
	wo.addColumn(str("msdyn_postalcode", 20))
	wo.addColumn(str("msdyn_country", 80))
	wo.addColumn(double("msdyn_latitude"))
	wo.addColumn(double("msdyn_longitude"))
	wo.addColumn(lookup("msdyn_primaryincidenttype", target{Entity: "msdyn_incidenttype", Nav: "msdyn_primaryincidenttype", Relationship: "msdyn_msdyn_incidenttype_msdyn_workorder_PrimaryIncidentType"}))
	wo.addColumn(memo("msdyn_primaryincidentdescription", 8000))
	wo.addColumn(memo("msdyn_instructions", 8000))
	wo.addColumn(memo("msdyn_workordersummary", 8000))
	wo.addColumn(choice("msdyn_systemstatus", 690970000, woSystemStatus...))
	add(wo)

	bs := newTable("bookingstatus", "bookingstatuses", "BookingStatus", "Booking Status", 1154, true, "name")
	bs.addColumn(req(str("name", 100)))
	bs.addColumn(str("description", 100))
	bs.addColumn(req(choice("status", 1, bookingStatusStatus...)))
	bs.addColumn(choice("msdyn_fieldservicestatus", nil, fieldServiceStatus...))
	bs.addColumn(str("msdyn_statuscolor", 7))
	add(bs)

	br := newTable("bookableresource", "bookableresources", "BookableResource", "Bookable Resource", 1150, true, "name")
	br.addColumn(req(str("name", 100)))
	br.addColumn(req(choice("resourcetype", 3, resourceTypeOptions...)))
	br.addColumn(lookup("userid", target{Entity: "systemuser", Nav: "UserId", Relationship: "systemuser_bookableresource_UserId"}))
	br.addColumn(lookup("accountid", target{Entity: "account", Nav: "AccountId", Relationship: "account_bookableresource_AccountId"}))
	br.addColumn(lookup("contactid", target{Entity: "contact", Nav: "ContactId", Relationship: "contact_bookableresource_ContactId"}))
	tz := req(integer("timezone", -1500, 1500))
	tz.Default = 92 // UTC
	br.addColumn(tz)
	if withCustom {
		for _, c := range cc.columns() {
			br.addColumn(c)
		}
	}
	add(br)

	hd := newTable("bookableresourcebookingheader", "bookableresourcebookingheaders", "BookableResourceBookingHeader", "Bookable Resource Booking Header", 1146, true, "name")
	hd.addColumn(str("name", 100))
	hd.addColumn(datetime("starttime"))
	hd.addColumn(datetime("endtime"))
	hd.addColumn(integer("duration", 0, 2147483647))
	add(hd)

	bk := newTable("bookableresourcebooking", "bookableresourcebookings", "BookableResourceBooking", "Bookable Resource Booking", 1145, true, "name")
	bk.addColumn(str("name", 100))
	bk.addColumn(req(datetime("starttime")))
	bk.addColumn(req(datetime("endtime")))
	bk.addColumn(req(integer("duration", 0, 2147483647)))
	bk.addColumn(req(choice("bookingtype", 1, bookingTypeOptions...)))
	bk.addColumn(req(lookup("resource", target{Entity: "bookableresource", Nav: "Resource", Relationship: "bookableresource_bookableresourcebooking_Resource"})))
	bk.addColumn(req(lookup("bookingstatus", target{Entity: "bookingstatus", Nav: "BookingStatus", Relationship: "bookingstatus_bookableresourcebooking_BookingStatus"})))
	bk.addColumn(lookup("header", target{Entity: "bookableresourcebookingheader", Nav: "Header", Relationship: "bookableresourcebookingheader_bookableresourcebooking_Header"}))
	bk.addColumn(lookup("msdyn_workorder", target{Entity: "msdyn_workorder", Nav: "msdyn_workorder", Relationship: "msdyn_msdyn_workorder_bookableresourcebooking_WorkOrder"}))
	bk.addColumn(lookup("msdyn_resourcerequirement", target{Entity: "msdyn_resourcerequirement", Nav: "msdyn_ResourceRequirement", Relationship: "msdyn_msdyn_resourcerequirement_bookableresourcebooking_ResourceRequirement"}))
	bk.addColumn(choice("msdyn_bookingmethod", 690970003, bookingMethodOptions...))
	bk.addColumn(str("msdyn_globalobjectid", 100))
	add(bk)

	// msdyn_resourcerequirement exists only as a lookup target (binds to it
	// are checked against its rows); the emulator seeds none.
	rr := newTable("msdyn_resourcerequirement", "msdyn_resourcerequirements", "msdyn_resourcerequirement", "Resource Requirement", 10402, true, "msdyn_name")
	rr.addColumn(str("msdyn_name", 100))
	add(rr)

	tzd := newTable("timezonedefinition", "timezonedefinitions", "TimeZoneDefinition", "Time Zone Definition", 4810, false, "standardname")
	tzd.addColumn(integer("timezonecode", -1500, 1500))
	tzd.addColumn(str("standardname", 100))
	tzd.addColumn(str("userinterfacename", 100))
	tzd.addColumn(integer("bias", -1500, 1500))
	add(tzd)

	org := newTable("organization", "organizations", "Organization", "Organization", 1019, false, "name")
	org.addColumn(str("name", 160))
	exp := req(integer("expirechangetrackingindays", 0, 365))
	exp.Default = 7
	org.addColumn(exp)
	org.addColumn(boolean("isresourcebookingexchangesyncenabled"))
	add(org)

	se := newTable("serviceendpoint", "serviceendpoints", "ServiceEndpoint", "Service Endpoint", 4618, false, "name")
	se.addColumn(req(str("name", 256)))
	se.addColumn(memo("description", 2000))
	se.addColumn(req(choice("contract", nil, opts(1, "OneWay", 2, "Queue", 3, "Rest", 4, "TwoWay", 5, "Topic", 6, "Queue (Persistent)",
		7, "Event Hub", 8, "Webhook", 9, "Event Grid", 10, "Managed Data Lake", 11, "Container Storage")...)))
	se.addColumn(choice("authtype", nil, opts(0, "Not Specified", 1, "ACS", 2, "SAS Key", 3, "SAS Token", 4, "Webhook Key",
		5, "Http Header", 6, "Http Query String", 7, "Connection String", 8, "Access Key", 9, "Managed Identity")...))
	av := memo("authvalue", 4000)
	av.Hidden = true
	se.addColumn(av)
	se.addColumn(str("url", 2000))
	se.addColumn(choice("messageformat", 1, opts(1, "Binary XML", 2, "Json", 3, "Text XML")...))
	se.addColumn(choice("connectionmode", 1, opts(1, "Normal", 2, "Federated")...))
	se.addColumn(str("namespaceaddress", 255))
	se.addColumn(str("path", 160))
	add(se)

	msg := newTable("sdkmessage", "sdkmessages", "SdkMessage", "Sdk Message", 4606, false, "name")
	msg.addColumn(str("name", 256))
	add(msg)

	mf := newTable("sdkmessagefilter", "sdkmessagefilters", "SdkMessageFilter", "Sdk Message Filter", 4607, false, "name")
	mf.addColumn(str("name", 256))
	mf.addColumn(str("primaryobjecttypecode", 100))
	mf.addColumn(str("secondaryobjecttypecode", 100))
	mf.addColumn(boolean("iscustomprocessingstepallowed"))
	mf.addColumn(lookup("sdkmessageid", target{Entity: "sdkmessage", Nav: "sdkmessageid", Relationship: "sdkmessageid_sdkmessagefilter"}))
	add(mf)

	st := newTable("sdkmessageprocessingstep", "sdkmessageprocessingsteps", "SdkMessageProcessingStep", "Sdk Message Processing Step", 4608, false, "name")
	st.addColumn(req(str("name", 256)))
	st.addColumn(memo("description", 256))
	st.addColumn(memo("configuration", 1073741823))
	st.addColumn(req(choice("stage", nil, opts(5, "Initial Pre-operation (For internal use only)", 10, "Pre-validation", 15, "Internal Pre-operation Before External Plugins (For internal use only)",
		20, "Pre-operation", 25, "Internal Pre-operation After External Plugins (For internal use only)", 30, "Main Operation (For internal use only)",
		35, "Internal Post-operation Before External Plugins (For internal use only)", 40, "Post-operation", 45, "Internal Post-operation After External Plugins (For internal use only)",
		50, "Post-operation (Deprecated)", 55, "Final Post-operation (For internal use only)")...)))
	st.addColumn(req(choice("mode", 0, opts(0, "Synchronous", 1, "Asynchronous")...)))
	st.addColumn(integer("rank", 0, 2147483647))
	st.addColumn(memo("filteringattributes", 100000))
	st.addColumn(boolean("asyncautodelete"))
	st.addColumn(choice("supporteddeployment", 0, opts(0, "Server Only", 1, "Microsoft Dynamics 365 Client for Outlook Only", 2, "Both")...))
	st.Columns[len(st.Columns)-1].Required = "SystemRequired"
	// statecode/statuscode of a step: 0 Enabled / 1 Disabled; 1 Enabled / 2 Disabled.
	st.byName["statecode"].Options = []option{{0, "Enabled", 0}, {1, "Disabled", 1}}
	st.byName["statuscode"].Options = []option{{1, "Enabled", 0}, {2, "Disabled", 1}}
	st.addColumn(req(lookup("sdkmessageid", target{Entity: "sdkmessage", Nav: "sdkmessageid", Relationship: "sdkmessageid_sdkmessageprocessingstep"})))
	st.addColumn(lookup("sdkmessagefilterid", target{Entity: "sdkmessagefilter", Nav: "sdkmessagefilterid", Relationship: "sdkmessagefilterid_sdkmessageprocessingstep"}))
	st.addColumn(lookup("eventhandler", target{Entity: "serviceendpoint", Nav: "eventhandler_serviceendpoint", Relationship: "serviceendpoint_sdkmessageprocessingstep"}))
	add(st)

	im := newTable("sdkmessageprocessingstepimage", "sdkmessageprocessingstepimages", "SdkMessageProcessingStepImage", "Sdk Message Processing Step Image", 4615, false, "name")
	im.addColumn(str("name", 256))
	im.addColumn(str("entityalias", 256))
	im.addColumn(req(choice("imagetype", nil, opts(0, "PreImage", 1, "PostImage", 2, "Both")...)))
	im.addColumn(str("messagepropertyname", 256))
	im.addColumn(memo("attributes", 100000))
	im.addColumn(req(lookup("sdkmessageprocessingstepid", target{Entity: "sdkmessageprocessingstep", Nav: "sdkmessageprocessingstepid", Relationship: "sdkmessageprocessingstepid_sdkmessageprocessingstepimage"})))
	add(im)

	for _, t := range tables {
		for _, c := range t.Columns {
			if c.Schema == "" {
				c.Schema = c.Name
			}
			if c.Display == "" {
				c.Display = c.Name
			}
		}
		// Platform tables are not change-tracking candidates here.
		switch t.Logical {
		case "sdkmessage", "sdkmessagefilter", "sdkmessageprocessingstep", "sdkmessageprocessingstepimage", "serviceendpoint", "organization", "timezonedefinition":
			t.CanChangeTracking = false
		}
	}
	return tables
}

// sortedTables lists tables by logical name for stable metadata output.
func sortedTables(m map[string]*table) []*table {
	out := make([]*table, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Logical < out[j].Logical })
	return out
}
