package graph

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Recurrence as Outlook models it (patternedRecurrence): every pattern type
// (daily, weekly, absolute/relative monthly and yearly) and every range type
// (endDate, noEnd, numbered). Occurrences start at the master's local
// time of day in the recurrence time zone, so they follow DST.

var (
	patternTypes = []string{"daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"}
	rangeTypes   = []string{"endDate", "noEnd", "numbered"}
	weekDays     = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}
	weekIndexes  = []string{"first", "second", "third", "fourth", "last"}
)

// maxExpansionDays bounds how far a series is walked (Outlook caps
// noEnd series too; 20 years is beyond any sync window).
const maxExpansionDays = 20 * 366

// normalizeRecurrence validates r and fills Outlook's defaults; start is
// the master's start in its own zone.
func normalizeRecurrence(r *patternedRecurrence, start time.Time, startTZ string) *apiError {
	p, rg := &r.Pattern, &r.Range
	var aerr *apiError
	if p.Type, aerr = canonEnum(p.Type, "microsoft.graph.recurrencePatternType", patternTypes); aerr != nil {
		return aerr
	}
	if rg.Type, aerr = canonEnum(rg.Type, "microsoft.graph.recurrenceRangeType", rangeTypes); aerr != nil {
		return aerr
	}
	if p.Interval < 1 {
		return errorf(400, codeInvalidRequest, "Your request can't be completed. The recurrence pattern interval must be at least 1.")
	}
	for i, d := range p.DaysOfWeek {
		if p.DaysOfWeek[i], aerr = canonEnum(d, "microsoft.graph.dayOfWeek", weekDays); aerr != nil {
			return aerr
		}
	}
	if p.FirstDayOfWeek == "" {
		p.FirstDayOfWeek = "sunday"
	} else if p.FirstDayOfWeek, aerr = canonEnum(p.FirstDayOfWeek, "microsoft.graph.dayOfWeek", weekDays); aerr != nil {
		return aerr
	}
	if p.Index == "" {
		p.Index = "first"
	} else if p.Index, aerr = canonEnum(p.Index, "microsoft.graph.weekIndex", weekIndexes); aerr != nil {
		return aerr
	}
	switch p.Type {
	case "weekly", "relativeMonthly", "relativeYearly":
		if len(p.DaysOfWeek) == 0 {
			return errorf(400, codeInvalidRequest, fmt.Sprintf("Your request can't be completed. A %s recurrence pattern requires daysOfWeek.", p.Type))
		}
	}
	switch p.Type {
	case "absoluteMonthly", "absoluteYearly":
		if p.DayOfMonth < 1 || p.DayOfMonth > 31 {
			return errorf(400, codeInvalidRequest, "Your request can't be completed. The recurrence pattern requires dayOfMonth between 1 and 31.")
		}
	}
	switch p.Type {
	case "absoluteYearly", "relativeYearly":
		if p.Month < 1 || p.Month > 12 {
			return errorf(400, codeInvalidRequest, "Your request can't be completed. The recurrence pattern requires month between 1 and 12.")
		}
	}
	if rg.RecurrenceTimeZone == "" {
		rg.RecurrenceTimeZone = startTZ
	}
	loc, aerr := zoneOrError(rg.RecurrenceTimeZone)
	if aerr != nil {
		return aerr
	}
	if rg.StartDate == "" {
		rg.StartDate = start.In(loc).Format(time.DateOnly)
	}
	if _, err := time.Parse(time.DateOnly, rg.StartDate); err != nil {
		return errorf(400, codeRequestBodyRead, fmt.Sprintf("Cannot convert the literal '%s' to the expected type 'Edm.Date'.", rg.StartDate))
	}
	switch rg.Type {
	case "endDate":
		end, err := time.Parse(time.DateOnly, rg.EndDate)
		if err != nil {
			return errorf(400, codeInvalidRequest, "Your request can't be completed. An endDate recurrence range requires a valid endDate.")
		}
		if s, _ := time.Parse(time.DateOnly, rg.StartDate); end.Before(s) {
			return errorf(400, codeInvalidRequest, "Your request can't be completed. The recurrence range endDate is before its startDate.")
		}
		rg.NumberOfOccurrences = 0
	case "numbered":
		if rg.NumberOfOccurrences < 1 {
			return errorf(400, codeInvalidRequest, "Your request can't be completed. A numbered recurrence range requires numberOfOccurrences of at least 1.")
		}
		rg.EndDate = "0001-01-01"
	default:
		rg.EndDate = "0001-01-01"
		rg.NumberOfOccurrences = 0
	}
	return nil
}

func canonEnum(v, typeName string, allowed []string) (string, *apiError) {
	for _, a := range allowed {
		if strings.EqualFold(a, v) {
			return a, nil
		}
	}
	return "", errorf(400, codeRequestBodyRead, fmt.Sprintf("Cannot convert the literal '%s' to the expected type '%s'.", v, typeName))
}

