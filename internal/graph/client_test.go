package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bookingsync/bookingsync/internal/httpx"
	"github.com/google/go-cmp/cmp"
)

const (
	userID    = "cd209b0b-3f83-4c35-82d2-d88a61820480"
	extPropID = "String {66f5a359-4659-4830-9070-00040ec6ac6e} Name D365BookingId"
)

func TestCreateSubscriptionRequestAndResponse(t *testing.T) {
	c, fg := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1.0/subscriptions" {
			writeJSON(w, 404, `{}`)
			return
		}
		writeJSON(w, 201, string(readTestdata(t, "subscription_response.json")))
	})
	sub, err := c.CreateSubscription(context.Background(), Subscription{
		ChangeType:                "created,updated,deleted",
		NotificationURL:           "https://sync.example.com/graph/notify?tenant=abc",
		LifecycleNotificationURL:  "https://sync.example.com/graph/lifecycle",
		Resource:                  "/users/" + userID + "/events",
		ExpirationDateTime:        time.Date(2026, 10, 1, 13, 0, 0, 0, time.FixedZone("CEST", 2*3600)),
		ClientState:               "s3cret-client-state",
		LatestSupportedTLSVersion: "v1_2",
		ID:                        "ignored-on-create",
	})
	if err != nil {
		t.Fatal(err)
	}
	reqs := fg.requests()
	checkGolden(t, "create_subscription.json", reqs[0].Body)
	if got := reqs[0].Header.Get("Prefer"); got != `IdType="ImmutableId"` {
		t.Errorf("Prefer = %q", got)
	}
	if got := reqs[0].Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	want := &Subscription{
		ID:                        "5522bd62-7c96-4530-85b0-00b916f6151a",
		Resource:                  "users/622eaaff-0683-4862-9de4-f2ec83c2bd98/messages",
		ApplicationID:             "507c3b9a-67b8-463d-88a2-15a8cefb2111",
		ChangeType:                "created",
		ClientState:               "secretClientState",
		NotificationURL:           "https://webhook.azurewebsites.net/api/send/myNotifyClient",
		ExpirationDateTime:        time.Date(2022, 1, 1, 21, 42, 18, 225776800, time.UTC),
		CreatorID:                 "a4c7bd34-4f3b-46b7-a25d-b63c1e2a2842",
		LatestSupportedTLSVersion: "v1_2",
	}
	if diff := cmp.Diff(want, sub); diff != "" {
		t.Errorf("subscription (-want +got):\n%s", diff)
	}
}

func TestCreateSubscriptionValidates(t *testing.T) {
	c, fg := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 201, `{}`) })
	_, err := c.CreateSubscription(context.Background(), Subscription{Resource: "/users/x/events"})
	if err == nil || len(fg.requests()) != 0 {
		t.Fatalf("err = %v, requests = %d; want a local error and no request", err, len(fg.requests()))
	}
}

