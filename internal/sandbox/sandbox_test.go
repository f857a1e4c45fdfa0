package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/subscriptions"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startSandbox(t *testing.T) *Sandbox {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := Start(ctx, Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(),
		Emulator: emulator.Options{Addr: "127.0.0.1:0", Seed: "demo"}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Stop(); cancel() })
	return sb
}

// waitFor polls cond for up to 10 s (latency is a bench figure, not a test
// assertion; this only bounds a hang).
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// technician returns the bookable resource of the first demo technician.
func technician(t *testing.T, sb *Sandbox) (resourceID, mailbox string) {
	t.Helper()
	ctx := context.Background()
	u := tenant.Technicians()[0]
	var found string
	err := sb.Service.Dataverse.List(ctx, dataverse.SetResources, dataverse.Query{Select: dataverse.BookableResourceSelect},
		func(raw json.RawMessage) error {
			var r dataverse.BookableResource
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			if found == "" && r.UserID != "" {
				var su dataverse.SystemUser
				if err := sb.Service.Dataverse.Get(ctx, dataverse.SetSystemUsers, r.UserID, dataverse.Query{Select: dataverse.SystemUserSelect}, &su); err != nil {
					return err
				}
				if su.AADObjectID == u.ID {
					found = r.ID
				}
			}
			return nil
		})
	if err != nil || found == "" {
		t.Fatalf("find %s's bookable resource: %v (found %q)", u.DisplayName, err, found)
	}
	return found, u.ID
}

func setOptIn(t *testing.T, sb *Sandbox, resourceID string, value int) {
	t.Helper()
	err := sb.Service.Dataverse.Update(context.Background(), dataverse.SetResources, resourceID,
		map[string]any{sb.Config.Dataverse.OptInColumn: value}, "*")
	if err != nil {
		t.Fatal(err)
	}
}

func graphSubscriptionsFor(t *testing.T, sb *Sandbox, mailbox string) []graph.Subscription {
	t.Helper()
	list, err := sb.Service.Graph.ListSubscriptions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []graph.Subscription
	for _, s := range list {
		if strings.EqualFold(strings.Trim(s.Resource, "/"), subscriptions.ResourcePath(mailbox)) {
			out = append(out, s)
		}
	}
	return out
}

func statusColumn(t *testing.T, sb *Sandbox, resourceID string) string {
	t.Helper()
	var r dataverse.BookableResource
	col := sb.Config.Dataverse.StatusColumn
	if err := sb.Service.Dataverse.Get(context.Background(), dataverse.SetResources, resourceID,
		dataverse.Query{Select: []string{"bookableresourceid", col}}, &r); err != nil {
		t.Fatal(err)
	}
	s, _, _ := r.Text(col)
	return s
}

