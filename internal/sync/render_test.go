package sync

import (
	"strings"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/config"
)

func renderBooking() Booking {
	start := time.Date(2026, 3, 3, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	return Booking{ID: "8d2f0c1e-0000-0000-0000-000000000001", Name: "Repair boiler", Start: start, End: start.Add(2 * time.Hour),
		Status: StatusCommitted, StatusName: "Scheduled", Active: true, ResourceID: "r1",
		WorkOrder: &WorkOrder{Number: "WO-00123", Customer: "Contoso Ltd", IncidentType: "Repair boiler", Summary: "Boiler leaks",
			Instructions: "Ring twice <b>loud</b> & wait", AddressName: "Head office", Street1: "1 Main St", City: "Springfield",
			PostalCode: "12345", Country: "US"}}
}

func TestRenderDefaults(t *testing.T) {
	r := testRenderer(t)
	c, err := r.Render(renderBooking(), Resource{Name: "Alex"}, DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	url := "https://org.example.test/main.aspx?etn=bookableresourcebooking&amp;id=8d2f0c1e-0000-0000-0000-000000000001&amp;pagetype=entityrecord"
	want := Content{
		Subject:  "WO-00123 · Contoso Ltd · Repair boiler",
		Location: "Head office, 1 Main St, Springfield, 12345, US",
		Body: "Work order WO-00123 for Contoso Ltd (Repair boiler)<br>\nBoiler leaks<br>\nInstructions: Ring twice &lt;b&gt;loud&lt;/b&gt; &amp; wait<br>\n<br>\n" +
			"Booking: Repair boiler (Scheduled)<br>\nOpen in Dynamics 365: <a href=\"" + url + "\">" + url + "</a><br>\n" +
			"This event is kept in sync with Dynamics 365 by bookingsync.",
		Start:  time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC),
		End:    time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC),
		ShowAs: "busy",
	}
	if c != want {
		t.Errorf("got\n%#v\nwant\n%#v", c, want)
	}
	if c.Start.Location() != time.UTC {
		t.Error("start not in UTC")
	}
}

// The subject the issue asks for; needs IncidentType in config's
// TemplateData before config validation accepts it.
const proposedSubject = `{{with .WorkOrder}}{{.Number}}{{with .Customer}} · {{.}}{{end}}{{with .IncidentType}} · {{.}}{{end}}{{else}}{{.Booking.Name}}{{end}}`

func TestRenderStatusesAndTemplates(t *testing.T) {
	tmpl := config.Templates{Subject: proposedSubject, Body: config.DefaultBodyTemplate, Location: config.DefaultLocationTemplate}
	r, err := NewRenderer(tmpl, "https://org.example.test/")
	if err != nil {
		t.Fatal(err)
	}
	mark := DefaultPolicy()
	mark.OnCancel = OnCancelMark
	noWO := renderBooking()
	noWO.WorkOrder = nil
	for _, c := range []struct {
		name                  string
		status                int
		b                     Booking
		p                     Policy
		wantSubject, wantShow string
	}{
		{"committed", StatusCommitted, renderBooking(), DefaultPolicy(), "WO-00123 · Contoso Ltd · Repair boiler", "busy"},
		{"proposed", StatusProposed, renderBooking(), DefaultPolicy(), "WO-00123 · Contoso Ltd · Repair boiler", "tentative"},
		{"canceled, mark", StatusCanceled, renderBooking(), mark, "Canceled: WO-00123 · Contoso Ltd · Repair boiler", "free"},
		{"no work order", StatusCommitted, noWO, DefaultPolicy(), "Repair boiler", "busy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.b.Status = c.status
			got, err := r.Render(c.b, Resource{}, c.p)
			if err != nil {
				t.Fatal(err)
			}
			if got.Subject != c.wantSubject || got.ShowAs != c.wantShow {
				t.Errorf("subject %q showAs %q, want %q %q", got.Subject, got.ShowAs, c.wantSubject, c.wantShow)
			}
			if c.b.WorkOrder == nil && got.Location != "" {
				t.Errorf("location %q without a work order", got.Location)
			}
		})
	}
}

func TestNewRendererErrors(t *testing.T) {
	ok := config.Templates{Subject: config.DefaultSubjectTemplate, Body: config.DefaultBodyTemplate, Location: config.DefaultLocationTemplate}
	for _, c := range []struct {
		name string
		edit func(*config.Templates)
		want string
	}{
		{"syntax", func(t *config.Templates) { t.Subject = "{{.Booking.Name" }, "sync.templates.subject: template: subject:1: unclosed action"},
		{"unknown field", func(t *config.Templates) { t.Body = "{{.Booking.Nmae}}" }, "sync.templates.body: template: body:1:10: executing \"body\" at <.Booking.Nmae>: can't evaluate field Nmae"},
		{"nil work order", func(t *config.Templates) { t.Location = "{{.WorkOrder.Address}}" }, "sync.templates.location: template: location:1:12: executing \"location\" at <.WorkOrder.Address>: nil pointer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tm := ok
			c.edit(&tm)
			_, err := NewRenderer(tm, "https://o")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
	if _, err := NewRenderer(ok, "https://o"); err != nil {
		t.Errorf("default templates: %v", err)
	}
}

func TestTextToHTMLNeverEmitsMarkupFromData(t *testing.T) {
	got := TextToHTML("<script>x</script>\r\n\"q\" 'a'\n\n", "")
	if got != "&lt;script&gt;x&lt;/script&gt;<br>\n&#34;q&#34; &#39;a&#39;" {
		t.Errorf("got %q", got)
	}
}

func TestPolicyFromConfig(t *testing.T) {
	if got, want := PolicyFromConfig(config.Default().Sync), DefaultPolicy(); got != want {
		t.Errorf("PolicyFromConfig(defaults) = %+v, want DefaultPolicy %+v", got, want)
	}
	p := PolicyFromConfig(config.Sync{OutlookMayChange: []string{"end"}})
	if p.OutlookMayChange != FieldEnd || p.Conflict != ConflictD365Wins || p.OnCancel != OnCancelDelete ||
		p.PrivateBookingName != config.DefaultPrivateBookingName {
		t.Errorf("zero config: %+v", p)
	}
}