func TestSubscriptionCalls(t *testing.T) {
	exp := time.Date(2026, 10, 7, 9, 30, 0, 0, time.UTC)
	tests := []struct {
		name       string
		run        func(c *Client) error
		status     int
		respBody   string
		wantMethod string
		wantPath   string
		wantBody   string
		wantErr    error
		wantErrMsg string
	}{
		{
			name: "get",
			run: func(c *Client) error {
				s, err := c.GetSubscription(context.Background(), "sub-1")
				if err == nil && s.ID != "sub-1" {
					return fmt.Errorf("decoded id %q", s.ID)
				}
				return err
			},
			status: 200, respBody: `{"id":"sub-1"}`,
			wantMethod: "GET", wantPath: "/v1.0/subscriptions/sub-1",
		},
		{
			name:   "get not found",
			run:    func(c *Client) error { _, err := c.GetSubscription(context.Background(), "gone"); return err },
			status: 404, respBody: `{"error":{"code":"ResourceNotFound","message":"nope","innerError":{"request-id":"r1","date":"2026-01-01T00:00:00"}}}`,
			wantMethod: "GET", wantPath: "/v1.0/subscriptions/gone",
			wantErr: ErrNotFound, wantErrMsg: "get subscription gone: graph: HTTP 404 ResourceNotFound: nope (request-id r1)",
		},
		{
			name: "renew",
			run: func(c *Client) error {
				_, err := c.RenewSubscription(context.Background(), "sub-1", exp.In(time.FixedZone("X", 3600)))
				return err
			},
			status: 200, respBody: `{"id":"sub-1","expirationDateTime":"2026-10-07T09:30:00Z"}`,
			wantMethod: "PATCH", wantPath: "/v1.0/subscriptions/sub-1", wantBody: `{"expirationDateTime":"2026-10-07T09:30:00Z"}`,
		},
		{
			name:   "renew too far",
			run:    func(c *Client) error { _, err := c.RenewSubscription(context.Background(), "sub-1", exp); return err },
			status: 400, respBody: `{"error":{"code":"ExtensionError","message":"Subscription expiration can only be 10070 minutes in the future."}}`,
			wantMethod: "PATCH", wantPath: "/v1.0/subscriptions/sub-1", wantBody: `{"expirationDateTime":"2026-10-07T09:30:00Z"}`,
			wantErrMsg: "renew subscription sub-1: graph: HTTP 400 ExtensionError: Subscription expiration can only be 10070 minutes in the future.",
		},
		{
			name:       "delete",
			run:        func(c *Client) error { return c.DeleteSubscription(context.Background(), "sub-1") },
			status:     204,
			wantMethod: "DELETE", wantPath: "/v1.0/subscriptions/sub-1",
		},
		{
			name:       "reauthorize",
			run:        func(c *Client) error { return c.ReauthorizeSubscription(context.Background(), "sub-1") },
			status:     204,
			wantMethod: "POST", wantPath: "/v1.0/subscriptions/sub-1/reauthorize",
		},
		{
			name: "create conflict",
			run: func(c *Client) error {
				_, err := c.CreateSubscription(context.Background(), Subscription{Resource: "/users/u/events", ChangeType: "created", NotificationURL: "https://x", ExpirationDateTime: exp})
				return err
			},
			status: 409, respBody: `{"error":{"code":"ExtensionError","message":"Subscription Id <> already exists for the requested combination"}}`,
			wantMethod: "POST", wantPath: "/v1.0/subscriptions",
			wantBody: `{"resource":"/users/u/events","changeType":"created","notificationUrl":"https://x","expirationDateTime":"2026-10-07T09:30:00Z"}`,
			wantErr:  ErrConflict,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, fg := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.status == 204 {
					w.WriteHeader(204)
					return
				}
				writeJSON(w, tt.status, tt.respBody)
			})
			err := tt.run(c)
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			case tt.wantErrMsg != "" && (err == nil || err.Error() != tt.wantErrMsg):
				t.Errorf("err = %v, want %q", err, tt.wantErrMsg)
			case tt.wantErr == nil && tt.wantErrMsg == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			}
			reqs := fg.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.wantMethod || !strings.HasSuffix(strings.SplitN(r.URL, "?", 2)[0], tt.wantPath) {
				t.Errorf("request %s %s, want %s %s", r.Method, r.URL, tt.wantMethod, tt.wantPath)
			}
			if string(r.Body) != tt.wantBody {
				t.Errorf("body = %s, want %s", r.Body, tt.wantBody)
			}
			if r.Header.Get("Prefer") != `IdType="ImmutableId"` {
				t.Errorf("missing Prefer header")
			}
		})
	}
}

func TestListSubscriptionsFollowsNextLink(t *testing.T) {
	c, fg := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("$skiptoken") {
		case "":
			writeJSON(w, 200, `{"value":[{"id":"a"},{"id":"b"}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/subscriptions?$skiptoken=p2"}`)
		case "p2":
			writeJSON(w, 200, `{"value":[{"id":"c"}]}`)
		default:
			writeJSON(w, 400, `{}`)
		}
	})
	subs, err := c.ListSubscriptions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range subs {
		ids = append(ids, s.ID)
	}
	if strings.Join(ids, ",") != "a,b,c" || len(fg.requests()) != 2 {
		t.Errorf("ids = %v after %d requests", ids, len(fg.requests()))
	}
}

