package config

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"go.yaml.in/yaml/v3"
)

// RedactedText replaces a set secret wherever a configuration is shown.
const RedactedText = "<redacted>"

// Secret holds a credential. Every way of printing or encoding it (fmt verbs,
// slog, JSON, YAML, text) yields RedactedText, or "" when it is unset; only
// Reveal returns the value.
//
// The value sits behind a pointer so that even reflection-based printing
// (fmt on a struct whose String method cannot be reached) shows an address
// rather than the text.
type Secret struct {
	p *string
}

// NewSecret wraps s. An empty s gives an unset Secret.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{p: &s}
}

// Reveal returns the secret value ("" if unset). Call it only where the value
// is handed to the code that needs it (a credential, an HTTP header check).
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsSet reports whether the secret has a non-empty value.
func (s Secret) IsSet() bool { return s.p != nil && *s.p != "" }

// Equal compares the values; go-cmp uses it instead of looking inside.
func (s Secret) Equal(o Secret) bool { return s.Reveal() == o.Reveal() }

func (s Secret) redacted() string {
	if s.IsSet() {
		return RedactedText
	}
	return ""
}

// String implements fmt.Stringer (used by %v, %s, %q, %x).
func (s Secret) String() string { return s.redacted() }

// GoString implements fmt.GoStringer (used by %#v).
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.redacted()) }

// Format makes every fmt verb, including %d and %T-less oddities, redact.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, s.GoString())
			return
		}
		fmt.Fprint(f, s.redacted())
	case 'q':
		fmt.Fprintf(f, "%q", s.redacted())
	default:
		fmt.Fprint(f, s.redacted())
	}
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.redacted()) }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.redacted()), nil }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.redacted()) }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) { return s.redacted(), nil }

// UnmarshalYAML refuses secret values written in YAML, so that a config file
// decoded by other means than Load still cannot carry one.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Value == "") {
		*s = Secret{}
		return nil
	}
	return fmt.Errorf("line %d: secrets may not be written in the config file", n.Line)
}
