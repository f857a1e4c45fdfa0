package dataverse

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// oneComparison reports whether expr is exactly `prop eq '<literal>'` with
// the literal's quotes doubled, and returns the literal's value: a quote in
// the value can end neither the literal nor the comparison.
func oneComparison(expr, prop string) (string, bool) {
	rest, ok := strings.CutPrefix(expr, prop+" eq '")
	if !ok {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		if rest[i] != '\'' {
			b.WriteByte(rest[i])
			continue
		}
		if i+1 < len(rest) && rest[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		// The closing quote: it must be the last byte.
		return b.String(), i == len(rest)-1
	}
	return "", false // never closed
}

// FuzzFilterEq: for any value v, the $filter of Eq(col, String(v)), as
// encoded into the query string, decodes back to exactly one comparison of
// col with exactly v. No quote, "or", ")" or "&" in v can add another.
func FuzzFilterEq(f *testing.F) {
	for _, s := range []string{"Ana", "O'Brien", "x' or '1'='1", "') or (name ne '", "' or true or name eq '",
		"a''b", "'", "''", "&$top=1", "%27 or 1 eq 1", "#", "\x00\r\n", "名前"} {
		f.Add("name", s)
	}
	f.Add("BookingStatus/status", "x")
	f.Add("name) or (true", "x")
	f.Fuzz(func(t *testing.T, col, v string) {
		filter := Eq(col, String(v))
		expr, err := filter.Build()
		if checkPath(col) != nil {
			if err == nil {
				t.Fatalf("property %q accepted", col)
			}
			return
		}
		if err != nil {
			t.Fatalf("Eq(%q, String(%q)): %v", col, v, err)
		}
		got, ok := oneComparison(expr, col)
		if !ok || got != v {
			t.Fatalf("%q is not one comparison of %q with %q (got %q)", expr, col, v, got)
		}
		raw, err := Query{Filter: filter}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		q, err := url.ParseQuery(raw)
		if err != nil || len(q) != 1 || len(q["$filter"]) != 1 || q["$filter"][0] != expr {
			t.Fatalf("query %q decodes to %v (%v), want only $filter=%q", raw, q, err, expr)
		}
		// Two comparisons joined stay two: the value cannot change the
		// structure of an enclosing expression either.
		both, err := And(filter, Eq("other", String(v))).Build()
		if err != nil {
			t.Fatal(err)
		}
		left, right, found := strings.Cut(both, ") and (other eq '")
		if !found || !strings.HasPrefix(left, "(") || !strings.HasSuffix(right, "')") {
			t.Fatalf("And: %q", both)
		}
		if l, ok := oneComparison(left[1:], col); !ok || l != v {
			t.Fatalf("And left operand %q", left)
		}
		if r, ok := oneComparison("other eq '"+right[:len(right)-1], "other"); !ok || r != v {
			t.Fatalf("And right operand %q", right)
		}
	})
}

var rowPathRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\)$`)

// FuzzRowPath: a row path (and the @odata.bind value and GUID literal
// built the same way) is either refused or exactly set(guid): no id can
// add a segment, a query, a key or a dot segment.
func FuzzRowPath(f *testing.F) {
	for _, s := range []string{"3f0a1a8e-8f1e-4c1f-9a57-0d5b1e2c3d4e", "3F0A1A8E-8F1E-4C1F-9A57-0D5B1E2C3D4E",
		"{3f0a1a8e-8f1e-4c1f-9a57-0d5b1e2c3d4e}", "3f0a1a8e8f1e4c1f9a570d5b1e2c3d4e", "../../systemusers",
		"3f0a1a8e-8f1e-4c1f-9a57-0d5b1e2c3d4e)/x", "3f0a1a8e-8f1e-4c1f-9a57-0d5b1e2c3d4'", "urn:uuid:3f0a1a8e-8f1e-4c1f-9a57-0d5b1e2c3d4e"} {
		f.Add(SetBookings, s)
	}
	f.Add("bookableresources(x)", "3f0a1a8e-8f1e-4c1f-9a57-0d5b1e2c3d4e")
	f.Fuzz(func(t *testing.T, set, id string) {
		p, err := rowPath(set, id)
		if err == nil && !rowPathRE.MatchString(p) {
			t.Fatalf("rowPath(%q, %q) = %q", set, id, p)
		}
		if err == nil && !strings.EqualFold(p, set+"("+id+")") {
			t.Fatalf("rowPath(%q, %q) = %q changed the id", set, id, p)
		}
		if _, v, err := Bind("Resource", set, id); err == nil && !rowPathRE.MatchString(strings.TrimPrefix(v, "/")) {
			t.Fatalf("Bind value %q", v)
		}
		if expr, err := Eq("bookableresourceid", GUID(id)).Build(); err == nil &&
			!regexp.MustCompile(`^bookableresourceid eq [0-9a-f-]{36}$`).MatchString(expr) {
			t.Fatalf("GUID filter %q", expr)
		}
	})
}
