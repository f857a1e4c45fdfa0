package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bookingsync/bookingsync/internal/metrics"
	"github.com/bookingsync/bookingsync/internal/store"
)

type fakeSubs map[string]store.Subscription

func (f fakeSubs) LookupSubscription(_ context.Context, id string) (store.Subscription, bool, error) {
	s, ok := f[id]
	return s, ok, nil
}

type fakeIntake struct {
	got []store.Notification
	err error
}

func (f *fakeIntake) Submit(_ context.Context, ns []store.Notification) (store.Result, error) {
	if f.err != nil {
		return store.Result{}, f.err
	}
	f.got = append(f.got, ns...)
	return store.Result{Inserted: len(ns)}, nil
}

const (
	subID  = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"
	secret = "the-client-state-secret"
	dvKey  = "webhook-key-0123456789"
)

func newTestServer(in *fakeIntake) http.Handler {
	subs := fakeSubs{subID: {ID: subID, Mailbox: "mbx", ClientStateHash: store.HashClientState(secret)}}
	s := NewServer(Config{MaxBodyBytes: 4096, DataverseKey: func() string { return dvKey }},
		subs, in, slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New())
	return s.PublicHandler()
}

func notification(sub, clientState string) string {
	return `{"value":[{"subscriptionId":"` + sub + `","subscriptionExpirationDateTime":"2030-01-01T00:00:00Z","changeType":"updated",` +
		`"resource":"Users/mbx/Events/AAA","resourceData":{"@odata.type":"#Microsoft.Graph.Event","@odata.id":"Users/mbx/Events/AAA","@odata.etag":"W/\"1\"","id":"AAA"},` +
		`"clientState":"` + clientState + `","tenantId":"t"}]}`
}

func TestValidationHandshake(t *testing.T) {
	long := strings.Repeat("a", MaxValidationTokenBytes+1)
	tests := []struct {
		name, path, query string
		wantStatus        int
		wantBody          string
	}{
		{"decoded verbatim", "/notifications/graph", "validationToken=Validation%3A+Testing+client+application+reachability+for+subscription+Request-Id%3A+abc", 200,
			"Validation: Testing client application reachability for subscription Request-Id: abc"},
		{"lifecycle endpoint", "/notifications/graph/lifecycle", "validationToken=a%20b%26c", 200, "a b&c"},
		{"markup stays text", "/notifications/graph", "validationToken=%3Cscript%3Ealert(1)%3C%2Fscript%3E", 200, "<script>alert(1)</script>"},
		{"crlf stays in the body", "/notifications/graph", "validationToken=a%0D%0ASet-Cookie%3A+x%3D1", 200, "a\r\nSet-Cookie: x=1"},
		{"too long", "/notifications/graph", "validationToken=" + long, 400, ""},
		{"malformed escape", "/notifications/graph", "validationToken=%zz", 400, ""},
		{"twice", "/notifications/graph", "validationToken=a&validationToken=b", 400, ""},
	}
	h := newTestServer(&fakeIntake{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, tc.path+"?"+tc.query, strings.NewReader("not json at all"))
			req.Header.Set("Content-Type", "text/plain; charset=utf-8")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tc.wantStatus)
			}
			if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Error("missing nosniff")
			}
			if tc.wantStatus == 200 {
				if ct := rec.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
				if rec.Body.String() != tc.wantBody {
					t.Errorf("body %q, want %q", rec.Body.String(), tc.wantBody)
				}
			}
		})
	}
}

