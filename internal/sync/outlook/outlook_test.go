package outlook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/bookingsync/bookingsync/internal/config"
	emugraph "github.com/bookingsync/bookingsync/internal/emulator/graph"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/sync"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func content(subject string) sync.Content {
	return sync.Content{
		Subject:  subject,
		Body:     "<p>Repair boiler</p>",
		Location: "1 Main St, Springfield",
		Start:    at("2026-12-01T09:00:00Z"),
		End:      at("2026-12-01T11:30:00Z"),
		ShowAs:   "busy",
	}
}

// unwrap strips the HTML document Outlook wraps a body in (package sync's
// NormalizedBody is what the engine compares with), so tests can compare
// the rest of the content exactly.
func unwrap(c sync.Content) sync.Content {
	b := c.Body
	if i := strings.Index(b, "<body>"); i >= 0 {
		b = b[i+len("<body>"):]
		if j := strings.LastIndex(b, "</body>"); j >= 0 {
			b = b[:j]
		}
	}
	c.Body = strings.TrimSpace(b)
	return c
}

// decodeBody returns a request body as a generic JSON object.
func decodeBody(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode request body %q: %v", b, err)
	}
	return m
}

func onlyRequest(t *testing.T, reqs []wireRequest, method string) wireRequest {
	t.Helper()
	var found []wireRequest
	for _, r := range reqs {
		if r.Method == method {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s requests, want 1: %+v", len(found), method, reqs)
	}
	return found[0]
}

func TestCreateGetRoundTrip(t *testing.T) {
	h := newHarness(t, emugraph.Options{}, Options{})
	ctx := context.Background()
	tests := []struct {
		name    string
		booking string
		content sync.Content
	}{
		{"plain", "0b6f3c7e-0000-4000-8000-000000000001", content("WO-00123 · Contoso Ltd · Repair boiler")},
		{"escaped html and no location", "0b6f3c7e-0000-4000-8000-000000000002", sync.Content{
			Subject: `Tom & Jerry <Ltd>`, Body: `<p>Ask for &quot;Bob&quot; &amp; bring a ladder</p><p><a href="https://org.example/main.aspx?etn=bookableresourcebooking&amp;id=2">Booking</a></p>`,
			Start: at("2026-12-02T07:15:30Z"), End: at("2026-12-02T08:00:00Z"), ShowAs: "tentative",
		}},
		{"free, empty body", "0b6f3c7e-0000-4000-8000-000000000003", sync.Content{
			Subject: "Canceled: WO-1", Location: "Depot", Start: at("2026-06-30T22:00:00Z"), End: at("2026-07-01T01:00:00Z"), ShowAs: "free",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.requests()
			tx := TransactionID(tt.booking, adele, 1)
			created, err := h.cal.Create(ctx, adele, tt.booking, tx, tt.content)
			if err != nil {
				t.Fatal(err)
			}
			if created.ID == "" || created.ChangeKey == "" || created.ETag == "" || created.LastModified.IsZero() {
				t.Errorf("created event lacks versions: %+v", created)
			}
			if created.BookingID != tt.booking || created.Mailbox != adele || created.Type != "singleInstance" || created.IsCancelled {
				t.Errorf("created = %+v", created)
			}
			if diff := cmp.Diff(tt.content, unwrap(created.Content)); diff != "" {
				t.Errorf("created content (-sent +returned):\n%s", diff)
			}

			post := onlyRequest(t, h.requests(), "POST")
			if !strings.Contains(post.Header.Get("Prefer"), `IdType="ImmutableId"`) {
				t.Errorf("Prefer = %q, want an immutable-id preference", post.Header.Values("Prefer"))
			}
			body := decodeBody(t, post.Body)
			for _, k := range []string{"attendees", "organizer", "isOnlineMeeting"} {
				if _, ok := body[k]; ok {
					t.Errorf("create body carries %q: %s", k, post.Body)
				}
			}
			if body["transactionId"] != tx {
				t.Errorf("transactionId = %v, want %s", body["transactionId"], tx)
			}
			wantProps := []any{map[string]any{"id": PropertyID, "value": tt.booking}}
			if diff := cmp.Diff(wantProps, body["singleValueExtendedProperties"]); diff != "" {
				t.Errorf("extended properties (-want +got):\n%s", diff)
			}

			got, err := h.cal.Get(ctx, adele, created.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(created, got); diff != "" {
				t.Errorf("Get differs from Create's result (-create +get):\n%s", diff)
			}
			if got.Content.Start.Location() != time.UTC || got.Content.End.Location() != time.UTC {
				t.Errorf("times not UTC: %v, %v", got.Content.Start, got.Content.End)
			}
			get := onlyRequest(t, h.requests(), "GET")
			q, _ := url.ParseQuery(get.Query)
			if want := "singleValueExtendedProperties($filter=id eq '" + PropertyID + "')"; q.Get("$expand") != want {
				t.Errorf("$expand = %q, want %q", q.Get("$expand"), want)
			}
		})
	}
}

func TestCreateRetryUsesTransactionID(t *testing.T) {
	const booking = "7d1c0000-0000-4000-8000-0000000000aa"
	tests := []struct {
		name       string
		generation [2]int64
		wantSame   bool
	}{
		{"retry of one create is deduplicated", [2]int64{1, 1}, true},
		{"deliberate re-create gets a new event", [2]int64{1, 2}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, emugraph.Options{}, Options{})
			ctx := context.Background()
			first, err := h.cal.Create(ctx, lee, booking, TransactionID(booking, lee, tt.generation[0]), content("first"))
			if err != nil {
				t.Fatal(err)
			}
			// A retry may carry newer content; Graph still answers with the first event.
			second, err := h.cal.Create(ctx, lee, booking, TransactionID(booking, lee, tt.generation[1]), content("second"))
			if err != nil {
				t.Fatal(err)
			}
			if got := h.postCount(); got != 2 {
				t.Fatalf("%d POSTs reached Graph, want 2", got)
			}
			wantEvents := 2
			if tt.wantSame {
				wantEvents = 1
				if second.ID != first.ID || second.Content.Subject != "first" {
					t.Errorf("retry returned %s %q, want the first event %s", second.ID, second.Content.Subject, first.ID)
				}
			} else if second.ID == first.ID {
				t.Errorf("re-create returned the first event %s", first.ID)
			}
			if n := h.countEvents(t, lee); n != wantEvents {
				t.Errorf("%d events in the calendar, want %d", n, wantEvents)
			}
			if found, err := h.cal.FindByBooking(ctx, lee, booking); err != nil || len(found) != wantEvents {
				t.Errorf("FindByBooking = %d events, %v; want %d", len(found), err, wantEvents)
			}
		})
	}
}

