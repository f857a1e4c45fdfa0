package csdl

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const fixture = `<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:DataServices>
    <Schema Namespace="microsoft.graph" Alias="graph" xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <EnumType Name="color">
        <Member Name="red" Value="0" />
        <Member Name="blue" Value="1" />
      </EnumType>
      <EntityType Name="entity" Abstract="true">
        <Key><PropertyRef Name="id" /></Key>
        <Property Name="id" Type="Edm.String" Nullable="false" />
      </EntityType>
      <EntityType Name="item" BaseType="graph.entity" Abstract="true">
        <Property Name="tags" Type="Collection(Edm.String)" />
        <Property Name="modified" Type="Edm.DateTimeOffset" />
      </EntityType>
      <EntityType Name="thing" BaseType="graph.item" OpenType="true">
        <Property Name="name" Type="Edm.String" />
        <Property Name="count" Type="Edm.Int32" />
        <Property Name="enabled" Type="Edm.Boolean" />
        <Property Name="color" Type="graph.color" />
        <Property Name="box" Type="graph.box" />
        <Property Name="boxes" Type="Collection(graph.box)" />
        <Property Name="ext" Type="graph.open" />
        <NavigationProperty Name="parts" Type="Collection(graph.part)" ContainsTarget="true" />
      </EntityType>
      <EntityType Name="part" BaseType="graph.entity">
        <Property Name="value" Type="Edm.String" />
      </EntityType>
      <ComplexType Name="box">
        <Property Name="width" Type="Edm.Double" />
        <Property Name="label" Type="Edm.String" />
      </ComplexType>
      <ComplexType Name="open" OpenType="true" />
    </Schema>
    <Schema Namespace="microsoft.graph.other" Alias="self" xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <ComplexType Name="thing">
        <Property Name="ref" Type="self.thing" />
      </ComplexType>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>`

