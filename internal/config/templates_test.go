package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultTemplates(t *testing.T) {
	tmpl, err := Default().Sync.ParseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	data := SampleTemplateData()
	tests := []struct {
		name                    string
		data                    TemplateData
		subject, body, location string
	}{
		{"work order", data[0], "WO-00042 · Contoso · Repair boiler",
			"Work order WO-00042 for Contoso (Repair boiler)\nAnnual service\nInstructions: Ring twice\n\n" +
				"Booking: Boiler service (Scheduled)\nOpen in Dynamics 365: https://contoso.crm.dynamics.com/main.aspx\n" +
				"This event is kept in sync with Dynamics 365 by bookingsync.\n",
			"1 Main St, Springfield"},
		{"no work order", data[1], "Boiler service",
			"Booking: Boiler service (Scheduled)\nOpen in Dynamics 365: https://contoso.crm.dynamics.com/main.aspx\n" +
				"This event is kept in sync with Dynamics 365 by bookingsync.\n",
			""},
	}
	for _, tt := range tests {
		s, b, l, err := tmpl.Render(tt.data)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff([]string{tt.subject, tt.body, tt.location}, []string{s, b, l}); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestParseTemplatesError(t *testing.T) {
	s := Default().Sync
	s.Templates.Body = "{{.Booking.Name"
	if _, err := s.ParseTemplates(); err == nil || err.Error() != "config: sync.templates.body: template: body:1: unclosed action" {
		t.Errorf("err = %v", err)
	}
}