func TestFindByBooking(t *testing.T) {
	h := newHarness(t, emugraph.Options{}, Options{})
	ctx := context.Background()
	const a, b = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
	create := func(mailbox, booking string) *sync.Event {
		t.Helper()
		ev, err := h.cal.Create(ctx, mailbox, booking, TransactionID(booking, mailbox, 1), content("WO for "+booking))
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	adeleA, adeleB, leeA := create(adele, a), create(adele, b), create(lee, a)
	// Events we did not create: none of ours, and one with someone else's property.
	s, e := graph.NewDateTimeTimeZone(at("2026-12-01T09:00:00Z")), graph.NewDateTimeTimeZone(at("2026-12-01T10:00:00Z"))
	for _, props := range [][]graph.SingleValueLegacyExtendedProperty{nil, {{ID: "String {66f5a359-4659-4830-9070-00040ec6ac6e} Name BookingId", Value: a}}} {
		if _, err := h.gc.CreateEvent(ctx, adele, graph.Event{Subject: "WO for " + a, Start: &s, End: &e, SingleValueExtendedProperties: props}, ""); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name    string
		mailbox string
		booking string
		want    []string
	}{
		{"booking a in adele", adele, a, []string{adeleA.ID}},
		{"booking b in adele", adele, b, []string{adeleB.ID}},
		{"booking a in lee", lee, a, []string{leeA.ID}},
		{"value compared case-insensitively", adele, strings.ToUpper(a), []string{adeleA.ID}},
		{"unknown booking", adele, "cccccccc-0000-4000-8000-000000000003", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found, err := h.cal.FindByBooking(ctx, tt.mailbox, tt.booking)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, ev := range found {
				ids = append(ids, ev.ID)
				if !strings.EqualFold(ev.BookingID, tt.booking) || ev.Mailbox != tt.mailbox || ev.ChangeKey == "" || ev.Content.Start.Location() != time.UTC {
					t.Errorf("found event %+v", ev)
				}
			}
			if diff := cmp.Diff(tt.want, ids); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpdateSubset(t *testing.T) {
	h := newHarness(t, emugraph.Options{}, Options{})
	ctx := context.Background()
	next := sync.Content{
		Subject:  "WO-00124 · Fabrikam · Replace valve",
		Body:     "<p>New instructions</p>",
		Location: "2 High St",
		Start:    at("2026-12-03T13:00:00Z"),
		End:      at("2026-12-03T15:00:00Z"),
		ShowAs:   "tentative",
	}
	tests := []struct {
		name     string
		fields   Fields
		next     sync.Content
		wantKeys []string // members of the PATCH body
	}{
		{"subject", FieldSubject, next, []string{"subject"}},
		{"body", FieldBody, next, []string{"body"}},
		{"location", FieldLocation, next, []string{"location"}},
		{"clear location", FieldLocation, sync.Content{}, []string{"location"}},
		{"times", FieldStart | FieldEnd, next, []string{"end", "start"}},
		{"end only", FieldEnd, next, []string{"end"}},
		{"showAs", FieldShowAs, next, []string{"showAs"}},
		{"subject and showAs", FieldSubject | FieldShowAs, next, []string{"showAs", "subject"}},
		{"all", FieldAll, next, []string{"body", "end", "location", "showAs", "start", "subject"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			booking := uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(i)}).String()
			orig := content("WO-00123 · Contoso Ltd · Repair boiler")
			created, err := h.cal.Create(ctx, adele, booking, TransactionID(booking, adele, 1), orig)
			if err != nil {
				t.Fatal(err)
			}
			h.requests()
			updated, err := h.cal.Update(ctx, adele, created.ID, tt.next, tt.fields)
			if err != nil {
				t.Fatal(err)
			}
			patch := onlyRequest(t, h.requests(), "PATCH")
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range decodeBody(t, patch.Body) {
					if !yield(k) {
						return
					}
				}
			})
			if diff := cmp.Diff(tt.wantKeys, keys); diff != "" {
				t.Errorf("PATCH members (-want +got):\n%s\nbody %s", diff, patch.Body)
			}

			want := orig
			if tt.fields.Has(FieldSubject) {
				want.Subject = tt.next.Subject
			}
			if tt.fields.Has(FieldBody) {
				want.Body = tt.next.Body
			}
			if tt.fields.Has(FieldLocation) {
				want.Location = tt.next.Location
			}
			if tt.fields.Has(FieldStart) {
				want.Start = tt.next.Start
			}
			if tt.fields.Has(FieldEnd) {
				want.End = tt.next.End
			}
			if tt.fields.Has(FieldShowAs) {
				want.ShowAs = tt.next.ShowAs
			}
			if diff := cmp.Diff(want, unwrap(updated.Content)); diff != "" {
				t.Errorf("Update result content (-want +got):\n%s", diff)
			}
			if updated.ChangeKey == created.ChangeKey || updated.ETag == created.ETag {
				t.Errorf("versions unchanged by update: %s/%s", updated.ChangeKey, updated.ETag)
			}
			got, err := h.cal.Get(ctx, adele, created.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, unwrap(got.Content)); diff != "" {
				t.Errorf("content after update (-want +got):\n%s", diff)
			}
			if got.ChangeKey != updated.ChangeKey || got.ETag != updated.ETag || got.BookingID != booking {
				t.Errorf("Get = %s/%s booking %q, Update returned %s/%s", got.ChangeKey, got.ETag, got.BookingID, updated.ChangeKey, updated.ETag)
			}
		})
	}
}

