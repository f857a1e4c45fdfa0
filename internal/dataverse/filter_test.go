package dataverse

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

const gid = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"

func TestFilterBuild(t *testing.T) {
	tests := []struct {
		name    string
		f       Filter
		want    string
		wantErr error
	}{
		{"string", Eq("name", String("Ada")), "name eq 'Ada'", nil},
		{"quote doubled", Eq("name", String("o'brien")), "name eq 'o''brien'", nil},
		{"guid unquoted lower-cased", Eq("_resource_value", GUID(strings.ToUpper(gid))), "_resource_value eq " + gid, nil},
		{"int", Eq("statecode", Int(0)), "statecode eq 0", nil},
		{"bool", Ne("isdisabled", Bool(true)), "isdisabled ne true", nil},
		{"time UTC", Ge("endtime", Time(time.Date(2026, 1, 1, 1, 0, 0, 0, time.FixedZone("", 3600)))), "endtime ge 2026-01-01T00:00:00Z", nil},
		{"null", Eq("_msdyn_workorder_value", Null()), "_msdyn_workorder_value eq null", nil},
		{"nav path", Eq("BookingStatus/status", Int(3)), "BookingStatus/status eq 3", nil},
		{"and parenthesises", And(Eq("a", Int(1)), Or(Eq("b", Int(2)), Eq("c", Int(3)))), "(a eq 1) and ((b eq 2) or (c eq 3))", nil},
		{"and skips zero", And(Filter{}, Eq("a", Int(1))), "(a eq 1)", nil},
		{"not", Not(Eq("a", Int(1))), "not (a eq 1)", nil},
		{"contains escapes", Contains("name", "it's"), "contains(name,'it''s')", nil},
		{"startswith", StartsWith("name", "x"), "startswith(name,'x')", nil},
		{"bad guid", Eq("_resource_value", GUID("1 eq 1")), "", ErrInvalidID},
		{"braced guid rejected", Eq("_resource_value", GUID("{"+gid+"}")), "", ErrInvalidID},
		{"guid with trailing expr", Eq("_resource_value", GUID(gid+" or 1 eq 1")), "", ErrInvalidID},
		{"bad property", Eq("name eq 'x' or name", String("y")), "", ErrInvalidName},
		{"bad property in function", Contains("name) or (1 eq 1", "x"), "", ErrInvalidName},
		{"error propagates through and", And(Eq("a", Int(1)), Eq("b", GUID("nope"))), "", ErrInvalidID},
		{"empty value", Eq("a", Value{}), "", nil},
		{"zero time", Eq("a", Time(time.Time{})), "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.Build()
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Build() = %q, want error", got)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Build() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// tokenize splits an OData filter into tokens; a string literal (with ”
// escapes) is one token. It is deliberately independent of the builder.
func tokenize(t *testing.T, s string) []string {
	t.Helper()
	var toks []string
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ':
			i++
		case c == '(' || c == ')' || c == ',':
			toks = append(toks, string(c))
			i++
		case c == '\'':
			j := i + 1
			for {
				if j >= len(s) {
					t.Fatalf("unterminated literal in %q", s)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			toks = append(toks, s[i:j+1])
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" (),'", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

func TestFilterInjectionCannotWiden(t *testing.T) {
	hostile := []string{
		"o'brien' or 1 eq 1",
		"x') or (1 eq 1",
		"' or ''='",
		"''''",
		"a' or contains(name,'",
		"%27 or 1 eq 1",
		"x&$filter=1 eq 1",
		"x#",
	}
	for _, v := range hostile {
		t.Run(v, func(t *testing.T) {
			expr, err := Eq("name", String(v)).Build()
			if err != nil {
				t.Fatal(err)
			}
			toks := tokenize(t, expr)
			if len(toks) != 3 || toks[0] != "name" || toks[1] != "eq" {
				t.Fatalf("filter %q tokenizes to %q; want [name eq <literal>]", expr, toks)
			}
			lit := toks[2]
			if got := strings.ReplaceAll(lit[1:len(lit)-1], "''", "'"); got != v {
				t.Fatalf("literal decodes to %q, want %q", got, v)
			}

			// Combined with another condition, the structure is still two
			// comparisons joined by one "and".
			expr, _ = And(Eq("statecode", Int(0)), Eq("name", String(v))).Build()
			toks = tokenize(t, expr)
			want := []string{"(", "statecode", "eq", "0", ")", "and", "(", "name", "eq", toks[9], ")"}
			if !slices.Equal(toks, want) {
				t.Fatalf("and-filter tokens = %q", toks)
			}

			// After URL encoding, the query still has exactly one $filter
			// and it decodes back to the same expression.
			qs, err := Query{Filter: Eq("name", String(v))}.Encode()
			if err != nil {
				t.Fatal(err)
			}
			vals, err := url.ParseQuery(qs)
			if err != nil {
				t.Fatalf("ParseQuery(%q): %v", qs, err)
			}
			if len(vals) != 1 || len(vals["$filter"]) != 1 {
				t.Fatalf("query %q parses to %v", qs, vals)
			}
			if f, _ := Eq("name", String(v)).Build(); vals.Get("$filter") != f {
				t.Fatalf("decoded $filter = %q, want %q", vals.Get("$filter"), f)
			}
		})
	}
}

func TestQueryEncode(t *testing.T) {
	tests := []struct {
		name string
		q    Query
		want string
		err  bool
	}{
		{"empty", Query{}, "", false},
		{"select", Query{Select: []string{"name", "_resource_value"}}, "$select=name,_resource_value", false},
		{"expand with select", Query{Expand: []Expand{{Nav: "BookingStatus", Select: []string{"name", "status"}}}},
			"$expand=BookingStatus($select%3Dname,status)", false},
		{"filter with spaces", Query{Filter: Eq("name", String("a b"))}, "$filter=name%20eq%20'a%20b'", false},
		{"orderby top", Query{OrderBy: []OrderBy{{Prop: "starttime", Desc: true}}, Top: 5}, "$orderby=starttime%20desc&$top=5", false},
		{"bad select", Query{Select: []string{"name,statecode"}}, "", true},
		{"bad expand", Query{Expand: []Expand{{Nav: "x($select=y)"}}}, "", true},
		{"negative top", Query{Top: -1}, "", true},
		{"bad filter", Query{Filter: Eq("a", GUID("x"))}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.q.Encode()
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, wantErr %v", err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("Encode() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{gid, gid, true},
		{strings.ToUpper(gid), gid, true},
		{"{" + gid + "}", "", false},
		{"urn:uuid:" + gid, "", false},
		{strings.ReplaceAll(gid, "-", ""), "", false},
		{"", "", false},
		{gid[:35] + "g", "", false},
		{"c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f)", "", false},
		{"00000000-0000-0000-0000-000000000000 ", "", false},
	}
	for _, tt := range tests {
		got, err := ParseID(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseID(%q) = %q, %v", tt.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseID(%q) err %v is not ErrInvalidID", tt.in, err)
		}
	}
}

func TestBind(t *testing.T) {
	k, v, err := Bind(NavBookingResource, SetResources, strings.ToUpper(gid))
	if err != nil || k != "Resource@odata.bind" || v != "/bookableresources("+gid+")" {
		t.Fatalf("Bind = %q, %q, %v", k, v, err)
	}
	for _, tc := range []struct{ nav, set, id string }{
		{"Resource", "bookableresources", "not-a-guid"},
		{"Resource@odata.bind", "bookableresources", gid},
		{"Resource", "bookableresources(x)", gid},
		{"", "bookableresources", gid},
	} {
		if _, _, err := Bind(tc.nav, tc.set, tc.id); err == nil {
			t.Errorf("Bind(%q, %q, %q) succeeded", tc.nav, tc.set, tc.id)
		}
	}
	b := Body{}
	if err := b.Unbind(NavBookingWorkOrder); err != nil {
		t.Fatal(err)
	}
	if v, ok := b["msdyn_workorder@odata.bind"]; !ok || v != nil {
		t.Fatalf("Unbind: %v", b)
	}
}
