package cdm

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func loadContracts(t *testing.T) map[string]*Entity {
	t.Helper()
	dir, err := ContractsDir()
	if errors.Is(err, ErrContractsNotFound) {
		t.Skipf("CDM contract files not present (%v); skipping", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	ents, err := Load(dir)
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	return ents
}

func TestLoadContracts(t *testing.T) {
	ents := loadContracts(t)
	for _, name := range []string{"bookableresource", "bookableresourcebooking", "bookableresourcebookingheader", "bookingstatus"} {
		if ents[name] == nil {
			t.Errorf("entity %q missing; have %v", name, keys(ents))
		}
	}

	tests := []struct {
		entity, attr string
		dataType     string
		structural   string
		kind         Kind
		options      []int
		maxLength    int
	}{
		{"bookingstatus", "status", "String", "picklist", KindInt, []int{1, 2, 3}, 0},
		{"bookingstatus", "statecode", "String", "state", KindInt, []int{0, 1}, 0},
		{"bookableresourcebooking", "bookingtype", "String", "picklist", KindInt, []int{1, 2}, 0},
		{"bookableresourcebooking", "statuscode", "String", "status", KindInt, []int{1, 2}, 0},
		{"bookableresourcebooking", "resource", "Guid", "lookup", KindGUID, nil, 0},
		{"bookableresourcebooking", "versionnumber", "Int64", "timestamp", KindBigInt, nil, 0},
		{"bookableresourcebooking", "starttime", "DateTimeOffset", "datetime", KindDateTime, nil, 0},
		{"bookableresourcebooking", "name", "String", "nvarchar", KindString, nil, 100},
		{"bookableresource", "resourcetype", "String", "picklist", KindInt, []int{1, 2, 3, 4, 5, 6}, 0},
		{"bookableresource", "timezone", "Int32", "int", KindInt, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.entity+"."+tt.attr, func(t *testing.T) {
			a := ents[tt.entity].Attribute(tt.attr)
			if a == nil {
				t.Fatalf("attribute not found")
			}
			if a.DataType != tt.dataType || a.StructuralType != tt.structural {
				t.Errorf("type = %s/%s, want %s/%s", a.DataType, a.StructuralType, tt.dataType, tt.structural)
			}
			if got := a.WebAPIKind(); got != tt.kind {
				t.Errorf("WebAPIKind = %s, want %s", got, tt.kind)
			}
			if got := a.OptionValues(); !slices.Equal(got, tt.options) {
				t.Errorf("OptionValues = %v, want %v", got, tt.options)
			}
			if a.MaxLength != tt.maxLength {
				t.Errorf("MaxLength = %d, want %d", a.MaxLength, tt.maxLength)
			}
		})
	}

	// Case-insensitive lookup and a negative.
	if ents["bookingstatus"].Attribute("STATUS") == nil {
		t.Error("Attribute lookup is not case-insensitive")
	}
	if ents["bookingstatus"].Attribute("nosuchcolumn") != nil {
		t.Error("Attribute(nosuchcolumn) != nil")
	}

	var found bool
	for _, r := range ents["bookableresourcebooking"].Relationships {
		if r.ReferencingAttribute == "resource" {
			found = true
			if r.ReferencedEntity != "BookableResource" || r.ReferencedAttribute != "bookableresourceid" {
				t.Errorf("resource relationship = %+v", r)
			}
		}
	}
	if !found {
		t.Error("no relationship for bookableresourcebooking.resource")
	}
}

func TestParse(t *testing.T) {
	good := "\ufeff{\r\n\"jsonSchemaSemanticVersion\":\"0.4.0\",\"entity\":{\"semanticDomain\":{\"class\":{\"type\":\"Thing\"}},\r\n" +
		"\"attributes\":[{\"name\":\"kind\",\"dataType\":\"String\",\"unknownField\":1,\"semanticDomain\":{\"structuralType\":\"picklist\"," +
		"\"constrainedList\":{\"name\":\"thing_kind\",\"items\":[{\"value\":7,\"displayName\":\"Seven\"},{\"value\":3,\"displayName\":\"Three\"}]}}}]}}"
	e, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	a := e.Attribute("kind")
	if a == nil || !slices.Equal(a.OptionValues(), []int{3, 7}) || !a.HasOption(7) || a.HasOption(5) || a.OptionSetName != "thing_kind" {
		t.Fatalf("parsed attribute = %+v", a)
	}

	bad := []struct{ name, in, want string }{
		{"not json", "{", "decode"},
		{"no entity", `{"jsonSchemaSemanticVersion":"1.0.0","definitions":[]}`, "no \"entity\""},
		{"no type", `{"entity":{"attributes":[]}}`, "class.type"},
		{"attr without dataType", `{"entity":{"semanticDomain":{"class":{"type":"X"}},"attributes":[{"name":"a"}]}}`, "lacks"},
		{"option without value", `{"entity":{"semanticDomain":{"class":{"type":"X"}},"attributes":[{"name":"a","dataType":"String","semanticDomain":{"constrainedList":{"items":[{"displayName":"A"}]}}}]}}`, "no value"},
		{"duplicate attr", `{"entity":{"semanticDomain":{"class":{"type":"X"}},"attributes":[{"name":"a","dataType":"Guid"},{"name":"A","dataType":"Guid"}]}}`, "duplicate"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadEmptyDir(t *testing.T) {
	if _, err := Load(t.TempDir()); err == nil {
		t.Fatal("Load of an empty directory succeeded")
	}
}

func TestContractsDirNoGoMod(t *testing.T) {
	t.Chdir(t.TempDir())
	if _, err := ContractsDir(); !errors.Is(err, ErrContractsNotFound) {
		t.Fatalf("err = %v, want ErrContractsNotFound", err)
	}
}

func keys[M ~map[string]V, V any](m M) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
