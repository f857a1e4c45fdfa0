// Package csdl reads an OData CSDL (EDMX 4.0) document such as Microsoft
// Graph's v1.0 metadata and checks Go wire structs against it in tests.
//
//	m, err := csdl.Load(path)          // parsed once per path, then cached
//	t, ok := m.Lookup("event")         // short names resolve in microsoft.graph
//	p, ok := m.Property("event", "changeKey") // searches base types
//	errs := m.CheckStruct(reflect.TypeFor[Event](), "event")
//
// Struct tags understood by CheckStruct: the json name is used; names
// starting with "@" (OData annotations such as @odata.etag) and json:"-"
// are skipped; csdl:"-" skips a field; csdl:"dynamic" allows a property
// that is not declared, but only on an open type.
package csdl

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// DefaultNamespace is where short type names are looked up.
const DefaultNamespace = "microsoft.graph"

// Kind is the kind of a schema type.
type Kind int

const (
	EntityType Kind = iota + 1
	ComplexType
	EnumType
)

func (k Kind) String() string {
	switch k {
	case EntityType:
		return "EntityType"
	case ComplexType:
		return "ComplexType"
	case EnumType:
		return "EnumType"
	}
	return "Kind(?)"
}

// Property is a structural or navigation property.
type Property struct {
	Name string
	// Type is the element type, fully qualified ("Edm.String",
	// "microsoft.graph.itemBody"); for collections it is the element type.
	Type         string
	Nullable     bool // CSDL default is true
	IsCollection bool
	IsNavigation bool
}

// Type is an entity, complex or enum type.
type Type struct {
	Name      string // qualified, e.g. "microsoft.graph.event"
	Kind      Kind
	BaseType  string // qualified, "" if none
	Abstract  bool
	Open      bool       // OpenType="true" on this type itself
	Props     []Property // declared on this type only, not base types
	Members   []string   // enum members
	propIndex map[string]int
}

// Model is a parsed CSDL document.
type Model struct {
	types map[string]*Type
}

// XML shapes; only what we read.
type xEdmx struct {
	Schemas []xSchema `xml:"DataServices>Schema"`
}

type xSchema struct {
	Namespace    string    `xml:"Namespace,attr"`
	Alias        string    `xml:"Alias,attr"`
	EntityTypes  []xStruct `xml:"EntityType"`
	ComplexTypes []xStruct `xml:"ComplexType"`
	EnumTypes    []xEnum   `xml:"EnumType"`
}

type xStruct struct {
	Name     string  `xml:"Name,attr"`
	BaseType string  `xml:"BaseType,attr"`
	Abstract bool    `xml:"Abstract,attr"`
	OpenType bool    `xml:"OpenType,attr"`
	Props    []xProp `xml:"Property"`
	NavProps []xProp `xml:"NavigationProperty"`
}

type xProp struct {
	Name     string `xml:"Name,attr"`
	Type     string `xml:"Type,attr"`
	Nullable string `xml:"Nullable,attr"`
}

type xEnum struct {
	Name    string `xml:"Name,attr"`
	Members []struct {
		Name string `xml:"Name,attr"`
	} `xml:"Member"`
}

