package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/metrics"
	"github.com/bookingsync/bookingsync/internal/store"
)

// recordingIntake stores what it is given, once per DedupeKey, as the
// inbox's unique index does.
type recordingIntake struct {
	mu   sync.Mutex
	keys map[string]bool
	rows []store.Notification
}

func (r *recordingIntake) Submit(_ context.Context, ns []store.Notification) (store.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys == nil {
		r.keys = map[string]bool{}
	}
	var res store.Result
	for _, n := range ns {
		if r.keys[n.DedupeKey] {
			res.Duplicates++
			continue
		}
		r.keys[n.DedupeKey] = true
		r.rows = append(r.rows, n)
		res.Inserted++
	}
	return res, nil
}

func (r *recordingIntake) stored() []store.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.Notification(nil), r.rows...)
}

// countingBackend is an admin backend that counts the calls reaching it.
type countingBackend struct {
	fakeConflicts
	mu    sync.Mutex
	calls int
}

func (c *countingBackend) hit() {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
}

func (c *countingBackend) Status(ctx context.Context) ([]ResourceStatus, error) {
	c.hit()
	return c.fakeConflicts.Status(ctx)
}

func (c *countingBackend) RenewSubscriptions(ctx context.Context, r string) (int, error) {
	c.hit()
	if r != "" && r != "r1" {
		return 0, fmt.Errorf("%w: %s", ErrUnknownResource, r)
	}
	return 1, nil
}

func (c *countingBackend) DeleteSubscriptions(ctx context.Context, r string) (int, error) {
	c.hit()
	return 0, fmt.Errorf("%w: %s", ErrUnknownResource, r)
}

const (
	hostileAdminToken = "admin-token-9f8e7d6c5b4a"
	lifecycleSubID    = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
)

// hostileDVBody is a valid bookableresourcebooking webhook with the given
// PrimaryEntityId (which is placed into the JSON verbatim).
func hostileDVBody(entity, id string) string {
	return `{"CorrelationId":"00000000-0000-0000-0000-0000000000c1","MessageName":"Update","OperationId":"00000000-0000-0000-0000-0000000000a1",` +
		`"RequestId":"00000000-0000-0000-0000-0000000000b1","InputParameters":[],"OutputParameters":[],"PostEntityImages":[],"PreEntityImages":[],` +
		`"PrimaryEntityId":` + id + `,"PrimaryEntityName":"` + entity + `","Stage":40,"Depth":1}`
}

func lifecycleBody(sub, clientState, event string) string {
	return `{"value":[{"subscriptionId":"` + sub + `","subscriptionExpirationDateTime":"2030-01-01T00:00:00Z","lifecycleEvent":"` + event + `",` +
		`"resource":"Users/mbx/Events","clientState":"` + clientState + `","tenantId":"t"}]}`
}

func graphItemWithID(id string) string {
	return `{"value":[{"subscriptionId":"` + subID + `","subscriptionExpirationDateTime":"2030-01-01T00:00:00Z","changeType":"updated",` +
		`"resource":"Users/mbx/Events/x","resourceData":{"id":` + id + `,"@odata.etag":"W/\"1\""},"clientState":"` + secret + `"}]}`
}

// leakDenyList are substrings no response body of ours may contain: Go
// error texts, source paths, stack traces, the secrets the test holds.
var leakDenyList = []string{
	"goroutine ", "panic", ".go:", "runtime.", "json:", "invalid character", "unexpected end of JSON",
	"cannot unmarshal", "/work/", "/home/", "internal/", "github.com/", "sql:", "sqlite", "http: ",
	"MaxBytesError", "request body too large", "remote execution context", "graph: malformed",
	secret, dvKey, hostileAdminToken,
}

