package dataverse

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

type received struct {
	query  map[string][]string
	header http.Header
	body   map[string]any
	size   int
}

// receiver is an httptest webhook target answering with the given statuses
// in turn (200 when they run out).
func receiver(t *testing.T, statuses ...int) (string, chan received) {
	t.Helper()
	ch := make(chan received, 16)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(data, &body)
		ch <- received{query: r.URL.Query(), header: r.Header.Clone(), body: body, size: len(data)}
		i := int(n.Add(1)) - 1
		if i < len(statuses) {
			w.WriteHeader(statuses[i])
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook", ch
}

func wait(t *testing.T, ch chan received) received {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second): // failure guard only
		t.Fatal("no webhook delivered")
	}
	return received{}
}

func (h *harness) idOf(rec *httptest.ResponseRecorder) string {
	h.t.Helper()
	if rec.Code != http.StatusNoContent {
		h.t.Fatalf("create: %d %s", rec.Code, rec.Body.String())
	}
	loc := rec.Header().Get("OData-EntityId")
	return loc[strings.LastIndex(loc, "(")+1 : len(loc)-1]
}

type image struct {
	typ   int
	alias string
	attrs string
}

// register creates a webhook the way the Plug-in Registration Tool does,
// through the Web API only: endpoint, message/filter lookup, step, images.
func (h *harness) register(url string, authtype int, authvalue, message, entity, filtering string, images ...image) string {
	h.t.Helper()
	ep := h.idOf(h.do("POST", "/serviceendpoints", map[string]any{
		"name": "bookingsync", "contract": 8, "url": url, "authtype": authtype, "authvalue": authvalue, "messageformat": 2}))
	msgs := values(h.json(h.do("GET", "/sdkmessages?$select=sdkmessageid&$filter=name eq '"+message+"'", nil), 200))
	msgID := msgs[0]["sdkmessageid"].(string)
	filters := values(h.json(h.do("GET", "/sdkmessagefilters?$select=sdkmessagefilterid&$filter=primaryobjecttypecode eq '"+entity+"' and _sdkmessageid_value eq "+msgID, nil), 200))
	step := map[string]any{
		"name": "bookingsync: " + message + " of " + entity, "stage": 40, "mode": 1, "rank": 1, "supporteddeployment": 0, "asyncautodelete": true,
		"eventhandler_serviceendpoint@odata.bind": "/serviceendpoints(" + ep + ")",
		"sdkmessageid@odata.bind":                 "/sdkmessages(" + msgID + ")",
		"sdkmessagefilterid@odata.bind":           "/sdkmessagefilters(" + filters[0]["sdkmessagefilterid"].(string) + ")",
	}
	if filtering != "" {
		step["filteringattributes"] = filtering
	}
	stepID := h.idOf(h.do("POST", "/sdkmessageprocessingsteps", step))
	for _, im := range images {
		prop := "Target"
		if message == "Delete" {
			prop = "Id"
		}
		h.idOf(h.do("POST", "/sdkmessageprocessingstepimages", map[string]any{
			"name": im.alias, "entityalias": im.alias, "imagetype": im.typ, "messagepropertyname": prop, "attributes": im.attrs,
			"sdkmessageprocessingstepid@odata.bind": "/sdkmessageprocessingsteps(" + stepID + ")"}))
	}
	return stepID
}

func attr(ent map[string]any, key string) any {
	for _, a := range ent["Attributes"].([]any) {
		kv := a.(map[string]any)
		if kv["key"] == key {
			return kv["value"]
		}
	}
	return "<absent>"
}

func param(list any, key string) map[string]any {
	for _, p := range list.([]any) {
		kv := p.(map[string]any)
		if kv["key"] == key {
			v, _ := kv["value"].(map[string]any)
			return v
		}
	}
	return nil
}

