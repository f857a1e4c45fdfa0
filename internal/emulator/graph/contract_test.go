package graph

import (
	"reflect"
	"strings"
	"testing"

	"github.com/bookingsync/bookingsync/internal/csdl"
)

// TestCSDLContract checks every Go shape the emulator emits or accepts
// against Microsoft's v1.0 CSDL: each property must exist on the type (or
// a base type) with a compatible type, nested types included.
func TestCSDLContract(t *testing.T) {
	m := csdl.GraphV1(t) // skips only if the CSDL file is absent
	tests := []struct {
		name     string
		goType   reflect.Type
		csdlType string
	}{
		{"event emitted", reflect.TypeFor[eventOut](), "event"},
		{"event accepted", reflect.TypeFor[eventIn](), "event"},
		{"subscription emitted", reflect.TypeFor[subscriptionOut](), "subscription"},
		{"subscription accepted", reflect.TypeFor[subscriptionIn](), "subscription"},
		{"changeNotification", reflect.TypeFor[changeNotification](), "changeNotification"},
		{"changeNotificationCollection", reflect.TypeFor[changeNotificationCollection](), "changeNotificationCollection"},
		{"itemBody", reflect.TypeFor[itemBody](), "itemBody"},
		{"dateTimeTimeZone", reflect.TypeFor[dateTimeTimeZone](), "dateTimeTimeZone"},
		{"location", reflect.TypeFor[location](), "location"},
		{"singleValueLegacyExtendedProperty", reflect.TypeFor[extendedProperty](), "singleValueLegacyExtendedProperty"},
		{"patternedRecurrence", reflect.TypeFor[patternedRecurrence](), "patternedRecurrence"},
		{"attendee", reflect.TypeFor[attendee](), "attendee"},
		{"user", reflect.TypeFor[userOut](), "user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, err := range m.CheckStruct(tc.goType, tc.csdlType) {
				t.Error(err)
			}
		})
	}
	t.Run("ignored read-only event properties", func(t *testing.T) {
		for _, name := range ignoredEventProps {
			if _, ok := m.Property("event", name); !ok {
				t.Errorf("ignored property %q is not on event", name)
			}
		}
	})
	t.Run("filter and orderby paths", func(t *testing.T) {
		for _, path := range append(keysOf(filterProps), orderPaths...) {
			typeName := "event"
			for _, seg := range strings.Split(path, "/") {
				p, ok := findProperty(m, typeName, seg)
				if !ok {
					t.Errorf("%s: no %q on %s", path, seg, typeName)
					break
				}
				typeName = p.Type
			}
		}
	})
	t.Run("enums", func(t *testing.T) {
		for enum, values := range map[string][]string{
			"freeBusyStatus": showAsValues, "sensitivity": sensitivityValues, "importance": importanceValues,
			"attendeeType": attendeeTypes, "bodyType": bodyTypes, "recurrencePatternType": patternTypes,
			"recurrenceRangeType": rangeTypes, "dayOfWeek": weekDays, "weekIndex": weekIndexes,
			"lifecycleEventType": lifecycleEvents, "eventType": {"singleInstance", "occurrence", "exception", "seriesMaster"},
		} {
			typ, ok := m.Lookup(enum)
			if !ok {
				t.Errorf("enum %s not in CSDL", enum)
				continue
			}
			for _, v := range values {
				found := false
				for _, member := range typ.Members {
					found = found || member == v
				}
				if !found {
					t.Errorf("%s has no member %q", enum, v)
				}
			}
		}
	})
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// findProperty matches a property name case-insensitively, as $filter does.
func findProperty(m *csdl.Model, typeName, name string) (csdl.Property, bool) {
	for t, ok := m.Lookup(typeName); ok; t, ok = m.Lookup(t.BaseType) {
		for _, p := range t.Props {
			if strings.EqualFold(p.Name, name) {
				return p, true
			}
		}
		if t.BaseType == "" {
			break
		}
	}
	return csdl.Property{}, false
}