func TestNextLinkToForeignHostRefused(t *testing.T) {
	c, fg := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"value":[],"@odata.nextLink":"https://evil.example/v1.0/subscriptions?$skiptoken=x"}`)
	})
	if _, err := c.ListSubscriptions(context.Background()); err == nil || !strings.Contains(err.Error(), "not on graph.microsoft.com") {
		t.Fatalf("err = %v, want refusal", err)
	}
	if n := len(fg.requests()); n != 1 {
		t.Errorf("%d requests; the foreign link must not be fetched", n)
	}
}

func TestMaxExpirationMinutes(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		want   int
		wantOK bool
	}{
		{"current", fmt.Errorf("renew: %w", &Error{StatusCode: 400, Code: "ExtensionError", Message: "Subscription expiration can only be 10070 minutes in the future."}), 10070, true},
		{"old limit", &Error{StatusCode: 400, Code: "ExtensionError", Message: "Subscription expiration can only be 4230 minutes in the future."}, 4230, true},
		{"other 400", &Error{StatusCode: 400, Code: "ExtensionError", Message: "REST API is not yet supported for this mailbox."}, 0, false},
		{"not 400", &Error{StatusCode: 500, Message: "Subscription expiration can only be 10 minutes in the future."}, 0, false},
		{"not graph", errors.New("Subscription expiration can only be 10 minutes in the future."), 0, false},
		{"nil", nil, 0, false},
	}
	for _, tt := range tests {
		got, ok := MaxExpirationMinutes(tt.err)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%s: got %d, %v; want %d, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestErrorSentinels(t *testing.T) {
	tests := []struct {
		status int
		code   string
		is     []error
		isNot  []error
	}{
		{404, "ErrorItemNotFound", []error{ErrNotFound}, []error{ErrConflict, ErrThrottled}},
		{412, "", []error{ErrPreconditionFailed}, []error{ErrConflict}},
		{409, "", []error{ErrConflict}, []error{ErrPreconditionFailed}},
		{400, "ErrorIrresolvableConflict", []error{ErrConflict}, nil},
		{410, "", []error{ErrSyncStateNotFound}, nil},
		{400, "syncStateNotFound", []error{ErrSyncStateNotFound}, nil},
		{400, "resyncRequired", []error{ErrSyncStateNotFound}, nil},
		{429, "TooManyRequests", []error{ErrThrottled}, []error{ErrNotFound}},
		{500, "", nil, []error{ErrNotFound, ErrPreconditionFailed, ErrConflict, ErrSyncStateNotFound, ErrThrottled}},
	}
	for _, tt := range tests {
		err := fmt.Errorf("op: %w", &Error{StatusCode: tt.status, Code: tt.code})
		for _, s := range tt.is {
			if !errors.Is(err, s) {
				t.Errorf("%d %s: not %v", tt.status, tt.code, s)
			}
		}
		for _, s := range tt.isNot {
			if errors.Is(err, s) {
				t.Errorf("%d %s: unexpectedly %v", tt.status, tt.code, s)
			}
		}
	}
}

func TestParseErrorRetryAfterAndHeaders(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := http.Header{"Retry-After": {"17"}, "Request-Id": {"hdr-id"}}
	e := parseError(429, h, []byte(`{"error":{"code":"TooManyRequests","message":"slow down"}}`), now)
	want := &Error{StatusCode: 429, Code: "TooManyRequests", Message: "slow down", RequestID: "hdr-id", RetryAfter: 17 * time.Second}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	e = parseError(502, nil, []byte("<html>Bad Gateway</html>"), now)
	if e.Message != "<html>Bad Gateway</html>" || e.Code != "" {
		t.Errorf("non-JSON body: %+v", e)
	}
}

func TestCreateEvent(t *testing.T) {
	c, fg := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.EscapedPath() != "/v1.0/users/"+userID+"/events" {
			writeJSON(w, 404, `{}`)
			return
		}
		writeJSON(w, 201, string(readTestdata(t, "create_event_response.json")))
	})
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ev := Event{
		Subject:      "Boiler service – Contoso Ltd",
		Body:         &ItemBody{ContentType: "text", Content: "Work order WO-1001\nBring the <pressure> gauge & seals"},
		Start:        new(NewDateTimeTimeZone(start)),
		End:          new(NewDateTimeTimeZone(start.Add(90 * time.Minute))),
		Location:     &Location{DisplayName: "Contoso HQ", Address: &PhysicalAddress{Street: "1 Main St", City: "Springfield", PostalCode: "12345", CountryOrRegion: "US"}},
		ShowAs:       "busy",
		Categories:   []string{"Field Service"},
		IsReminderOn: new(false),
		Sensitivity:  "normal",
		IsAllDay:     new(false),
		SingleValueExtendedProperties: []SingleValueLegacyExtendedProperty{
			{ID: extPropID, Value: "a1b2c3d4-0000-1111-2222-333344445555"},
		},
		ID:        "must-not-be-sent",
		ChangeKey: "must-not-be-sent",
	}
	got, err := c.CreateEvent(context.Background(), userID, ev, "7E163156-7762-4BEB-A1C6-729EA81755A7")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "create_event.json", fg.requests()[0].Body)

	st, err := got.Start.Time()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Equal(time.Date(2017, 4, 15, 19, 0, 0, 0, time.UTC)) { // 12:00 PDT
		t.Errorf("start = %v", st)
	}
	want := Event{
		ID:                   "AAMkAGI1AAAt9AHjAAA=",
		ODataEtag:            `W/"ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ=="`,
		ChangeKey:            "ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ==",
		TransactionID:        "7E163156-7762-4BEB-A1C6-729EA81755A7",
		Subject:              "Let's go for lunch",
		ShowAs:               "busy",
		Type:                 "singleInstance",
		Sensitivity:          "normal",
		IsAllDay:             new(false),
		IsCancelled:          new(false),
		IsReminderOn:         new(true),
		Categories:           []string{},
		CreatedDateTime:      time.Date(2017, 4, 15, 3, 0, 50, 757958100, time.UTC),
		LastModifiedDateTime: time.Date(2017, 4, 15, 3, 0, 51, 245372000, time.UTC),
		ICalUID:              "040000008200E00074C5B7101A82E00800000000DA2B357D94B5D201000000000000000010000000EC4597557F0CB34EA4CC2887EA7B17C3",
		Body:                 &ItemBody{ContentType: "html", Content: "<html>\r\n<head>\r\n</head>\r\n<body>\r\nDoes noon work for you?\r\n</body>\r\n</html>\r\n"},
		Start:                &DateTimeTimeZone{DateTime: "2017-04-15T12:00:00.0000000", TimeZone: "Pacific Standard Time"},
		End:                  &DateTimeTimeZone{DateTime: "2017-04-15T14:00:00.0000000", TimeZone: "Pacific Standard Time"},
		Location:             &Location{DisplayName: "Harry's Bar"},
		Recurrence:           json.RawMessage("null"),
	}
	if diff := cmp.Diff(want, *got); diff != "" {
		t.Errorf("decoded event (-want +got):\n%s", diff)
	}
}

func TestCreateEventRetryPolicy(t *testing.T) {
	tests := []struct {
		name      string
		txID      string
		wantCalls int
	}{
		{"with transactionId retried", "tx-1", 2},
		{"without transactionId sent once", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				fg := &fakeGraph{handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if calls.Add(1) == 1 {
						w.Header().Set("Retry-After", "3")
						writeJSON(w, 503, `{"error":{"code":"serviceNotAvailable","message":"busy"}}`)
						return
					}
					writeJSON(w, 201, `{"id":"e1"}`)
				})}
				c, err := New(&httpx.Client{HTTP: &http.Client{Transport: fg}}, Options{})
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.CreateEvent(context.Background(), userID, Event{Subject: "x"}, tt.txID)
				if int(calls.Load()) != tt.wantCalls {
					t.Errorf("calls = %d, want %d", calls.Load(), tt.wantCalls)
				}
				if tt.wantCalls == 1 {
					var ge *Error
					if !errors.As(err, &ge) || ge.StatusCode != 503 || ge.RetryAfter != 3*time.Second {
						t.Errorf("err = %v, want *Error 503 with RetryAfter 3s", err)
					}
				} else if err != nil {
					t.Errorf("err = %v", err)
				}
			})
		})
	}
}

func TestUpdateEvent(t *testing.T) {
	tests := []struct {
		name    string
		ifMatch string
		status  int
		wantErr error
	}{
		{"no if-match", "", 200, nil},
		{"if-match ok", `W/"abc"`, 200, nil},
		{"if-match stale", `W/"old"`, 412, ErrPreconditionFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, fg := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.status != 200 {
					writeJSON(w, tt.status, `{"error":{"code":"ErrorIrresolvableConflict","message":"change key mismatch"}}`)
					return
				}
				writeJSON(w, 200, `{"id":"ev-1","changeKey":"ck2"}`)
			})
			start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
			patch := EventPatch{
				Subject:    new("Rescheduled: Boiler service"),
				Start:      new(NewDateTimeTimeZone(start)),
				End:        new(NewDateTimeTimeZone(start.Add(time.Hour))),
				Categories: new([]string{}),
				ShowAs:     new("tentative"),
			}
			ev, err := c.UpdateEvent(context.Background(), userID, "ev/1+=", patch, tt.ifMatch)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && ev.ChangeKey != "ck2" {
				t.Errorf("changeKey = %q", ev.ChangeKey)
			}
			r := fg.requests()[0]
			if r.Method != http.MethodPatch || r.URL != "https://graph.microsoft.com/v1.0/users/"+userID+"/events/ev%2F1+=" {
				t.Errorf("request %s %s", r.Method, r.URL)
			}
			if got := r.Header.Get("If-Match"); got != tt.ifMatch {
				t.Errorf("If-Match = %q, want %q", got, tt.ifMatch)
			}
			checkGolden(t, "patch_event.json", r.Body)
		})
	}
}

func TestEventPatchOmitsUnset(t *testing.T) {
	b, err := json.Marshal(EventPatch{IsReminderOn: new(false)})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"isReminderOn":false}` {
		t.Errorf("got %s", b)
	}
	b, _ = json.Marshal(EventPatch{Recurrence: json.RawMessage("null"), Categories: new([]string{})})
	if string(b) != `{"categories":[],"recurrence":null}` {
		t.Errorf("got %s", b)
	}
}

