package dataverse

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// fakeRegistry is a tiny in-memory store of the registration tables.
type fakeRegistry struct {
	mu     sync.Mutex
	rows   map[string][]map[string]any // entity set → rows
	nextID int
}

func (fr *fakeRegistry) newID() string {
	fr.nextID++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", fr.nextID)
}

const (
	msgUpdateID = "20bebb1b-ea3e-db11-86a7-000a3a5473e8"
	msgDeleteID = "20bebb1b-ea3e-db11-86a7-000a3a5473e9"
	filterUpd   = "30bebb1b-ea3e-db11-86a7-000a3a5473e8"
	filterDel   = "30bebb1b-ea3e-db11-86a7-000a3a5473e9"
)

func TestEnsureWebhookIdempotent(t *testing.T) {
	fr := &fakeRegistry{rows: map[string][]map[string]any{}}
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		fr.mu.Lock()
		defer fr.mu.Unlock()
		path := strings.TrimPrefix(r.URL.Path, "/api/data/v9.2/")
		filter := r.URL.Query().Get("$filter")
		switch {
		case r.Method == http.MethodGet && path == SetSdkMessages:
			id := map[string]string{"name eq 'Update'": msgUpdateID, "name eq 'Delete'": msgDeleteID}[filter]
			writeJSON(w, 200, map[string]any{"value": []any{map[string]string{"sdkmessageid": id}}})
		case r.Method == http.MethodGet && path == SetSdkMessageFilters:
			id := filterUpd
			if strings.Contains(filter, msgDeleteID) {
				id = filterDel
			}
			writeJSON(w, 200, map[string]any{"value": []any{map[string]string{"sdkmessagefilterid": id}}})
		case r.Method == http.MethodGet:
			// Match on the name literal only; enough for this fake.
			var out []any
			for _, row := range fr.rows[path] {
				if strings.Contains(filter, "name eq '"+strings.ReplaceAll(row["name"].(string), "'", "''")+"'") {
					out = append(out, row)
				}
			}
			writeJSON(w, 200, map[string]any{"value": out})
		case r.Method == http.MethodPost:
			id := fr.newID()
			row := map[string]any{}
			_ = jsonUnmarshal(body, &row)
			idCol := map[string]string{SetServiceEndpoints: "serviceendpointid", SetSteps: "sdkmessageprocessingstepid", SetStepImages: "sdkmessageprocessingstepimageid"}[path]
			row[idCol] = id
			fr.rows[path] = append(fr.rows[path], row)
			w.Header().Set("OData-EntityId", testBase+"/"+path+"("+id+")")
			w.WriteHeader(204)
		case r.Method == http.MethodPatch:
			w.WriteHeader(204)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			w.WriteHeader(500)
		}
	})
	auth, err := AuthSettings(map[string]string{"x-bookingsync-key": `s3cr"et&<`})
	if err != nil {
		t.Fatal(err)
	}
	spec := WebhookSpec{
		Name:      "bookingsync",
		URL:       "https://sync.contoso.com/webhooks/dataverse",
		Auth:      AuthHTTPHeader,
		AuthValue: auth,
		Entity:    "bookableresourcebooking",
		Steps: []StepSpec{
			{Message: "Update", FilteringAttributes: []string{"starttime", "endtime", "resource", "bookingstatus", "name"},
				Images: []ImageSpec{{Alias: "PostImage", Type: PostImage, Attributes: []string{"starttime", "endtime", "resource"}}}},
			{Message: "Delete", Images: []ImageSpec{{Alias: "PreImage", Type: PreImage}}},
		},
	}
	ctx := context.Background()
	reg1, err := c.EnsureWebhook(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	var posts []recorded
	for _, r := range f.requests() {
		if r.Method == http.MethodPost {
			posts = append(posts, r)
		}
	}
	if len(posts) != 5 { // endpoint, 2 steps, 2 images
		t.Fatalf("first run: %d creates, want 5", len(posts))
	}
	golden(t, "webhook_serviceendpoint", posts[0].Body)
	golden(t, "webhook_step_update", posts[1].Body)
	golden(t, "webhook_image_update_post", posts[2].Body)
	golden(t, "webhook_step_delete", posts[3].Body)
	golden(t, "webhook_image_delete_pre", posts[4].Body)

	// Second run finds everything by name: no creates, same ids, PATCHes with If-Match: *.
	n := len(f.requests())
	reg2, err := c.EnsureWebhook(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.requests()[n:] {
		if r.Method == http.MethodPost {
			t.Errorf("second run created %s", r.URL)
		}
		if r.Method == http.MethodPatch && r.Header.Get("If-Match") != "*" {
			t.Errorf("PATCH %s without If-Match: *", r.URL)
		}
	}
	if reg1.EndpointID != reg2.EndpointID || reg1.StepIDs["Update"] != reg2.StepIDs["Update"] || reg1.ImageIDs["Delete/PreImage"] != reg2.ImageIDs["Delete/PreImage"] {
		t.Errorf("ids changed: %+v vs %+v", reg1, reg2)
	}
	if len(reg1.StepIDs) != 2 || len(reg1.ImageIDs) != 2 {
		t.Errorf("registration = %+v", reg1)
	}
}

func TestWebhookSpecValidation(t *testing.T) {
	good := WebhookSpec{Name: "n", URL: "https://x", Auth: AuthWebhookKey, AuthValue: "k", Entity: "bookableresourcebooking"}
	if _, err := ServiceEndpointBody(good); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*WebhookSpec){
		"http url":   func(s *WebhookSpec) { s.URL = "http://x" },
		"no value":   func(s *WebhookSpec) { s.AuthValue = "" },
		"bad auth":   func(s *WebhookSpec) { s.Auth = 2 },
		"empty name": func(s *WebhookSpec) { s.Name = "" },
	} {
		s := good
		mut(&s)
		if _, err := ServiceEndpointBody(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := StepBody(good, StepSpec{Message: "Create", FilteringAttributes: []string{"name"}}, gid, gid, gid); err == nil {
		t.Error("filtering attributes on Create accepted")
	}
	if _, err := StepBody(good, StepSpec{Message: "Update"}, "x", gid, gid); err == nil {
		t.Error("bad endpoint id accepted")
	}
	if _, err := ImageBody("Delete", ImageSpec{Alias: "Post", Type: PostImage}, gid); err == nil {
		t.Error("post-image on Delete accepted")
	}
	if _, err := ImageBody("Create", ImageSpec{Alias: "Pre", Type: PreImage}, gid); err == nil {
		t.Error("pre-image on Create accepted")
	}
	b, err := ImageBody("Create", ImageSpec{Alias: "Post", Type: PostImage}, gid)
	if err != nil || b["messagepropertyname"] != "Id" {
		t.Errorf("Create image = %v, %v", b, err)
	}
	if _, err := AuthSettings(nil); err == nil {
		t.Error("AuthSettings(nil) succeeded")
	}
	s, _ := AuthSettings(map[string]string{"b": "2", "a": `<"&>`})
	if want := `<settings><setting name="a" value="&lt;&#34;&amp;&gt;" /><setting name="b" value="2" /></settings>`; s != want {
		t.Errorf("AuthSettings = %s", s)
	}
}