func parseFixture(t *testing.T) *Model {
	t.Helper()
	m, err := Parse(strings.NewReader(fixture))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLookupAndProperty(t *testing.T) {
	m := parseFixture(t)
	tests := []struct {
		typ, prop string
		want      Property
		ok        bool
	}{
		{"thing", "name", Property{Name: "name", Type: "Edm.String", Nullable: true}, true},
		{"thing", "tags", Property{Name: "tags", Type: "Edm.String", Nullable: true, IsCollection: true}, true},    // from base
		{"thing", "id", Property{Name: "id", Type: "Edm.String", Nullable: false}, true},                           // from base's base
		{"graph.thing", "color", Property{Name: "color", Type: "microsoft.graph.color", Nullable: true}, true},     // alias resolved
		{"microsoft.graph.thing", "box", Property{Name: "box", Type: "microsoft.graph.box", Nullable: true}, true}, // qualified
		{"thing", "parts", Property{Name: "parts", Type: "microsoft.graph.part", Nullable: true, IsCollection: true, IsNavigation: true}, true},
		{"microsoft.graph.other.thing", "ref", Property{Name: "ref", Type: "microsoft.graph.other.thing", Nullable: true}, true},
		{"thing", "nope", Property{}, false},
		{"item", "name", Property{}, false}, // derived properties are not visible on the base
		{"missing", "id", Property{}, false},
	}
	for _, tt := range tests {
		got, ok := m.Property(tt.typ, tt.prop)
		if ok != tt.ok || got != tt.want {
			t.Errorf("Property(%q, %q) = %+v, %v; want %+v, %v", tt.typ, tt.prop, got, ok, tt.want, tt.ok)
		}
	}
	color, ok := m.Lookup("color")
	if !ok || color.Kind != EnumType || !slices.Equal(color.Members, []string{"red", "blue"}) {
		t.Errorf("Lookup(color) = %+v, %v", color, ok)
	}
	if th, _ := m.Lookup("thing"); th.BaseType != "microsoft.graph.item" || th.Kind != EntityType {
		t.Errorf("thing = %+v", th)
	}
	if !m.IsOpen("thing") || m.IsOpen("box") || !m.IsOpen("open") {
		t.Error("IsOpen wrong")
	}
}

type goodBox struct {
	Width float64 `json:"width"`
	Label string  `json:"label,omitempty"`
}

type common struct {
	ID string `json:"id"`
}

type goodThing struct {
	common
	ODataEtag string    `json:"@odata.etag"`
	Name      string    `json:"name"`
	Count     *int      `json:"count,omitempty"`
	Enabled   bool      `json:"enabled"`
	Color     string    `json:"color"`
	Box       *goodBox  `json:"box"`
	Boxes     []goodBox `json:"boxes"`
	Tags      []string  `json:"tags"`
	Modified  time.Time `json:"modified"`
	Parts     []struct {
		Value string `json:"value"`
	} `json:"parts"`
	Raw     json.RawMessage `json:"ext"`
	Local   string          `json:"-"`
	Skipped int             `json:"whatever" csdl:"-"`
	Dynamic string          `json:"extra" csdl:"dynamic"`
	unexp   string
}

type badThing struct {
	Name    int    `json:"name"`    // wrong primitive
	Count   string `json:"count"`   // wrong primitive
	Enabled string `json:"enabled"` // wrong primitive
	Color   int    `json:"color"`   // enum needs string
	Box     struct {
		Depth int `json:"depth"`
	} `json:"box"`
	Boxes goodBox `json:"boxes"`    // collection needs slice
	Tags  string  `json:"tags"`     // collection needs slice
	Typo  string  `json:"nmae"`     // not declared
	Mod   bool    `json:"modified"` // DateTimeOffset
}

type dynOnClosed struct {
	Label string `json:"label"`
	X     string `json:"x" csdl:"dynamic"`
}

type openWithDynamic struct {
	ID string `json:"id" csdl:"dynamic"`
}

func TestCheckStruct(t *testing.T) {
	m := parseFixture(t)
	_ = goodThing{}.unexp
	if errs := m.CheckStruct(reflect.TypeFor[goodThing](), "thing"); len(errs) != 0 {
		t.Errorf("goodThing: unexpected errors: %v", errs)
	}
	if errs := m.CheckStruct(reflect.TypeFor[*openWithDynamic](), "open"); len(errs) != 0 {
		t.Errorf("openWithDynamic: unexpected errors: %v", errs)
	}

	tests := []struct {
		name string
		typ  reflect.Type
		csdl string
		want []string // substrings, one per expected error, in order
	}{
		{"bad thing", reflect.TypeFor[badThing](), "thing", []string{
			"badThing.Name: Go type int does not fit Edm.String",
			"badThing.Count: Go type string does not fit Edm.Int32",
			"badThing.Enabled: Go type string does not fit Edm.Boolean",
			"badThing.Color: Go type int does not fit microsoft.graph.color",
			`badThing.Box.Depth (json "depth"): no property "depth" on microsoft.graph.box`,
			"badThing.Boxes: Go type csdl.goodBox does not fit Collection(microsoft.graph.box)",
			"badThing.Tags: Go type string does not fit Collection(Edm.String)",
			`badThing.Typo (json "nmae"): no property "nmae"`,
			"badThing.Mod: Go type bool does not fit Edm.DateTimeOffset",
		}},
		{"dynamic on closed type", reflect.TypeFor[dynOnClosed](), "box", []string{
			`dynOnClosed.X (json "x"): tagged dynamic but microsoft.graph.box is not an open type`,
		}},
		{"unknown CSDL type", reflect.TypeFor[goodBox](), "nosuch", []string{"CSDL type nosuch not found"}},
		{"enum as struct", reflect.TypeFor[goodBox](), "color", []string{"is an enum"}},
		{"not a struct", reflect.TypeFor[string](), "box", []string{"string is not a struct"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := m.CheckStruct(tt.typ, tt.csdl)
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), errs)
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "<notxml", `<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices/></edmx:Edmx>`} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

func TestLoadCachesPerPath(t *testing.T) {
	p, err := GraphV1Path()
	if err != nil {
		t.Fatal(err)
	}
	m1 := GraphV1(t)
	m2, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if m1 != m2 {
		t.Error("Load parsed the same path twice")
	}
	if _, err := Load(p + ".missing"); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func TestGraphV1Model(t *testing.T) {
	m := GraphV1(t)
	tests := []struct {
		typ, prop string
		want      Property
	}{
		{"event", "changeKey", Property{Name: "changeKey", Type: "Edm.String", Nullable: true}},                       // outlookItem
		{"event", "id", Property{Name: "id", Type: "Edm.String", Nullable: false}},                                    // entity
		{"event", "categories", Property{Name: "categories", Type: "Edm.String", Nullable: true, IsCollection: true}}, // outlookItem
		{"event", "showAs", Property{Name: "showAs", Type: "microsoft.graph.freeBusyStatus", Nullable: true}},
		{"event", "singleValueExtendedProperties", Property{Name: "singleValueExtendedProperties", Type: "microsoft.graph.singleValueLegacyExtendedProperty", Nullable: true, IsCollection: true, IsNavigation: true}},
		{"subscription", "expirationDateTime", Property{Name: "expirationDateTime", Type: "Edm.DateTimeOffset", Nullable: false}},
		{"changeNotification", "subscriptionId", Property{Name: "subscriptionId", Type: "Edm.Guid", Nullable: false}},
	}
	for _, tt := range tests {
		got, ok := m.Property(tt.typ, tt.prop)
		if !ok || got != tt.want {
			t.Errorf("Property(%q, %q) = %+v, %v; want %+v", tt.typ, tt.prop, got, ok, tt.want)
		}
	}
	if !m.IsOpen("resourceData") || !m.IsOpen("event") || m.IsOpen("itemBody") {
		t.Error("open types wrong")
	}
	if _, ok := m.Property("subscription", "notificationContentType"); ok {
		t.Error("notificationContentType should be absent from v1.0")
	}
	// A type from another schema, referenced through its alias.
	if u, ok := m.Lookup("microsoft.graph.security.user"); !ok || u.BaseType != "microsoft.graph.security.identityAccounts" {
		t.Errorf("security.user = %+v, %v; want base type resolved from alias self", u, ok)
	}
}
