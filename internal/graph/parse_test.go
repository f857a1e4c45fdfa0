package graph

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/csdl"
	"github.com/google/go-cmp/cmp"
)

func TestParseNotificationCollectionDocExamples(t *testing.T) {
	tests := []struct {
		file string
		want *ChangeNotificationCollection
	}{
		{"notification_collection.json", &ChangeNotificationCollection{Value: []ChangeNotification{{
			ID:                             "lsgTZMr9KwAAA",
			SubscriptionID:                 "{subscription_guid}",
			SubscriptionExpirationDateTime: time.Date(2016, 3, 19, 22, 11, 9, 952000000, time.UTC),
			ClientState:                    "secretClientValue",
			ChangeType:                     ChangeCreated,
			Resource:                       "users/{user_guid}@{tenant_guid}/messages/{long_id_string}",
			TenantID:                       "84bd8158-6d4d-4958-8b9f-9d6445542f95",
			ResourceData: &ResourceData{
				ODataType: "#Microsoft.Graph.Message",
				ODataID:   "Users/{user_guid}@{tenant_guid}/Messages/{long_id_string}",
				ODataEtag: `W/"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHf"`,
				ID:        "{long_id_string}",
			},
		}}}},
		{"lifecycle_notification.json", &ChangeNotificationCollection{Value: []ChangeNotification{{
			SubscriptionID:                 "<subscription_guid>",
			SubscriptionExpirationDateTime: time.Date(2019, 3, 20, 11, 0, 0, 0, time.UTC),
			TenantID:                       "<tenant_guid>",
			ClientState:                    "<secretClientState>",
			LifecycleEvent:                 LifecycleReauthorizationRequired,
		}}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseNotificationCollection(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got.Value[0].IsLifecycle() != (tt.want.Value[0].LifecycleEvent != "") {
				t.Error("IsLifecycle wrong")
			}
		})
	}
}

func TestParseNotificationCollectionRejectsMalformed(t *testing.T) {
	const exp = `"subscriptionExpirationDateTime":"2026-01-01T00:00:00Z"`
	tests := []struct{ name, body string }{
		{"empty", ``},
		{"not json", `hello`},
		{"array", `[{"subscriptionId":"s"}]`},
		{"null", `null`},
		{"no value", `{"values":[]}`},
		{"value null", `{"value":null}`},
		{"value object", `{"value":{}}`},
		{"item not object", `{"value":["x"]}`},
		{"trailing data", `{"value":[]} {}`},
		{"missing subscriptionId", `{"value":[{` + exp + `,"changeType":"created","resource":"r"}]}`},
		{"missing expiration", `{"value":[{"subscriptionId":"s","changeType":"created","resource":"r"}]}`},
		{"bad expiration", `{"value":[{"subscriptionId":"s","subscriptionExpirationDateTime":"tomorrow","changeType":"created","resource":"r"}]}`},
		{"neither kind", `{"value":[{"subscriptionId":"s",` + exp + `,"resource":"r"}]}`},
		{"both kinds", `{"value":[{"subscriptionId":"s",` + exp + `,"changeType":"created","lifecycleEvent":"missed","resource":"r"}]}`},
		{"unknown changeType", `{"value":[{"subscriptionId":"s",` + exp + `,"changeType":"created,updated","resource":"r"}]}`},
		{"missing resource", `{"value":[{"subscriptionId":"s",` + exp + `,"changeType":"updated"}]}`},
		{"wrong type", `{"value":[{"subscriptionId":5,` + exp + `,"changeType":"updated","resource":"r"}]}`},
		{"resourceData not object", `{"value":[{"subscriptionId":"s",` + exp + `,"changeType":"updated","resource":"r","resourceData":"x"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseNotificationCollection([]byte(tt.body))
			if !errors.Is(err, ErrMalformedNotification) {
				t.Errorf("err = %v, want ErrMalformedNotification", err)
			}
		})
	}
	// Valid edge cases: empty batch, unknown extra properties, validationTokens.
	for _, body := range []string{
		`{"value":[]}`,
		`{"value":[{"subscriptionId":"s",` + exp + `,"changeType":"deleted","resource":"r","futureField":{"a":1}}],"validationTokens":["t"]}`,
	} {
		if _, err := ParseNotificationCollection([]byte(body)); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

func FuzzParseNotificationCollection(f *testing.F) {
	for _, name := range []string{"notification_collection.json", "lifecycle_notification.json"} {
		b, err := readFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"value":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := ParseNotificationCollection(body)
		if err != nil {
			return
		}
		for _, n := range c.Value {
			if n.SubscriptionID == "" || (n.ChangeType == "") == (n.LifecycleEvent == "") {
				t.Fatalf("accepted invalid notification %+v", n)
			}
		}
	})
}

func TestDateTimeTimeZone(t *testing.T) {
	tests := []struct {
		in   DateTimeTimeZone
		want time.Time
	}{
		{DateTimeTimeZone{"2026-12-01T09:00:00.0000000", "UTC"}, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)},
		{DateTimeTimeZone{"2026-12-01T09:00:00.1234567", "UTC"}, time.Date(2026, 12, 1, 9, 0, 0, 123456700, time.UTC)},
		{DateTimeTimeZone{"2026-12-01T09:00:00", ""}, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)},
		{DateTimeTimeZone{"2026-12-01T09:00:00.0000000", "W. Europe Standard Time"}, time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)},
		{DateTimeTimeZone{"2026-07-01T09:00:00.0000000", "W. Europe Standard Time"}, time.Date(2026, 7, 1, 7, 0, 0, 0, time.UTC)}, // DST
		{DateTimeTimeZone{"2026-12-01T09:00:00.0000000", "Eastern Standard Time"}, time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)},
		{DateTimeTimeZone{"2026-12-01T09:00:00.0000000", "Pacific Standard Time"}, time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)},
		{DateTimeTimeZone{"2026-07-01T09:00:00.0000000", "GMT Standard Time"}, time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)},
		{DateTimeTimeZone{"2026-12-01T09:00:00.0000000", "Central Europe Standard Time"}, time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)},
		{DateTimeTimeZone{"2026-12-01T09:00:00.0000000", "Europe/Helsinki"}, time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)},
		{DateTimeTimeZone{"2026-12-01T09:00:00.0000000", "New Zealand Standard Time"}, time.Date(2026, 11, 30, 20, 0, 0, 0, time.UTC)}, // NZDT
		{DateTimeTimeZone{"2026-12-01T09:00:00.0000000", "pacific standard time"}, time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)},      // case-insensitive
		{DateTimeTimeZone{"2026-12-01T09:00:00Z", "Pacific Standard Time"}, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)},              // explicit offset wins
	}
	for _, tt := range tests {
		got, err := tt.in.Time()
		if err != nil {
			t.Errorf("%+v: %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("%+v.Time() = %v, want %v", tt.in, got.UTC(), tt.want)
		}
	}
	for _, bad := range []DateTimeTimeZone{{"2026-12-01 09:00", "UTC"}, {"2026-12-01T09:00:00", "Mars Standard Time"}, {"", "UTC"}} {
		if _, err := bad.Time(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	// Round trip, including a zone other than UTC on the way in.
	in := time.Date(2026, 3, 29, 1, 30, 0, 120000000, time.FixedZone("X", 5*3600))
	d := NewDateTimeTimeZone(in)
	if d != (DateTimeTimeZone{"2026-03-28T20:30:00.1200000", "UTC"}) {
		t.Errorf("NewDateTimeTimeZone = %+v", d)
	}
	back, err := d.Time()
	if err != nil || !back.Equal(in) {
		t.Errorf("round trip = %v, %v", back, err)
	}
}

// TestWireTypesMatchCSDL is the contract test: every type we put on the
// wire must only use properties Graph's v1.0 metadata declares, with
// compatible types.
func TestWireTypesMatchCSDL(t *testing.T) {
	m := csdl.GraphV1(t)
	tests := []struct {
		typ  reflect.Type
		csdl string
	}{
		{reflect.TypeFor[Event](), "event"},
		{reflect.TypeFor[EventPatch](), "event"},
		{reflect.TypeFor[Subscription](), "subscription"},
		{reflect.TypeFor[ChangeNotification](), "changeNotification"},
		{reflect.TypeFor[ChangeNotificationCollection](), "changeNotificationCollection"},
		{reflect.TypeFor[ItemBody](), "itemBody"},
		{reflect.TypeFor[DateTimeTimeZone](), "dateTimeTimeZone"},
		{reflect.TypeFor[Location](), "location"},
		{reflect.TypeFor[PhysicalAddress](), "physicalAddress"},
		{reflect.TypeFor[SingleValueLegacyExtendedProperty](), "singleValueLegacyExtendedProperty"},
		{reflect.TypeFor[ResourceData](), "resourceData"}, // open type: "id" is tagged csdl:"dynamic"
		{reflect.TypeFor[User](), "user"},
	}
	for _, tt := range tests {
		t.Run(tt.typ.Name(), func(t *testing.T) {
			for _, err := range m.CheckStruct(tt.typ, tt.csdl) {
				t.Error(err)
			}
		})
	}
}

// TestContractCheckCatchesDrift proves the contract test can fail.
func TestContractCheckCatchesDrift(t *testing.T) {
	m := csdl.GraphV1(t)
	type driftedEvent struct {
		Subject  string `json:"subjet"`
		IsAllDay string `json:"isAllDay"`
		Start    struct {
			DateTime time.Time `json:"dateTime"`
		} `json:"start"`
	}
	if errs := m.CheckStruct(reflect.TypeFor[driftedEvent](), "event"); len(errs) != 3 {
		t.Errorf("got %d errors, want 3: %v", len(errs), errs)
	}
}
