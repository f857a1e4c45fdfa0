package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load builds the configuration from defaults, then the YAML file at path
// (skipped if path is ""), then BOOKINGSYNC_* variables in environ (later
// entries win, empty values are ignored), then reads *_file secrets and
// validates.
//
// Warnings (unknown BOOKINGSYNC_* variables, risky settings) are returned
// whether or not there is an error. If the file cannot be read or is not
// YAML, the config is nil. Otherwise problems with values are returned as
// an *Error listing all of them, together with the config as far as it could
// be built, so `config check` can still show it; do not run with it.
func Load(path string, environ []string) (*Config, []string, error) {
	env := envMap(environ)
	c := defaults(env)
	c.origins = map[string]string{}
	ps := &problems{origins: c.origins}

	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("config: %w", err)
		}
		if err := c.decodeYAML(path, data, ps); err != nil {
			return nil, nil, fmt.Errorf("config: parse %s: %w", path, err)
		}
	}
	warnings := c.applyEnv(environ, ps)
	c.readSecretFiles(ps)
	c.finalize(env)
	warnings = append(warnings, c.Warnings()...)
	if err := ps.err(); err != nil {
		return c, warnings, err
	}
	if err := c.Validate(); err != nil {
		return c, warnings, err
	}
	return c, warnings, nil
}

// envMap turns KEY=VALUE pairs into a map; later pairs win, as in os/exec.
func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// decodeYAML walks the document against the schema itself (instead of
// yaml's struct decoding) so every problem names the full key path and line,
// and all of them are reported at once.
func (c *Config) decodeYAML(src string, data []byte, ps *problems) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file: defaults
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return fmt.Errorf("line %d: only one YAML document is allowed", extra.Line)
	} else if !errors.Is(err, io.EOF) {
		return err
	}
	d := &yamlDecoder{src: src, c: c, ps: ps}
	if len(doc.Content) == 0 {
		return nil
	}
	d.section(doc.Content[0], reflect.ValueOf(c).Elem(), "")
	return nil
}

type yamlDecoder struct {
	src string
	c   *Config
	ps  *problems
}

func (d *yamlDecoder) at(n *yaml.Node) string { return d.src + ":" + strconv.Itoa(n.Line) }

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a single value"
}

// section decodes a mapping node into the struct v at key path prefix.
func (d *yamlDecoder) section(n *yaml.Node, v reflect.Value, prefix string) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		key := prefix
		if key == "" {
			key = "(top level)"
		}
		d.ps.addAt(key, "expected a mapping of keys, found "+kindName(n), "", d.at(n))
		return
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			fields[name] = i
			names = append(names, name)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		path := k.Value
		if prefix != "" {
			path = prefix + "." + k.Value
		}
		if k.Kind != yaml.ScalarNode {
			d.ps.addAt(prefix, "keys must be plain names", "", d.at(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.ps.addAt(path, fmt.Sprintf("duplicate key, first set on line %d", line), "", d.at(k))
			continue
		}
		seen[k.Value] = k.Line
		fi, ok := fields[k.Value]
		if !ok {
			hint := ""
			if s := suggest(k.Value, names); s != "" {
				hint = fmt.Sprintf("did you mean %q?", s)
			} else if prefix != "" {
				hint = "known keys: " + strings.Join(names, ", ")
			}
			d.ps.addAt(path, "unknown key", hint, d.at(k))
			continue
		}
		fv, ft := v.Field(fi), t.Field(fi).Type
		if !isLeaf(ft) {
			d.section(val, fv, path)
			continue
		}
		d.c.origins[path] = d.at(k)
		if ft == secretType {
			if rv := resolve(val); !(isNull(rv) || rv.Kind == yaml.ScalarNode && rv.Value == "") {
				l := leafByPath[path]
				d.ps.addAt(path, "secrets may not be written in the config file",
					fmt.Sprintf("set %s or %s instead", l.env, l.fileKey), d.at(k))
			}
			continue
		}
		d.value(val, fv, path)
	}
}

// value decodes one key's value node into v.
func (d *yamlDecoder) value(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if v.Kind() == reflect.Slice {
		switch {
		case isNull(n):
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		case n.Kind == yaml.SequenceNode:
			items := reflect.MakeSlice(v.Type(), 0, len(n.Content))
			for _, it := range n.Content {
				it = resolve(it)
				if it.Kind != yaml.ScalarNode {
					d.ps.addAt(path, "list items must be single values, found "+kindName(it), "", d.at(it))
					return
				}
				items = reflect.Append(items, reflect.ValueOf(it.Value).Convert(v.Type().Elem()))
			}
			v.Set(items)
		default:
			d.ps.addAt(path, "expected a list, found "+kindName(n), typeHint(v.Type()), d.at(n))
		}
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.ps.addAt(path, "expected a single value, found "+kindName(n), typeHint(v.Type()), d.at(n))
		return
	}
	s := n.Value
	if isNull(n) {
		s = ""
		_, text := v.Addr().Interface().(interface{ UnmarshalText([]byte) error })
		if v.Kind() != reflect.String && !text {
			d.ps.addAt(path, "no value given", typeHint(v.Type()), d.at(n))
			return
		}
	}
	if err := parseInto(v, s); err != nil {
		d.ps.addAt(path, err.Error(), typeHint(v.Type()), d.at(n))
	}
}

// applyEnv overlays BOOKINGSYNC_* variables and returns warnings about
// unknown ones.
func (c *Config) applyEnv(environ []string, ps *problems) []string {
	var warnings []string
	warned := map[string]bool{}
	root := reflect.ValueOf(c).Elem()
	for _, kv := range environ {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvPrefix) || k == EnvConfigFile {
			continue
		}
		l := leafByEnv[k]
		if l == nil {
			if !warned[k] {
				warned[k] = true
				w := k + ": unknown environment variable, ignored"
				if s := suggest(k, envNamesList); s != "" {
					w += fmt.Sprintf(" (did you mean %s?)", s)
				}
				warnings = append(warnings, w)
			}
			continue
		}
		if val == "" {
			continue
		}
		src := "$" + k
		if err := parseInto(root.FieldByIndex(l.index), val); err != nil {
			ps.addAt(l.path, err.Error(), typeHint(l.typ), src)
			continue
		}
		c.origins[l.path] = src
	}
	return warnings
}

// readSecretFiles loads every secret whose *_file key is set.
func (c *Config) readSecretFiles(ps *problems) {
	root := reflect.ValueOf(c).Elem()
	for _, l := range leaves {
		if !l.secret {
			continue
		}
		fl := leafByPath[l.fileKey]
		name := root.FieldByIndex(fl.index).String()
		if name == "" {
			continue
		}
		sv := root.FieldByIndex(l.index)
		if sv.Interface().(Secret).IsSet() {
			ps.add(l.path, fmt.Sprintf("set both by %s and by %s", l.env, l.fileKey), "use only one")
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			ps.add(l.fileKey, fmt.Sprintf("cannot read %q: %v", name, err), "")
			continue
		}
		s := string(data)
		if !l.raw {
			s = strings.TrimRight(s, "\r\n")
		}
		if s == "" {
			ps.add(l.fileKey, fmt.Sprintf("%q is empty", name), "")
			continue
		}
		sv.Set(reflect.ValueOf(NewSecret(s)))
		c.origins[l.path] = c.origins[l.fileKey]
	}
}

// oneOfMsg is the message for a value outside an enumeration.
func oneOfMsg(got string, allowed []string) string {
	return fmt.Sprintf("%q is not one of %s", got, strings.Join(allowed, ", "))
}
