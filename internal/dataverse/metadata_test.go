package dataverse

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestEntityDefinitionNavigationProperties(t *testing.T) {
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, 200, map[string]any{
			"MetadataId": gid, "LogicalName": "bookableresourcebooking", "EntitySetName": "bookableresourcebookings",
			"PrimaryIdAttribute": "bookableresourcebookingid", "ChangeTrackingEnabled": true,
			"Attributes": []any{map[string]any{"LogicalName": "resource", "AttributeType": "Lookup"}, map[string]any{"LogicalName": "bookingtype", "AttributeType": "Picklist"}},
			"ManyToOneRelationships": []any{
				map[string]any{"SchemaName": "bookableresource_bookableresourcebooking_Resource", "ReferencingAttribute": "resource", "ReferencedEntity": "bookableresource", "ReferencingEntityNavigationPropertyName": "Resource"},
				map[string]any{"SchemaName": "bookingstatus_bookableresourcebooking_BookingStatus", "ReferencingAttribute": "bookingstatus", "ReferencedEntity": "bookingstatus", "ReferencingEntityNavigationPropertyName": "BookingStatus"},
				map[string]any{"SchemaName": "msdyn_msdyn_workorder_bookableresourcebooking_WorkOrder", "ReferencingAttribute": "msdyn_workorder", "ReferencedEntity": "msdyn_workorder", "ReferencingEntityNavigationPropertyName": "msdyn_WorkOrder"},
			},
		})
	})
	m, err := c.EntityDefinition(context.Background(), "bookableresourcebooking")
	if err != nil {
		t.Fatal(err)
	}
	if !m.ChangeTrackingEnabled || m.EntitySetName != SetBookings || m.Attribute("bookingtype").AttributeType != "Picklist" || m.Attribute("nope") != nil {
		t.Errorf("metadata = %+v", m)
	}
	nav := m.NavigationProperties()
	// The server's casing wins over our defaults (here it differs for msdyn_workorder).
	if nav["resource"] != "Resource" || nav["bookingstatus"] != "BookingStatus" || nav["msdyn_workorder"] != "msdyn_WorkOrder" {
		t.Errorf("nav = %v", nav)
	}
	u := f.requests()[0].URL
	for _, want := range []string{
		testBase + "/EntityDefinitions(LogicalName='bookableresourcebooking')?",
		"ChangeTrackingEnabled",
		"ManyToOneRelationships($select%3DSchemaName,ReferencingAttribute,ReferencedEntity,ReferencingEntityNavigationPropertyName)",
		"Attributes($select%3DLogicalName,SchemaName,AttributeType)",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("URL %s lacks %s", u, want)
		}
	}
	if _, err := c.EntityDefinition(context.Background(), "x')/y"); err == nil {
		t.Error("EntityDefinition accepted a bad logical name")
	}
}

func TestCreateColumnsGolden(t *testing.T) {
	attrID := "eed205fb-4c05-ee11-8f6e-000d3a993550"
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("OData-EntityId", testBase+"/EntityDefinitions(LogicalName='bookableresource')/Attributes("+attrID+")")
		w.WriteHeader(204)
	})
	ctx := context.Background()
	id, err := c.CreateChoiceColumn(ctx, "bookableresource", ChoiceColumn{
		SchemaName:  "bsync_OutlookSync",
		DisplayName: Label{Text: "Outlook sync"},
		Description: Label{Text: "Allows bookingsync to mirror this resource's bookings to Outlook."},
		Options: []ChoiceOption{
			{Value: 100000000, Label: Label{Text: "Allowed"}},
			{Value: 100000001, Label: Label{Text: "Not Allowed"}},
		},
	}, "bookingsync")
	if err != nil || id != attrID {
		t.Fatalf("CreateChoiceColumn = %q, %v", id, err)
	}
	if _, err := c.CreateTextColumn(ctx, "bookableresource", TextColumn{
		SchemaName:  "bsync_OutlookSyncStatus",
		DisplayName: Label{Text: "Outlook sync status"},
		Description: Label{Text: "Last outcome written by bookingsync."},
		MaxLength:   400,
	}, ""); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	for i, r := range reqs {
		if r.Method != http.MethodPost || r.URL != testBase+"/EntityDefinitions(LogicalName='bookableresource')/Attributes" {
			t.Errorf("request %d: %s %s", i, r.Method, r.URL)
		}
	}
	if s := reqs[0].Header.Get("MSCRM.SolutionUniqueName"); s != "bookingsync" {
		t.Errorf("solution header = %q", s)
	}
	if _, ok := reqs[1].Header["Mscrm.Solutionuniquename"]; ok {
		t.Error("solution header sent without a solution")
	}
	golden(t, "create_choice_column", reqs[0].Body)
	golden(t, "create_text_column", reqs[1].Body)

	for _, bad := range []ChoiceColumn{
		{SchemaName: "bsync_X"},
		{SchemaName: "bad name", Options: []ChoiceOption{{Value: 1}}},
		{SchemaName: "bsync_X", Options: []ChoiceOption{{Value: 1}, {Value: 1}}},
	} {
		if _, err := ChoiceColumnBody(bad); err == nil {
			t.Errorf("ChoiceColumnBody(%+v) succeeded", bad)
		}
	}
	if _, err := TextColumnBody(TextColumn{SchemaName: "bsync_X", MaxLength: 0}); err == nil {
		t.Error("TextColumnBody with MaxLength 0 succeeded")
	}
}

func TestEnableChangeTracking(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
			if r.Method == http.MethodGet {
				writeJSON(w, 200, map[string]any{"@odata.context": "x", "MetadataId": gid, "LogicalName": "bookableresourcebooking", "ChangeTrackingEnabled": enabled, "DisplayName": map[string]any{"LocalizedLabels": []any{}}})
				return
			}
			w.WriteHeader(204)
		})
		if err := c.EnableChangeTracking(context.Background(), "bookableresourcebooking"); err != nil {
			t.Fatal(err)
		}
		reqs := f.requests()
		if enabled {
			if len(reqs) != 1 {
				t.Errorf("already enabled: %d requests, want only the GET", len(reqs))
			}
			continue
		}
		if len(reqs) != 2 || reqs[1].Method != http.MethodPut || reqs[1].Header.Get("MSCRM.MergeLabels") != "true" {
			t.Fatalf("requests = %+v", reqs)
		}
		var put map[string]any
		if err := json.Unmarshal(reqs[1].Body, &put); err != nil {
			t.Fatal(err)
		}
		if put["ChangeTrackingEnabled"] != true || put["MetadataId"] != gid || put["DisplayName"] == nil {
			t.Errorf("PUT body = %v", put)
		}
		if _, ok := put["@odata.context"]; ok {
			t.Error("PUT body kept @odata.context")
		}
	}
}

func TestPublish(t *testing.T) {
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { w.WriteHeader(204) })
	if err := c.Publish(context.Background(), "bookableresource"); err != nil {
		t.Fatal(err)
	}
	r := f.requests()[0]
	if r.URL != testBase+"/PublishXml" || !strings.Contains(string(r.Body), "<entity>bookableresource</entity>") {
		t.Errorf("%s %s", r.URL, r.Body)
	}
	if err := c.Publish(context.Background(), "<x>"); err == nil {
		t.Error("Publish accepted a bad name")
	}
}
