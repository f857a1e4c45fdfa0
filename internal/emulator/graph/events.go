package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

const maxBody = 4 << 20

var (
	showAsValues      = []string{"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"}
	sensitivityValues = []string{"normal", "personal", "private", "confidential"}
	importanceValues  = []string{"low", "normal", "high"}
	attendeeTypes     = []string{"required", "optional", "resource"}
	bodyTypes         = []string{"text", "html"}
)

// readJSONBody reads a request body as Graph does: empty bodies and
// malformed JSON are 400s.
func readJSONBody(r *http.Request) ([]byte, *apiError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, errorf(400, codeBadRequest, "Unable to read JSON request payload.")
	}
	if len(body) > maxBody {
		return nil, errorf(413, "RequestEntityTooLarge", "The request payload is too large.")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, errorf(400, codeBadRequest, "Empty Payload. JSON content expected.")
	}
	return body, nil
}

// decodeEventIn parses a POST/PATCH event body, rejecting properties the
// event type does not have.
func decodeEventIn(r *http.Request) (*eventIn, *apiError) {
	body, aerr := readJSONBody(r)
	if aerr != nil {
		return nil, aerr
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return nil, errorf(400, codeBadRequest, "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
	}
	for k := range members {
		if strings.HasPrefix(k, "@") || acceptedEventProps[strings.ToLower(k)] {
			continue
		}
		return nil, errorf(400, codeRequestBodyRead, fmt.Sprintf("The property '%s' does not exist on type 'microsoft.graph.event'. Make sure to only use property names that are defined by the type or mark the type as open type.", k))
	}
	var in eventIn
	if err := json.Unmarshal(body, &in); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, errorf(400, codeRequestBodyRead, fmt.Sprintf("Cannot convert a JSON %s to the type of property '%s'.", te.Value, te.Field))
		}
		return nil, errorf(400, codeRequestBodyRead, "Invalid JSON: "+err.Error())
	}
	return &in, nil
}

// acceptedEventProps are the lower-cased names a body may carry: writable
// ones and the ignored read-only ones.
var acceptedEventProps = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range append(jsonFieldNames(eventIn{}), ignoredEventProps...) {
		m[strings.ToLower(n)] = true
	}
	return m
}()

var extIDRE = regexp.MustCompile(`(?i)^(Binary|Boolean|Currency|CLSID|Double|Integer|Long|Short|String|SystemTime|Float|Object)\s+(\{[0-9a-f-]{36}\}\s+(Name|Id)\s+\S.*|0x[0-9a-f]{4})$`)

