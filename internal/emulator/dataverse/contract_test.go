package dataverse

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bookingsync/bookingsync/internal/cdm"
)

// The contract test checks the emulator's scheduling tables against
// Microsoft's Common Data Model descriptions (shared/contracts/dataverse-cdm,
// 2018 schema 0.4.0, CRLF files read through internal/cdm) and, for what
// that schema does not cover, against shared/reference/dataverse-api.md.
//
// Type mapping (CDM describes the logical model, the Web API the wire):
//
//	emulator kind            CDM dataType / structuralType      Web API JSON
//	Uniqueidentifier (key)   Guid / primarykey                  string (GUID)
//	String, Memo             String / nvarchar (maxLength)      string
//	Integer                  Int32 / int                        number
//	BigInt (versionnumber)   Int64 / timestamp                  number
//	DateTime                 DateTimeOffset / datetime          string, ISO 8601 UTC
//	Picklist                 String / picklist + constrainedList number (option value)
//	State, Status            String / state, status             number (option value)
//	Lookup                   Guid / lookup                      _<name>_value (GUID string)
//	Owner                    Guid / owner                       _ownerid_value
//
// Field Service's msdyn_ columns and bookingsync's bsync_ columns are not in
// the 2018 schema; they, and option values added after 2018 (resourcetype 7
// Facility, 8 Pool), are checked against dataverse-api.md.

var cdmTables = []string{"bookableresource", "bookableresourcebooking", "bookableresourcebookingheader", "bookingstatus"}

// referenceSections maps a table to its section of dataverse-api.md.
var referenceSections = map[string]string{
	"bookableresource":        "### 1.1 `bookableresource`",
	"bookableresourcebooking": "### 1.3 `bookableresourcebooking`",
	"bookingstatus":           "### 1.4 `bookingstatus`",
}