func adminCall(t *testing.T, sb *Sandbox, method, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, sb.Service.AdminURL()+path, nil)
	req.Header.Set("Authorization", "Bearer "+sb.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func inboxCount(t *testing.T, sb *Sandbox) int {
	t.Helper()
	var n int
	if err := sb.Service.Store.InboxReadDB().QueryRow(`SELECT COUNT(*) FROM notifications WHERE source = 'graph'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOptInLifecycle is Part I end to end: Allowed creates exactly one
// validated subscription with the documented fields and says so in the
// status column; notifications for it are stored; a wrong clientState
// stores nothing; Not Allowed deletes it.
func TestOptInLifecycle(t *testing.T) {
	sb := startSandbox(t)
	ctx := context.Background()
	resourceID, mailbox := technician(t, sb)
	dv := sb.Config.Dataverse

	setOptIn(t, sb, resourceID, dv.OptInAllowed)
	waitFor(t, "a subscription for the opted-in mailbox", func() (bool, error) {
		return len(graphSubscriptionsFor(t, sb, mailbox)) == 1 && strings.HasPrefix(statusColumn(t, sb, resourceID), "Subscribed until "), nil
	})
	subs := graphSubscriptionsFor(t, sb, mailbox)
	s := subs[0]
	if s.ChangeType != subscriptions.ChangeTypes || s.NotificationURL != sb.Config.NotificationURL() ||
		s.LifecycleNotificationURL != sb.Config.LifecycleURL() || s.ClientState != "" {
		t.Fatalf("subscription fields: %+v", s)
	}
	if left := time.Until(s.ExpirationDateTime); left < 9000*time.Minute || left > 10070*time.Minute {
		t.Fatalf("expires in %v, want about 10,000 minutes", left)
	}

	// A change in the mailbox reaches our inbox.
	before := inboxCount(t, sb)
	start, end := graph.NewDateTimeTimeZone(time.Now().Add(24*time.Hour)), graph.NewDateTimeTimeZone(time.Now().Add(25*time.Hour))
	ev := graph.Event{Subject: "Personal appointment", Start: &start, End: &end}
	if _, err := sb.Service.Graph.CreateEvent(ctx, mailbox, ev, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the created event's notification in the inbox", func() (bool, error) {
		return inboxCount(t, sb) > before, nil
	})

	// Forged: right subscription id, wrong clientState → 202, nothing stored.
	before = inboxCount(t, sb)
	forged := fmt.Sprintf(`{"value":[{"subscriptionId":%q,"subscriptionExpirationDateTime":"2030-01-01T00:00:00Z","changeType":"deleted",
		"resource":"Users/%s/Events/AAA","resourceData":{"@odata.type":"#Microsoft.Graph.Event","@odata.id":"Users/%s/Events/AAA","@odata.etag":"W/\"x\"","id":"AAA"},
		"clientState":"not-the-secret","tenantId":%q}]}`, s.ID, mailbox, mailbox, tenant.DefaultTenantID)
	resp, err := http.Post(sb.Config.NotificationURL(), "application/json", bytes.NewBufferString(forged))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("forged notification: status %d, want 202", resp.StatusCode)
	}
	if got := inboxCount(t, sb); got != before {
		t.Fatalf("forged notification stored: inbox %d → %d", before, got)
	}

	// The admin API (what `bookingsync status` and `subscriptions renew` use)
	// shows the subscription and renews it in Graph.
	var status struct {
		Resources []struct {
			ResourceID     string `json:"resource_id"`
			SubscriptionID string `json:"subscription_id"`
		} `json:"resources"`
	}
	adminCall(t, sb, http.MethodGet, "/api/v1/status", &status)
	if len(status.Resources) != 1 || status.Resources[0].ResourceID != resourceID || status.Resources[0].SubscriptionID != s.ID {
		t.Fatalf("status: %+v", status)
	}
	time.Sleep(1100 * time.Millisecond) // so the renewed expiry differs at Graph's second precision
	var renewed map[string]int
	adminCall(t, sb, http.MethodPost, "/api/v1/subscriptions/renew?resource="+mailbox, &renewed)
	if renewed["renewed"] != 1 {
		t.Fatalf("renew: %v", renewed)
	}
	if after := graphSubscriptionsFor(t, sb, mailbox)[0]; !after.ExpirationDateTime.After(s.ExpirationDateTime) {
		t.Fatalf("renewal did not move the expiry: %v → %v", s.ExpirationDateTime, after.ExpirationDateTime)
	}

	// Setting it again changes nothing: still exactly one.
	setOptIn(t, sb, resourceID, dv.OptInAllowed)
	time.Sleep(300 * time.Millisecond)
	if n := len(graphSubscriptionsFor(t, sb, mailbox)); n != 1 {
		t.Fatalf("%d subscriptions after re-allowing, want 1", n)
	}

	setOptIn(t, sb, resourceID, dv.OptInNotAllowed)
	waitFor(t, "the subscription to be deleted", func() (bool, error) {
		return len(graphSubscriptionsFor(t, sb, mailbox)) == 0, nil
	})
}

func TestBoundAddr(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41234}
	for _, tc := range []struct{ given, want string }{
		{"127.0.0.1:0", "127.0.0.1:41234"},
		{"localhost:0", "localhost:41234"},
		{":0", ":41234"},
		{"[::1]:0", "[::1]:41234"},
		{"garbage", "127.0.0.1:41234"},
	} {
		if got := boundAddr(tc.given, bound); got != tc.want {
			t.Errorf("boundAddr(%q) = %q, want %q", tc.given, got, tc.want)
		}
	}
}