func TestWebhookUpdateWithFilteringAttributesAndImages(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	url, ch := receiver(t)
	stepID := h.register(url, 4, "secret-code", "Update", "bookableresourcebooking", "starttime,endtime,bookingstatus",
		image{0, "PreImage", "starttime,name"}, image{1, "PostImage", ""})
	id := h.createBooking("Hooked")

	// name is not a filtering attribute: no delivery. Deliveries are in
	// order, so the next one received must be for the starttime change.
	h.do("PATCH", "/bookableresourcebookings("+id+")", `{"name":"Renamed"}`)
	h.do("PATCH", "/bookableresourcebookings("+id+")", `{"starttime":"2026-03-02T08:00:00Z"}`, "X-Emulator-User: "+tenant.DemoUsers()[5].ID)
	got := wait(t, ch)

	if got.query["code"][0] != "secret-code" {
		t.Errorf("WebhookKey not sent as ?code=: %v", got.query)
	}
	for k, want := range map[string]string{"x-ms-dynamics-entity-name": "bookableresourcebooking", "x-ms-dynamics-request-name": "Update", "x-ms-dynamics-organization": "dv.example.test"} {
		if got.header.Get(k) != want {
			t.Errorf("header %s = %q, want %q", k, got.header.Get(k), want)
		}
	}
	b := got.body
	dispatcher := SystemUserID(tenant.DemoUsers()[5].ID)
	if b["MessageName"] != "Update" || b["PrimaryEntityName"] != "bookableresourcebooking" || b["PrimaryEntityId"] != id ||
		b["UserId"] != dispatcher || b["InitiatingUserId"] != dispatcher || b["Depth"] != float64(1) || b["Stage"] != float64(40) ||
		b["CorrelationId"] != got.header.Get("x-ms-correlation-request-id") {
		t.Fatalf("context %v", b)
	}
	if b["OwningExtension"].(map[string]any)["Id"] != stepID {
		t.Errorf("OwningExtension %v", b["OwningExtension"])
	}
	target := param(b["InputParameters"], "Target")
	if attr(target, "starttime") != "/Date(1772438400000)/" || attr(target, "name") != "<absent>" {
		t.Errorf("Target %v", target)
	}
	pre := param(b["PreEntityImages"], "PreImage")
	if attr(pre, "starttime") != "/Date(1772442000000)/" || attr(pre, "name") != "Renamed" || attr(pre, "endtime") != "<absent>" {
		t.Errorf("PreImage %v", pre)
	}
	post := param(b["PostEntityImages"], "PostImage")
	if attr(post, "starttime") != "/Date(1772438400000)/" || attr(post, "endtime") == "<absent>" {
		t.Errorf("PostImage %v", post)
	}
	bs, _ := attr(post, "bookingstatus").(map[string]any)
	if bs["LogicalName"] != "bookingstatus" || bs["Name"] != "Scheduled" {
		t.Errorf("bookingstatus reference %v", bs)
	}
	select {
	case extra := <-ch:
		t.Fatalf("unexpected second delivery %v", extra.body["MessageName"])
	default:
	}
}

func TestWebhookCreateDeleteAndAuthTypes(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	urlC, chC := receiver(t)
	urlD, chD := receiver(t)
	h.register(urlC, 5, `<settings><setting name="x-api-key" value="k1" /></settings>`, "Create", "bookableresourcebooking", "")
	h.register(urlD, 6, `<settings><setting name="token" value="t1" /></settings>`, "Delete", "bookableresourcebooking", "", image{0, "PreImage", ""})
	id := h.createBooking("Lifecycle")
	c := wait(t, chC)
	if c.header.Get("x-api-key") != "k1" || c.body["MessageName"] != "Create" || attr(param(c.body["InputParameters"], "Target"), "name") != "Lifecycle" {
		t.Fatalf("create delivery: %v %v", c.header, c.body)
	}
	if out := c.body["OutputParameters"].([]any); len(out) != 1 || out[0].(map[string]any)["value"] != id {
		t.Errorf("OutputParameters %v", out)
	}
	h.do("DELETE", "/bookableresourcebookings("+id+")", nil)
	d := wait(t, chD)
	target := param(d.body["InputParameters"], "Target")
	if d.query["token"][0] != "t1" || target["__type"] != "EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts" || target["Id"] != id {
		t.Fatalf("delete delivery: %v %v", d.query, target)
	}
	if attr(param(d.body["PreEntityImages"], "PreImage"), "name") != "Lifecycle" {
		t.Errorf("delete PreImage %v", d.body["PreEntityImages"])
	}
	// A resource update (the opt-in) is delivered too.
	urlR, chR := receiver(t)
	h.register(urlR, 4, "c", "Update", "bookableresource", "bsync_outlooksync")
	res := ResourceID(tenant.Technicians()[2].ID)
	h.do("PATCH", "/bookableresources("+res+")", `{"bsync_outlooksync":100000000}`)
	r := wait(t, chR)
	if r.body["PrimaryEntityName"] != "bookableresource" || attr(param(r.body["InputParameters"], "Target"), "bsync_outlooksync").(map[string]any)["Value"] != float64(100000000) {
		t.Fatalf("resource update %v", r.body)
	}
}