func TestUpdateRejectsBadInput(t *testing.T) {
	h := newHarness(t, emugraph.Options{}, Options{})
	backwards := content("x")
	backwards.Start, backwards.End = backwards.End, backwards.Start
	noShowAs := content("x")
	noShowAs.ShowAs = ""
	tests := []struct {
		name    string
		content sync.Content
		fields  Fields
	}{
		{"no fields", content("x"), 0},
		{"unknown field bit", content("x"), 1 << 7},
		{"end before start", backwards, FieldStart | FieldEnd},
		{"empty showAs", noShowAs, FieldShowAs},
		{"zero start", sync.Content{}, FieldStart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := h.cal.Update(context.Background(), adele, "AAMkAGI2", tt.content, tt.fields); err == nil {
				t.Error("accepted")
			}
			if reqs := h.requests(); len(reqs) != 0 {
				t.Errorf("%d requests sent, want none", len(reqs))
			}
		})
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	h := newHarness(t, emugraph.Options{}, Options{})
	backwards := content("x")
	backwards.Start, backwards.End = backwards.End, backwards.Start
	tests := []struct {
		name, booking, tx string
		content           sync.Content
	}{
		{"no booking id", "", "tx", content("x")},
		{"no transaction id", "b", "", content("x")},
		{"end before start", "b", "tx", backwards},
		{"zero times", "b", "tx", sync.Content{Subject: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := h.cal.Create(context.Background(), adele, tt.booking, tt.tx, tt.content); err == nil {
				t.Error("accepted")
			}
			if reqs := h.requests(); len(reqs) != 0 {
				t.Errorf("%d requests sent, want none", len(reqs))
			}
		})
	}
}