// Parse reads a CSDL document.
func Parse(r io.Reader) (*Model, error) {
	var doc xEdmx
	if err := xml.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("csdl: decode: %w", err)
	}
	if len(doc.Schemas) == 0 {
		return nil, errors.New("csdl: no Schema elements")
	}
	// Aliases are document-wide in CSDL; map alias -> namespace.
	aliases := map[string]string{}
	for _, s := range doc.Schemas {
		if s.Alias != "" {
			aliases[s.Alias] = s.Namespace
		}
	}
	qualify := func(name string) string {
		if name == "" || strings.HasPrefix(name, "Edm.") {
			return name
		}
		i := strings.LastIndexByte(name, '.')
		if i < 0 {
			return name
		}
		if ns, ok := aliases[name[:i]]; ok {
			return ns + "." + name[i+1:]
		}
		return name
	}
	m := &Model{types: map[string]*Type{}}
	add := func(t *Type) {
		t.propIndex = make(map[string]int, len(t.Props))
		for i, p := range t.Props {
			t.propIndex[p.Name] = i
		}
		m.types[t.Name] = t
	}
	convert := func(ps []xProp, nav bool) []Property {
		out := make([]Property, 0, len(ps))
		for _, p := range ps {
			typ, coll := p.Type, false
			if inner, ok := strings.CutPrefix(typ, "Collection("); ok {
				typ, coll = strings.TrimSuffix(inner, ")"), true
			}
			out = append(out, Property{
				Name: p.Name, Type: qualify(typ), Nullable: p.Nullable != "false",
				IsCollection: coll, IsNavigation: nav,
			})
		}
		return out
	}
	for _, s := range doc.Schemas {
		for kind, list := range map[Kind][]xStruct{EntityType: s.EntityTypes, ComplexType: s.ComplexTypes} {
			for _, x := range list {
				add(&Type{
					Name: s.Namespace + "." + x.Name, Kind: kind, BaseType: qualify(x.BaseType),
					Abstract: x.Abstract, Open: x.OpenType,
					Props: append(convert(x.Props, false), convert(x.NavProps, true)...),
				})
			}
		}
		for _, x := range s.EnumTypes {
			t := &Type{Name: s.Namespace + "." + x.Name, Kind: EnumType}
			for _, mem := range x.Members {
				t.Members = append(t.Members, mem.Name)
			}
			add(t)
		}
	}
	return m, nil
}

// Lookup finds a type by qualified name ("microsoft.graph.event") or by
// short name in DefaultNamespace ("event"). The alias "graph." also works.
func (m *Model) Lookup(name string) (*Type, bool) {
	if t, ok := m.types[name]; ok {
		return t, true
	}
	if rest, ok := strings.CutPrefix(name, "graph."); ok {
		name = rest
	}
	t, ok := m.types[DefaultNamespace+"."+name]
	return t, ok
}

// Property finds a property on typeName or any of its base types.
func (m *Model) Property(typeName, propName string) (Property, bool) {
	for t := range m.chain(typeName) {
		if i, ok := t.propIndex[propName]; ok {
			return t.Props[i], true
		}
	}
	return Property{}, false
}

// IsOpen reports whether typeName or one of its base types is open
// (derived types of an open type are open too).
func (m *Model) IsOpen(typeName string) bool {
	for t := range m.chain(typeName) {
		if t.Open {
			return true
		}
	}
	return false
}

// chain yields the type and its base types, most derived first.
func (m *Model) chain(typeName string) func(func(*Type) bool) {
	return func(yield func(*Type) bool) {
		t, ok := m.Lookup(typeName)
		for depth := 0; ok && depth < 64; depth++ { // depth guards against cycles
			if !yield(t) || t.BaseType == "" {
				return
			}
			t, ok = m.types[t.BaseType]
		}
	}
}

// Load parses the CSDL file at path once per process; later calls with the
// same path (after filepath.Abs) return the cached model or error.
func Load(path string) (*Model, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("csdl: %w", err)
	}
	cacheMu.Lock()
	e := cache[abs]
	if e == nil {
		e = &cacheEntry{}
		cache[abs] = e
	}
	cacheMu.Unlock()
	e.once.Do(func() {
		f, err := os.Open(abs)
		if err != nil {
			e.err = fmt.Errorf("csdl: %w", err)
			return
		}
		defer f.Close()
		e.model, e.err = Parse(f)
	})
	return e.model, e.err
}

type cacheEntry struct {
	once  sync.Once
	model *Model
	err   error
}

var (
	cacheMu sync.Mutex
	cache   = map[string]*cacheEntry{}
)