// TestHostileInput is the hostile-input corpus: every public endpoint and
// the admin API refuse what they should, store nothing they should not,
// never panic and leak nothing in their answers.
func TestHostileInput(t *testing.T) {
	in := &recordingIntake{}
	subs := fakeSubs{
		subID:          {ID: subID, Mailbox: "mbx", ClientStateHash: store.HashClientState(secret)},
		lifecycleSubID: {ID: lifecycleSubID, Mailbox: "mbx", ClientStateHash: store.HashClientState(secret)},
	}
	logs := &syncWriter{w: &bytes.Buffer{}}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := NewServer(Config{MaxBodyBytes: 64 << 10, DataverseKey: func() string { return dvKey }}, subs, in, logger, metrics.New())
	backend := &countingBackend{}
	mux := http.NewServeMux()
	mux.Handle("/notifications/", srv.PublicHandler())
	mux.Handle("/", srv.AdminHandler(AdminConfig{Token: func() string { return hostileAdminToken }}, backend))
	// A real listener, so header limits and raw request lines are the
	// server's, not a recorder's.
	l := &Listener{Name: "hostile", Addr: "127.0.0.1:0", Handler: mux, Logger: logger}
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	base := l.URL()
	client := &http.Client{Timeout: 10 * time.Second}

	const (
		json     = "application/json"
		graphEP  = "/notifications/graph"
		lifeEP   = "/notifications/graph/lifecycle"
		dvEP     = "/notifications/dataverse"
		dvKeyed  = dvEP + "?code=" + dvKey
		goodID   = `"3f0a1a8e-8f1e-4c1f-9a57-0d5b1e2c3d4e"`
		bookings = "bookableresourcebooking"
	)
	valid := notification(subID, secret)
	deep := `{"value":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	deepObj := `{"value":[{"subscriptionId":"` + subID + `","x":` + strings.Repeat(`{"a":[`, 5500) + `1` + strings.Repeat(`]}`, 5500) + `}]}`
	hugeArray := `{"value":[` + strings.Repeat(`{},`, 5000) + `{}]}`
	overLimitArray := `{"value":[` + strings.Repeat(`1,`, 40000) + `1]}`
	bigToken := strings.Repeat("A", MaxValidationTokenBytes+1)
	auth := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	ct := func(v string) http.Header { return http.Header{"Content-Type": {v}} }
	withKey := func(k string) http.Header {
		return http.Header{"Content-Type": {json}, "X-Bookingsync-Key": {k}}
	}

	type row struct {
		name     string
		endpoint string // path and query, sent verbatim
		method   string
		headers  http.Header
		body     string
		status   int
		stored   int    // rows the intake holds after this case (cumulative is checked as a delta)
		echo     string // the exact body expected (validation handshakes)
		backend  bool   // the admin backend may be reached
	}
	rows := []row{
		// Graph change notifications: shape.
		{name: "graph: valid notification stored", endpoint: graphEP, method: "POST", headers: ct(json), body: valid, status: 202, stored: 1},
		{name: "graph: replay of the same notification stored once", endpoint: graphEP, method: "POST", headers: ct(json), body: valid, status: 202},
		{name: "graph: replay again with charset", endpoint: graphEP, method: "POST", headers: ct(json + "; charset=utf-8"), body: valid, status: 202},
		{name: "graph: empty body", endpoint: graphEP, method: "POST", headers: ct(json), body: "", status: 400},
		{name: "graph: truncated JSON", endpoint: graphEP, method: "POST", headers: ct(json), body: valid[:len(valid)/2], status: 400},
		{name: "graph: truncated by one byte", endpoint: graphEP, method: "POST", headers: ct(json), body: valid[:len(valid)-1], status: 400},
		{name: "graph: trailing garbage", endpoint: graphEP, method: "POST", headers: ct(json), body: valid + `{"x":1}`, status: 400},
		{name: "graph: JSON null", endpoint: graphEP, method: "POST", headers: ct(json), body: "null", status: 400},
		{name: "graph: array body", endpoint: graphEP, method: "POST", headers: ct(json), body: `[` + valid + `]`, status: 400},
		{name: "graph: value is an object", endpoint: graphEP, method: "POST", headers: ct(json), body: `{"value":{"a":1}}`, status: 400},
		{name: "graph: value is null", endpoint: graphEP, method: "POST", headers: ct(json), body: `{"value":null}`, status: 400},
		{name: "graph: invalid UTF-8 and NUL", endpoint: graphEP, method: "POST", headers: ct(json), body: "{\"value\":[\xff\x00]}", status: 400},
		{name: "graph: item without subscriptionId", endpoint: graphEP, method: "POST", headers: ct(json), body: `{"value":[{"changeType":"updated","resource":"r","subscriptionExpirationDateTime":"2030-01-01T00:00:00Z"}]}`, status: 400},
		{name: "graph: unknown changeType", endpoint: graphEP, method: "POST", headers: ct(json), body: strings.Replace(valid, `"updated"`, `"exploded"`, 1), status: 400},
		{name: "graph: text/html content type", endpoint: graphEP, method: "POST", headers: ct("text/html"), body: valid, status: 415},
		{name: "graph: text/plain content type", endpoint: graphEP, method: "POST", headers: ct("text/plain"), body: valid, status: 415},
		{name: "graph: form content type", endpoint: graphEP, method: "POST", headers: ct("application/x-www-form-urlencoded"), body: valid, status: 415},
		{name: "graph: unparsable content type", endpoint: graphEP, method: "POST", headers: ct("application/json; ;;=="), body: valid, status: 415},
		{name: "graph: body over the limit", endpoint: graphEP, method: "POST", headers: ct(json), body: `{"value":[],"pad":"` + strings.Repeat("x", 70<<10) + `"}`, status: 413},
		{name: "graph: deeply nested arrays", endpoint: graphEP, method: "POST", headers: ct(json), body: deep, status: 400},
		{name: "graph: deeply nested object in an item", endpoint: graphEP, method: "POST", headers: ct(json), body: deepObj, status: 400},
		{name: "graph: huge array of empty items", endpoint: graphEP, method: "POST", headers: ct(json), body: hugeArray, status: 400},
		{name: "graph: huge array over the limit", endpoint: graphEP, method: "POST", headers: ct(json), body: overLimitArray, status: 413},
		{name: "graph: GET not allowed", endpoint: graphEP, method: "GET", status: 405},
		{name: "graph: PUT not allowed", endpoint: graphEP, method: "PUT", headers: ct(json), body: valid, status: 405},
		// Graph: who is asking.
		{name: "graph: unknown subscription id dropped", endpoint: graphEP, method: "POST", headers: ct(json), body: notification("00000000-0000-0000-0000-000000000000", secret), status: 202},
		{name: "graph: subscription id with quotes dropped", endpoint: graphEP, method: "POST", headers: ct(json), body: notification(`x' or '1'='1`, secret), status: 202},
		{name: "graph: subscription id with slashes and dots dropped", endpoint: graphEP, method: "POST", headers: ct(json), body: notification(`../../subscriptions`, secret), status: 202},
		{name: "graph: missing clientState dropped", endpoint: graphEP, method: "POST", headers: ct(json), body: strings.Replace(valid, `"clientState":"`+secret+`",`, "", 1), status: 202},
		{name: "graph: empty clientState dropped", endpoint: graphEP, method: "POST", headers: ct(json), body: notification(subID, ""), status: 202},
		{name: "graph: wrong clientState dropped", endpoint: graphEP, method: "POST", headers: ct(json), body: notification(subID, "guess"), status: 202},
		{name: "graph: clientState with a suffix dropped", endpoint: graphEP, method: "POST", headers: ct(json), body: notification(subID, secret+"x"), status: 202},
		{name: "graph: clientState differing in case dropped", endpoint: graphEP, method: "POST", headers: ct(json), body: notification(subID, strings.ToUpper(secret)), status: 202},
		{name: "graph: clientState of the wrong JSON type", endpoint: graphEP, method: "POST", headers: ct(json), body: strings.Replace(valid, `"clientState":"`+secret+`"`, `"clientState":{"$ne":null}`, 1), status: 400},
		// Graph: ids that try to be paths or filters. The item is verified,
		// so it is stored, verbatim and as data, and only once.
		{name: "graph: event id with quote and OData operator", endpoint: graphEP, method: "POST", headers: ct(json), body: graphItemWithID(`"AAA' or 1 eq 1 or id eq '"`), status: 202, stored: 1},
		{name: "graph: event id with ../", endpoint: graphEP, method: "POST", headers: ct(json), body: graphItemWithID(`"../../users/other/events"`), status: 202, stored: 1},
		{name: "graph: event id percent-encoded", endpoint: graphEP, method: "POST", headers: ct(json), body: graphItemWithID(`"%2e%2e%2f%3F%23"`), status: 202, stored: 1},
		{name: "graph: event id replayed", endpoint: graphEP, method: "POST", headers: ct(json), body: graphItemWithID(`"%2e%2e%2f%3F%23"`), status: 202},
		// Validation handshake.
		{name: "validation: HTML echoed as text", endpoint: graphEP + "?validationToken=%3Ch1%3Ehi%3C%2Fh1%3E", method: "POST", headers: ct("text/plain"), status: 200, echo: "<h1>hi</h1>"},
		{name: "validation: script echoed as text", endpoint: graphEP + "?validationToken=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E", method: "POST", status: 200, echo: "<script>alert(document.cookie)</script>"},
		{name: "validation: CRLF stays in the body", endpoint: graphEP + "?validationToken=a%0D%0AContent-Type%3A+text%2Fhtml%0D%0A%0D%0A%3Cb%3E", method: "POST", status: 200, echo: "a\r\nContent-Type: text/html\r\n\r\n<b>"},
		{name: "validation: lifecycle endpoint, script", endpoint: lifeEP + "?validationToken=%3Cimg+src%3Dx+onerror%3Dalert(1)%3E", method: "POST", status: 200, echo: "<img src=x onerror=alert(1)>"},
		{name: "validation: exactly 4 KiB", endpoint: graphEP + "?validationToken=" + bigToken[:MaxValidationTokenBytes], method: "POST", status: 200, echo: bigToken[:MaxValidationTokenBytes]},
		{name: "validation: over 4 KiB", endpoint: graphEP + "?validationToken=" + bigToken, method: "POST", status: 400},
		{name: "validation: over 4 KiB on lifecycle", endpoint: lifeEP + "?validationToken=" + bigToken, method: "POST", status: 400},
		{name: "validation: malformed escape", endpoint: graphEP + "?validationToken=%zz%3Cscript%3E", method: "POST", status: 400},
		{name: "validation: given twice", endpoint: graphEP + "?validationToken=a&validationToken=%3Cb%3E", method: "POST", status: 400},
		{name: "validation: with a body that is not JSON, nothing stored", endpoint: graphEP + "?validationToken=t", method: "POST", headers: ct(json), body: valid, status: 200, echo: "t"},
		// Lifecycle notifications.
		{name: "lifecycle: valid reauthorizationRequired stored", endpoint: lifeEP, method: "POST", headers: ct(json), body: lifecycleBody(lifecycleSubID, secret, "reauthorizationRequired"), status: 202, stored: 1},
		{name: "lifecycle: replay stored once", endpoint: lifeEP, method: "POST", headers: ct(json), body: lifecycleBody(lifecycleSubID, secret, "reauthorizationRequired"), status: 202},
		{name: "lifecycle: wrong clientState dropped", endpoint: lifeEP, method: "POST", headers: ct(json), body: lifecycleBody(lifecycleSubID, "nope", "subscriptionRemoved"), status: 202},
		{name: "lifecycle: missing clientState dropped", endpoint: lifeEP, method: "POST", headers: ct(json), body: strings.Replace(lifecycleBody(lifecycleSubID, "", "missed"), `"clientState":"",`, "", 1), status: 202},
		{name: "lifecycle: unknown subscription dropped", endpoint: lifeEP, method: "POST", headers: ct(json), body: lifecycleBody("11111111-1111-1111-1111-111111111111", secret, "missed"), status: 202},
		{name: "lifecycle: both changeType and lifecycleEvent", endpoint: lifeEP, method: "POST", headers: ct(json), body: strings.Replace(lifecycleBody(lifecycleSubID, secret, "missed"), `"lifecycleEvent"`, `"changeType":"updated","lifecycleEvent"`, 1), status: 400},
		{name: "lifecycle: truncated", endpoint: lifeEP, method: "POST", headers: ct(json), body: `{"value":[{"subscriptionId":"` + lifecycleSubID, status: 400},
		{name: "lifecycle: wrong content type", endpoint: lifeEP, method: "POST", headers: ct("application/xml"), body: lifecycleBody(lifecycleSubID, secret, "missed"), status: 415},
		// Dataverse webhooks: the key.
		{name: "dataverse: no key", endpoint: dvEP, method: "POST", headers: ct(json), body: hostileDVBody(bookings, goodID), status: 401},
		{name: "dataverse: wrong key in ?code=", endpoint: dvEP + "?code=" + dvKey[:len(dvKey)-1], method: "POST", headers: ct(json), body: hostileDVBody(bookings, goodID), status: 401},
		{name: "dataverse: wrong key in the header", endpoint: dvEP, method: "POST", headers: withKey("guess"), body: hostileDVBody(bookings, goodID), status: 401},
		{name: "dataverse: key with a suffix", endpoint: dvEP, method: "POST", headers: withKey(dvKey + "0"), body: hostileDVBody(bookings, goodID), status: 401},
		{name: "dataverse: empty ?code= and wrong header", endpoint: dvEP + "?code=", method: "POST", headers: withKey("x"), body: hostileDVBody(bookings, goodID), status: 401},
		{name: "dataverse: key percent-encoded twice", endpoint: dvEP + "?code=" + url.QueryEscape(url.QueryEscape(dvKey+"/")), method: "POST", headers: ct(json), body: hostileDVBody(bookings, goodID), status: 401},
		{name: "dataverse: key as a bearer token", endpoint: dvEP, method: "POST", headers: http.Header{"Content-Type": {json}, "Authorization": {"Bearer " + dvKey}}, body: hostileDVBody(bookings, goodID), status: 401},
		// Dataverse: the body.
		{name: "dataverse: valid webhook stored", endpoint: dvKeyed, method: "POST", headers: ct(json), body: hostileDVBody(bookings, goodID), status: 200, stored: 1},
		{name: "dataverse: replay stored once", endpoint: dvKeyed, method: "POST", headers: ct(json), body: hostileDVBody(bookings, goodID), status: 200},
		{name: "dataverse: truncated", endpoint: dvKeyed, method: "POST", headers: ct(json), body: hostileDVBody(bookings, goodID)[:80], status: 400},
		{name: "dataverse: not an object", endpoint: dvKeyed, method: "POST", headers: ct(json), body: `"Update"`, status: 400},
		{name: "dataverse: wrong content type", endpoint: dvKeyed, method: "POST", headers: ct("text/xml"), body: hostileDVBody(bookings, goodID), status: 415},
		{name: "dataverse: over the limit", endpoint: dvKeyed, method: "POST", headers: ct(json), body: strings.Replace(hostileDVBody(bookings, goodID), `"Stage":40`, `"Stage":40,"pad":"`+strings.Repeat("y", 70<<10)+`"`, 1), status: 413},
		{name: "dataverse: deeply nested ParentContext", endpoint: dvKeyed, method: "POST", headers: ct(json), body: strings.Repeat(`{"MessageName":"Update","PrimaryEntityName":"x","PrimaryEntityId":`+goodID+`,"ParentContext":`, 500) + "null" + strings.Repeat("}", 500), status: 400},
		{name: "dataverse: deeply nested arrays", endpoint: dvKeyed, method: "POST", headers: ct(json), body: `{"InputParameters":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, status: 400},
		{name: "dataverse: id with a quote", endpoint: dvKeyed, method: "POST", headers: ct(json), body: hostileDVBody(bookings, `"3f0a1a8e-8f1e-4c1f-9a57-0d5b1e2c3d4' or 1 eq 1"`), status: 400},
		{name: "dataverse: id with slashes and ..", endpoint: dvKeyed, method: "POST", headers: ct(json), body: hostileDVBody(bookings, `"../../bookableresources(3f0a1a8e-8f1e-4c1f-9a57-0d5b1e2c3d4e)"`), status: 400},
		{name: "dataverse: id braced", endpoint: dvKeyed, method: "POST", headers: ct(json), body: hostileDVBody(bookings, `"{3f0a1a8e-8f1e-4c1f-9a57-0d5b1e2c3d4e}"`), status: 400},
		{name: "dataverse: id percent-encoded", endpoint: dvKeyed, method: "POST", headers: ct(json), body: hostileDVBody(bookings, `"3f0a1a8e%2D8f1e%2D4c1f%2D9a57%2D0d5b1e2c3d4e"`), status: 400},
		{name: "dataverse: id with OData operator", endpoint: dvKeyed, method: "POST", headers: ct(json), body: hostileDVBody(bookings, `"3f0a1a8e-8f1e-4c1f-9a57 or true eq tru"`), status: 400},
		{name: "dataverse: id is a number", endpoint: dvKeyed, method: "POST", headers: ct(json), body: hostileDVBody(bookings, `42`), status: 400},
		{name: "dataverse: entity we do not sync ignored", endpoint: dvKeyed, method: "POST", headers: ct(json), body: hostileDVBody("systemuser", goodID), status: 200},
		{name: "dataverse: entity name with a quote ignored", endpoint: dvKeyed, method: "POST", headers: ct(json), body: hostileDVBody(`bookableresourcebooking' or '`, goodID), status: 200},
		// Oversized headers (the listener allows 64 KiB).
		{name: "graph: oversized header", endpoint: graphEP, method: "POST", headers: http.Header{"Content-Type": {json}, "X-Pad": {strings.Repeat("h", 80<<10)}}, body: valid, status: 431},
		{name: "dataverse: oversized key header", endpoint: dvEP, method: "POST", headers: withKey(strings.Repeat("k", 80<<10)), body: hostileDVBody(bookings, goodID), status: 431},
		{name: "dataverse: long wrong key under the limit", endpoint: dvEP, method: "POST", headers: withKey(strings.Repeat("k", 32<<10)), body: hostileDVBody(bookings, goodID), status: 401},
		// The admin API.
		{name: "admin: status without a token", endpoint: "/api/v1/status", method: "GET", status: 401},
		{name: "admin: status with a wrong token", endpoint: "/api/v1/status", method: "GET", headers: auth("nope"), status: 401},
		{name: "admin: token as a prefix", endpoint: "/api/v1/status", method: "GET", headers: auth(hostileAdminToken[:10]), status: 401},
		{name: "admin: token with a suffix", endpoint: "/api/v1/status", method: "GET", headers: auth(hostileAdminToken + "x"), status: 401},
		{name: "admin: lower-case bearer scheme", endpoint: "/api/v1/status", method: "GET", headers: http.Header{"Authorization": {"bearer " + hostileAdminToken}}, status: 401},
		{name: "admin: basic scheme", endpoint: "/api/v1/status", method: "GET", headers: http.Header{"Authorization": {"Basic " + hostileAdminToken}}, status: 401},
		{name: "admin: token in the query", endpoint: "/api/v1/status?token=" + hostileAdminToken + "&access_token=" + hostileAdminToken, method: "GET", status: 401},
		{name: "admin: renew without a token", endpoint: "/api/v1/subscriptions/renew", method: "POST", status: 401},
		{name: "admin: delete with a wrong token", endpoint: "/api/v1/subscriptions/delete?resource=r1", method: "POST", headers: auth("x"), status: 401},
		{name: "admin: metrics without a token", endpoint: "/metrics", method: "GET", status: 401},
		{name: "admin: path traversal to metrics", endpoint: "/api/v1/../../metrics", method: "GET", status: 401},
		{name: "admin: oversized authorization header", endpoint: "/api/v1/status", method: "GET", headers: auth(strings.Repeat("t", 80<<10)), status: 431},
		{name: "admin: status with the token", endpoint: "/api/v1/status", method: "GET", headers: auth(hostileAdminToken), status: 200, backend: true},
		{name: "admin: renew a resource named with a quote", endpoint: "/api/v1/subscriptions/renew?resource=" + url.QueryEscape(`r1' or '1'='1`), method: "POST", headers: auth(hostileAdminToken), status: 404, backend: true},
		{name: "admin: renew a resource named ../", endpoint: "/api/v1/subscriptions/renew?resource=..%2F..%2Fetc", method: "POST", headers: auth(hostileAdminToken), status: 404, backend: true},
		{name: "admin: delete without a resource", endpoint: "/api/v1/subscriptions/delete", method: "POST", headers: auth(hostileAdminToken), status: 400},
	}
	if len(rows) < 50 {
		t.Fatalf("corpus has %d cases, want at least 50", len(rows))
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			storedBefore := len(in.stored())
			backend.mu.Lock()
			callsBefore := backend.calls
			backend.mu.Unlock()

			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, base+tc.endpoint, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range tc.headers {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()

			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d (%.200q)", resp.StatusCode, tc.status, got)
			}
			if n := len(in.stored()) - storedBefore; n != tc.stored {
				t.Errorf("stored %d rows, want %d", n, tc.stored)
			}
			backend.mu.Lock()
			reached := backend.calls != callsBefore
			backend.mu.Unlock()
			if reached && !tc.backend {
				t.Error("the admin backend was reached")
			}
			if tc.echo != "" {
				if string(got) != tc.echo {
					t.Errorf("echo %q, want %q", got, tc.echo)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
					t.Errorf("echo Content-Type %q", ct)
				}
			}
			if resp.StatusCode != 431 && resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no nosniff")
			}
			if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "html") {
				t.Errorf("answered as %s", ct)
			}
			if tc.echo == "" {
				lower := strings.ToLower(string(got))
				for _, bad := range leakDenyList {
					if strings.Contains(lower, strings.ToLower(bad)) {
						t.Errorf("response leaks %q: %.300q", bad, got)
					}
				}
			}
		})
	}

	// What was stored is what was verified, and no secret went with it.
	for _, n := range in.stored() {
		if n.SubscriptionID != "" && n.SubscriptionID != subID && n.SubscriptionID != lifecycleSubID {
			t.Errorf("stored a row for subscription %q", n.SubscriptionID)
		}
		if bytes.Contains(n.Payload, []byte(secret)) {
			t.Errorf("stored the clientState in %s", n.Payload)
		}
	}
	if l := logs.String(); strings.Contains(l, secret) || strings.Contains(l, dvKey) || strings.Contains(l, hostileAdminToken) {
		t.Errorf("a secret reached the log:\n%s", l)
	}
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("a handler panicked:\n%s", logs.String())
	}
}

// syncWriter serialises writes from concurrent handlers.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
