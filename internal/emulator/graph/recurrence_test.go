package graph

import (
	"testing"
	"time"
)

func TestOccurrenceStarts(t *testing.T) {
	tests := []struct {
		name    string
		start   string // local, in tz
		tz      string
		pattern recurrencePattern
		rng     recurrenceRange
		want    []string // UTC RFC 3339
	}{
		{"daily every 2 days", "2030-01-01T09:00:00", "UTC",
			recurrencePattern{Type: "daily", Interval: 2}, recurrenceRange{Type: "numbered", NumberOfOccurrences: 3},
			[]string{"2030-01-01T09:00:00Z", "2030-01-03T09:00:00Z", "2030-01-05T09:00:00Z"}},
		{"weekly mon+wed", "2030-01-07T08:00:00", "UTC",
			recurrencePattern{Type: "weekly", Interval: 1, DaysOfWeek: []string{"monday", "wednesday"}}, recurrenceRange{Type: "endDate", EndDate: "2030-01-14"},
			[]string{"2030-01-07T08:00:00Z", "2030-01-09T08:00:00Z", "2030-01-14T08:00:00Z"}},
		{"biweekly", "2030-01-07T08:00:00", "UTC",
			recurrencePattern{Type: "weekly", Interval: 2, DaysOfWeek: []string{"monday"}}, recurrenceRange{Type: "numbered", NumberOfOccurrences: 3},
			[]string{"2030-01-07T08:00:00Z", "2030-01-21T08:00:00Z", "2030-02-04T08:00:00Z"}},
		{"weekly across DST keeps local time", "2030-03-25T09:00:00", "W. Europe Standard Time",
			recurrencePattern{Type: "weekly", Interval: 1, DaysOfWeek: []string{"monday"}}, recurrenceRange{Type: "numbered", NumberOfOccurrences: 2},
			[]string{"2030-03-25T08:00:00Z", "2030-04-01T07:00:00Z"}},
		{"absolute monthly 31st skips short months", "2030-01-31T10:00:00", "UTC",
			recurrencePattern{Type: "absoluteMonthly", Interval: 1, DayOfMonth: 31}, recurrenceRange{Type: "numbered", NumberOfOccurrences: 2},
			[]string{"2030-01-31T10:00:00Z", "2030-03-31T10:00:00Z"}},
		{"relative monthly last friday", "2030-01-25T10:00:00", "UTC",
			recurrencePattern{Type: "relativeMonthly", Interval: 1, DaysOfWeek: []string{"friday"}, Index: "last"}, recurrenceRange{Type: "numbered", NumberOfOccurrences: 3},
			[]string{"2030-01-25T10:00:00Z", "2030-02-22T10:00:00Z", "2030-03-29T10:00:00Z"}},
		{"relative monthly second tuesday", "2030-01-08T10:00:00", "UTC",
			recurrencePattern{Type: "relativeMonthly", Interval: 1, DaysOfWeek: []string{"tuesday"}, Index: "second"}, recurrenceRange{Type: "numbered", NumberOfOccurrences: 2},
			[]string{"2030-01-08T10:00:00Z", "2030-02-12T10:00:00Z"}},
		{"absolute yearly", "2030-06-15T10:00:00", "UTC",
			recurrencePattern{Type: "absoluteYearly", Interval: 1, Month: 6, DayOfMonth: 15}, recurrenceRange{Type: "numbered", NumberOfOccurrences: 2},
			[]string{"2030-06-15T10:00:00Z", "2031-06-15T10:00:00Z"}},
		{"relative yearly first monday of september", "2030-09-02T10:00:00", "UTC",
			recurrencePattern{Type: "relativeYearly", Interval: 1, Month: 9, DaysOfWeek: []string{"monday"}, Index: "first"}, recurrenceRange{Type: "numbered", NumberOfOccurrences: 2},
			[]string{"2030-09-02T10:00:00Z", "2031-09-01T10:00:00Z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc, err := loadZone(tc.tz)
			if err != nil {
				t.Fatal(err)
			}
			start, _ := time.ParseInLocation("2006-01-02T15:04:05", tc.start, loc)
			r := patternedRecurrence{Pattern: tc.pattern, Range: tc.rng}
			if aerr := normalizeRecurrence(&r, start, tc.tz); aerr != nil {
				t.Fatal(aerr)
			}
			ev := &event{start: start.UTC(), end: start.UTC().Add(time.Hour), recurrence: &r}
			var got []string
			occurrenceStarts(ev, func(s time.Time) bool {
				got = append(got, s.Format(time.RFC3339))
				return len(got) < 10
			})
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("occurrence %d = %s, want %s", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestRecurringSeries(t *testing.T) {
	h := newHarness(t, Options{}, false)
	master := h.createEvent(adele, map[string]any{
		"start": map[string]any{"dateTime": "2030-01-07T09:00:00", "timeZone": "UTC"},
		"end":   map[string]any{"dateTime": "2030-01-07T10:00:00", "timeZone": "UTC"},
		"recurrence": map[string]any{
			"pattern": map[string]any{"type": "weekly", "interval": 1, "daysOfWeek": []string{"Monday"}},
			"range":   map[string]any{"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 5},
		},
	})
	if master["type"] != "seriesMaster" {
		t.Fatalf("type = %v", master["type"])
	}
	view := func() []map[string]any {
		t.Helper()
		q := "startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-03-01T00:00:00Z"
		res := h.mustStatus(h.do("GET", "/users/"+adele+"/calendarView?"+q, nil), 200).json(t)
		var out []map[string]any
		for _, v := range res["value"].([]any) {
			out = append(out, v.(map[string]any))
		}
		return out
	}
	occ := view()
	if len(occ) != 5 {
		t.Fatalf("%d occurrences, want 5", len(occ))
	}
	for _, o := range occ {
		if o["type"] != "occurrence" || o["seriesMasterId"] != master["id"] {
			t.Fatalf("occurrence = %v", o)
		}
	}
	second := occ[1]["id"].(string)
	ex := h.mustStatus(h.do("PATCH", "/users/"+adele+"/events/"+second, map[string]any{"subject": "moved", "start": map[string]any{"dateTime": "2030-01-14T13:00:00", "timeZone": "UTC"}, "end": map[string]any{"dateTime": "2030-01-14T14:00:00", "timeZone": "UTC"}}), 200).json(t)
	if ex["type"] != "exception" || ex["subject"] != "moved" || ex["id"] != second {
		t.Fatalf("edited occurrence = %v", ex)
	}
	h.mustStatus(h.do("DELETE", "/users/"+adele+"/events/"+occ[2]["id"].(string), nil), 204)
	occ = view()
	if len(occ) != 4 {
		t.Fatalf("after deleting one occurrence: %d, want 4", len(occ))
	}
	if occ[1]["type"] != "exception" || str(occ[1], "start", "dateTime") != "2030-01-14T13:00:00.0000000" {
		t.Errorf("exception in view = %v", occ[1])
	}
	m := h.mustStatus(h.do("GET", "/users/"+adele+"/events/"+master["id"].(string)+"?$select=cancelledOccurrences,subject", nil), 200).json(t)
	if c, _ := m["cancelledOccurrences"].([]any); len(c) != 1 {
		t.Errorf("cancelledOccurrences = %v", m["cancelledOccurrences"])
	}
	// /events lists masters, not occurrences.
	list := h.mustStatus(h.do("GET", "/users/"+adele+"/events", nil), 200).json(t)
	if n := len(list["value"].([]any)); n != 1 {
		t.Errorf("/events has %d items, want 1 (the master)", n)
	}
	inst := h.mustStatus(h.do("GET", "/users/"+adele+"/events/"+master["id"].(string)+"/instances?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-01-20T00:00:00Z", nil), 200).json(t)
	if n := len(inst["value"].([]any)); n != 2 {
		t.Errorf("instances = %d, want 2", n)
	}
}

func TestCalendarViewWindow(t *testing.T) {
	h := newHarness(t, Options{}, false)
	h.createEvent(lee, map[string]any{"subject": "in"})
	h.createEvent(lee, map[string]any{"subject": "out",
		"start": map[string]any{"dateTime": "2031-03-04T09:00:00", "timeZone": "UTC"},
		"end":   map[string]any{"dateTime": "2031-03-04T10:00:00", "timeZone": "UTC"}})
	r := h.mustStatus(h.do("GET", "/users/"+lee+"/calendarView?startDateTime=2030-03-04T09:30:00Z&endDateTime=2030-03-05T00:00:00Z", nil), 200).json(t)
	if v := r["value"].([]any); len(v) != 1 || v[0].(map[string]any)["subject"] != "in" {
		t.Errorf("window = %v", v)
	}
	bad := h.do("GET", "/users/"+lee+"/calendarView", nil)
	if bad.status != 400 || bad.errorCode(t) != codeInvalidParameter {
		t.Errorf("missing window: %d %s", bad.status, bad.body)
	}
}
