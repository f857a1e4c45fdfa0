package dataverse

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Delta tokens look like the documented example "919042!08/22/2017 08:10:44":
// the row version they cover up to and when they were issued (tenant clock).
const tokenTimeLayout = "01/02/2006 15:04:05"

func (e *Emulator) deltaToken(version int64) string {
	return strconv.FormatInt(version, 10) + "!" + e.now().Format(tokenTimeLayout)
}

func parseDeltaToken(tok string) (int64, time.Time, bool) {
	v, ts, ok := strings.Cut(tok, "!")
	if !ok {
		return 0, time.Time{}, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, time.Time{}, false
	}
	at, err := time.Parse(tokenTimeLayout, ts)
	if err != nil {
		return 0, time.Time{}, false
	}
	return n, at, true
}

// checkDeltaToken validates a token and its age against the organization's
// expirechangetrackingindays. Callers hold e.mu.
func (e *Emulator) checkDeltaToken(t *table, tok string) (int64, *apiError) {
	if !t.ChangeTracking {
		return 0, badRequest("Change tracking is not enabled for the entity '%s'.", t.Logical)
	}
	v, at, ok := parseDeltaToken(tok)
	if !ok || v > e.version {
		return 0, badRequest("The $deltatoken '%s' is not valid.", tok)
	}
	days := int64(7)
	if org := e.org(); org != nil {
		days, _ = org.vals["expirechangetrackingindays"].(int64)
	}
	e.cfgMu.Lock()
	day := e.settings.ChangeTrackingDay
	e.cfgMu.Unlock()
	// Exact HTTP status for an expired token is [unverified] (reference §3);
	// the code is ExpiredVersionStamp with the message reported in
	// MicrosoftDocs/powerapps-docs#3845.
	if e.now().Sub(at) > time.Duration(days)*day {
		return 0, errf(http.StatusBadRequest, codeExpiredVersion, "Version stamp associated with the client has expired. Please perform a full sync.")
	}
	return v, nil
}

type ctEntry struct {
	id      string
	deleted bool
	version int64
}

// changesSince lists the net change per row in (from, to]: new or updated
// rows first, ordered by version, then deletions (as RetrieveEntityChanges
// orders them). A row created and deleted in the window is a deletion.
func (e *Emulator) changesSince(t *table, from, to int64) []ctEntry {
	latest := map[string]ctEntry{}
	for _, ch := range e.changes {
		if ch.table != t.Logical || ch.version <= from || ch.version > to {
			continue
		}
		latest[ch.id] = ctEntry{id: ch.id, deleted: ch.deleted, version: ch.version}
	}
	out := make([]ctEntry, 0, len(latest))
	for _, c := range latest {
		if !c.deleted && e.get(t.Logical, c.id) == nil {
			c.deleted = true // deleted after the window closed
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].deleted != out[j].deleted {
			return !out[i].deleted
		}
		return out[i].version < out[j].version
	})
	return out
}

// track serves Prefer: odata.track-changes and delta links. It returns
// handled=false when the table does not track changes and no token was
// given: Dataverse then answers the query without a delta link [unverified].
func (e *Emulator) track(w http.ResponseWriter, r *http.Request, t *table, c *caller, pref prefer) (bool, *apiError) {
	q := r.URL.Query()
	e.mu.Lock()
	defer e.mu.Unlock()
	tok := q.Get("$deltatoken")
	if !t.ChangeTracking && tok == "" {
		return false, nil
	}
	for _, opt := range []string{"$filter", "$orderby", "$expand", "$top"} {
		if q.Has(opt) {
			return true, badRequest(`The "%s" query parameter isn't supported when Change Tracking is enabled.`, opt)
		}
	}
	if err := e.checkPriv(c, t, "read"); err != nil {
		return true, err
	}
	sel, selNames, aerr := e.parseSelect(t, q.Get("$select"))
	if aerr != nil {
		return true, aerr
	}
	from := int64(-1)
	if tok != "" {
		v, err := e.checkDeltaToken(t, tok)
		if err != nil {
			return true, err
		}
		from = v
	}
	snapshot := e.version
	start := 0
	pageSize := maxPage
	if pref.maxPageSize > 0 {
		pageSize = pref.maxPageSize
	}
	if s := q.Get("$skiptoken"); s != "" {
		st, err := parseSkipToken(s)
		if err != nil || st.snapshot == 0 {
			return true, badRequest("invalid $skiptoken")
		}
		snapshot = st.snapshot
		start = (st.page - 1) * pageSize
	}

	var items []any
	if from < 0 {
		// Initial load: every current row, in version order.
		rows := make([]*row, 0, len(e.rows[t.Logical]))
		for _, rw := range e.rows[t.Logical] {
			rows = append(rows, rw)
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].version < rows[j].version })
		for _, rw := range rows {
			items = append(items, rw)
		}
	} else {
		for _, ch := range e.changesSince(t, from, snapshot) {
			items = append(items, ch)
		}
	}
	start = min(start, len(items))
	end := min(start+pageSize, len(items))
	value := make([]map[string]any, 0, end-start)
	for _, it := range items[start:end] {
		switch x := it.(type) {
		case *row:
			value = append(value, e.render(t, x, sel, nil, pref.annotations))
		case ctEntry:
			if x.deleted {
				value = append(value, map[string]any{
					"@odata.context": e.apiBase + "/$metadata#" + t.Set + "/$deletedEntity",
					"id":             x.id,
					"reason":         "deleted",
				})
			} else {
				value = append(value, e.render(t, e.get(t.Logical, x.id), sel, nil, pref.annotations))
			}
		}
	}
	out := map[string]any{"@odata.context": e.contextURL(t, selNames, nil, "/$delta"), "value": value}
	if end < len(items) {
		page := start/pageSize + 2
		out["@odata.nextLink"] = e.withSkipToken(r, pagingCookie(t.PrimaryID, page, "", "", ` snapshot="`+strconv.FormatInt(snapshot, 10)+`"`))
	} else {
		link := e.apiBase + "/" + t.Set + "?"
		if len(selNames) > 0 {
			link += "$select=" + strings.Join(selNames, ",") + "&"
		}
		out["@odata.deltaLink"] = link + "$deltatoken=" + escapeLower(e.deltaToken(snapshot))
	}
	e.preferenceApplied(w, pref, true)
	writeOData(w, http.StatusOK, out)
	return true, nil
}