func TestGetEventAndFindByExtendedProperty(t *testing.T) {
	c, fg := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/events/ev-1"):
			writeJSON(w, 200, `{"id":"ev-1","singleValueExtendedProperties":[{"id":"`+strings.ReplaceAll(extPropID, `"`, ``)+`","value":"booking-9"}]}`)
		case strings.HasSuffix(r.URL.Path, "/events") && r.URL.Query().Get("$skiptoken") == "":
			writeJSON(w, 200, `{"value":[{"id":"ev-1"}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/users/`+userID+`/events?$skiptoken=2"}`)
		case strings.HasSuffix(r.URL.Path, "/events"):
			writeJSON(w, 200, `{"value":[{"id":"ev-2"}]}`)
		default:
			writeJSON(w, 404, `{}`)
		}
	})
	ev, err := c.GetEvent(context.Background(), userID, "ev-1", extPropID)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := ev.ExtendedProperty(extPropID); !ok || v != "booking-9" {
		t.Errorf("ExtendedProperty = %q, %v", v, ok)
	}
	evs, err := c.FindEventsByExtendedProperty(context.Background(), userID, extPropID, "O'Brien's booking")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Errorf("found %d events, want 2 (paged)", len(evs))
	}
	reqs := fg.requests()
	wantGet := "https://graph.microsoft.com/v1.0/users/" + userID + "/events/ev-1?$expand=singleValueExtendedProperties%28%24filter%3Did%20eq%20%27String%20%7B66f5a359-4659-4830-9070-00040ec6ac6e%7D%20Name%20D365BookingId%27%29"
	wantGet = strings.ReplaceAll(wantGet, "%24", "$")
	if reqs[0].URL != wantGet {
		t.Errorf("GET URL\n got %s\nwant %s", reqs[0].URL, wantGet)
	}
	var filter string
	if u := reqs[1].URL; strings.Contains(u, "?") {
		q, _ := parseQuery(u)
		filter = q
	}
	wantFilter := `singleValueExtendedProperties/Any(ep: ep/id eq 'String {66f5a359-4659-4830-9070-00040ec6ac6e} Name D365BookingId' and ep/value eq 'O''Brien''s booking')`
	if filter != wantFilter {
		t.Errorf("$filter\n got %s\nwant %s", filter, wantFilter)
	}
	if strings.Contains(reqs[1].URL, "+") {
		t.Errorf("spaces must be sent as %%20, got %s", reqs[1].URL)
	}
}