func TestWebhookRegistrationValidation(t *testing.T) {
	h := newHarness(t, "empty", Options{})
	for _, body := range []map[string]any{
		{"name": "x", "contract": 8, "url": "http://127.0.0.1/", "authtype": 5, "authvalue": "k: v"},
		{"name": "x", "contract": 8, "authtype": 4, "authvalue": "c"},
		{"name": "x", "contract": 8, "url": "http://127.0.0.1/", "authtype": 4},
	} {
		if rec := h.do("POST", "/serviceendpoints", body); rec.Code != 400 {
			t.Errorf("%v: %d", body, rec.Code)
		}
	}
	// authvalue is write-only.
	id := h.idOf(h.do("POST", "/serviceendpoints", map[string]any{"name": "x", "contract": 8, "url": "http://127.0.0.1/", "authtype": 4, "authvalue": "c"}))
	if m := h.json(h.do("GET", "/serviceendpoints("+id+")", nil), 200); m["authvalue"] != nil {
		t.Fatalf("authvalue readable: %v", m)
	}
}

func TestWebhookSizeLimit(t *testing.T) {
	h := newHarness(t, "demo", Options{})
	body := `{"@odata.type":"Microsoft.Dynamics.CRM.MemoAttributeMetadata","SchemaName":"test_Big","MaxLength":1048576}`
	if rec := h.do("POST", "/EntityDefinitions(LogicalName='bookableresourcebooking')/Attributes", body); rec.Code != 204 {
		t.Fatalf("create column: %d %s", rec.Code, rec.Body.String())
	}
	url, ch := receiver(t)
	h.register(url, 4, "c", "Update", "bookableresourcebooking", "", image{2, "Image", ""})
	id := h.createBooking("Big")
	h.do("PATCH", "/bookableresourcebookings("+id+")", map[string]any{"test_big": strings.Repeat("x", 300*1024)})
	got := wait(t, ch)
	if got.header.Get("x-ms-dynamics-msg-size-exceeded") == "" || got.size > maxWebhookBody {
		t.Fatalf("header %v, size %d", got.header, got.size)
	}
	if len(got.body["InputParameters"].([]any)) != 0 || len(got.body["PostEntityImages"].([]any)) != 0 || got.body["ParentContext"] != nil {
		t.Fatalf("record data not dropped: %v", got.body)
	}
}

// memTransport serves webhook requests in-process so synctest's fake
// clock can drive timeouts (a blocked handler is durably blocked).
type memTransport struct{ h http.Handler }

func (m memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { defer close(done); m.h.ServeHTTP(rec, r) }()
	select {
	case <-done:
		return rec.Result(), nil
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
}

func TestWebhookRetryTimeoutAndDrop(t *testing.T) {
	tests := []struct {
		name     string
		faults   string
		handler  func(n int, w http.ResponseWriter, r *http.Request)
		wantHits int
		want     map[string]int64
	}{
		{"retry once on 503", `{}`, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 0 {
				w.WriteHeader(503)
			}
		}, 2, map[string]int64{"webhooks_sent": 1, "webhook_retries": 1, "webhooks_failed": 0}},
		{"no retry on 500", `{}`, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) },
			1, map[string]int64{"webhooks_sent": 1, "webhook_retries": 0, "webhooks_failed": 1}},
		{"timeout", `{}`, func(n int, w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			1, map[string]int64{"webhooks_sent": 1, "webhooks_failed": 1}},
		{"dropped", `{"drop_webhooks_rate":1}`, func(n int, w http.ResponseWriter, r *http.Request) {},
			0, map[string]int64{"webhooks_sent": 0, "webhooks_dropped": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int32
				hook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					tc.handler(int(hits.Add(1))-1, w, r)
				})
				h := newHarness(t, "demo", Options{WebhookClient: &http.Client{Transport: memTransport{hook}}})
				if err := h.e.SetFaults(json.RawMessage(tc.faults)); err != nil {
					t.Fatal(err)
				}
				h.register("http://hooks.test/h", 4, "c", "Create", "bookableresourcebooking", "")
				start := time.Now()
				h.createBooking("Timed")
				synctest.Wait()
				if tc.name == "timeout" {
					time.Sleep(61 * time.Second) // fake clock: past the 60 s webhook timeout
					synctest.Wait()
					if time.Since(start) < 60*time.Second {
						t.Fatal("timeout fired early")
					}
				}
				if int(hits.Load()) != tc.wantHits {
					t.Fatalf("%d attempts, want %d", hits.Load(), tc.wantHits)
				}
				_, extra := h.e.Stats()
				for k, v := range tc.want {
					if extra[k] != v {
						t.Errorf("%s = %d, want %d", k, extra[k], v)
					}
				}
				h.e.Close()
			})
		})
	}
}
