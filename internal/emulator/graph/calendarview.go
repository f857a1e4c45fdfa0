package graph

import (
	"net/http"
	"net/url"
	"time"
)

// windowParams reads calendarView's required startDateTime and endDateTime.
func windowParams(q url.Values, prefs preferences) (time.Time, time.Time, *apiError) {
	missing := errorf(400, codeInvalidParameter, "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.")
	s, ok1 := queryParam(q, "startDateTime")
	en, ok2 := queryParam(q, "endDateTime")
	if !ok1 || !ok2 || s == "" || en == "" {
		return time.Time{}, time.Time{}, missing
	}
	from, ok := parseWindowParam(s, prefs.zone)
	if !ok {
		return time.Time{}, time.Time{}, errorf(400, codeInvalidParameter, "The value '"+s+"' of parameter 'StartDateTime' is invalid.")
	}
	to, ok := parseWindowParam(en, prefs.zone)
	if !ok {
		return time.Time{}, time.Time{}, errorf(400, codeInvalidParameter, "The value '"+en+"' of parameter 'EndDateTime' is invalid.")
	}
	if !to.After(from) {
		return time.Time{}, time.Time{}, errorf(400, codeInvalidParameter, "The parameter 'EndDateTime' must be later than 'StartDateTime'.")
	}
	return from, to, nil
}

// instancesInLocked lists what a calendar view shows: single events and the
// occurrences and exceptions of series, overlapping [from, to).
func instancesInLocked(mb *mailbox, from, to time.Time) []instance {
	var list []instance
	for _, ev := range mb.events {
		if ev.isSeriesMaster() {
			list = append(list, expand(ev, from, to)...)
		} else if overlaps(ev.start, ev.end, from, to) {
			list = append(list, singleOrMaster(ev))
		}
	}
	return list
}

func (e *Emulator) calendarView(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError {
	q := r.URL.Query()
	from, to, aerr := windowParams(q, rc.prefs)
	if aerr != nil {
		return aerr
	}
	eq, aerr := parseEventQuery(q, rc.prefs, e.options().PageSize)
	if aerr != nil {
		return aerr
	}
	e.mu.Lock()
	list := instancesInLocked(rc.mb, from, to)
	items, more, err := e.runEventQueryLocked(rc.mb, list, eq, renderOpts{prefs: rc.prefs}, byStart)
	e.mu.Unlock()
	if err != nil {
		return errorf(500, "generalException", err.Error())
	}
	next := ""
	if more {
		next = e.nextLinkFor(r, eq.skip+eq.top)
	}
	rc.prefs.setApplied(w)
	writeCollection(w, e.BaseURL()+"/$metadata#users('"+rc.mb.user.ID+"')/calendarView", items, next, "")
	return nil
}