func TestDeleteIsIdempotent(t *testing.T) {
	h := newHarness(t, emugraph.Options{}, Options{})
	ctx := context.Background()
	const booking = "dddddddd-0000-4000-8000-000000000004"
	created, err := h.cal.Create(ctx, adele, booking, TransactionID(booking, adele, 1), content("to delete"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := h.cal.Delete(ctx, adele, created.ID); err != nil {
			t.Fatalf("delete #%d: %v", i+1, err)
		}
	}
	if n := h.countEvents(t, adele); n != 0 {
		t.Errorf("%d events left", n)
	}
	_, err = h.cal.Get(ctx, adele, created.ID)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, graph.ErrNotFound) || errors.Is(err, ErrMailboxNotFound) {
		t.Errorf("Get after delete: %v, want ErrNotFound", err)
	}
	if _, err := h.cal.Update(ctx, adele, created.ID, content("x"), FieldSubject); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update after delete: %v, want ErrNotFound", err)
	}
}

func TestUnknownMailbox(t *testing.T) {
	h := newHarness(t, emugraph.Options{}, Options{})
	ctx := context.Background()
	const booking = "eeeeeeee-0000-4000-8000-000000000005"
	calls := map[string]func() error{
		"get":    func() error { _, err := h.cal.Get(ctx, nobody, "AAMkAGI2"); return err },
		"find":   func() error { _, err := h.cal.FindByBooking(ctx, nobody, booking); return err },
		"create": func() error { _, err := h.cal.Create(ctx, nobody, booking, "tx", content("x")); return err },
		"update": func() error { _, err := h.cal.Update(ctx, nobody, "AAMkAGI2", content("x"), FieldAll); return err },
		// A gone mailbox is not a gone event: deleting must not report success.
		"delete": func() error { return h.cal.Delete(ctx, nobody, "AAMkAGI2") },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			if !errors.Is(err, ErrMailboxNotFound) || errors.Is(err, ErrNotFound) {
				t.Errorf("err = %v, want ErrMailboxNotFound only", err)
			}
		})
	}
}

