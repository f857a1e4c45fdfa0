package dataverse

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRemoteExecutionContextUpdate(t *testing.T) {
	c, err := ParseRemoteExecutionContext(readTestdata(t, "rec_update_booking.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MessageName != "Update" || c.PrimaryEntityName != "bookableresourcebooking" || c.PrimaryEntityID != bookingID ||
		c.Depth != 1 || c.Stage != 40 || c.Mode != 1 || c.UserID != "75c2dd4c-b3a4-e711-a95c-000d3a1b1b6a" ||
		c.InitiatingUserID != c.UserID || c.CorrelationID != "5a1b7b5c-1c1f-4a57-9d0b-6a0f1b2c3d4e" || c.RequestID != "" {
		t.Errorf("context = %+v", c)
	}
	// "/Date(1506409448000-0700)/": the milliseconds are UTC; the offset only sets the zone.
	if want := time.Date(2017, 9, 26, 7, 4, 8, 0, time.UTC); !c.OperationCreatedOn.Equal(want) {
		t.Errorf("OperationCreatedOn = %v, want %v", c.OperationCreatedOn, want)
	}
	if _, off := c.OperationCreatedOn.Zone(); off != -7*3600 {
		t.Errorf("offset = %d", off)
	}
	if c.OwningExtension == nil || c.OwningExtension.LogicalName != "sdkmessageprocessingstep" {
		t.Errorf("OwningExtension = %+v", c.OwningExtension)
	}
	if c.ParentContext == nil || c.ParentContext.Stage != 30 || c.ParentContext.ParentContext != nil {
		t.Errorf("ParentContext = %+v", c.ParentContext)
	}
	if tag, ok := c.Tag(); !ok || tag != "bookingsync" {
		t.Errorf("Tag = %q, %v", tag, ok)
	}
	if _, ok := c.SharedVariables["ChangedEntityTypes"].(json.RawMessage); !ok {
		t.Errorf("array value = %T", c.SharedVariables["ChangedEntityTypes"])
	}

	target, ref := c.Target()
	if target == nil || ref != nil {
		t.Fatalf("Target = %v, %v", target, ref)
	}
	if c.TargetID() != bookingID || target.LogicalName != "bookableresourcebooking" {
		t.Errorf("TargetID %q", c.TargetID())
	}
	if st, ok := target.Time("starttime"); !ok || !st.Equal(time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("starttime = %v, %v", st, ok)
	}
	if n, ok := target.Int("duration"); !ok || n != 120 {
		t.Errorf("duration = %d, %v", n, ok)
	}
	if n, ok := target.Int("bookingtype"); !ok || n != BookingTypeSolid {
		t.Errorf("bookingtype = %d, %v", n, ok)
	}
	if s, ok := target.String("name"); !ok || s != "Boiler service" {
		t.Errorf("name = %q", s)
	}
	if r, ok := target.Ref("bookingstatus"); !ok || r.ID != "0adbf4e6-86cc-4db0-9dbb-51b7d1ed4020" || r.LogicalName != "bookingstatus" {
		t.Errorf("bookingstatus = %+v", r)
	}
	if m, _ := target.Get("msdyn_totalcost"); m != (Money{Value: 125.5}) {
		t.Errorf("money = %#v", m)
	}
	if b, ok := target.Bool("msdyn_allowoverlapping"); !ok || b {
		t.Errorf("bool = %v %v", b, ok)
	}
	if !target.Has("msdyn_slottext") {
		t.Error("cleared column should be present")
	}
	if _, ok := target.String("msdyn_slottext"); ok {
		t.Error("null column read as a string")
	}
	if _, ok := target.String("duration"); ok {
		t.Error("number read as a string")
	}
	if target.FormattedValues["bookingtype"] != "Solid" {
		t.Errorf("FormattedValues = %v", target.FormattedValues)
	}

	post := c.PostImage("PostImage")
	if post == nil {
		t.Fatal("no PostImage")
	}
	if r, ok := post.Ref("resource"); !ok || r.Name != "Ada Tech" {
		t.Errorf("resource = %+v", r)
	}
	// Above 2^53: kept exact as json.Number.
	if n, ok := post.Int("versionnumber"); !ok || n != 9007199254740993 {
		t.Errorf("versionnumber = %d", n)
	}
	if s, ok := c.PreImage("PreImage").String("bsync_outlookeventid"); !ok || s != "AAMkAGI2TG93AAA=" {
		t.Errorf("pre-image event id = %q", s)
	}
	if c.PreImage("nope") != nil {
		t.Error("PreImage(nope) != nil")
	}
}

func TestParseRemoteExecutionContextDelete(t *testing.T) {
	c, err := ParseRemoteExecutionContext(readTestdata(t, "rec_delete_booking.json"))
	if err != nil {
		t.Fatal(err)
	}
	e, r := c.Target()
	if e != nil || r == nil || r.ID != bookingID || c.TargetID() != bookingID {
		t.Fatalf("Target = %v, %+v", e, r)
	}
	if s, ok := c.PreImage("PreImage").String("bsync_outlookeventid"); !ok || s == "" {
		t.Error("delete pre-image lacks the event id")
	}
}

func TestParseRemoteExecutionContextMalformed(t *testing.T) {
	base := string(readTestdata(t, "rec_delete_booking.json"))
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "not a JSON object"},
		{"array", "[]", "not a JSON object"},
		{"truncated", base[:len(base)/2], "unexpected end"},
		{"no message", strings.Replace(base, `"MessageName": "Delete",`, "", 1), "MessageName"},
		{"no entity name", strings.Replace(base, `"PrimaryEntityName": "bookableresourcebooking",`, "", 1), "PrimaryEntityName"},
		{"bad primary id", strings.Replace(base, `"PrimaryEntityId": "`+bookingID+`"`, `"PrimaryEntityId": "x"`, 1), "PrimaryEntityId"},
		{"bad user id", strings.Replace(base, `"UserId": "75c2dd4c`, `"UserId": "zzc2dd4c`, 1), "UserId"},
		{"bad date", strings.Replace(base, `/Date(1795960000000)/`, `2026-11-27`, 1), "OperationCreatedOn"},
		{"params not a list", strings.Replace(base, `"OutputParameters": []`, `"OutputParameters": {}`, 1), "cannot unmarshal"},
		{"entry without key", strings.Replace(base, `"OutputParameters": []`, `"OutputParameters": [{"value": 1}]`, 1), "no key"},
		{"ref without logical name", strings.Replace(base, `"LogicalName": "bookableresourcebooking",
        "Name": null`, `"Name": null`, 1), "LogicalName missing"},
		{"bad option set", strings.Replace(base, `"OutputParameters": []`, `"OutputParameters": [{"key":"x","value":{"__type":"OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts","Value":"one"}}]`, 1), "OptionSetValue"},
		{"bad nested date", strings.Replace(base, `"OutputParameters": []`, `"OutputParameters": [{"key":"x","value":"/Date(abc)/"}]`, 1), "Date"},
		{"image without logical name", strings.Replace(base, `"LogicalName": "bookableresourcebooking",
        "RelatedEntities"`, `"RelatedEntities"`, 1), "PreEntityImages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in == base {
				t.Fatal("test case did not change the input")
			}
			_, err := ParseRemoteExecutionContext([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
	// Unknown fields are fine.
	if _, err := ParseRemoteExecutionContext([]byte(strings.Replace(base, `"Depth": 1,`, `"Depth": 1, "SomethingNew": {"a": [1]},`, 1))); err != nil {
		t.Errorf("unknown field rejected: %v", err)
	}
}

func TestParseWCFDate(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"/Date(0)/", time.Unix(0, 0), true},
		{"/Date(1506384247000)/", time.Date(2017, 9, 26, 0, 4, 7, 0, time.UTC), true},
		{"/Date(1506409448000+0530)/", time.Date(2017, 9, 26, 7, 4, 8, 0, time.UTC), true},
		{"/Date(-86400000)/", time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), true},
		{"/Date()/", time.Time{}, false},
		{"/Date(12)", time.Time{}, false},
		{"/Date(1+05)/", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := ParseWCFDate(tt.in)
		if (err == nil) != tt.ok || (tt.ok && !got.Equal(tt.want)) {
			t.Errorf("ParseWCFDate(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func FuzzParseRemoteExecutionContext(f *testing.F) {
	f.Add(readTestdata(f, "rec_update_booking.json"))
	f.Add(readTestdata(f, "rec_delete_booking.json"))
	f.Add([]byte(`{"MessageName":"Create","PrimaryEntityName":"x","PrimaryEntityId":"` + gid + `","ParentContext":{"ParentContext":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseRemoteExecutionContext(data)
		if err != nil {
			return
		}
		// Whatever parses must satisfy the documented invariants.
		if c.MessageName == "" || c.PrimaryEntityName == "" {
			t.Fatalf("accepted without MessageName/PrimaryEntityName: %q", data)
		}
		if _, err := ParseID(c.PrimaryEntityID); err != nil {
			t.Fatalf("accepted bad PrimaryEntityId %q", c.PrimaryEntityID)
		}
		_ = c.TargetID()
	})
}
