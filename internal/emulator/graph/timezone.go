package graph

import (
	"fmt"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // zone conversions must not depend on the host's zoneinfo
)

// windowsZones maps the Windows time-zone names Outlook uses to IANA zones
// (CLDR windowsZones.xml, territory 001).
var windowsZones = map[string]string{
	"utc":                             "UTC",
	"coordinated universal time":      "UTC",
	"gmt standard time":               "Europe/London",
	"greenwich standard time":         "Atlantic/Reykjavik",
	"w. europe standard time":         "Europe/Berlin",
	"central europe standard time":    "Europe/Budapest",
	"central european standard time":  "Europe/Warsaw",
	"romance standard time":           "Europe/Paris",
	"e. europe standard time":         "Europe/Chisinau",
	"fle standard time":               "Europe/Kiev",
	"gtb standard time":               "Europe/Bucharest",
	"russian standard time":           "Europe/Moscow",
	"turkey standard time":            "Europe/Istanbul",
	"israel standard time":            "Asia/Jerusalem",
	"south africa standard time":      "Africa/Johannesburg",
	"arabian standard time":           "Asia/Dubai",
	"india standard time":             "Asia/Calcutta",
	"china standard time":             "Asia/Shanghai",
	"singapore standard time":         "Asia/Singapore",
	"tokyo standard time":             "Asia/Tokyo",
	"aus eastern standard time":       "Australia/Sydney",
	"new zealand standard time":       "Pacific/Auckland",
	"eastern standard time":           "America/New_York",
	"central standard time":           "America/Chicago",
	"mountain standard time":          "America/Denver",
	"us mountain standard time":       "America/Phoenix",
	"pacific standard time":           "America/Los_Angeles",
	"alaskan standard time":           "America/Anchorage",
	"hawaiian standard time":          "Pacific/Honolulu",
	"atlantic standard time":          "America/Halifax",
	"e. south america standard time":  "America/Sao_Paulo",
	"sa pacific standard time":        "America/Bogota",
	"central standard time (mexico)":  "America/Mexico_City",
	"canada central standard time":    "America/Regina",
	"newfoundland standard time":      "America/St_Johns",
	"w. australia standard time":      "Australia/Perth",
	"korea standard time":             "Asia/Seoul",
	"se asia standard time":           "Asia/Bangkok",
	"egypt standard time":             "Africa/Cairo",
	"w. central africa standard time": "Africa/Lagos",
}

var zoneCache sync.Map // name → *time.Location

// loadZone resolves a Windows or IANA time-zone name, as Graph accepts both.
func loadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if loc, ok := zoneCache.Load(name); ok {
		return loc.(*time.Location), nil
	}
	iana := name
	if w, ok := windowsZones[strings.ToLower(name)]; ok {
		iana = w
	} else if strings.EqualFold(name, "Etc/UTC") || strings.EqualFold(name, "tzone://Microsoft/Utc") {
		iana = "UTC"
	} else if !strings.Contains(name, "/") {
		return nil, errTimeZone(name)
	}
	loc, err := time.LoadLocation(iana)
	if err != nil {
		return nil, errTimeZone(name)
	}
	zoneCache.Store(name, loc)
	return loc, nil
}

func errTimeZone(name string) *apiError {
	return errorf(400, codeTimeZone, fmt.Sprintf("A valid TimeZone value must be specified. The following TimeZone value is not supported: '%s'.", name))
}

const graphDateTime = "2006-01-02T15:04:05.0000000"

var localLayouts = []string{"2006-01-02T15:04:05.9999999", "2006-01-02T15:04", "2006-01-02"}

// parseDateTimeTimeZone turns {dateTime, timeZone} into an instant.
func parseDateTimeTimeZone(field string, v dateTimeTimeZone) (time.Time, *apiError) {
	loc, aerr := zoneOrError(v.TimeZone)
	if aerr != nil {
		return time.Time{}, aerr
	}
	s := strings.TrimSpace(v.DateTime)
	if s == "" {
		return time.Time{}, errorf(400, codeInvalidRequest, fmt.Sprintf("Property '%s.dateTime' is required.", field))
	}
	for _, layout := range localLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	// An explicit offset wins over timeZone, as it is unambiguous.
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, errorf(400, codeRequestBodyRead, fmt.Sprintf("Cannot convert the literal '%s' to the expected type 'Edm.String' for '%s.dateTime': not a valid date and time.", s, field))
}

func zoneOrError(name string) (*time.Location, *apiError) {
	loc, err := loadZone(name)
	if err != nil {
		if ae, ok := err.(*apiError); ok {
			return nil, ae
		}
		return nil, errTimeZone(name)
	}
	return loc, nil
}

// formatDateTimeTimeZone renders an instant in the response zone: the
// Prefer: outlook.timezone value, or UTC.
func formatDateTimeTimeZone(t time.Time, zoneName string, loc *time.Location) dateTimeTimeZone {
	if loc == nil {
		loc, zoneName = time.UTC, "UTC"
	}
	return dateTimeTimeZone{DateTime: t.In(loc).Format(graphDateTime), TimeZone: zoneName}
}

// parseWindowParam reads calendarView's startDateTime/endDateTime: ISO 8601
// with an offset, or without one meaning UTC (or the Prefer zone).
func parseWindowParam(s string, loc *time.Location) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	if loc == nil {
		loc = time.UTC
	}
	for _, layout := range localLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