func TestTimeZoneWriting(t *testing.T) {
	tests := []struct {
		name       string
		zone       func(string) string
		start, end time.Time
		wantStart  graph.DateTimeTimeZone
		wantEnd    graph.DateTimeTimeZone
	}{
		{"no option: UTC", nil, at("2026-12-01T09:00:00Z"), at("2026-12-01T10:00:00Z"),
			graph.DateTimeTimeZone{DateTime: "2026-12-01T09:00:00.0000000", TimeZone: "UTC"}, graph.DateTimeTimeZone{DateTime: "2026-12-01T10:00:00.0000000", TimeZone: "UTC"}},
		{"empty zone: UTC", func(string) string { return "" }, at("2026-12-01T09:00:00Z"), at("2026-12-01T10:00:00Z"),
			graph.DateTimeTimeZone{DateTime: "2026-12-01T09:00:00.0000000", TimeZone: "UTC"}, graph.DateTimeTimeZone{DateTime: "2026-12-01T10:00:00.0000000", TimeZone: "UTC"}},
		{"W. Europe winter", zoneOf("W. Europe Standard Time"), at("2026-12-01T09:00:00Z"), at("2026-12-01T10:30:00Z"),
			graph.DateTimeTimeZone{DateTime: "2026-12-01T10:00:00.0000000", TimeZone: "W. Europe Standard Time"}, graph.DateTimeTimeZone{DateTime: "2026-12-01T11:30:00.0000000", TimeZone: "W. Europe Standard Time"}},
		{"W. Europe summer", zoneOf("W. Europe Standard Time"), at("2026-07-01T09:00:00Z"), at("2026-07-01T10:00:00Z"),
			graph.DateTimeTimeZone{DateTime: "2026-07-01T11:00:00.0000000", TimeZone: "W. Europe Standard Time"}, graph.DateTimeTimeZone{DateTime: "2026-07-01T12:00:00.0000000", TimeZone: "W. Europe Standard Time"}},
		{"Pacific across midnight", zoneOf("Pacific Standard Time"), at("2026-12-02T06:00:00Z"), at("2026-12-02T09:00:00Z"),
			graph.DateTimeTimeZone{DateTime: "2026-12-01T22:00:00.0000000", TimeZone: "Pacific Standard Time"}, graph.DateTimeTimeZone{DateTime: "2026-12-02T01:00:00.0000000", TimeZone: "Pacific Standard Time"}},
		{"GMT summer", zoneOf("GMT Standard Time"), at("2026-07-01T09:00:00Z"), at("2026-07-01T10:00:00Z"),
			graph.DateTimeTimeZone{DateTime: "2026-07-01T10:00:00.0000000", TimeZone: "GMT Standard Time"}, graph.DateTimeTimeZone{DateTime: "2026-07-01T11:00:00.0000000", TimeZone: "GMT Standard Time"}},
		{"New Zealand", zoneOf("New Zealand Standard Time"), at("2026-12-01T20:00:00Z"), at("2026-12-01T21:00:00Z"),
			graph.DateTimeTimeZone{DateTime: "2026-12-02T09:00:00.0000000", TimeZone: "New Zealand Standard Time"}, graph.DateTimeTimeZone{DateTime: "2026-12-02T10:00:00.0000000", TimeZone: "New Zealand Standard Time"}},
		{"DST spring gap is fine", zoneOf("W. Europe Standard Time"), at("2026-03-29T00:30:00Z"), at("2026-03-29T01:30:00Z"),
			graph.DateTimeTimeZone{DateTime: "2026-03-29T01:30:00.0000000", TimeZone: "W. Europe Standard Time"}, graph.DateTimeTimeZone{DateTime: "2026-03-29T03:30:00.0000000", TimeZone: "W. Europe Standard Time"}},
		// 02:30 happens twice on 2026-10-25 in Berlin: written in UTC, so Graph need not guess.
		{"repeated hour falls back to UTC", zoneOf("W. Europe Standard Time"), at("2026-10-25T01:30:00Z"), at("2026-10-25T02:30:00Z"),
			graph.DateTimeTimeZone{DateTime: "2026-10-25T01:30:00.0000000", TimeZone: "UTC"}, graph.DateTimeTimeZone{DateTime: "2026-10-25T02:30:00.0000000", TimeZone: "UTC"}},
		{"unknown zone falls back to UTC", zoneOf("Mars Standard Time"), at("2026-12-01T09:00:00Z"), at("2026-12-01T10:00:00Z"),
			graph.DateTimeTimeZone{DateTime: "2026-12-01T09:00:00.0000000", TimeZone: "UTC"}, graph.DateTimeTimeZone{DateTime: "2026-12-01T10:00:00.0000000", TimeZone: "UTC"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, emugraph.Options{}, Options{TimeZone: tt.zone})
			ctx := context.Background()
			booking := uuid.NewSHA1(uuid.NameSpaceOID, []byte{'z', byte(i)}).String()
			ct := content("zoned")
			ct.Start, ct.End = tt.start, tt.end
			created, err := h.cal.Create(ctx, adele, booking, TransactionID(booking, adele, 1), ct)
			if err != nil {
				t.Fatal(err)
			}
			var sent struct{ Start, End graph.DateTimeTimeZone }
			if err := json.Unmarshal(onlyRequest(t, h.requests(), "POST").Body, &sent); err != nil {
				t.Fatal(err)
			}
			if sent.Start != tt.wantStart || sent.End != tt.wantEnd {
				t.Errorf("sent start %+v end %+v, want %+v %+v", sent.Start, sent.End, tt.wantStart, tt.wantEnd)
			}
			got, err := h.cal.Get(ctx, adele, created.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range []*sync.Event{created, got} {
				if !ev.Content.Start.Equal(tt.start) || !ev.Content.End.Equal(tt.end) || ev.Content.Start.Location() != time.UTC {
					t.Errorf("read back %v – %v, want %v – %v (UTC)", ev.Content.Start, ev.Content.End, tt.start, tt.end)
				}
			}

			// Update writes the zone the same way.
			ct.Start, ct.End = tt.start.Add(24*time.Hour), tt.end.Add(24*time.Hour)
			if _, err := h.cal.Update(ctx, adele, created.ID, ct, FieldStart|FieldEnd); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(onlyRequest(t, h.requests(), "PATCH").Body, &sent); err != nil {
				t.Fatal(err)
			}
			if sent.Start.TimeZone != tt.wantStart.TimeZone && !strings.Contains(tt.name, "repeated") {
				t.Errorf("PATCH start zone %q, want %q", sent.Start.TimeZone, tt.wantStart.TimeZone)
			}
			if got, err = h.cal.Get(ctx, adele, created.ID); err != nil {
				t.Fatal(err)
			}
			if !got.Content.Start.Equal(ct.Start) || !got.Content.End.Equal(ct.End) {
				t.Errorf("after update %v – %v, want %v – %v", got.Content.Start, got.Content.End, ct.Start, ct.End)
			}
		})
	}
}

