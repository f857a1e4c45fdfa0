package dataverse

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Filter is an OData $filter expression. It can only be built with the
// functions in this file, which validate property names, validate GUIDs and
// escape string literals, so no value can widen a filter. The zero Filter
// means "no filter".
type Filter struct {
	expr string
	err  error
}

// Value is a typed literal for a comparison.
type Value struct {
	lit string
	err error
}

// String is a string literal; single quotes are doubled per OData ABNF.
func String(s string) Value {
	return Value{lit: "'" + strings.ReplaceAll(s, "'", "''") + "'"}
}

// GUID is a Guid literal (unquoted in OData v4). The value must be a
// canonical GUID; anything else makes the whole filter invalid.
func GUID(s string) Value {
	id, err := ParseID(s)
	if err != nil {
		return Value{err: err}
	}
	return Value{lit: id}
}

// Int is an integer literal (also used for choice values).
func Int(n int64) Value { return Value{lit: strconv.FormatInt(n, 10)} }

// Bool is true or false.
func Bool(b bool) Value { return Value{lit: strconv.FormatBool(b)} }

// Time is a DateTimeOffset literal, always sent in UTC with a Z suffix.
func Time(t time.Time) Value {
	if t.IsZero() {
		return Value{err: errors.New("dataverse: zero time in filter")}
	}
	return Value{lit: t.UTC().Format("2006-01-02T15:04:05Z")}
}

// Null is the null literal.
func Null() Value { return Value{lit: "null"} }

func compare(op, prop string, v Value) Filter {
	if err := checkPath(prop); err != nil {
		return Filter{err: err}
	}
	if v.err != nil {
		return Filter{err: fmt.Errorf("filter %s: %w", prop, v.err)}
	}
	if v.lit == "" {
		return Filter{err: fmt.Errorf("filter %s: empty value (use String, GUID, Int, …)", prop)}
	}
	return Filter{expr: prop + " " + op + " " + v.lit}
}

// Eq, Ne, Gt, Ge, Lt and Le compare a property (or a navigation path such
// as "BookingStatus/status") with a typed literal.
func Eq(prop string, v Value) Filter { return compare("eq", prop, v) }
func Ne(prop string, v Value) Filter { return compare("ne", prop, v) }
func Gt(prop string, v Value) Filter { return compare("gt", prop, v) }
func Ge(prop string, v Value) Filter { return compare("ge", prop, v) }
func Lt(prop string, v Value) Filter { return compare("lt", prop, v) }
func Le(prop string, v Value) Filter { return compare("le", prop, v) }

func call(fn, prop string, s string) Filter {
	if err := checkPath(prop); err != nil {
		return Filter{err: err}
	}
	return Filter{expr: fn + "(" + prop + "," + String(s).lit + ")"}
}

// Contains, StartsWith and EndsWith are the OData string functions.
func Contains(prop, s string) Filter   { return call("contains", prop, s) }
func StartsWith(prop, s string) Filter { return call("startswith", prop, s) }
func EndsWith(prop, s string) Filter   { return call("endswith", prop, s) }

func join(op string, fs []Filter) Filter {
	var parts []string
	for _, f := range fs {
		if f.err != nil {
			return Filter{err: f.err}
		}
		if f.expr == "" {
			continue
		}
		// Every operand is parenthesised so precedence never depends on
		// what the operand contains.
		parts = append(parts, "("+f.expr+")")
	}
	switch len(parts) {
	case 0:
		return Filter{}
	case 1:
		return Filter{expr: parts[0]}
	}
	return Filter{expr: strings.Join(parts, " "+op+" ")}
}

// And combines filters; zero Filters are skipped.
func And(fs ...Filter) Filter { return join("and", fs) }

// Or combines filters; zero Filters are skipped.
func Or(fs ...Filter) Filter { return join("or", fs) }

// Not negates f.
func Not(f Filter) Filter {
	if f.err != nil || f.expr == "" {
		if f.err == nil {
			return Filter{err: errors.New("dataverse: not of an empty filter")}
		}
		return f
	}
	return Filter{expr: "not (" + f.expr + ")"}
}

// Build returns the expression text, or the first error recorded while
// building it.
func (f Filter) Build() (string, error) { return f.expr, f.err }

// IsZero reports whether f is the empty filter.
func (f Filter) IsZero() bool { return f.expr == "" && f.err == nil }
