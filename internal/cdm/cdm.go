// Package cdm reads Microsoft Common Data Model entity descriptions
// (*.cdm.json, jsonSchemaSemanticVersion 0.4.0, the 2018 layout) so that
// contract tests can check our Dataverse row types and option values against
// Microsoft's published schema.
//
// # File layout (0.4.0)
//
// A file holds one entity:
//
//	{"jsonSchemaSemanticVersion": "0.4.0",
//	 "entity": {"semanticDomain": {"class": {"type": "BookingStatus", ...}},
//	            "attributes": [{"name": "status", "dataType": "String",
//	                            "semanticDomain": {"structuralType": "picklist",
//	                                "constrainedList": {"name": "bookingstatus_status",
//	                                    "items": [{"value": 1, "displayName": "Proposed"}, ...]}}}, ...]},
//	 "relationships": [{"name": "...", "referencing": {"entity": {"type": ...}, "attributes": [{"name": "resource"}]},
//	                    "referenced": {"entity": {"type": ...}, "attributes": [{"name": "bookableresourceid"}]}}]}
//
// (Later CDM versions use "hasAttributes", "dataFormat" and enumeration
// traits; those files are not what is checked in under
// shared/contracts/dataverse-cdm and are not supported here.)
//
// # Type mapping: CDM vs the Dataverse Web API
//
// CDM describes the logical model, not the Web API wire format:
//
//   - Choice columns (structuralType picklist, state, status) have dataType
//     "String" in CDM, but the Web API serves and accepts them as integers
//     (Edm.Int32); the allowed integers are the constrainedList item values.
//   - Lookups (structuralType lookup, owner) are "Guid" columns named after
//     the logical attribute (e.g. "resource"); the Web API reads them as
//     _<name>_value (a GUID string) and writes them through a navigation
//     property with @odata.bind.
//   - Guid → JSON string in canonical GUID form; DateTimeOffset → ISO 8601
//     UTC string; Int32 → JSON number; Int64 (versionnumber) → JSON number
//     (Edm.Int64); Decimal → JSON number; String → JSON string.
//
// Use [Attribute.WebAPIKind] to get the Web API JSON kind of an attribute.
package cdm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Entity is one table from a *.cdm.json file.
type Entity struct {
	Name          string // logical-ish type name as written, e.g. "BookableResourceBooking"
	Namespace     string
	Description   string
	Attributes    []*Attribute
	Relationships []Relationship

	byName map[string]*Attribute
}

// Attribute is one column of an Entity.
type Attribute struct {
	Name           string // logical name, e.g. "bookingstatus"
	DataType       string // CDM dataType: Guid, String, Int32, Int64, Decimal, DateTimeOffset, ...
	StructuralType string // semanticDomain.structuralType: primarykey, lookup, owner, picklist, state, status, int, nvarchar, datetime, timestamp, ...
	SemanticType   string
	DisplayName    string
	MaxLength      int      // 0 if not stated
	MinValue       *float64 // nil if not stated
	MaxValue       *float64
	OptionSetName  string   // constrainedList.name, "" if the attribute has no listed values
	Options        []Option // constrainedList.items in file order
}

// Option is one listed value of a choice column.
type Option struct {
	Value       int
	DisplayName string
}

// Relationship is a many-to-one link from a referencing attribute of this
// entity to the primary key of another entity.
type Relationship struct {
	Name                 string
	ReferencingAttribute string
	ReferencedEntity     string // CDM type name, e.g. "BookingStatus"
	ReferencedAttribute  string
}

// Attribute returns the attribute with the given logical name
// (case-insensitive), or nil.
func (e *Entity) Attribute(name string) *Attribute {
	return e.byName[strings.ToLower(name)]
}

// OptionValues returns the listed option values of the attribute, sorted
// ascending; nil if it has none.
func (a *Attribute) OptionValues() []int {
	if len(a.Options) == 0 {
		return nil
	}
	vs := make([]int, len(a.Options))
	for i, o := range a.Options {
		vs[i] = o.Value
	}
	sort.Ints(vs)
	return vs
}

