package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Redacted returns a deep copy in which every set secret is replaced by
// RedactedText (so even Reveal on the copy yields no secret) and a password
// in a postgres store URL is masked. Use it for the Settings page and
// `config check` output.
func (c *Config) Redacted() *Config {
	r := *c
	r.Sync.OutlookMayChange = slices.Clone(c.Sync.OutlookMayChange)
	r.origins = maps.Clone(c.origins)
	root := reflect.ValueOf(&r).Elem()
	for _, l := range leaves {
		if !l.secret {
			continue
		}
		f := root.FieldByIndex(l.index)
		if f.Interface().(Secret).IsSet() {
			f.Set(reflect.ValueOf(NewSecret(RedactedText)))
		}
	}
	if r.StoreKind() == StorePostgres {
		r.Store = redactDSN(r.Store)
	}
	return &r
}

// redactDSN masks the password in a postgres URL, in the user info or in a
// password query parameter.
func redactDSN(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		scheme, _, _ := strings.Cut(s, ":")
		return scheme + "://" + RedactedText
	}
	const mark = "BOOKINGSYNCREDACTEDPASSWORD"
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), mark)
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", mark)
		u.RawQuery = q.Encode()
	}
	return strings.ReplaceAll(u.String(), mark, RedactedText)
}

// RedactedYAML renders Redacted() as YAML in schema order, with durations in
// their shortest unit. Secrets appear as "<redacted>" or "".
func (c *Config) RedactedYAML() ([]byte, error) {
	n := toNode(reflect.ValueOf(c.Redacted()).Elem())
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	return []byte(b.String()), nil
}

func toNode(v reflect.Value) *yaml.Node {
	t := v.Type()
	if !isLeaf(t) {
		m := &yaml.Node{Kind: yaml.MappingNode}
		for i := range t.NumField() {
			name := yamlName(t.Field(i))
			if name == "" {
				continue
			}
			m.Content = append(m.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name},
				toNode(v.Field(i)))
		}
		return m
	}
	if t.Kind() == reflect.Slice {
		s := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := range v.Len() {
			s.Content = append(s.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v.Index(i).String()})
		}
		return s
	}
	s := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: formatValue(v)}
	switch {
	case t.Kind() == reflect.Bool:
		s.Tag = "!!bool"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64 && t != durationType:
		s.Tag = "!!int"
	case t.Kind() == reflect.Float64:
		s.Tag = "!!float"
	case t == reflect.TypeFor[ManagedIdentity]() || t == reflect.TypeFor[RenewWhen]():
		if _, err := strconv.ParseBool(s.Value); err == nil {
			s.Tag = "!!bool"
		} else if _, err := strconv.ParseFloat(s.Value, 64); err == nil {
			s.Tag = "!!float"
		}
	}
	if s.Tag == "!!str" && strings.Contains(s.Value, "\n") {
		s.Style = yaml.LiteralStyle
	}
	return s
}

// Setting is one key for a Settings page: its effective value (secrets
// redacted), its env var, and where the value came from.
type Setting struct {
	Key    string // "graph.base_url"
	Env    string // "BOOKINGSYNC_GRAPH_BASE_URL"
	Value  string // as a user would write it; secrets are "<redacted>" or ""
	Source string // "default", "file.yaml:12" or "$BOOKINGSYNC_X"
	Secret bool
}

// Settings lists every key in schema order.
func (c *Config) Settings() []Setting {
	r := c.Redacted()
	root := reflect.ValueOf(r).Elem()
	out := make([]Setting, 0, len(leaves))
	for _, l := range leaves {
		src := r.origins[l.path]
		if src == "" {
			src = "default"
		}
		out = append(out, Setting{
			Key:    l.path,
			Env:    l.env,
			Value:  formatValue(root.FieldByIndex(l.index)),
			Source: src,
			Secret: l.secret,
		})
	}
	return out
}

// String renders the redacted YAML, so printing a Config never shows secrets.
func (c Config) String() string {
	b, err := c.RedactedYAML()
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Format makes every fmt verb (%v, %+v, %#v, %s, …) print String().
func (c Config) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// LogValue implements slog.LogValuer: a group of key=value with secrets redacted.
func (c Config) LogValue() slog.Value {
	settings := c.Settings()
	attrs := make([]slog.Attr, len(settings))
	for i, s := range settings {
		attrs[i] = slog.String(s.Key, s.Value)
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON renders the redacted configuration with the YAML key names
// (ordered as in the schema), for the admin API; without it encoding/json
// would print the store URL's password.
func (c Config) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := nodeJSON(&b, toNode(reflect.ValueOf(c.Redacted()).Elem())); err != nil {
		return nil, fmt.Errorf("config: encode JSON: %w", err)
	}
	return b.Bytes(), nil
}

func nodeJSON(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			k, err := json.Marshal(n.Content[i].Value)
			if err != nil {
				return err
			}
			b.Write(k)
			b.WriteByte(':')
			if err := nodeJSON(b, n.Content[i+1]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, it := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := nodeJSON(b, it); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	default:
		switch n.Tag {
		case "!!bool", "!!int", "!!float":
			b.WriteString(n.Value)
		default:
			v, err := json.Marshal(n.Value)
			if err != nil {
				return err
			}
			b.Write(v)
		}
	}
	return nil
}