func zoneOf(name string) func(string) string {
	return func(mailbox string) string {
		if mailbox != adele {
			panic("zone asked for " + mailbox)
		}
		return name
	}
}

func TestCreateRequestGolden(t *testing.T) {
	h := newHarness(t, emugraph.Options{}, Options{TimeZone: zoneOf("W. Europe Standard Time")})
	const booking = "5e0f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
	ct := sync.Content{
		Subject:  "WO-00123 · Contoso Ltd · Repair boiler",
		Body:     `<p>Bring the <b>large</b> ladder &amp; spare valve.</p><p><a href="https://contoso.crm.dynamics.com/main.aspx?etn=bookableresourcebooking&amp;id=5e0f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b&amp;pagetype=entityrecord">Open booking</a></p>`,
		Location: "Contoso Ltd, 1 Main St, 10115 Berlin",
		Start:    at("2026-12-01T08:00:00Z"),
		End:      at("2026-12-01T10:30:00Z"),
		ShowAs:   "busy",
	}
	if _, err := h.cal.Create(context.Background(), adele, booking, TransactionID(booking, adele, 1), ct); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := json.Indent(&got, onlyRequest(t, h.requests(), "POST").Body, "", "  "); err != nil {
		t.Fatal(err)
	}
	got.WriteByte('\n')
	path := filepath.Join("testdata", "create_request.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestCreateRequestGolden -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("create request body (-golden +got):\n%s", diff)
	}
}