// applyEventIn writes in onto ev. creating selects create-time rules
// (required start/end, defaults already set by the caller).
func applyEventIn(ev *event, in *eventIn, creating bool) *apiError {
	var aerr *apiError
	if in.Subject != nil {
		ev.subject = *in.Subject
	}
	if in.Body != nil {
		ct := in.Body.ContentType
		if ct == "" {
			ct = "text"
		}
		if ct, aerr = canonEnum(ct, "microsoft.graph.bodyType", bodyTypes); aerr != nil {
			return aerr
		}
		ev.bodyType, ev.bodyContent = ct, in.Body.Content
	}
	if creating && (in.Start == nil || in.End == nil) {
		return errorf(400, codeInvalidRequest, "Your request can't be completed. The start and end of the event must be specified.")
	}
	start, end := ev.start, ev.end
	if in.Start != nil {
		if start, aerr = parseDateTimeTimeZone("start", *in.Start); aerr != nil {
			return aerr
		}
		ev.startTZ = zoneLabel(in.Start.TimeZone)
	}
	if in.End != nil {
		if end, aerr = parseDateTimeTimeZone("end", *in.End); aerr != nil {
			return aerr
		}
		ev.endTZ = zoneLabel(in.End.TimeZone)
	}
	if end.Before(start) {
		return errorf(400, codeInvalidRequest, "Your request can't be completed. The end time of the event is before its start time.")
	}
	ev.start, ev.end = start, end
	if in.IsAllDay != nil {
		ev.isAllDay = *in.IsAllDay
	}
	if ev.isAllDay {
		sl, _ := loadZone(ev.startTZ)
		el, _ := loadZone(ev.endTZ)
		if !isMidnight(ev.start, sl) || !isMidnight(ev.end, el) || ev.end.Equal(ev.start) {
			return errorf(400, codeInvalidRequest, "Your request can't be completed. If the event is an all-day event, the start and end must be at midnight and at least a day apart.")
		}
	}
	if in.Location != nil {
		ev.location = *in.Location
		if in.Locations == nil {
			ev.locations = nil // setting location replaces locations
		}
	}
	if in.Locations != nil {
		ev.locations = append([]location{}, *in.Locations...)
		if in.Location == nil {
			var names []string
			for _, l := range ev.locations {
				names = append(names, l.DisplayName)
			}
			ev.location = location{DisplayName: strings.Join(names, "; ")}
		}
	}
	for _, f := range []struct {
		in       *string
		out      *string
		typeName string
		allowed  []string
	}{
		{in.ShowAs, &ev.showAs, "microsoft.graph.freeBusyStatus", showAsValues},
		{in.Sensitivity, &ev.sensitivity, "microsoft.graph.sensitivity", sensitivityValues},
		{in.Importance, &ev.importance, "microsoft.graph.importance", importanceValues},
	} {
		if f.in != nil {
			if *f.out, aerr = canonEnum(*f.in, f.typeName, f.allowed); aerr != nil {
				return aerr
			}
		}
	}
	if in.Categories != nil {
		ev.categories = append([]string{}, *in.Categories...)
	}
	setBool := func(src *bool, dst *bool) {
		if src != nil {
			*dst = *src
		}
	}
	setBool(in.IsReminderOn, &ev.isReminderOn)
	setBool(in.IsCancelled, &ev.isCancelled)
	setBool(in.ResponseRequested, &ev.responseRequested)
	setBool(in.AllowNewTimeProposals, &ev.allowNewProposals)
	setBool(in.HideAttendees, &ev.hideAttendees)
	if in.ReminderMinutesBeforeStart != nil {
		ev.reminderMinutes = *in.ReminderMinutesBeforeStart
	}
	if in.Attendees != nil {
		list := make([]attendee, 0, len(*in.Attendees))
		for _, a := range *in.Attendees {
			if a.Type == "" {
				a.Type = "required"
			}
			if a.Type, aerr = canonEnum(a.Type, "microsoft.graph.attendeeType", attendeeTypes); aerr != nil {
				return aerr
			}
			if a.EmailAddress.Address == "" {
				return errorf(400, codeInvalidRequest, "Your request can't be completed. An attendee must have an email address.")
			}
			a.Status = nil
			list = append(list, a)
		}
		ev.attendees = list
	}
	if in.Recurrence != nil {
		r := *in.Recurrence
		r.Pattern.DaysOfWeek = append([]string(nil), r.Pattern.DaysOfWeek...)
		if aerr := normalizeRecurrence(&r, ev.start, ev.startTZ); aerr != nil {
			return aerr
		}
		ev.recurrence = &r
	}
	if in.TransactionID != nil {
		if creating {
			ev.transactionID = *in.TransactionID
		} else if *in.TransactionID != ev.transactionID {
			return errorf(400, codeInvalidRequest, "Your request can't be completed. The transactionId of an event can't be changed.")
		}
	}
	if in.SingleValueExtendedProperties != nil {
		for _, p := range *in.SingleValueExtendedProperties {
			if !extIDRE.MatchString(strings.TrimSpace(p.ID)) {
				return errorf(400, codeInvalidRequest, fmt.Sprintf("Your request can't be completed. The extended property id '%s' is not valid.", p.ID))
			}
			if ev.ext == nil {
				ev.ext = map[string]extendedProperty{}
			}
			ev.ext[normalizeExtID(p.ID)] = extendedProperty{ID: strings.TrimSpace(p.ID), Value: p.Value}
		}
	}
	return nil
}

func zoneLabel(tz string) string {
	if tz == "" {
		return "UTC"
	}
	return tz
}

func isMidnight(t time.Time, loc *time.Location) bool {
	if loc == nil {
		loc = time.UTC
	}
	h, m, s := t.In(loc).Clock()
	return h == 0 && m == 0 && s == 0 && t.Nanosecond() == 0
}