func loadContracts(t *testing.T) (map[string]*cdm.Entity, string) {
	t.Helper()
	dir, err := cdm.ContractsDir()
	if errors.Is(err, cdm.ErrContractsNotFound) {
		t.Skipf("CDM contracts not available: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	ents, err := cdm.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := os.ReadFile(filepath.Join(dir, "..", "..", "reference", "dataverse-api.md"))
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	return ents, string(ref)
}

// referenceRow returns the table row documenting a column: in the table's
// section, or in the appendix for bsync_ columns.
func referenceRow(ref, table, col string) string {
	section := referenceSections[table]
	if strings.HasPrefix(col, "bsync_") {
		section = "## Appendix"
	}
	i := strings.Index(ref, section)
	if section == "" || i < 0 {
		return ""
	}
	body := ref[i+len(section):]
	if j := regexp.MustCompile(`\n#{2,3} `).FindStringIndex(body); j != nil {
		body = body[:j[0]]
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "| `"+col+"`") || (strings.HasPrefix(line, "| "+table+" | `"+col+"`")) {
			return line
		}
	}
	return ""
}

func referenceListsValue(row string, v int) bool {
	for _, m := range regexp.MustCompile(`\d+`).FindAllString(row, -1) {
		if m == strconv.Itoa(v) {
			return true
		}
	}
	return false
}

// cdmCompatible reports whether a CDM attribute can hold the emulator column.
func cdmCompatible(c *column, a *cdm.Attribute) bool {
	switch c.Kind {
	case kGUID:
		return a.WebAPIKind() == cdm.KindGUID && !a.IsLookup()
	case kString, kMemo:
		return a.WebAPIKind() == cdm.KindString && !a.IsChoice() && (a.MaxLength == 0 || c.MaxLength <= a.MaxLength)
	case kInt:
		return a.WebAPIKind() == cdm.KindInt && !a.IsChoice()
	case kBigInt:
		return a.WebAPIKind() == cdm.KindBigInt
	case kDateTime:
		return a.WebAPIKind() == cdm.KindDateTime
	case kBool:
		return a.WebAPIKind() == cdm.KindBool
	case kDouble:
		return a.WebAPIKind() == cdm.KindDecimal
	case kChoice:
		return a.StructuralType == "picklist"
	case kState:
		return a.StructuralType == "state"
	case kStatus:
		return a.StructuralType == "status"
	case kLookup:
		return a.StructuralType == "lookup"
	case kOwner:
		return a.StructuralType == "owner"
	}
	return false
}

func TestCDMContract(t *testing.T) {
	ents, ref := loadContracts(t)
	cc := CustomColumns{}
	cc.fill()
	tables := buildSchema(cc, true)
	for _, name := range cdmTables {
		ent, tbl := ents[name], tables[name]
		if ent == nil || tbl == nil {
			t.Fatalf("%s: CDM entity %v, emulator table %v", name, ent != nil, tbl != nil)
		}
		for _, c := range tbl.Columns {
			t.Run(name+"."+c.Name, func(t *testing.T) {
				if strings.HasPrefix(c.Name, "msdyn_") || strings.HasPrefix(c.Name, "bsync_") {
					row := referenceRow(ref, name, c.Name)
					if row == "" {
						t.Fatalf("not documented in dataverse-api.md")
					}
					if c.Kind == kString && strings.HasPrefix(c.Name, "bsync_") && !strings.Contains(row, "max length "+strconv.Itoa(c.MaxLength)) {
						t.Errorf("max length %d not as documented: %s", c.MaxLength, row)
					}
					for _, o := range c.Options {
						if !referenceListsValue(row, o.Value) {
							t.Errorf("option %d (%s) not in the reference row %q", o.Value, o.Label, row)
						}
					}
					return
				}
				a := ent.Attribute(c.Name)
				if a == nil {
					t.Fatalf("served column is not in %s.cdm.json", ent.Name)
				}
				if !cdmCompatible(c, a) {
					t.Fatalf("kind %s (max %d) incompatible with CDM %s/%s (max %d)", c.Kind.attributeType(), c.MaxLength, a.DataType, a.StructuralType, a.MaxLength)
				}
				for _, o := range c.Options {
					if a.HasOption(o.Value) {
						continue
					}
					if !referenceListsValue(referenceRow(ref, name, c.Name), o.Value) {
						t.Errorf("option %d (%s) is neither in CDM %v nor in dataverse-api.md", o.Value, o.Label, a.OptionValues())
					}
				}
				// Where CDM names the relationships of a lookup, ours must be one of them.
				var names []string
				for _, r := range ent.Relationships {
					if r.ReferencingAttribute == c.Name {
						names = append(names, r.Name)
					}
				}
				for _, tg := range c.Targets {
					if len(names) > 0 && !contains(names, tg.Relationship) {
						t.Errorf("relationship %s, CDM names %v", tg.Relationship, names)
					}
				}
			})
		}
	}
}

// TestSeedValuesAreListed checks every option value the demo seed and
// create defaults put into rows of the scheduling tables.
func TestSeedValuesAreListed(t *testing.T) {
	ents, ref := loadContracts(t)
	h := newHarness(t, "demo", Options{})
	h.createBooking("defaults") // defaults applied on create
	checks := map[string][]string{
		"bookingstatus":                 {"status", "statecode", "statuscode"},
		"bookableresourcebooking":       {"bookingtype", "statecode", "statuscode"},
		"bookableresource":              {"resourcetype", "statecode", "statuscode"},
		"bookableresourcebookingheader": {"statecode", "statuscode"},
	}
	for table, cols := range checks {
		rows := h.e.rows[table]
		if len(rows) == 0 {
			t.Fatalf("no seeded %s rows", table)
		}
		for _, col := range cols {
			a := ents[table].Attribute(col)
			for _, r := range rows {
				v, ok := r.vals[col].(int64)
				if !ok {
					t.Fatalf("%s.%s unset on %s", table, col, r.id)
				}
				if !a.HasOption(int(v)) && !referenceListsValue(referenceRow(ref, table, col), int(v)) {
					t.Errorf("%s.%s = %d is not a listed value %v", table, col, v, a.OptionValues())
				}
			}
		}
	}
}