func TestGraphIntake(t *testing.T) {
	tests := []struct {
		name        string
		body, ctype string
		storeErr    error
		wantStatus  int
		wantStored  int
	}{
		{"accepted", notification(subID, secret), "application/json", nil, 202, 1},
		{"charset ok", notification(subID, secret), "application/json; charset=utf-8", nil, 202, 1},
		{"wrong clientState dropped", notification(subID, "guess"), "application/json", nil, 202, 0},
		{"unknown subscription dropped", notification("00000000-0000-0000-0000-000000000000", secret), "application/json", nil, 202, 0},
		{"malformed", `{"value":[{`, "application/json", nil, 400, 0},
		{"not a collection", `[]`, "application/json", nil, 400, 0},
		{"wrong content type", notification(subID, secret), "text/html", nil, 415, 0},
		{"too large", `{"value":[` + strings.Repeat(" ", 5000) + `]}`, "application/json", nil, 413, 0},
		{"store down: 503 so Graph retries", notification(subID, secret), "application/json", errors.New("disk full"), 503, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &fakeIntake{err: tc.storeErr}
			req := httptest.NewRequest(http.MethodPost, "/notifications/graph", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ctype)
			rec := httptest.NewRecorder()
			newTestServer(in).ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus || len(in.got) != tc.wantStored {
				t.Fatalf("status %d stored %d, want %d and %d", rec.Code, len(in.got), tc.wantStatus, tc.wantStored)
			}
			for _, n := range in.got {
				if strings.Contains(string(n.Payload), secret) {
					t.Fatal("clientState secret stored in the payload")
				}
				if n.ItemID != "AAA" || n.ETag != `W/"1"` || n.Mailbox != "mbx" {
					t.Fatalf("row %+v", n)
				}
			}
		})
	}
}

func TestDataverseIntake(t *testing.T) {
	body := `{"BusinessUnitId":"00000000-0000-0000-0000-000000000001","CorrelationId":"00000000-0000-0000-0000-0000000000c1","Depth":1,"InitiatingUserId":"00000000-0000-0000-0000-000000000002",
"InputParameters":[{"key":"Target","value":{"__type":"Entity:http://schemas.microsoft.com/xrm/2011/Contracts","Attributes":[{"key":"bsync_outlooksync","value":{"__type":"OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts","Value":100000000}}],"EntityState":null,"FormattedValues":[],"Id":"3f0a1a8e-8f1e-4c1f-9a57-0d5b1e2c3d4e","KeyAttributes":[],"LogicalName":"bookableresource","RelatedEntities":[],"RowVersion":null}}],
"IsExecutingOffline":false,"IsInTransaction":false,"IsOfflinePlayback":false,"IsolationMode":1,"MessageName":"Update","Mode":1,"OperationCreatedOn":"\/Date(1733000000000)\/","OperationId":"00000000-0000-0000-0000-0000000000a1",
"OrganizationId":"00000000-0000-0000-0000-000000000003","OrganizationName":"org","OutputParameters":[],"OwningExtension":{"Id":"00000000-0000-0000-0000-000000000004","KeyAttributes":[],"LogicalName":"sdkmessageprocessingstep","Name":null,"RowVersion":null},
"ParentContext":null,"PostEntityImages":[],"PreEntityImages":[],"PrimaryEntityId":"3f0a1a8e-8f1e-4c1f-9a57-0d5b1e2c3d4e","PrimaryEntityName":"bookableresource","RequestId":"00000000-0000-0000-0000-0000000000b1","SecondaryEntityName":"none","SharedVariables":[],"Stage":40,"UserId":"00000000-0000-0000-0000-000000000002"}`
	tests := []struct {
		name, query, header, body string
		wantStatus, wantStored    int
	}{
		{"key in ?code=", "?code=" + dvKey, "", body, 200, 1},
		{"key in header", "", dvKey, body, 200, 1},
		{"no key", "", "", body, 401, 0},
		{"wrong key", "?code=" + dvKey + "x", "", body, 401, 0},
		{"malformed", "?code=" + dvKey, "", `{"MessageName":`, 400, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &fakeIntake{}
			req := httptest.NewRequest(http.MethodPost, "/notifications/dataverse"+tc.query, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if tc.header != "" {
				req.Header.Set("x-bookingsync-key", tc.header)
			}
			rec := httptest.NewRecorder()
			newTestServer(in).ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus || len(in.got) != tc.wantStored {
				t.Fatalf("status %d stored %d, want %d and %d (%s)", rec.Code, len(in.got), tc.wantStatus, tc.wantStored, rec.Body.String())
			}
			if tc.wantStored == 1 && (in.got[0].ItemID != "3f0a1a8e-8f1e-4c1f-9a57-0d5b1e2c3d4e" || in.got[0].ChangeType != "Update:bookableresource") {
				t.Fatalf("row %+v", in.got[0])
			}
		})
	}
}