// lookupInstanceLocked resolves an event id from the URL.
func lookupInstanceLocked(mb *mailbox, eid string) (instance, *apiError) {
	notFound := errorf(404, codeItemNotFound, "The specified object was not found in the store.")
	ref, err := parseItemID(eid)
	if err != nil {
		return instance{}, errorf(400, codeInvalidIDMalform, "Id is malformed.")
	}
	if ref.mailbox != mb.id {
		return instance{}, notFound
	}
	ev := mb.events[ref.key]
	if ev == nil {
		return instance{}, notFound
	}
	if ref.occ == 0 {
		return singleOrMaster(ev), nil
	}
	if !ev.isSeriesMaster() || ev.cancelled[ref.occ] {
		return instance{}, notFound
	}
	if ex := ev.exceptions[ref.occ]; ex != nil {
		return instance{ev: ex, master: ev, occ: ref.occ, start: ex.start, end: ex.end}, nil
	}
	if !isOccurrence(ev, ref.occ) {
		return instance{}, notFound
	}
	s := time.Unix(ref.occ, 0).UTC()
	return instance{ev: ev, master: ev, occ: ref.occ, start: s, end: s.Add(ev.end.Sub(ev.start))}, nil
}

// parseExpand supports $expand=singleValueExtendedProperties($filter=id eq '…'
// [or id eq '…']), the only way Graph returns extended properties.
func parseExpand(q url.Values) ([]string, *apiError) {
	s, ok := queryParam(q, "expand")
	if !ok || strings.TrimSpace(s) == "" {
		return nil, nil
	}
	const nav = "singlevalueextendedproperties"
	low := strings.ToLower(strings.TrimSpace(s))
	if !strings.HasPrefix(low, nav) {
		name, _, _ := strings.Cut(s, "(")
		return nil, errorf(400, codeBadRequest, fmt.Sprintf("Parsing OData Select and Expand failed: $expand of '%s' is not supported by the emulator.", strings.TrimSpace(name)))
	}
	inner := strings.TrimSpace(s)[len(nav):]
	if !strings.HasPrefix(inner, "(") || !strings.HasSuffix(inner, ")") {
		return nil, errorf(400, codeBadRequest, "Expanding singleValueExtendedProperties requires a $filter on id: the REST API can't return all extended properties of an item.")
	}
	inner = strings.TrimSpace(inner[1 : len(inner)-1])
	f, ok := strings.CutPrefix(inner, "$filter=")
	if !ok {
		return nil, errorf(400, codeBadRequest, "Expanding singleValueExtendedProperties requires a $filter on id.")
	}
	var ids []string
	for _, term := range regexp.MustCompile(`(?i)\s+or\s+`).Split(f, -1) {
		m := regexp.MustCompile(`(?i)^\s*id\s+eq\s+'((?:[^']|'')*)'\s*$`).FindStringSubmatch(term)
		if m == nil {
			return nil, invalidFilter("only id eq '…' terms joined by or are supported in an extended property $expand")
		}
		ids = append(ids, normalizeExtID(strings.ReplaceAll(m[1], "''", "'")))
	}
	return ids, nil
}

type eventQuery struct {
	sel       selection
	expandExt []string
	filter    filterNode
	orderBy   []orderKey
	top, skip int
}

type orderKey struct {
	path string
	desc bool
}

var orderPaths = []string{"start/dateTime", "end/dateTime", "createdDateTime", "lastModifiedDateTime", "subject"}

func parseEventQuery(q url.Values, prefs preferences, def int) (*eventQuery, *apiError) {
	var eq eventQuery
	var aerr *apiError
	if eq.sel, aerr = parseSelect(q, "microsoft.graph.event", eventProps); aerr != nil {
		return nil, aerr
	}
	if eq.expandExt, aerr = parseExpand(q); aerr != nil {
		return nil, aerr
	}
	if f, ok := queryParam(q, "filter"); ok && strings.TrimSpace(f) != "" {
		if eq.filter, aerr = parseFilter(f); aerr != nil {
			return nil, aerr
		}
	}
	if o, ok := queryParam(q, "orderby"); ok && strings.TrimSpace(o) != "" {
		for _, part := range strings.Split(o, ",") {
			fields := strings.Fields(part)
			if len(fields) == 0 || len(fields) > 2 {
				return nil, errorf(400, codeBadRequest, fmt.Sprintf("Invalid $orderby clause '%s'.", part))
			}
			k := orderKey{}
			for _, p := range orderPaths {
				if strings.EqualFold(p, fields[0]) {
					k.path = p
				}
			}
			if k.path == "" {
				return nil, errorf(400, codeBadRequest, fmt.Sprintf("$orderby on '%s' is not supported by the emulator.", fields[0]))
			}
			if len(fields) == 2 {
				switch strings.ToLower(fields[1]) {
				case "desc":
					k.desc = true
				case "asc":
				default:
					return nil, errorf(400, codeBadRequest, fmt.Sprintf("Invalid $orderby direction '%s'.", fields[1]))
				}
			}
			eq.orderBy = append(eq.orderBy, k)
		}
	}
	if prefs.maxPageSize > 0 {
		def = prefs.maxPageSize
	}
	if eq.top, eq.skip, aerr = pageParams(q, def, 1000); aerr != nil {
		return nil, aerr
	}
	return &eq, nil
}