func TestExtraUpdateAfterCreate(t *testing.T) {
	// Outlook modifies a new event once more right after the create: new
	// versions, same content. The engine relies on Get showing exactly that.
	h := newHarness(t, emugraph.Options{ExtraUpdateDelay: 20 * time.Millisecond}, Options{TimeZone: zoneOf("W. Europe Standard Time")})
	ctx := context.Background()
	const booking = "ffffffff-0000-4000-8000-000000000006"
	created, err := h.cal.Create(ctx, adele, booking, TransactionID(booking, adele, 1), content("touched by Outlook"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := h.cal.Get(ctx, adele, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ChangeKey != created.ChangeKey {
			if got.ETag == created.ETag || !got.LastModified.After(created.LastModified) {
				t.Errorf("etag/lastModified not moved: %s %v", got.ETag, got.LastModified)
			}
			if diff := cmp.Diff(created.Content, got.Content); diff != "" {
				t.Errorf("content changed by the extra update (-created +got):\n%s", diff)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no extra update within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTransactionID(t *testing.T) {
	const b, m = "0b6f3c7e-0000-4000-8000-000000000001", "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b01"
	base := TransactionID(b, m, 1)
	if u, err := uuid.Parse(base); err != nil || u.Version() != 5 || u.String() != base {
		t.Fatalf("TransactionID = %q (%v), want a canonical version-5 GUID", base, err)
	}
	tests := []struct {
		name       string
		booking    string
		mailbox    string
		generation int64
		wantSame   bool
	}{
		{"same inputs", b, m, 1, true},
		{"case of ids ignored", strings.ToUpper(b), strings.ToUpper(m), 1, true},
		{"next generation", b, m, 2, false},
		{"other mailbox", b, "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b02", 1, false},
		{"other booking", "0b6f3c7e-0000-4000-8000-000000000002", m, 1, false},
		{"no ambiguity between fields", b + "\x00" + m, "", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TransactionID(tt.booking, tt.mailbox, tt.generation); (got == base) != tt.wantSame {
				t.Errorf("TransactionID = %s, base %s, want same = %v", got, base, tt.wantSame)
			}
		})
	}
}

func TestToSync(t *testing.T) {
	yes := true
	tests := []struct {
		name    string
		in      graph.Event
		want    sync.Event
		wantErr bool
	}{
		{
			name: "UTC with seven fractional digits",
			in: graph.Event{
				ID: "id1", ChangeKey: "ck", ODataEtag: `W/"ck"`, Subject: "s", ShowAs: "busy", Sensitivity: "private", Type: "singleInstance",
				Body: &graph.ItemBody{ContentType: "html", Content: "<p>b</p>"}, Location: &graph.Location{DisplayName: "here"},
				Start:                &graph.DateTimeTimeZone{DateTime: "2026-01-01T10:00:00.0000000", TimeZone: "UTC"},
				End:                  &graph.DateTimeTimeZone{DateTime: "2026-01-01T11:00:00.1234567", TimeZone: "UTC"},
				LastModifiedDateTime: time.Date(2026, 1, 1, 9, 0, 0, 0, time.FixedZone("X", 3600)),
				SingleValueExtendedProperties: []graph.SingleValueLegacyExtendedProperty{
					{ID: strings.ToLower(PropertyID[:len(PropertyID)-len("Name BookingId")]) + "Name BookingId", Value: "booking-1"},
				},
			},
			want: sync.Event{
				ID: "id1", Mailbox: "mbx", ChangeKey: "ck", ETag: `W/"ck"`, BookingID: "booking-1", Sensitivity: "private", Type: "singleInstance",
				LastModified: time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC),
				Content: sync.Content{Subject: "s", Body: "<p>b</p>", Location: "here", ShowAs: "busy",
					Start: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 1, 11, 0, 0, 123456700, time.UTC)},
			},
		},
		{
			name: "Windows zones, cancelled, someone else's property",
			in: graph.Event{
				ID: "id2", IsCancelled: &yes, Type: "occurrence",
				Start: &graph.DateTimeTimeZone{DateTime: "2026-07-01T09:00:00.0000000", TimeZone: "W. Europe Standard Time"},
				End:   &graph.DateTimeTimeZone{DateTime: "2026-07-01T05:00:00", TimeZone: "Eastern Standard Time"},
				SingleValueExtendedProperties: []graph.SingleValueLegacyExtendedProperty{
					{ID: "String {66f5a359-4659-4830-9070-00040ec6ac6e} Name BookingId", Value: "not ours"},
				},
			},
			want: sync.Event{ID: "id2", Mailbox: "mbx", IsCancelled: true, Type: "occurrence",
				Content: sync.Content{Start: time.Date(2026, 7, 1, 7, 0, 0, 0, time.UTC), End: time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)}},
		},
		{
			name: "Pacific and Tokyo",
			in: graph.Event{
				Start: &graph.DateTimeTimeZone{DateTime: "2026-12-01T22:00:00.0000000", TimeZone: "Pacific Standard Time"},
				End:   &graph.DateTimeTimeZone{DateTime: "2026-12-02T16:00:00.0000000", TimeZone: "Tokyo Standard Time"},
			},
			want: sync.Event{Mailbox: "mbx", Content: sync.Content{Start: time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)}},
		},
		{
			name:    "unknown zone",
			in:      graph.Event{Start: &graph.DateTimeTimeZone{DateTime: "2026-12-01T22:00:00", TimeZone: "Mars Standard Time"}},
			wantErr: true,
		},
		{
			name:    "malformed dateTime",
			in:      graph.Event{End: &graph.DateTimeTimeZone{DateTime: "01/12/2026 10:00", TimeZone: "UTC"}},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := toSync("mbx", PropertyID, &tt.in)
			if tt.wantErr {
				if err == nil {
					t.Errorf("accepted: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got.Content.Start.Location() != time.UTC || got.LastModified.Location() != time.UTC {
				t.Error("times not in UTC")
			}
		})
	}
}

// The configuration's default must be this package's constant: events
// already carrying one id are found only by that id.
func TestPropertyIDMatchesConfigDefault(t *testing.T) {
	if config.DefaultExtendedPropertyID != PropertyID {
		t.Fatalf("config.DefaultExtendedPropertyID = %q, outlook.PropertyID = %q", config.DefaultExtendedPropertyID, PropertyID)
	}
}
