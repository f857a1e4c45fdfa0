package dataverse

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

func TestNavigationNamesFromMetadata(t *testing.T) {
	h := newHarness(t, "empty", Options{})
	m := h.json(h.do("GET", "/EntityDefinitions(LogicalName='bookableresourcebooking')/ManyToOneRelationships?$select=ReferencingAttribute,ReferencingEntityNavigationPropertyName,ReferencedEntity", nil), 200)
	got := map[string]string{}
	for _, r := range values(m) {
		got[r["ReferencingAttribute"].(string)] = r["ReferencingEntityNavigationPropertyName"].(string) + "→" + r["ReferencedEntity"].(string)
		if _, ok := r["SchemaName"]; ok {
			t.Fatalf("$select ignored: %v", r)
		}
	}
	want := map[string]string{
		"resource": "Resource→bookableresource", "bookingstatus": "BookingStatus→bookingstatus", "header": "Header→bookableresourcebookingheader",
		"msdyn_workorder": "msdyn_workorder→msdyn_workorder", "msdyn_resourcerequirement": "msdyn_ResourceRequirement→msdyn_resourcerequirement",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	// Every advertised navigation property works in @odata.bind and $expand.
	for _, r := range values(m) {
		nav := r["ReferencingEntityNavigationPropertyName"].(string)
		if rec := h.do("GET", "/bookableresourcebookings?$expand="+nav, nil); rec.Code != 200 {
			t.Errorf("$expand=%s: %d %s", nav, rec.Code, rec.Body.String())
		}
	}
}

func TestCreateCustomColumns(t *testing.T) {
	h := newHarness(t, "demo", Options{FreshOrg: true})
	res := ResourceID(tenant.Technicians()[0].ID)
	if rec := h.do("PATCH", "/bookableresources("+res+")", `{"bsync_outlooksync":100000000}`); rec.Code != 400 {
		t.Fatalf("column exists before setup: %d", rec.Code)
	}
	picklist := `{
	  "@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
	  "AttributeType": "Picklist", "AttributeTypeName": {"Value": "PicklistType"},
	  "SchemaName": "bsync_OutlookSync",
	  "DisplayName": {"@odata.type": "Microsoft.Dynamics.CRM.Label", "LocalizedLabels": [{"@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", "Label": "Outlook Sync", "LanguageCode": 1033}]},
	  "RequiredLevel": {"Value": "None", "CanBeChanged": true, "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"},
	  "OptionSet": {"@odata.type": "Microsoft.Dynamics.CRM.OptionSetMetadata", "IsGlobal": false, "OptionSetType": "Picklist",
	    "Options": [{"Value": 100000000, "Label": {"LocalizedLabels": [{"Label": "Allowed", "LanguageCode": 1033}]}},
	                {"Value": 100000001, "Label": {"LocalizedLabels": [{"Label": "Not Allowed", "LanguageCode": 1033}]}}]}}`
	text := `{"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", "AttributeType": "String", "SchemaName": "bsync_OutlookSyncStatus",
	  "MaxLength": 400, "FormatName": {"Value": "Text"},
	  "DisplayName": {"LocalizedLabels": [{"Label": "Outlook Sync Status", "LanguageCode": 1033}]}}`
	for _, body := range []string{picklist, text} {
		rec := h.do("POST", "/EntityDefinitions(LogicalName='bookableresource')/Attributes", body, "MSCRM.SolutionUniqueName: bookingsync")
		if rec.Code != http.StatusNoContent || !strings.Contains(rec.Header().Get("OData-EntityId"), "/EntityDefinitions(LogicalName='bookableresource')/Attributes(") {
			t.Fatalf("create attribute: %d %s %v", rec.Code, rec.Body.String(), rec.Header())
		}
	}
	if rec := h.do("POST", "/EntityDefinitions(LogicalName='bookableresource')/Attributes", text); rec.Code != 400 {
		t.Fatalf("duplicate attribute: %d", rec.Code)
	}
	m := h.json(h.do("GET", "/EntityDefinitions(LogicalName='bookableresource')/Attributes(LogicalName='bsync_outlooksync')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet", nil), 200)
	opts := m["OptionSet"].(map[string]any)["Options"].([]any)
	if len(opts) != 2 || opts[1].(map[string]any)["Value"] != float64(100000001) {
		t.Fatalf("option set %v", m)
	}
	if rec := h.do("PATCH", "/bookableresources("+res+")", `{"bsync_outlooksync":100000000,"bsync_outlooksyncstatus":"Subscribed"}`); rec.Code != 204 {
		t.Fatalf("write custom columns: %d %s", rec.Code, rec.Body.String())
	}
	row := h.json(h.do("GET", "/bookableresources("+res+")?$select=bsync_outlooksync,bsync_outlooksyncstatus", nil, `Prefer: odata.include-annotations="OData.Community.Display.V1.FormattedValue"`), 200)
	if row["bsync_outlooksync@OData.Community.Display.V1.FormattedValue"] != "Allowed" {
		t.Fatalf("row %v", row)
	}
	if rec := h.do("PATCH", "/bookableresources("+res+")", map[string]any{"bsync_outlooksyncstatus": strings.Repeat("s", 401)}); rec.Code != 400 {
		t.Fatalf("MaxLength not enforced: %d", rec.Code)
	}
}

func TestDemoSeedOptIn(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	rows := values(h.json(h.do("GET", "/bookableresources?$select=name,resourcetype,bsync_outlooksync,_userid_value,timezone", nil), 200))
	if len(rows) != len(tenant.Technicians()) {
		t.Fatalf("%d resources", len(rows))
	}
	for _, r := range rows {
		if r["bsync_outlooksync"] != float64(100000001) || r["resourcetype"] != float64(3) || r["_userid_value"] == nil {
			t.Fatalf("resource %v", r)
		}
	}
	// systemuser.azureactivedirectoryobjectid is the Graph user id.
	tech := tenant.Technicians()[1]
	su := h.json(h.do("GET", "/systemusers("+SystemUserID(tech.ID)+")?$select=azureactivedirectoryobjectid,internalemailaddress", nil), 200)
	if su["azureactivedirectoryobjectid"] != tech.ID || su["internalemailaddress"] != tech.Mail {
		t.Fatalf("systemuser %v", su)
	}
	tz := values(h.json(h.do("GET", "/timezonedefinitions?$select=standardname&$filter=timezonecode eq 35", nil), 200))
	if len(tz) != 1 || tz[0]["standardname"] != "Eastern Standard Time" {
		t.Fatalf("timezones %v", tz)
	}
}
