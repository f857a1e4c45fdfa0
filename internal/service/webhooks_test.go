package service

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bookingsync/bookingsync/internal/config"
	"github.com/bookingsync/bookingsync/internal/subscriptions"
)

// TestWebhookSpecs pins the registrations both the sandbox and
// `dataverse register-webhook` make.
func TestWebhookSpecs(t *testing.T) {
	cfg, _, err := config.Load("", []string{
		"BOOKINGSYNC_PUBLIC_URL=https://sync.contoso.com/x", "BOOKINGSYNC_AZURE_TENANT_ID=contoso.onmicrosoft.com",
		"BOOKINGSYNC_AZURE_CLIENT_ID=0a1b2c3d-aaaa-bbbb-cccc-ddddeeeeffff", "BOOKINGSYNC_AZURE_CLIENT_SECRET=s",
		"BOOKINGSYNC_DATAVERSE_ORG_URL=https://contoso.crm.dynamics.com", "BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY=0123456789abcdef", "BOOKINGSYNC_DATA_DIR=" + t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range WebhookSpecs(cfg, "k") {
		if s.URL != "https://sync.contoso.com/x/notifications/dataverse" || s.AuthValue != "k" {
			t.Errorf("%s: URL %s, key %q", s.Name, s.URL, s.AuthValue)
		}
		for _, st := range s.Steps {
			line := fmt.Sprintf("%s|%s|%s|%s", s.Name, s.Entity, st.Message, strings.Join(st.FilteringAttributes, ","))
			for _, im := range st.Images {
				line += fmt.Sprintf("|%s:%d:%s", im.Alias, im.Type, strings.Join(im.Attributes, ","))
			}
			got = append(got, line)
		}
	}
	want := []string{
		"bookingsync resources|bookableresource|Update|" + strings.Join(subscriptionsEnrollment(cfg), ","),
		"bookingsync bookings|bookableresourcebooking|Create||post:1:versionnumber",
		"bookingsync bookings|bookableresourcebooking|Update||post:1:versionnumber",
		"bookingsync bookings|bookableresourcebooking|Delete||pre:0:",
	}
	for i, w := range want {
		if i >= len(got) || got[i] != w {
			t.Errorf("step %d = %q, want %q", i, at(got, i), w)
		}
	}
	if len(got) != 5 || !strings.HasPrefix(got[4], "bookingsync work orders|msdyn_workorder|Update|") || strings.HasSuffix(got[4], "|") {
		t.Errorf("work-order step: %q", got)
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "<none>"
}

func subscriptionsEnrollment(cfg *config.Config) []string {
	return subscriptions.EnrollmentColumns(cfg.Dataverse.OptInColumn)
}
