package dataverse

import (
	"strings"
	"testing"
	"time"
)

func filterRecords() []map[string]any {
	return []map[string]any{
		{"name": "x' or '1'='1", "n": int64(1), "ok": true, "at": time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), "MetadataId": "aaaaaaaa-0000-0000-0000-000000000001"},
		{"name": "Contoso", "n": int64(5), "ok": false, "at": time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), "MetadataId": "AAAAAAAA-0000-0000-0000-000000000002"},
		{"name": "contoso west", "n": nil, "ok": true, "at": nil, "MetadataId": "bbbbbbbb-0000-0000-0000-000000000003"},
	}
}

func testBinder(path []string) (fieldKind, func(any) any, error) {
	kinds := map[string]fieldKind{"name": fkString, "n": fkNumber, "ok": fkBool, "at": fkTime, "MetadataId": fkGUID}
	k, ok := kinds[path[0]]
	if !ok || len(path) != 1 {
		return 0, nil, errUnknown(path[0])
	}
	return k, func(rec any) any {
		v := rec.(map[string]any)[path[0]]
		if s, ok := v.(string); ok && k == fkGUID {
			return strings.ToLower(s)
		}
		return v
	}, nil
}

type errUnknown string

func (e errUnknown) Error() string { return "Could not find a property named '" + string(e) + "'" }

func TestFilter(t *testing.T) {
	tests := []struct {
		expr string
		want string // indexes of matching records
	}{
		{"name eq 'Contoso'", "1"},
		{"name eq 'CONTOSO'", "1"}, // case-insensitive, like Dataverse's collation
		{"name eq 'x'' or ''1''=''1'", "0"},
		{"name eq 'x' or '1' eq '1'", ""}, // '1' eq '1' compares two literals: rejected below, not here
		{"contains(name,'toso')", "12"},
		{"startswith(name,'contoso') and not contains(name,'west')", "1"},
		{"n gt 1", "1"},
		{"n ge 1 and n le 1", "0"},
		{"n eq null", "2"},
		{"n ne null", "01"},
		{"5 eq n", "1"},
		{"1 lt n", "1"},
		{"ok eq true", "02"},
		{"at lt 2026-01-31T00:00:00Z", "0"},
		{"at ge 2026-01-05T09:00Z", "01"},
		{"at lt 2026-02-01", "0"},
		{"MetadataId eq AAAAAAAA-0000-0000-0000-000000000001", "0"},
		{"MetadataId eq aaaaaaaa-0000-0000-0000-000000000002 or (MetadataId eq bbbbbbbb-0000-0000-0000-000000000003)", "12"},
		{"not (n gt 1 or n eq null)", "0"},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			pred, err := parseFilter(tc.expr, testBinder)
			if tc.expr == "name eq 'x' or '1' eq '1'" {
				if err == nil {
					t.Fatal("comparing two literals must be rejected")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			for i, r := range filterRecords() {
				if pred(r) {
					got += string(rune('0' + i))
				}
			}
			if got != tc.want {
				t.Fatalf("matched %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFilterErrors(t *testing.T) {
	tests := []struct{ expr, msg string }{
		{"name eq 'open", "unterminated string"},
		{"nosuch eq 1", "Could not find a property named 'nosuch'"},
		{"MetadataId eq 'aaaaaaaa-0000-0000-0000-000000000001'", "Found operand types 'Edm.Guid' and 'Edm.String'"},
		{"n eq 'five'", "incompatible types"},
		{"ok gt true", "incompatible types"},
		{"name eq 'a' and", "expected a property name"},
		{"(name eq 'a'", "expected ')'"},
		{"name eq 'a')", "syntax error"},
		{"contains(n,'1')", "no function signature"},
		{"substringof('a',name)", "unknown function"},
		{"name eq 'a'; drop", "syntax error"},
		{"at lt 2026-01-01x", "syntax error"},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			_, err := parseFilter(tc.expr, testBinder)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %q", err, tc.msg)
			}
		})
	}
}

// FuzzFilter: no input panics, and a string literal built with OData
// quoting matches exactly the record holding that string, whatever it
// contains.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{"x' or '1'='1", "a''b", "') or (name ne '", "", "\x00'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseFilter(s, testBinder) // must not panic
		pred, err := parseFilter("name eq '"+strings.ReplaceAll(s, "'", "''")+"'", testBinder)
		if err != nil {
			t.Fatalf("quoted literal %q rejected: %v", s, err)
		}
		if !pred(map[string]any{"name": s}) {
			t.Fatalf("literal %q does not match itself", s)
		}
		if s != "other" && pred(map[string]any{"name": "other"}) && !strings.EqualFold(s, "other") {
			t.Fatalf("literal %q matched another value", s)
		}
	})
}