// HasOption reports whether v is one of the attribute's listed option values.
func (a *Attribute) HasOption(v int) bool {
	for _, o := range a.Options {
		if o.Value == v {
			return true
		}
	}
	return false
}

// IsChoice reports whether the column is an option set (picklist, state or
// status). The Web API serves these as integers even though CDM says String.
func (a *Attribute) IsChoice() bool {
	switch a.StructuralType {
	case "picklist", "state", "status":
		return true
	}
	return false
}

// IsLookup reports whether the column references another row. The Web API
// reads it as _<name>_value.
func (a *Attribute) IsLookup() bool {
	switch a.StructuralType {
	case "lookup", "owner", "customer":
		return true
	}
	return false
}

// Kind is the JSON kind the Dataverse Web API uses for a column.
type Kind string

const (
	KindGUID     Kind = "guid"     // JSON string holding a GUID
	KindString   Kind = "string"   // JSON string
	KindInt      Kind = "int"      // JSON number, integral (Int32, choice values)
	KindBigInt   Kind = "bigint"   // JSON number, Edm.Int64
	KindDecimal  Kind = "decimal"  // JSON number
	KindDateTime Kind = "datetime" // JSON string, ISO 8601
	KindBool     Kind = "bool"
	KindUnknown  Kind = "unknown"
)

// WebAPIKind maps the CDM description of the column to the JSON kind the
// Web API uses (see the package doc for why choices become integers).
func (a *Attribute) WebAPIKind() Kind {
	if a.IsChoice() {
		return KindInt
	}
	switch a.DataType {
	case "Guid":
		return KindGUID
	case "String":
		return KindString
	case "Int32", "Int16":
		return KindInt
	case "Int64":
		return KindBigInt
	case "Decimal", "Double", "Money":
		return KindDecimal
	case "DateTimeOffset", "DateTime", "Date":
		return KindDateTime
	case "Boolean":
		return KindBool
	}
	return KindUnknown
}

// file mirrors the 0.4.0 JSON layout; unknown fields are ignored.
type file struct {
	JSONSchemaSemanticVersion string `json:"jsonSchemaSemanticVersion"`
	Entity                    *struct {
		SemanticDomain struct {
			Class struct {
				Type      string `json:"type"`
				Namespace string `json:"namespace"`
			} `json:"class"`
		} `json:"semanticDomain"`
		Description string `json:"description"`
		Attributes  []struct {
			Name           string `json:"name"`
			DataType       string `json:"dataType"`
			DisplayName    string `json:"displayName"`
			SemanticDomain struct {
				StructuralType  string   `json:"structuralType"`
				SemanticType    string   `json:"semanticType"`
				MaxLength       int      `json:"maxLength"`
				MinValue        *float64 `json:"minValue"`
				MaxValue        *float64 `json:"maxValue"`
				ConstrainedList *struct {
					Name  string `json:"name"`
					Items []struct {
						Value       *int   `json:"value"`
						DisplayName string `json:"displayName"`
					} `json:"items"`
				} `json:"constrainedList"`
			} `json:"semanticDomain"`
		} `json:"attributes"`
	} `json:"entity"`
	Relationships []struct {
		Name        string `json:"name"`
		Referencing relEnd `json:"referencing"`
		Referenced  relEnd `json:"referenced"`
	} `json:"relationships"`
}

type relEnd struct {
	Entity struct {
		Type string `json:"type"`
	} `json:"entity"`
	Attributes []struct {
		Name string `json:"name"`
	} `json:"attributes"`
}

