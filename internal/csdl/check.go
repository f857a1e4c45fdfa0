package csdl

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

var (
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	timeType       = reflect.TypeFor[time.Time]()
)

// CheckStruct walks the exported fields of struct type t (through
// pointers and embedded structs) and returns one error per json property
// that does not exist on typeName (or its base types) or whose Go type does
// not fit the Edm type. Nested structs are checked recursively against
// their complex or entity type. A nil result means t conforms.
//
// Compatibility: string kinds ↔ Edm.String, Edm.Guid, Edm.DateTimeOffset,
// Edm.Date, Edm.TimeOfDay, Edm.Duration, Edm.Binary and enum types;
// time.Time ↔ Edm.DateTimeOffset/Edm.Date; bool ↔ Edm.Boolean; integer
// kinds ↔ Edm.Byte/SByte/Int16/Int32/Int64; floats ↔ Edm.Single/Double/
// Decimal; slices ↔ Collection(...); structs and maps ↔ complex or entity
// types; json.RawMessage and interfaces ↔ anything.
func (m *Model) CheckStruct(t reflect.Type, typeName string) []error {
	var errs []error
	seen := map[string]bool{}
	m.checkStruct(t, typeName, t.Name(), &errs, seen)
	return errs
}

func (m *Model) checkStruct(t reflect.Type, typeName, path string, errs *[]error, seen map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	key := t.PkgPath() + "." + t.Name() + "@" + typeName
	if t.Name() != "" && seen[key] {
		return
	}
	seen[key] = true
	if t.Kind() != reflect.Struct {
		*errs = append(*errs, fmt.Errorf("%s: %s is not a struct", path, t))
		return
	}
	ct, ok := m.Lookup(typeName)
	if !ok {
		*errs = append(*errs, fmt.Errorf("%s: CSDL type %s not found", path, typeName))
		return
	}
	if ct.Kind == EnumType {
		*errs = append(*errs, fmt.Errorf("%s: CSDL type %s is an enum, not a structured type", path, typeName))
		return
	}
	for _, f := range fields(t) {
		fpath := path + "." + f.goName
		p, ok := m.Property(ct.Name, f.jsonName)
		if !ok {
			if f.dynamic && m.IsOpen(ct.Name) {
				continue
			}
			if f.dynamic {
				*errs = append(*errs, fmt.Errorf("%s (json %q): tagged dynamic but %s is not an open type", fpath, f.jsonName, ct.Name))
				continue
			}
			*errs = append(*errs, fmt.Errorf("%s (json %q): no property %q on %s or its base types", fpath, f.jsonName, f.jsonName, ct.Name))
			continue
		}
		m.checkType(f.typ, p, fpath, errs, seen)
	}
}

// checkType checks one Go type against a property's Edm type.
func (m *Model) checkType(gt reflect.Type, p Property, path string, errs *[]error, seen map[string]bool) {
	for gt.Kind() == reflect.Pointer {
		gt = gt.Elem()
	}
	if gt == rawMessageType || gt.Kind() == reflect.Interface {
		return
	}
	mismatch := func() {
		want := p.Type
		if p.IsCollection {
			want = "Collection(" + want + ")"
		}
		*errs = append(*errs, fmt.Errorf("%s: Go type %s does not fit %s", path, gt, want))
	}
	if p.IsCollection {
		if gt.Kind() != reflect.Slice && gt.Kind() != reflect.Array {
			mismatch()
			return
		}
		elem := p
		elem.IsCollection = false
		m.checkType(gt.Elem(), elem, path+"[]", errs, seen)
		return
	}
	if strings.HasPrefix(p.Type, "Edm.") {
		if !primitiveFits(gt, p.Type) {
			mismatch()
		}
		return
	}
	target, ok := m.Lookup(p.Type)
	if !ok {
		*errs = append(*errs, fmt.Errorf("%s: property type %s not found in CSDL", path, p.Type))
		return
	}
	switch target.Kind {
	case EnumType:
		if gt.Kind() != reflect.String {
			mismatch()
		}
	default:
		switch gt.Kind() {
		case reflect.Struct:
			if gt == timeType {
				mismatch()
				return
			}
			m.checkStruct(gt, target.Name, path, errs, seen)
		case reflect.Map:
			if gt.Key().Kind() != reflect.String {
				mismatch()
			}
		default:
			mismatch()
		}
	}
}

func primitiveFits(gt reflect.Type, edm string) bool {
	if gt == timeType {
		return edm == "Edm.DateTimeOffset" || edm == "Edm.Date"
	}
	switch gt.Kind() {
	case reflect.String:
		switch edm {
		case "Edm.String", "Edm.Guid", "Edm.DateTimeOffset", "Edm.Date", "Edm.TimeOfDay", "Edm.Duration", "Edm.Binary":
			return true
		}
	case reflect.Bool:
		return edm == "Edm.Boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		switch edm {
		case "Edm.Byte", "Edm.SByte", "Edm.Int16", "Edm.Int32", "Edm.Int64":
			return true
		}
	case reflect.Float32, reflect.Float64:
		switch edm {
		case "Edm.Single", "Edm.Double", "Edm.Decimal":
			return true
		}
	case reflect.Slice:
		return gt.Elem().Kind() == reflect.Uint8 && edm == "Edm.Binary"
	}
	return false
}

type field struct {
	goName, jsonName string
	typ              reflect.Type
	dynamic          bool
}

// fields lists the json-visible fields of t, flattening embedded structs
// the way encoding/json does (without its conflict rules).
func fields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" && tag == "-" {
			continue
		}
		csdlTag := sf.Tag.Get("csdl")
		if csdlTag == "-" {
			continue
		}
		if sf.Anonymous && name == "" {
			et := sf.Type
			for et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				out = append(out, fields(et)...)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if strings.HasPrefix(name, "@") {
			continue
		}
		out = append(out, field{goName: sf.Name, jsonName: name, typ: sf.Type, dynamic: csdlTag == "dynamic"})
	}
	return out
}