func parseQuery(u string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	return req.URL.Query().Get("$filter"), nil
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", "'abc'"},
		{"O'Brien", "'O''Brien'"},
		{"''", "''''''"},
		{"", "''"},
	}
	for _, tt := range tests {
		if got := quote(tt.in); got != tt.want {
			t.Errorf("quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestCalendarView(t *testing.T) {
	c, fg := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("$skiptoken") == "" {
			writeJSON(w, 200, `{"value":[{"id":"a"}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/users/u/calendarView?$skiptoken=2"}`)
			return
		}
		writeJSON(w, 200, `{"value":[{"id":"b"}]}`)
	})
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	evs, err := c.CalendarView(context.Background(), "u", start, start.AddDate(0, 0, 7))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Errorf("%d events", len(evs))
	}
	// Pages of 500, not Outlook's default 10; the nextLink is followed as is.
	want := "https://graph.microsoft.com/v1.0/users/u/calendarView?$top=500&endDateTime=2026-12-08T00%3A00%3A00.0000000Z&startDateTime=2026-12-01T00%3A00%3A00.0000000Z"
	reqs := fg.requests()
	if got := reqs[0].URL; got != want {
		t.Errorf("URL\n got %s\nwant %s", got, want)
	}
	if got := reqs[1].URL; got != "https://graph.microsoft.com/v1.0/users/u/calendarView?$skiptoken=2" {
		t.Errorf("second page URL %s, want the nextLink", got)
	}
	if _, err := c.CalendarView(context.Background(), "u", start, start); err == nil {
		t.Error("empty window accepted")
	}
}