// run filters, orders, pages and renders instances; it returns the page and
// whether more follow. Call with e.mu held.
func (e *Emulator) runEventQueryLocked(mb *mailbox, list []instance, eq *eventQuery, ro renderOpts, defaultOrder func(a, b instance) int) ([]json.RawMessage, bool, error) {
	if eq.filter != nil {
		kept := list[:0]
		for _, in := range list {
			out := e.renderInstance(mb, in, renderOpts{utc: true, prefs: ro.prefs})
			env := &filterEnv{ev: &out, ext: extOf(in), vars: map[string]any{}}
			if ok, _ := eq.filter.eval(env).(bool); ok {
				kept = append(kept, in)
			}
		}
		list = kept
	}
	slices.SortStableFunc(list, func(a, b instance) int {
		for _, k := range eq.orderBy {
			c := compareInstances(a, b, k.path)
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return defaultOrder(a, b)
	})
	if eq.skip >= len(list) {
		list = nil
	} else {
		list = list[eq.skip:]
	}
	more := len(list) > eq.top
	if more {
		list = list[:eq.top]
	}
	ro.expandExt = eq.expandExt
	ro.cancelled = eq.sel["cancelledOccurrences"]
	items := make([]json.RawMessage, 0, len(list))
	for _, in := range list {
		raw, err := encodeEvent(e.renderInstance(mb, in, ro), eq.sel)
		if err != nil {
			return nil, false, err
		}
		items = append(items, raw)
	}
	return items, more, nil
}

func extOf(in instance) map[string]extendedProperty {
	if in.master != nil {
		return in.master.ext
	}
	return in.ev.ext
}

func compareInstances(a, b instance, path string) int {
	switch path {
	case "start/dateTime":
		return a.start.Compare(b.start)
	case "end/dateTime":
		return a.end.Compare(b.end)
	case "createdDateTime":
		return a.ev.created.Compare(b.ev.created)
	case "lastModifiedDateTime":
		return a.ev.modified.Compare(b.ev.modified)
	default:
		return strings.Compare(strings.ToLower(a.ev.subject), strings.ToLower(b.ev.subject))
	}
}

func byCreated(a, b instance) int {
	if c := a.ev.created.Compare(b.ev.created); c != 0 {
		return c
	}
	return strings.Compare(a.ev.key.String(), b.ev.key.String())
}

func byStart(a, b instance) int {
	if c := a.start.Compare(b.start); c != 0 {
		return c
	}
	if c := strings.Compare(a.ev.key.String(), b.ev.key.String()); c != 0 {
		return c
	}
	return int(a.occ - b.occ)
}

func (e *Emulator) eventContext(mb *mailbox, entity bool) string {
	ctx := e.BaseURL() + "/$metadata#users('" + mb.user.ID + "')/events"
	if entity {
		ctx += "/$entity"
	}
	return ctx
}

// --- handlers --------------------------------------------------------------

func (e *Emulator) createEvent(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError {
	in, aerr := decodeEventIn(r)
	if aerr != nil {
		return aerr
	}
	mb := rc.mb
	now := e.t.Now()
	ev := &event{
		key: newItemKey(), created: now, modified: now,
		bodyType: "html", showAs: "busy", sensitivity: "normal", importance: "normal",
		isReminderOn: true, reminderMinutes: 15, responseRequested: true, allowNewProposals: true,
		iCalUID: newICalUID(now),
	}
	if aerr := applyEventIn(ev, in, true); aerr != nil {
		return aerr
	}
	opts := e.options()
	e.mu.Lock()
	if ev.transactionID != "" {
		// A retried create returns the event the first attempt made.
		if key, ok := mb.txn[ev.transactionID]; ok {
			if existing := mb.events[key]; existing != nil {
				e.counters.transactionReplays.Add(1)
				raw, err := encodeEvent(e.renderInstance(mb, singleOrMaster(existing), renderOpts{prefs: rc.prefs}), nil)
				e.mu.Unlock()
				if err != nil {
					return errorf(500, "generalException", err.Error())
				}
				rc.prefs.setApplied(w)
				writeRaw(w, http.StatusCreated, withMembers(raw, "@odata.context", e.eventContext(mb, true)))
				return nil
			}
		}
	}
	ev.seq = e.nextSeqLocked()
	if mb.events == nil {
		mb.events = map[itemKey]*event{}
	}
	mb.events[ev.key] = ev
	if ev.transactionID != "" {
		if mb.txn == nil {
			mb.txn = map[string]itemKey{}
		}
		mb.txn[ev.transactionID] = ev.key
	}
	e.notifyLocked(mb, "created", singleOrMaster(ev))
	e.observeWriteLocked(mb, "created", "api", singleOrMaster(ev))
	if !opts.NoExtraUpdate {
		key := ev.key
		e.afterFuncLocked(opts.ExtraUpdateDelay, func() { e.extraUpdate(mb, key) })
	}
	raw, err := encodeEvent(e.renderInstance(mb, singleOrMaster(ev), renderOpts{prefs: rc.prefs}), nil)
	e.mu.Unlock()
	if err != nil {
		return errorf(500, "generalException", err.Error())
	}
	rc.prefs.setApplied(w)
	writeRaw(w, http.StatusCreated, withMembers(raw, "@odata.context", e.eventContext(mb, true)))
	return nil
}

// extraUpdate is Outlook touching a new item: only changeKey, @odata.etag
// and lastModifiedDateTime change, and an "updated" notification follows.
func (e *Emulator) extraUpdate(mb *mailbox, key itemKey) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev := mb.events[key]
	if ev == nil {
		return
	}
	ev.seq = e.nextSeqLocked()
	ev.modified = e.t.Now()
	e.notifyLocked(mb, "updated", singleOrMaster(ev))
	e.observeWriteLocked(mb, "updated", "outlook", singleOrMaster(ev))
}

func (e *Emulator) getEvent(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError {
	q := r.URL.Query()
	sel, aerr := parseSelect(q, "microsoft.graph.event", eventProps)
	if aerr != nil {
		return aerr
	}
	expandExt, aerr := parseExpand(q)
	if aerr != nil {
		return aerr
	}
	e.mu.Lock()
	in, aerr := lookupInstanceLocked(rc.mb, r.PathValue("eid"))
	if aerr != nil {
		e.mu.Unlock()
		return aerr
	}
	raw, err := encodeEvent(e.renderInstance(rc.mb, in, renderOpts{prefs: rc.prefs, expandExt: expandExt, cancelled: sel["cancelledOccurrences"]}), sel)
	e.mu.Unlock()
	if err != nil {
		return errorf(500, "generalException", err.Error())
	}
	rc.prefs.setApplied(w)
	writeRaw(w, http.StatusOK, withMembers(raw, "@odata.context", e.eventContext(rc.mb, true)))
	return nil
}

func (e *Emulator) listEvents(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError {
	eq, aerr := parseEventQuery(r.URL.Query(), rc.prefs, e.options().PageSize)
	if aerr != nil {
		return aerr
	}
	e.mu.Lock()
	list := make([]instance, 0, len(rc.mb.events))
	for _, ev := range rc.mb.events {
		list = append(list, singleOrMaster(ev))
	}
	items, more, err := e.runEventQueryLocked(rc.mb, list, eq, renderOpts{prefs: rc.prefs}, byCreated)
	e.mu.Unlock()
	if err != nil {
		return errorf(500, "generalException", err.Error())
	}
	next := ""
	if more {
		next = e.nextLinkFor(r, eq.skip+eq.top)
	}
	rc.prefs.setApplied(w)
	writeCollection(w, e.eventContext(rc.mb, false), items, next, "")
	return nil
}

func (e *Emulator) updateEvent(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError {
	in, aerr := decodeEventIn(r)
	if aerr != nil {
		return aerr
	}
	mb := rc.mb
	e.mu.Lock()
	defer e.mu.Unlock()
	inst, aerr := lookupInstanceLocked(mb, r.PathValue("eid"))
	if aerr != nil {
		return aerr
	}
	now := e.t.Now()
	var target *event
	switch inst.kind() {
	case "occurrence":
		if in.Recurrence != nil {
			return errorf(400, codeInvalidRequest, "Your request can't be completed. The recurrence of an occurrence can't be changed.")
		}
		// Editing an occurrence turns it into an exception of its own.
		target = inst.master.clone()
		target.start, target.end = inst.start, inst.end
		target.originalStart = inst.start
		target.created = now
	case "exception":
		if in.Recurrence != nil {
			return errorf(400, codeInvalidRequest, "Your request can't be completed. The recurrence of an occurrence can't be changed.")
		}
		target = inst.ev.clone()
	default:
		target = inst.ev.clone()
		target.recurrence = inst.ev.recurrence
		target.exceptions, target.cancelled, target.ext = inst.ev.exceptions, inst.ev.cancelled, maps0(inst.ev.ext)
	}
	if aerr := applyEventIn(target, in, false); aerr != nil {
		return aerr
	}
	if inst.master == nil && target.isSeriesMaster() &&
		(in.Recurrence != nil || in.Start != nil || in.End != nil) {
		// Outlook drops exceptions when the series pattern or times change.
		if in.Recurrence == nil {
			if aerr := normalizeRecurrence(target.recurrence, target.start, target.startTZ); aerr != nil {
				return aerr
			}
		}
		target.exceptions, target.cancelled = nil, nil
	}
	target.seq = e.nextSeqLocked()
	target.modified = now
	var result instance
	if inst.master != nil {
		master := inst.master
		if in.SingleValueExtendedProperties != nil {
			for k, v := range target.ext {
				if master.ext == nil {
					master.ext = map[string]extendedProperty{}
				}
				master.ext[k] = v
			}
			target.ext = nil
		}
		if master.exceptions == nil {
			master.exceptions = map[int64]*event{}
		}
		master.exceptions[inst.occ] = target
		master.seq = target.seq // delta sees the series as changed
		result = instance{ev: target, master: master, occ: inst.occ, start: target.start, end: target.end}
	} else {
		mb.events[target.key] = target
		result = singleOrMaster(target)
	}
	e.notifyLocked(mb, "updated", result)
	e.observeWriteLocked(mb, "updated", "api", result)
	raw, err := encodeEvent(e.renderInstance(mb, result, renderOpts{prefs: rc.prefs}), nil)
	if err != nil {
		return errorf(500, "generalException", err.Error())
	}
	rc.prefs.setApplied(w)
	writeRaw(w, http.StatusOK, withMembers(raw, "@odata.context", e.eventContext(mb, true)))
	return nil
}

func maps0(m map[string]extendedProperty) map[string]extendedProperty {
	if m == nil {
		return nil
	}
	out := make(map[string]extendedProperty, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (e *Emulator) deleteEvent(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError {
	mb := rc.mb
	e.mu.Lock()
	defer e.mu.Unlock()
	inst, aerr := lookupInstanceLocked(mb, r.PathValue("eid"))
	if aerr != nil {
		return aerr
	}
	now := e.t.Now()
	if inst.master != nil {
		// Deleting one occurrence only updates the master (and Graph notifies
		// only "updated" on the series master).
		m := inst.master
		if m.cancelled == nil {
			m.cancelled = map[int64]bool{}
		}
		m.cancelled[inst.occ] = true
		delete(m.exceptions, inst.occ)
		m.seq = e.nextSeqLocked()
		m.modified = now
		e.notifyLocked(mb, "updated", singleOrMaster(m))
		e.observeWriteLocked(mb, "updated", "api", singleOrMaster(m))
	} else {
		ev := inst.ev
		delete(mb.events, ev.key)
		if ev.transactionID != "" {
			delete(mb.txn, ev.transactionID)
		}
		seq := e.nextSeqLocked()
		e.pruneTombstonesLocked(mb, now)
		mb.tombstones = append(mb.tombstones, tombstone{ev: ev, seq: seq, deleted: now})
		e.notifyLocked(mb, "deleted", inst)
		e.observeWriteLocked(mb, "deleted", "api", inst)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (e *Emulator) pruneTombstonesLocked(mb *mailbox, now time.Time) {
	cutoff := now.Add(-e.options().DeltaTokenLifetime)
	i := sort.Search(len(mb.tombstones), func(i int) bool { return mb.tombstones[i].deleted.After(cutoff) })
	if i > 0 {
		mb.tombstones = append([]tombstone(nil), mb.tombstones[i:]...)
	}
}

// listInstances serves /events/{id}/instances?startDateTime=&endDateTime=.
func (e *Emulator) listInstances(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError {
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
	inst, aerr := lookupInstanceLocked(rc.mb, r.PathValue("eid"))
	if aerr != nil {
		e.mu.Unlock()
		return aerr
	}
	var list []instance
	if inst.master == nil && inst.ev.isSeriesMaster() {
		list = expand(inst.ev, from, to)
	} else if overlaps(inst.start, inst.end, from, to) {
		list = []instance{inst}
	}
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
	writeCollection(w, e.BaseURL()+"/$metadata#Collection(event)", items, next, "")
	return nil
}
