package graph

import (
	"fmt"
	"strings"
	"time"
	// Embed the IANA database so zone lookups work in minimal containers.
	_ "time/tzdata"
)

// DateTimeTimeZone is graph.dateTimeTimeZone: a wall-clock time without
// offset plus a zone name. Graph returns e.g.
// {"dateTime":"2026-12-01T09:00:00.0000000","timeZone":"UTC"}.
type DateTimeTimeZone struct {
	DateTime string `json:"dateTime"`
	TimeZone string `json:"timeZone,omitempty"`
}

// dateTimeLayout is Graph's format: seven fractional digits, no offset.
const dateTimeLayout = "2006-01-02T15:04:05.0000000"

// NewDateTimeTimeZone expresses t in UTC, which is how we always write.
func NewDateTimeTimeZone(t time.Time) DateTimeTimeZone {
	return DateTimeTimeZone{DateTime: t.UTC().Format(dateTimeLayout), TimeZone: "UTC"}
}

// Time converts to an instant. dateTime may carry 0–7 fractional digits
// (Go's parser accepts a fraction the layout does not mention); timeZone
// may be a Windows name, an IANA name, or empty (meaning UTC).
func (d DateTimeTimeZone) Time() (time.Time, error) {
	loc, err := LoadZone(d.TimeZone)
	if err != nil {
		return time.Time{}, err
	}
	s := strings.TrimSpace(d.DateTime)
	// A value with an explicit offset wins over timeZone.
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05", s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse dateTime %q: %w", d.DateTime, err)
	}
	return t, nil
}

// windowsZones maps Windows time zone ids, which Outlook uses, to IANA
// names (CLDR windowsZones.xml, territory "001").
var windowsZones = map[string]string{
	"UTC":                            "UTC",
	"Coordinated Universal Time":     "UTC",
	"GMT Standard Time":              "Europe/London",
	"Greenwich Standard Time":        "Atlantic/Reykjavik",
	"W. Europe Standard Time":        "Europe/Berlin",
	"Central Europe Standard Time":   "Europe/Budapest",
	"Central European Standard Time": "Europe/Warsaw",
	"Romance Standard Time":          "Europe/Paris",
	"E. Europe Standard Time":        "Europe/Chisinau",
	"FLE Standard Time":              "Europe/Kiev",
	"GTB Standard Time":              "Europe/Bucharest",
	"Russian Standard Time":          "Europe/Moscow",
	"Eastern Standard Time":          "America/New_York",
	"Central Standard Time":          "America/Chicago",
	"Mountain Standard Time":         "America/Denver",
	"US Mountain Standard Time":      "America/Phoenix",
	"Pacific Standard Time":          "America/Los_Angeles",
	"Alaskan Standard Time":          "America/Anchorage",
	"Hawaiian Standard Time":         "Pacific/Honolulu",
	"India Standard Time":            "Asia/Calcutta",
	"China Standard Time":            "Asia/Shanghai",
	"Tokyo Standard Time":            "Asia/Tokyo",
	"Singapore Standard Time":        "Asia/Singapore",
	"AUS Eastern Standard Time":      "Australia/Sydney",

	// The rest of the names the emulator knows.
	"Turkey Standard Time":            "Europe/Istanbul",
	"Israel Standard Time":            "Asia/Jerusalem",
	"South Africa Standard Time":      "Africa/Johannesburg",
	"Arabian Standard Time":           "Asia/Dubai",
	"New Zealand Standard Time":       "Pacific/Auckland",
	"Atlantic Standard Time":          "America/Halifax",
	"E. South America Standard Time":  "America/Sao_Paulo",
	"SA Pacific Standard Time":        "America/Bogota",
	"Central Standard Time (Mexico)":  "America/Mexico_City",
	"Canada Central Standard Time":    "America/Regina",
	"Newfoundland Standard Time":      "America/St_Johns",
	"W. Australia Standard Time":      "Australia/Perth",
	"Korea Standard Time":             "Asia/Seoul",
	"SE Asia Standard Time":           "Asia/Bangkok",
	"Egypt Standard Time":             "Africa/Cairo",
	"W. Central Africa Standard Time": "Africa/Lagos",
}

// windowsZonesFold is windowsZones keyed by lower-case name: Exchange
// matches Windows zone names case-insensitively.
var windowsZonesFold = func() map[string]string {
	m := make(map[string]string, len(windowsZones))
	for k, v := range windowsZones {
		m[strings.ToLower(k)] = v
	}
	return m
}()

// LoadZone resolves a Graph timeZone value: "" and "UTC" are UTC, known
// Windows ids map to IANA, anything else is tried as an IANA name.
func LoadZone(name string) (*time.Location, error) {
	name = strings.TrimSpace(name)
	if name == "" || strings.EqualFold(name, "UTC") {
		return time.UTC, nil
	}
	if iana, ok := windowsZonesFold[strings.ToLower(name)]; ok {
		name = iana
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: %w", name, err)
	}
	return loc, nil
}