// occurrenceStarts yields the original starts of the series' occurrences
// (cancelled ones included: they still count for numbered ranges) until
// yield returns false or the series ends.
func occurrenceStarts(master *event, yield func(time.Time) bool) {
	r := master.recurrence
	loc, err := loadZone(r.Range.RecurrenceTimeZone)
	if err != nil {
		loc = time.UTC
	}
	first, _ := time.Parse(time.DateOnly, r.Range.StartDate)
	var last time.Time
	if r.Range.Type == "endDate" {
		last, _ = time.Parse(time.DateOnly, r.Range.EndDate)
	}
	localStart := master.start.In(loc)
	h, m, s := localStart.Clock()
	count := 0
	for i := 0; i < maxExpansionDays; i++ {
		d := first.AddDate(0, 0, i)
		if !last.IsZero() && d.After(last) {
			return
		}
		if !patternMatches(&r.Pattern, first, d) {
			continue
		}
		count++
		if r.Range.Type == "numbered" && count > r.Range.NumberOfOccurrences {
			return
		}
		if !yield(time.Date(d.Year(), d.Month(), d.Day(), h, m, s, 0, loc).UTC()) {
			return
		}
	}
}

// patternMatches reports whether date d (a UTC midnight standing for a
// local date) is in the pattern anchored at the range's start date.
func patternMatches(p *recurrencePattern, first, d time.Time) bool {
	wd := weekDays[d.Weekday()]
	months := (d.Year()-first.Year())*12 + int(d.Month()) - int(first.Month())
	switch p.Type {
	case "daily":
		return int(d.Sub(first).Hours()/24)%p.Interval == 0
	case "weekly":
		if !slices.Contains(p.DaysOfWeek, wd) {
			return false
		}
		fdw := slices.Index(weekDays, p.FirstDayOfWeek)
		weekStart := func(t time.Time) time.Time {
			back := (int(t.Weekday()) - fdw + 7) % 7
			return t.AddDate(0, 0, -back)
		}
		weeks := int(weekStart(d).Sub(weekStart(first)).Hours() / (24 * 7))
		return weeks%p.Interval == 0
	case "absoluteMonthly":
		return months%p.Interval == 0 && d.Day() == p.DayOfMonth
	case "relativeMonthly":
		return months%p.Interval == 0 && relativeDayMatches(p, d)
	case "absoluteYearly":
		return int(d.Month()) == p.Month && d.Day() == p.DayOfMonth && (d.Year()-first.Year())%p.Interval == 0
	case "relativeYearly":
		return int(d.Month()) == p.Month && (d.Year()-first.Year())%p.Interval == 0 && relativeDayMatches(p, d)
	}
	return false
}

// relativeDayMatches: d is the index-th (or last) day of its month among
// the days whose weekday is in daysOfWeek ("first weekday", "last Friday").
func relativeDayMatches(p *recurrencePattern, d time.Time) bool {
	if !slices.Contains(p.DaysOfWeek, weekDays[d.Weekday()]) {
		return false
	}
	var matches []int
	for day := time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC); day.Month() == d.Month(); day = day.AddDate(0, 0, 1) {
		if slices.Contains(p.DaysOfWeek, weekDays[day.Weekday()]) {
			matches = append(matches, day.Day())
		}
	}
	if p.Index == "last" {
		return matches[len(matches)-1] == d.Day()
	}
	n := slices.Index(weekIndexes, p.Index)
	return n < len(matches) && matches[n] == d.Day()
}

// expand lists the instances of a series overlapping [from, to): occurrences
// and exceptions, without cancelled ones.
func expand(master *event, from, to time.Time) []instance {
	dur := master.end.Sub(master.start)
	var out []instance
	seen := map[int64]bool{}
	occurrenceStarts(master, func(s time.Time) bool {
		if !s.Before(to) { // occurrences ascend: the rest start after the window
			return false
		}
		occ := s.Unix()
		seen[occ] = true
		if master.cancelled[occ] {
			return true
		}
		in := instance{ev: master, master: master, occ: occ, start: s, end: s.Add(dur)}
		if ex := master.exceptions[occ]; ex != nil {
			in.ev, in.start, in.end = ex, ex.start, ex.end
		}
		if overlaps(in.start, in.end, from, to) {
			out = append(out, in)
		}
		return true
	})
	// Exceptions moved far from their original slot still show where they are now.
	for occ, ex := range master.exceptions {
		if !seen[occ] && overlaps(ex.start, ex.end, from, to) && !master.cancelled[occ] {
			out = append(out, instance{ev: ex, master: master, occ: occ, start: ex.start, end: ex.end})
		}
	}
	return out
}

// isOccurrence reports whether occ is an original start of the series.
func isOccurrence(master *event, occ int64) bool {
	found := false
	target := time.Unix(occ, 0)
	occurrenceStarts(master, func(s time.Time) bool {
		if s.Unix() == occ {
			found = true
		}
		return s.Before(target)
	})
	return found
}

// overlaps is calendarView's rule: an event is in [from, to) if it starts
// before to and ends after from (zero-length events at from count).
func overlaps(start, end, from, to time.Time) bool {
	if !start.Before(to) {
		return false
	}
	return end.After(from) || (start.Equal(end) && !start.Before(from))
}
