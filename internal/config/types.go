package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ManagedIdentity selects an Azure managed identity credential. In YAML and
// env it is one scalar: true (system-assigned), the client id (GUID) of a
// user-assigned identity, or false/absent (not used).
type ManagedIdentity struct {
	Enabled  bool
	ClientID string // empty: system-assigned
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isGUID(s string) bool { return guidRE.MatchString(s) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *ManagedIdentity) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "" {
		*m = ManagedIdentity{}
		return nil
	}
	if on, err := strconv.ParseBool(s); err == nil {
		*m = ManagedIdentity{Enabled: on}
		return nil
	}
	if isGUID(s) {
		*m = ManagedIdentity{Enabled: true, ClientID: s}
		return nil
	}
	return fmt.Errorf("%q is neither true/false nor a client id (GUID) of a user-assigned identity", s)
}

// MarshalText implements encoding.TextMarshaler.
func (m ManagedIdentity) MarshalText() ([]byte, error) {
	switch {
	case !m.Enabled:
		return []byte("false"), nil
	case m.ClientID != "":
		return []byte(m.ClientID), nil
	}
	return []byte("true"), nil
}

// RenewWhen says when a subscription is renewed: once the remaining lifetime
// drops below Fraction of the lifetime, or below Duration. In YAML and env it
// is one scalar: a number (0.5) or a duration (24h, 2d).
type RenewWhen struct {
	Fraction float64
	Duration time.Duration
}

// Of returns the remaining-time threshold for a subscription of the given lifetime.
func (r RenewWhen) Of(lifetime time.Duration) time.Duration {
	if r.Duration > 0 {
		return r.Duration
	}
	return time.Duration(r.Fraction * float64(lifetime))
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *RenewWhen) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		*r = RenewWhen{Fraction: f}
		return nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is neither a fraction of the lifetime (like 0.5) nor a duration (like 24h or 2d)", s)
	}
	*r = RenewWhen{Duration: d}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (r RenewWhen) MarshalText() ([]byte, error) {
	if r.Duration > 0 {
		return []byte(FormatDuration(r.Duration)), nil
	}
	return []byte(strconv.FormatFloat(r.Fraction, 'g', -1, 64)), nil
}

var daysRE = regexp.MustCompile(`^(\d+)d(.*)$`)

// ParseDuration accepts Go duration syntax ("90s", "10000m", "1h30m") and a
// leading whole number of days ("7d", "1d12h"), since a day is the natural
// unit for sync windows. A day is always 24h.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if m := daysRE.FindStringSubmatch(s); m != nil {
		days, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || days > int64(time.Duration(1<<63-1)/(24*time.Hour)) {
			return 0, fmt.Errorf("%q: too many days", s)
		}
		d := time.Duration(days) * 24 * time.Hour
		if m[2] == "" {
			return d, nil
		}
		if strings.HasPrefix(m[2], "-") || strings.HasPrefix(m[2], "+") {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		rest, err := time.ParseDuration(m[2])
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		return d + rest, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	return d, nil
}

// FormatDuration prints d in the largest whole unit (7d, 6h, 10000m, 90s),
// falling back to Go syntax.
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}
