package dataverse

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/cdm"
)

func loadCDM(t *testing.T) map[string]*cdm.Entity {
	t.Helper()
	dir, err := cdm.ContractsDir()
	if errors.Is(err, cdm.ErrContractsNotFound) {
		t.Skipf("CDM contract files not present (%v); skipping contract test", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	ents, err := cdm.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ents
}

// notInCDM lists columns of our row types that the 2018 CDM files do not
// describe, with the reason. Anything else missing from CDM fails the test.
var notInCDM = map[string]string{
	"bookableresourcebooking.msdyn_workorder":           "Field Service extension (dataverse-api.md §1.3)",
	"bookableresourcebooking.msdyn_resourcerequirement": "Field Service extension (dataverse-api.md §1.3)",
	"bookingstatus.msdyn_fieldservicestatus":            "Field Service extension (dataverse-api.md §1.4)",
}

// TestRowTypesMatchCDM checks every JSON column of our typed rows against
// Microsoft's CDM description: the column exists and its Web API JSON kind
// is compatible with the Go type.
func TestRowTypesMatchCDM(t *testing.T) {
	ents := loadCDM(t)
	rows := []struct {
		entity string
		typ    any
	}{
		{"bookableresourcebooking", Booking{}},
		{"bookableresource", BookableResource{}},
		{"bookableresourcebookingheader", BookingHeader{}},
		{"bookingstatus", BookingStatus{}},
	}
	versionType := reflect.TypeFor[Version]()
	timeType := reflect.TypeFor[time.Time]()
	for _, row := range rows {
		e := ents[row.entity]
		if e == nil {
			t.Fatalf("CDM has no entity %q", row.entity)
		}
		rt := reflect.TypeOf(row.typ)
		checked := 0
		for i := range rt.NumField() {
			f := rt.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == "" || tag == "-" || strings.Contains(tag, "@") {
				continue // annotations such as @odata.etag are not columns
			}
			col, lookup := tag, false
			if strings.HasPrefix(tag, "_") && strings.HasSuffix(tag, "_value") {
				col, lookup = strings.TrimSuffix(strings.TrimPrefix(tag, "_"), "_value"), true
			}
			name := row.entity + "." + col
			a := e.Attribute(col)
			if a == nil {
				if _, ok := notInCDM[name]; !ok {
					t.Errorf("%s (field %s.%s) is not in the CDM and not listed in notInCDM", name, rt.Name(), f.Name)
				}
				continue
			}
			checked++
			if lookup && !a.IsLookup() {
				t.Errorf("%s: read as _%s_value but CDM structural type is %q", name, col, a.StructuralType)
			}
			kind := a.WebAPIKind()
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			var ok bool
			switch {
			case ft == versionType:
				ok = kind == cdm.KindBigInt
			case ft == timeType:
				ok = kind == cdm.KindDateTime
			case ft.Kind() == reflect.String:
				ok = kind == cdm.KindString || kind == cdm.KindGUID
				if kind == cdm.KindGUID && !lookup && a.StructuralType != "primarykey" {
					t.Errorf("%s: Guid column %q read as a plain string", name, a.StructuralType)
				}
			case ft.Kind() == reflect.Int:
				ok = kind == cdm.KindInt
			case ft.Kind() == reflect.Bool:
				ok = kind == cdm.KindBool
			}
			if !ok {
				t.Errorf("%s: Go type %s incompatible with CDM %s/%s (Web API %s)", name, f.Type, a.DataType, a.StructuralType, kind)
			}
		}
		if checked == 0 {
			t.Errorf("%s: no columns checked", row.entity)
		}
	}
}

// optionValuesAfter2018 are values the reference lists that the 2018 CDM
// files predate. Copied from dataverse-api.md §1.1: resourcetype "1 Generic,
// 2 Contact, 3 User, 4 Equipment, 5 Account, 6 Crew, 7 Facility, 8 Pool".
// (CDM calls 6 "Group"; the value is the same.)
var optionValuesAfter2018 = map[string][]int{
	"bookableresource.resourcetype": {7, 8},
}

// TestOptionValuesMatchCDM checks the option values we use against the
// values CDM lists (or, for newer values, the reference table above).
func TestOptionValuesMatchCDM(t *testing.T) {
	ents := loadCDM(t)
	used := []struct {
		entity, attr string
		values       []int
	}{
		{"bookingstatus", "status", []int{BookingStatusProposed, BookingStatusCommitted, BookingStatusCanceled}},
		{"bookableresourcebooking", "bookingtype", []int{BookingTypeSolid, BookingTypeLiquid}},
		{"bookableresource", "resourcetype", []int{ResourceTypeGeneric, ResourceTypeContact, ResourceTypeUser, ResourceTypeEquipment,
			ResourceTypeAccount, ResourceTypeCrew, ResourceTypeFacility, ResourceTypePool}},
	}
	for _, ent := range []string{"bookableresource", "bookableresourcebooking", "bookableresourcebookingheader", "bookingstatus"} {
		used = append(used,
			struct {
				entity, attr string
				values       []int
			}{ent, "statecode", []int{StateActive, StateInactive}},
			struct {
				entity, attr string
				values       []int
			}{ent, "statuscode", []int{StatusCodeActive, StatusCodeInactive}})
	}
	for _, u := range used {
		name := u.entity + "." + u.attr
		a := ents[u.entity].Attribute(u.attr)
		if a == nil {
			t.Errorf("%s not in CDM", name)
			continue
		}
		if !a.IsChoice() {
			t.Errorf("%s: CDM structural type %q is not a choice", name, a.StructuralType)
		}
		for _, v := range u.values {
			if a.HasOption(v) {
				continue
			}
			later := false
			for _, lv := range optionValuesAfter2018[name] {
				later = later || lv == v
			}
			if !later {
				t.Errorf("%s: value %d is neither in CDM %v nor in the post-2018 table", name, v, a.OptionValues())
			}
		}
	}
}