// Parse decodes one *.cdm.json document.
func Parse(data []byte) (*Entity, error) {
	// The files are CRLF and may carry a UTF-8 BOM; encoding/json handles
	// CRLF as whitespace but not a BOM.
	data = trimBOM(data)
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("cdm: decode: %w", err)
	}
	if f.Entity == nil {
		return nil, errors.New("cdm: no \"entity\" object (only the 0.4.0 layout is supported)")
	}
	e := &Entity{
		Name:        f.Entity.SemanticDomain.Class.Type,
		Namespace:   f.Entity.SemanticDomain.Class.Namespace,
		Description: f.Entity.Description,
		byName:      make(map[string]*Attribute, len(f.Entity.Attributes)),
	}
	if e.Name == "" {
		return nil, errors.New("cdm: entity.semanticDomain.class.type is empty")
	}
	for i, fa := range f.Entity.Attributes {
		if fa.Name == "" || fa.DataType == "" {
			return nil, fmt.Errorf("cdm: %s: attribute %d lacks name or dataType", e.Name, i)
		}
		a := &Attribute{
			Name:           fa.Name,
			DataType:       fa.DataType,
			StructuralType: fa.SemanticDomain.StructuralType,
			SemanticType:   fa.SemanticDomain.SemanticType,
			DisplayName:    fa.DisplayName,
			MaxLength:      fa.SemanticDomain.MaxLength,
			MinValue:       fa.SemanticDomain.MinValue,
			MaxValue:       fa.SemanticDomain.MaxValue,
		}
		if cl := fa.SemanticDomain.ConstrainedList; cl != nil {
			a.OptionSetName = cl.Name
			for _, it := range cl.Items {
				if it.Value == nil {
					return nil, fmt.Errorf("cdm: %s.%s: option %q has no value", e.Name, a.Name, it.DisplayName)
				}
				a.Options = append(a.Options, Option{Value: *it.Value, DisplayName: it.DisplayName})
			}
		}
		key := strings.ToLower(a.Name)
		if _, dup := e.byName[key]; dup {
			return nil, fmt.Errorf("cdm: %s: duplicate attribute %q", e.Name, a.Name)
		}
		e.byName[key] = a
		e.Attributes = append(e.Attributes, a)
	}
	for _, r := range f.Relationships {
		if len(r.Referencing.Attributes) != 1 || len(r.Referenced.Attributes) != 1 {
			continue // composite keys do not occur in these tables; skip rather than guess
		}
		e.Relationships = append(e.Relationships, Relationship{
			Name:                 r.Name,
			ReferencingAttribute: r.Referencing.Attributes[0].Name,
			ReferencedEntity:     r.Referenced.Entity.Type,
			ReferencedAttribute:  r.Referenced.Attributes[0].Name,
		})
	}
	return e, nil
}

// Load parses every *.cdm.json file in dir and returns the entities keyed by
// lower-cased entity name (e.g. "bookableresourcebooking").
func Load(dir string) (map[string]*Entity, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.cdm.json"))
	if err != nil {
		return nil, fmt.Errorf("cdm: glob %s: %w", dir, err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("cdm: no *.cdm.json files in %s", dir)
	}
	out := make(map[string]*Entity, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("cdm: %w", err)
		}
		e, err := Parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(p), err)
		}
		key := strings.ToLower(e.Name)
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("cdm: entity %s defined twice (%s)", e.Name, filepath.Base(p))
		}
		out[key] = e
	}
	return out, nil
}

// ErrContractsNotFound is returned by ContractsDir when no go.mod is found
// above the working directory or the contracts directory does not exist.
var ErrContractsNotFound = errors.New("cdm: dataverse-cdm contracts directory not found")

// ContractsDir finds the checked-in CDM files: it walks up from the working
// directory to the directory holding go.mod and returns
// <that>/../shared/contracts/dataverse-cdm. Tests should t.Skip on
// ErrContractsNotFound.
func ContractsDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cdm: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			c := filepath.Join(dir, "..", "shared", "contracts", "dataverse-cdm")
			if fi, err := os.Stat(c); err != nil || !fi.IsDir() {
				return "", fmt.Errorf("%w: %s", ErrContractsNotFound, filepath.Clean(c))
			}
			return filepath.Clean(c), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w: no go.mod above %s", ErrContractsNotFound, wd)
		}
		dir = parent
	}
}

func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		return b[3:]
	}
	return b
}
