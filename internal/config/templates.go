package config

import (
	"bytes"
	"fmt"
	"text/template"
	"time"
)

// TemplateData is what the sync engine passes to sync.templates. It is
// defined here so that Validate can execute the templates against a sample
// and catch misspelled fields before the service starts.
type TemplateData struct {
	Booking   BookingData
	WorkOrder *WorkOrderData // nil when the booking has no work order
	Resource  ResourceData
}

// BookingData describes the bookableresourcebooking row.
type BookingData struct {
	ID     string    // bookableresourcebookingid
	Name   string    // name
	Status string    // booking status name, e.g. "Scheduled"
	Start  time.Time // starttime
	End    time.Time // endtime
	URL    string    // link to the booking form in Dynamics 365
}

// WorkOrderData describes the msdyn_workorder row of the booking.
type WorkOrderData struct {
	ID           string // msdyn_workorderid
	Number       string // msdyn_name
	Customer     string // name of msdyn_serviceaccount
	IncidentType string // name of msdyn_primaryincidenttype
	Summary      string // msdyn_workordersummary
	Instructions string // msdyn_instructions
	Address      string // msdyn_address1..3, city, postal code, country on one line
	Type         string // name of msdyn_workordertype
	Priority     string // name of msdyn_priority
}

// ResourceData describes the bookableresource.
type ResourceData struct {
	ID   string
	Name string
}

// EventTemplates are the parsed sync.templates.
type EventTemplates struct {
	Subject  *template.Template
	Body     *template.Template
	Location *template.Template
}

// Render executes the three templates.
func (t *EventTemplates) Render(d TemplateData) (subject, body, location string, err error) {
	exec := func(tt *template.Template) (string, error) {
		var b bytes.Buffer
		if err := tt.Execute(&b, d); err != nil {
			return "", fmt.Errorf("config: render %s template: %w", tt.Name(), err)
		}
		return b.String(), nil
	}
	if subject, err = exec(t.Subject); err != nil {
		return "", "", "", err
	}
	if body, err = exec(t.Body); err != nil {
		return "", "", "", err
	}
	if location, err = exec(t.Location); err != nil {
		return "", "", "", err
	}
	return subject, body, location, nil
}

// ParseTemplates parses sync.templates. Missing map keys are errors; the data
// is a struct, so misspelled fields always are.
func (s *Sync) ParseTemplates() (*EventTemplates, error) {
	var t EventTemplates
	var err error
	if t.Subject, err = parseTemplate("subject", s.Templates.Subject); err != nil {
		return nil, err
	}
	if t.Body, err = parseTemplate("body", s.Templates.Body); err != nil {
		return nil, err
	}
	if t.Location, err = parseTemplate("location", s.Templates.Location); err != nil {
		return nil, err
	}
	return &t, nil
}

func parseTemplate(name, src string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("config: sync.templates.%s: %w", name, err)
	}
	return t, nil
}

// SampleTemplateData exercises both branches that templates usually test:
// with and without a work order.
func SampleTemplateData() []TemplateData {
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	b := BookingData{
		ID: "00000000-0000-0000-0000-000000000001", Name: "Boiler service", Status: "Scheduled",
		Start: start, End: start.Add(2 * time.Hour), URL: "https://contoso.crm.dynamics.com/main.aspx",
	}
	r := ResourceData{ID: "00000000-0000-0000-0000-000000000002", Name: "Alex Technician"}
	wo := &WorkOrderData{
		ID: "00000000-0000-0000-0000-000000000003", Number: "WO-00042", Customer: "Contoso", IncidentType: "Repair boiler",
		Summary: "Annual service", Instructions: "Ring twice", Address: "1 Main St, Springfield",
		Type: "Maintenance", Priority: "Normal",
	}
	return []TemplateData{{Booking: b, WorkOrder: wo, Resource: r}, {Booking: b, Resource: r}}
}
