package sync

import (
	"bytes"
	"fmt"
	"html"
	"net/url"
	"strings"
	"text/template"

	"github.com/bookingsync/bookingsync/internal/config"
)

// The data sync.templates see is config's, so that a template that passes
// `config check` renders here.
type (
	TemplateData  = config.TemplateData
	BookingData   = config.BookingData
	WorkOrderData = config.WorkOrderData
	ResourceData  = config.ResourceData
)

// Address joins the non-empty address lines with ", ".
func (w WorkOrder) Address() string {
	var parts []string
	for _, p := range []string{w.AddressName, w.Street1, w.Street2, w.Street3, w.City, w.StateOrProvince, w.PostalCode, w.Country} {
		if p = collapseSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", ")
}

// Renderer turns a booking into the event content. Safe for concurrent use.
type Renderer struct {
	subject, body, location *template.Template
	orgURL                  string
}

// NewRenderer parses the templates and tries them on sample data (with and
// without a work order), so a misspelled field fails here, not on the first
// booking. orgURL is the Dynamics 365 organisation URL for Booking.URL.
func NewRenderer(t config.Templates, orgURL string) (*Renderer, error) {
	parsed, err := (&config.Sync{Templates: t}).ParseTemplates()
	if err != nil {
		return nil, err
	}
	r := &Renderer{orgURL: strings.TrimRight(orgURL, "/"), subject: parsed.Subject, body: parsed.Body, location: parsed.Location}
	for _, d := range config.SampleTemplateData() {
		for _, tt := range []*template.Template{r.subject, r.body, r.location} {
			if err := tt.Execute(&bytes.Buffer{}, d); err != nil {
				return nil, fmt.Errorf("sync: sync.templates.%s: %w", tt.Name(), err)
			}
		}
	}
	return r, nil
}

// BookingURL is the booking's form in Dynamics 365.
func (r *Renderer) BookingURL(bookingID string) string {
	if r.orgURL == "" || bookingID == "" {
		return ""
	}
	return r.orgURL + "/main.aspx?etn=bookableresourcebooking&id=" + url.QueryEscape(bookingID) + "&pagetype=entityrecord"
}

// Render is the content the booking's event should have. Times are UTC;
// the body is HTML made from the body template's text output.
func (r *Renderer) Render(b Booking, res Resource, p Policy) (Content, error) {
	d := r.data(b, res)
	var out [3]string
	for i, t := range []*template.Template{r.subject, r.body, r.location} {
		var buf bytes.Buffer
		if err := t.Execute(&buf, d); err != nil {
			return Content{}, fmt.Errorf("sync: render %s template for booking %s: %w", t.Name(), b.ID, err)
		}
		out[i] = buf.String()
	}
	c := Content{
		Subject:  collapseSpace(out[0]),
		Body:     TextToHTML(out[1], d.Booking.URL),
		Location: collapseSpace(out[2]),
		Start:    b.Start.UTC(),
		End:      b.End.UTC(),
		ShowAs:   ShowAs(b.Status, p),
	}
	if b.Status == StatusCanceled && p.OnCancel == OnCancelMark {
		c.Subject = "Canceled: " + c.Subject
	}
	return c, nil
}

// ShowAs maps the booking status: Proposed → tentative, Committed → busy,
// Canceled (kept with on_cancel: mark) → free; anything else → busy.
func ShowAs(status int, p Policy) string {
	switch status {
	case StatusProposed:
		return "tentative"
	case StatusCanceled:
		if p.OnCancel == OnCancelMark {
			return "free"
		}
	}
	return "busy"
}

func (r *Renderer) data(b Booking, res Resource) TemplateData {
	d := TemplateData{
		Booking: BookingData{ID: b.ID, Name: b.Name, Status: statusName(b), Start: b.Start.UTC(), End: b.End.UTC(),
			URL: r.BookingURL(b.ID)},
		Resource: ResourceData{ID: res.ID, Name: res.Name},
	}
	if w := b.WorkOrder; w != nil {
		d.WorkOrder = &WorkOrderData{ID: w.ID, Number: w.Number, Customer: w.Customer, IncidentType: w.IncidentType,
			Summary: w.Summary, Instructions: w.Instructions, Address: w.Address(), Type: w.Type, Priority: w.Priority}
	}
	return d
}

func statusName(b Booking) string {
	if b.StatusName != "" {
		return b.StatusName
	}
	switch b.Status {
	case StatusProposed:
		return "Proposed"
	case StatusCommitted:
		return "Committed"
	case StatusCanceled:
		return "Canceled"
	}
	return ""
}

// TextToHTML makes an HTML body from template output: every character
// escaped, line breaks as <br>, and each occurrence of link (the booking
// URL) as an anchor. Trailing blank lines are dropped.
func TextToHTML(text, link string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.TrimRight(text, " \t\n")
	var b strings.Builder
	for i, line := range strings.Split(text, "\n") {
		if i > 0 {
			b.WriteString("<br>\n")
		}
		if link == "" {
			b.WriteString(html.EscapeString(line))
			continue
		}
		for j, part := range strings.Split(line, link) {
			if j > 0 {
				esc := html.EscapeString(link)
				b.WriteString(`<a href="` + esc + `">` + esc + `</a>`)
			}
			b.WriteString(html.EscapeString(part))
		}
	}
	return b.String()
}