func TestCalendarViewDelta(t *testing.T) {
	delta := readTestdata(t, "delta_response.json")
	c, fg := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Query().Get("$deltatoken") == "expired":
			writeJSON(w, 410, `{"error":{"code":"syncStateNotFound","message":"The sync state was not found."}}`)
		case r.URL.Query().Get("$skiptoken") == "p2":
			_, _ = w.Write(delta)
		case r.URL.Query().Get("$deltatoken") != "":
			writeJSON(w, 200, `{"value":[],"@odata.deltaLink":"https://graph.microsoft.com/v1.0/me/calendarView/delta?$deltatoken=next"}`)
		default:
			writeJSON(w, 200, `{"value":[{"id":"first","subject":"page one"}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/users/u/calendarView/delta?$skiptoken=p2"}`)
		}
	})
	start := time.Date(2016, 12, 1, 0, 0, 0, 0, time.UTC)
	res, err := c.CalendarViewDelta(context.Background(), "u", start, start.AddDate(0, 1, 0), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := fg.requests()[0].URL; got != "https://graph.microsoft.com/v1.0/users/u/calendarView/delta?endDateTime=2017-01-01T00%3A00%3A00.0000000Z&startDateTime=2016-12-01T00%3A00%3A00.0000000Z" {
		t.Errorf("first URL %s", got)
	}
	var ids []string
	for _, e := range res.Events {
		ids = append(ids, e.ID)
	}
	if strings.Join(ids, ",") != "first,AAMkADj1HvAAA=" {
		t.Errorf("events %v", ids)
	}
	if len(res.Removed) != 1 || res.Removed[0] != "AAMkADk0MGFk…AAA=" {
		t.Errorf("removed %v", res.Removed)
	}
	if res.DeltaLink != "https://graph.microsoft.com/v1.0/me/calendarView/delta?$deltatoken=R0usmcFuQtZdtpk4" {
		t.Errorf("deltaLink %s", res.DeltaLink)
	}
	end, err := res.Events[1].End.Time()
	if err != nil || !end.Equal(time.Date(2016, 12, 25, 7, 30, 0, 0, time.UTC)) {
		t.Errorf("end = %v, %v", end, err)
	}

	// Continue from the stored deltaLink.
	res2, err := c.CalendarViewDelta(context.Background(), "u", time.Time{}, time.Time{}, res.DeltaLink)
	if err != nil {
		t.Fatal(err)
	}
	if res2.DeltaLink != "https://graph.microsoft.com/v1.0/me/calendarView/delta?$deltatoken=next" || len(res2.Events) != 0 {
		t.Errorf("second round %+v", res2)
	}

	_, err = c.CalendarViewDelta(context.Background(), "u", time.Time{}, time.Time{}, "https://graph.microsoft.com/v1.0/me/calendarView/delta?$deltatoken=expired")
	if !errors.Is(err, ErrSyncStateNotFound) {
		t.Errorf("err = %v, want ErrSyncStateNotFound", err)
	}
}

