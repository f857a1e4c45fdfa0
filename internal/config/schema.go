package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// leaf describes one settable key of the schema. Env names are generated
// from key paths rather than parsed back, because key names contain "_".
type leaf struct {
	path    string // "azure.client_secret"
	env     string // "BOOKINGSYNC_AZURE_CLIENT_SECRET"
	index   []int  // reflect field index path from Config
	typ     reflect.Type
	secret  bool
	fileKey string // for secrets: path of the companion *_file key
	raw     bool   // for secrets: keep file content byte for byte (PFX)
}

var (
	secretType          = reflect.TypeFor[Secret]()
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

	leaves       = buildSchema()
	leafByPath   = map[string]*leaf{}
	leafByEnv    = map[string]*leaf{}
	envNamesList []string
)

func init() {
	for _, l := range leaves {
		if leafByEnv[l.env] != nil {
			panic("config: two keys map to env " + l.env) // schema bug, caught by any test
		}
		leafByPath[l.path] = l
		leafByEnv[l.env] = l
		envNamesList = append(envNamesList, l.env)
	}
}

// EnvName returns the environment variable that overrides key path, e.g.
// "graph.base_url" → "BOOKINGSYNC_GRAPH_BASE_URL", or "" for an unknown key.
func EnvName(path string) string {
	if l := leafByPath[path]; l != nil {
		return l.env
	}
	return ""
}

// Keys returns every key path in schema order.
func Keys() []string {
	ks := make([]string, len(leaves))
	for i, l := range leaves {
		ks[i] = l.path
	}
	return ks
}

// isLeaf reports whether a field of type t is one key (not a nested section).
func isLeaf(t reflect.Type) bool {
	return t.Kind() != reflect.Struct || t == secretType || reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// yamlName returns a field's key name, or "" for fields outside the schema.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func buildSchema() []*leaf {
	var out []*leaf
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			idx := append(append([]int(nil), index...), i)
			if !isLeaf(f.Type) {
				walk(f.Type, path, idx)
				continue
			}
			l := &leaf{
				path:  path,
				env:   EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_")),
				index: idx,
				typ:   f.Type,
			}
			if f.Type == secretType {
				l.secret = true
				fileKey, opts, _ := strings.Cut(f.Tag.Get("secret"), ",")
				if fileKey == "" {
					panic("config: secret " + path + " lacks a secret:\"<file key>\" tag")
				}
				l.fileKey = strings.TrimSuffix(path, name) + fileKey
				l.raw = opts == "raw"
			}
			out = append(out, l)
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// parseInto sets v from its text form, as used by env vars and YAML scalars.
func parseInto(v reflect.Value, s string) error {
	if v.Type() == secretType {
		v.Set(reflect.ValueOf(NewSecret(s)))
		return nil
	}
	if tu, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return tu.UnmarshalText([]byte(s))
	}
	if v.Type() == durationType {
		d, err := ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a boolean", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(s), "_", ""), 10, 64)
		if err != nil || v.OverflowInt(n) {
			return fmt.Errorf("%q is not an integer", s)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		v.SetFloat(f)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported list type %s", v.Type())
		}
		// Env form of a list: comma-separated.
		var items []string
		for it := range strings.SplitSeq(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		v.Set(reflect.ValueOf(items).Convert(v.Type()))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// typeHint explains the expected syntax of a value of type t.
func typeHint(t reflect.Type) string {
	switch {
	case t == durationType:
		return "use a Go duration like 90s, 10m, 168h, or days like 7d"
	case t == reflect.TypeFor[RenewWhen]():
		return "use a fraction like 0.5 or a duration like 24h"
	case t == reflect.TypeFor[ManagedIdentity]():
		return "use true for a system-assigned identity or the client id of a user-assigned one"
	case t.Kind() == reflect.Bool:
		return "use true or false"
	case t.Kind() == reflect.Slice:
		return "use a YAML list, or a comma-separated list in the environment"
	}
	return ""
}

// formatValue renders a leaf value the way a user would write it.
func formatValue(v reflect.Value) string {
	if v.Type() == secretType {
		return v.Interface().(Secret).String()
	}
	if tm, ok := v.Interface().(encoding.TextMarshaler); ok {
		b, err := tm.MarshalText()
		if err != nil {
			return fmt.Sprintf("<%v>", err)
		}
		return string(b)
	}
	if v.Type() == durationType {
		return FormatDuration(time.Duration(v.Int()))
	}
	switch v.Kind() {
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = v.Index(i).String()
		}
		return strings.Join(parts, ",")
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}

// levenshtein is the edit distance, for "did you mean" hints.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// suggest returns the closest candidate to s if it is plausibly a typo.
func suggest(s string, candidates []string) string {
	best, bestD := "", len(s)/3+2
	for _, c := range candidates {
		if d := levenshtein(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}
