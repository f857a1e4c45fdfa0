package dataverse

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestGetWorkOrder(t *testing.T) {
	tests := []struct {
		name               string
		row                map[string]any
		account, incidents string
	}{
		{"expanded", map[string]any{
			"msdyn_workorderid": gid, "msdyn_name": "00042", "msdyn_address1": "1 Main St", "msdyn_city": "Springfield",
			"msdyn_latitude": 47.6, "msdyn_systemstatus": 690970001, "msdyn_instructions": "Ring twice",
			"msdyn_serviceaccount": map[string]any{"name": "Contoso Ltd"}, "msdyn_primaryincidenttype": map[string]any{"msdyn_name": "Boiler repair"},
		}, "Contoso Ltd", "Boiler repair"},
		{"annotations only", map[string]any{
			"msdyn_workorderid": gid, "msdyn_name": "00043",
			"_msdyn_serviceaccount_value":                                           bookingID,
			"_msdyn_serviceaccount_value@OData.Community.Display.V1.FormattedValue": "Fabrikam",
			"msdyn_serviceaccount":                                                  nil, "msdyn_primaryincidenttype": nil,
		}, "Fabrikam", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { writeJSON(w, 200, tt.row) })
			wo, err := c.GetWorkOrder(context.Background(), gid)
			if err != nil {
				t.Fatal(err)
			}
			if wo.ServiceAccountName() != tt.account || wo.PrimaryIncidentTypeName() != tt.incidents || wo.Number != tt.row["msdyn_name"] {
				t.Errorf("work order = %+v", wo)
			}
			u := f.requests()[0].URL
			if !strings.Contains(u, "/msdyn_workorders("+gid+")?$select=msdyn_workorderid,") ||
				!strings.Contains(u, "$expand=msdyn_serviceaccount($select%3Dname),msdyn_primaryincidenttype($select%3Dmsdyn_name)") {
				t.Errorf("URL = %s", u)
			}
		})
	}
}

func TestListBookingStatusesAndTop(t *testing.T) {
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, 200, map[string]any{"value": []any{
			map[string]any{"bookingstatusid": gid, "name": "Scheduled", "status": 2, "msdyn_fieldservicestatus": 690970000},
			map[string]any{"bookingstatusid": bookingID, "name": "Canceled", "status": 3, "msdyn_fieldservicestatus": nil},
		}})
	})
	sts, err := c.ListBookingStatuses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 2 || sts[1].Status != BookingStatusCanceled || sts[1].FieldServiceStatus != nil || *sts[0].FieldServiceStatus != FieldServiceStatusScheduled {
		t.Errorf("statuses = %+v", sts)
	}
	if u := f.requests()[0].URL; !strings.HasSuffix(u, "&$filter=statecode%20eq%200") {
		t.Errorf("URL = %s", u)
	}
	_, err = ListAll[BookingStatus](context.Background(), c, SetBookingStatuses, Query{Top: 1})
	if err != nil {
		t.Fatal(err)
	}
	if p := f.requests()[1].Header.Get("Prefer"); p != "" {
		t.Errorf("Prefer with $top = %q; maxpagesize makes Dataverse ignore $top", p)
	}
}