func TestCalendarViewDeltaPageWithoutLinks(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, `{"value":[]}`) })
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := c.CalendarViewDelta(context.Background(), "u", start, start.Add(time.Hour), ""); err == nil {
		t.Error("a final page without deltaLink was accepted")
	}
}

func TestGetUser(t *testing.T) {
	c, fg := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"id":"u1","displayName":"Tech One","mail":"tech@contoso.com","userPrincipalName":"tech@contoso.com"}`)
	})
	u, err := c.GetUser(context.Background(), "tech@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&User{ID: "u1", DisplayName: "Tech One", Mail: "tech@contoso.com", UserPrincipalName: "tech@contoso.com"}, u); diff != "" {
		t.Error(diff)
	}
	if got := fg.requests()[0].URL; got != "https://graph.microsoft.com/v1.0/users/tech@contoso.com?$select=id%2CdisplayName%2Cmail%2CuserPrincipalName" {
		t.Errorf("URL %s", got)
	}
}

func TestBatch(t *testing.T) {
	c, fg := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1.0/$batch" {
			writeJSON(w, 404, `{}`)
			return
		}
		// Out of order, with an inner failure.
		writeJSON(w, 200, `{"responses":[
			{"id":"2","status":424,"body":{"error":{"code":"FailedDependency","message":"dependency failed"}}},
			{"id":"1","status":412,"headers":{"Content-Type":"application/json"},"body":{"error":{"code":"ErrorIrresolvableConflict","message":"stale","innerError":{"request-id":"in-1"}}}},
			{"id":"3","status":200,"body":{"id":"ev-3","subject":"ok"}}
		]}`)
	})
	reqs := []BatchRequest{
		{ID: "1", Method: "patch", URL: "/users/" + userID + "/events/ev-1", Headers: map[string]string{"If-Match": `W/"x"`}, Body: EventPatch{Subject: new("x")}},
		{ID: "2", Method: "GET", URL: "https://graph.microsoft.com/v1.0/users/" + userID + "/events/ev-1", DependsOn: []string{"1"}},
		{ID: "3", Method: "GET", URL: "users/other@contoso.com/events/ev-3"},
	}
	resps, err := c.Batch(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "batch.json", fg.requests()[0].Body)
	for i, r := range resps {
		if r.ID != reqs[i].ID {
			t.Errorf("response %d has id %s", i, r.ID)
		}
	}
	if err := resps[0].Err(); !errors.Is(err, ErrPreconditionFailed) || !errors.Is(err, ErrConflict) {
		t.Errorf("resp 1 err = %v", err)
	}
	if resps[1].Status != 424 || resps[1].Err() == nil {
		t.Errorf("resp 2 = %+v", resps[1])
	}
	var ev Event
	if err := resps[2].Decode(&ev); err != nil || ev.ID != "ev-3" || resps[2].Err() != nil {
		t.Errorf("resp 3 = %+v, %v", ev, err)
	}
}

func TestBatchValidation(t *testing.T) {
	many := make([]BatchRequest, 21)
	for i := range many {
		many[i] = BatchRequest{ID: fmt.Sprint(i + 1), Method: "GET", URL: "/me"}
	}
	tests := []struct {
		name string
		reqs []BatchRequest
		want string
	}{
		{"empty", nil, "no requests"},
		{"too many", many, "21 requests, Graph allows at most 20"},
		{"duplicate id", []BatchRequest{{ID: "1", Method: "GET", URL: "/a"}, {ID: "1", Method: "GET", URL: "/b"}}, "duplicate request id"},
		{"missing id", []BatchRequest{{Method: "GET", URL: "/a"}}, "without id"},
		{"unknown dependency", []BatchRequest{{ID: "1", Method: "GET", URL: "/a", DependsOn: []string{"9"}}}, "unknown request"},
		{"foreign url", []BatchRequest{{ID: "1", Method: "GET", URL: "https://evil.example/v1.0/a"}}, "not under"},
		{"missing method", []BatchRequest{{ID: "1", URL: "/a"}}, "without method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, fg := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, `{"responses":[]}`) })
			_, err := c.Batch(context.Background(), tt.reqs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
			if len(fg.requests()) != 0 {
				t.Error("invalid batch was sent")
			}
		})
	}
	// Exactly 20 is allowed; a missing response is an error.
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"responses":[{"id":"1","status":200}]}`)
	})
	if _, err := c.Batch(context.Background(), many[:20]); err == nil || !strings.Contains(err.Error(), `no response for request "2"`) {
		t.Errorf("err = %v", err)
	}
}

func TestMailboxConcurrencyLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu       sync.Mutex
			inFlight = map[string]int{}
			peak     = map[string]int{}
		)
		fg := &fakeGraph{handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mb := strings.ToLower(strings.Split(r.URL.Path, "/")[3])
			mu.Lock()
			inFlight[mb]++
			peak[mb] = max(peak[mb], inFlight[mb])
			mu.Unlock()
			time.Sleep(time.Second) // fake clock: the handler "takes" 1s
			mu.Lock()
			inFlight[mb]--
			mu.Unlock()
			writeJSON(w, 200, `{"id":"x"}`)
		})}
		c, err := New(&http.Client{Transport: fg}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 24 {
			mb := []string{"Tech-A@contoso.com", "tech-a@contoso.com", "tech-b@contoso.com"}[i%3]
			wg.Go(func() {
				if _, err := c.GetEvent(context.Background(), mb, "ev", ""); err != nil {
					t.Error(err)
				}
			})
		}
		start := time.Now()
		wg.Wait()
		// Mailbox ids are case-insensitive: A gets 16 requests, B 8; 4 at a time.
		if peak["tech-a@contoso.com"] != 4 || peak["tech-b@contoso.com"] != 4 {
			t.Errorf("peaks %v", peak)
		}
		if el := time.Since(start); el != 4*time.Second {
			t.Errorf("elapsed %v, want 4s (16 requests / 4 slots)", el)
		}
	})
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	for _, u := range []string{"graph.microsoft.com", "ftp://x/v1.0", "://"} {
		if _, err := New(http.DefaultClient, Options{BaseURL: u}); err == nil {
			t.Errorf("New accepted %q", u)
		}
	}
	c, err := New(http.DefaultClient, Options{BaseURL: "https://127.0.0.1:8443/v1.0/"})
	if err != nil || c.BaseURL() != "https://127.0.0.1:8443/v1.0" {
		t.Errorf("BaseURL = %q, %v", c.BaseURL(), err)
	}
}
