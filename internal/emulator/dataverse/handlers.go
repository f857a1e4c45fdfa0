package dataverse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

func fmtErr(format string, args ...any) error { return fmt.Errorf(format, args...) }

func strictDecode(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return errors.New("empty body")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// list answers GET /{set}.
func (e *Emulator) list(w http.ResponseWriter, r *http.Request, t *table, c *caller) *apiError {
	q := r.URL.Query()
	if err := checkOptions(q); err != nil {
		return err
	}
	pref := parsePrefer(r.Header)
	if pref.trackChanges || q.Has("$deltatoken") {
		if handled, err := e.track(w, r, t, c, pref); handled || err != nil {
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkPriv(c, t, "read"); err != nil {
		return err
	}
	o, err := e.parseQuery(t, q)
	if err != nil {
		return err
	}
	for _, x := range o.expand {
		if err := e.checkPriv(c, x.t, "read"); err != nil {
			return err
		}
	}
	rows := e.selectRows(t, o)
	total := len(rows)
	pageSize := maxPage
	if pref.maxPageSize > 0 {
		// $top is ignored when combined with odata.maxpagesize (reference §2 Paging).
		pageSize = pref.maxPageSize
	} else if o.top >= 0 && o.top < len(rows) {
		rows = rows[:o.top]
	}
	start := 0
	if s := q.Get("$skiptoken"); s != "" {
		st, perr := parseSkipToken(s)
		if perr != nil {
			return badRequest("%v", perr)
		}
		start = startOf(rows, st, pageSize)
	}
	end := min(start+pageSize, len(rows))
	value := make([]map[string]any, 0, end-start)
	for _, rw := range rows[start:end] {
		value = append(value, e.render(t, rw, o.sel, o.expand, pref.annotations))
	}
	out := map[string]any{"@odata.context": e.contextURL(t, o.selNames, o.expand, ""), "value": value}
	if o.count {
		out["@odata.count"] = min(total, maxPage)
	}
	if end < len(rows) {
		page := start/pageSize + 2
		out["@odata.nextLink"] = e.withSkipToken(r, pagingCookie(t.PrimaryID, page, rows[start].id, rows[end-1].id, ""))
	}
	e.preferenceApplied(w, pref, false)
	writeOData(w, http.StatusOK, out)
	return nil
}

func (e *Emulator) preferenceApplied(w http.ResponseWriter, pref prefer, tracking bool) {
	var applied []string
	if tracking {
		applied = append(applied, "odata.track-changes")
	}
	if pref.maxPageSize > 0 {
		applied = append(applied, "odata.maxpagesize="+strconv.Itoa(pref.maxPageSize))
	}
	if pref.annRaw != "" {
		applied = append(applied, `odata.include-annotations="`+pref.annRaw+`"`)
	}
	if len(applied) > 0 {
		w.Header().Set("Preference-Applied", strings.Join(applied, ","))
	}
}

// count answers GET /{set}/$count (text/plain), or the number of changes
// with $deltatoken.
func (e *Emulator) count(w http.ResponseWriter, r *http.Request, t *table, c *caller) *apiError {
	q := r.URL.Query()
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkPriv(c, t, "read"); err != nil {
		return err
	}
	var n int
	if tok := q.Get("$deltatoken"); tok != "" {
		from, err := e.checkDeltaToken(t, tok)
		if err != nil {
			return err
		}
		n = len(e.changesSince(t, from, e.version))
	} else {
		o, err := e.parseQuery(t, q)
		if err != nil {
			return err
		}
		n = min(len(e.selectRows(t, o)), maxPage)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(strconv.Itoa(n)))
	return nil
}

func (e *Emulator) getOne(w http.ResponseWriter, r *http.Request, t *table, id string, c *caller) *apiError {
	q := r.URL.Query()
	if err := checkOptions(q); err != nil {
		return err
	}
	pref := parsePrefer(r.Header)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkPriv(c, t, "read"); err != nil {
		return err
	}
	rw := e.get(t.Logical, id)
	if rw == nil {
		return notFound(t.Logical, id)
	}
	o, err := e.parseQuery(t, q)
	if err != nil {
		return err
	}
	// Conditional retrieve: 304 unless $expand or annotations are asked
	// for (reference §2 ETags).
	if inm := r.Header.Get("If-None-Match"); inm == etag(rw.version) && len(o.expand) == 0 && len(pref.annotations) == 0 {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	out := e.render(t, rw, o.sel, o.expand, pref.annotations)
	out["@odata.context"] = e.contextURL(t, o.selNames, o.expand, "/$entity")
	w.Header().Set("ETag", etag(rw.version))
	e.preferenceApplied(w, pref, false)
	writeOData(w, http.StatusOK, out)
	return nil
}

// create answers POST /{set}: 204 with OData-EntityId, or 201 with the row
// under Prefer: return=representation (then without OData-EntityId).
func (e *Emulator) create(w http.ResponseWriter, r *http.Request, t *table, c *caller) *apiError {
	body, err := decodeBody(r)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return ae
		}
		return badRequest("%v", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	id := ""
	if v, ok := body[t.PrimaryID].(string); ok {
		if id, err = parseGUID(v); err != nil {
			return badRequest("Cannot convert the literal '%s' to the expected type 'Edm.Guid'.", v)
		}
	}
	if id != "" && e.get(t.Logical, id) != nil {
		return errf(http.StatusPreconditionFailed, codeDuplicateRecord, "A record with matching key values already exists.")
	}
	if id == "" {
		id = tenant.NewGUID()
	}
	return e.createLocked(w, r, t, id, body, c, http.StatusCreated)
}

// createLocked validates and inserts; callers hold e.mu.
func (e *Emulator) createLocked(w http.ResponseWriter, r *http.Request, t *table, id string, body map[string]any, c *caller, repStatus int) *apiError {
	if err := e.checkPriv(c, t, "create"); err != nil {
		return err
	}
	vals, submitted, bound, aerr := e.parseWrite(t, body)
	if aerr != nil {
		return aerr
	}
	if err := e.checkBinds(c, t, bound); err != nil {
		return err
	}
	for _, col := range t.Columns {
		if col.Required == "SystemRequired" && col.Default == nil && col.Kind != kGUID && col.Kind != kOwner && !col.ReadOnly {
			if v, ok := vals[col.Name]; !ok || v == nil {
				if col.Name == "duration" && vals["starttime"] != nil && vals["endtime"] != nil {
					continue // derived from start and end
				}
				return errf(http.StatusBadRequest, codeInvalidArgument, "A value for the required attribute '%s' of entity '%s' is missing.", col.Name, t.Logical)
			}
		}
	}
	merged := map[string]any{}
	for k, v := range vals {
		merged[k] = v
	}
	if err := e.validateRow(t, merged); err != nil {
		return err
	}
	delete(vals, t.PrimaryID)
	rw := e.insert(t, id, vals, submitted, c)
	return e.writeResult(w, r, t, rw, repStatus)
}

func (e *Emulator) checkBinds(c *caller, t *table, bound []*table) *apiError {
	if len(bound) == 0 {
		return nil
	}
	if err := e.checkPriv(c, t, "append"); err != nil {
		return err
	}
	for _, bt := range bound {
		if err := e.checkPriv(c, bt, "appendto"); err != nil {
			return err
		}
	}
	return nil
}

// writeResult answers a write: 204 (with OData-EntityId), or under Prefer:
// return=representation repStatus with the row as written — 201 for a
// create, 200 for a PATCH that updated (reference §2).
func (e *Emulator) writeResult(w http.ResponseWriter, r *http.Request, t *table, rw *row, repStatus int) *apiError {
	pref := parsePrefer(r.Header)
	if !pref.returnRep {
		w.Header().Set("OData-EntityId", e.apiBase+"/"+t.Set+"("+rw.id+")")
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	o, err := e.parseQuery(t, r.URL.Query())
	if err != nil {
		return err
	}
	var out map[string]any
	if r.Method == http.MethodPatch {
		// "Update with data returned": $select is honoured, "The $expand
		// query option will be ignored if used", and the documented context
		// names the entity set without the column list.
		out = e.render(t, rw, o.sel, nil, pref.annotations)
		out["@odata.context"] = e.contextURL(t, nil, nil, "/$entity")
	} else {
		out = e.render(t, rw, o.sel, o.expand, pref.annotations)
		out["@odata.context"] = e.contextURL(t, o.selNames, o.expand, "/$entity")
	}
	w.Header().Set("Preference-Applied", "return=representation")
	w.Header().Set("ETag", etag(rw.version))
	writeOData(w, repStatus, out)
	return nil
}

// upsert answers PATCH /{set}(id): update, or create when missing, with
// If-Match / If-None-Match semantics (reference §2).
func (e *Emulator) upsert(w http.ResponseWriter, r *http.Request, t *table, id string, c *caller) *apiError {
	body, err := decodeBody(r)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return ae
		}
		return badRequest("%v", err)
	}
	ifMatch := strings.TrimSpace(r.Header.Get("If-Match"))
	ifNone := strings.TrimSpace(r.Header.Get("If-None-Match"))
	e.mu.Lock()
	defer e.mu.Unlock()
	rw := e.get(t.Logical, id)
	if rw == nil {
		if ifMatch != "" {
			return notFound(t.Logical, id)
		}
		return e.createLocked(w, r, t, id, body, c, http.StatusCreated)
	}
	if ifNone == "*" {
		return errf(http.StatusPreconditionFailed, codeDuplicateRecord, "A record with matching key values already exists.")
	}
	if ifMatch != "" && ifMatch != "*" && ifMatch != etag(rw.version) {
		return etagMismatch()
	}
	if err := e.checkPriv(c, t, "write"); err != nil {
		return err
	}
	vals, submitted, bound, aerr := e.parseWrite(t, body)
	if aerr != nil {
		return aerr
	}
	if err := e.checkBinds(c, t, bound); err != nil {
		return err
	}
	delete(vals, t.PrimaryID)
	merged := rw.clone().vals
	for k, v := range vals {
		merged[k] = v
	}
	if err := e.validateRow(t, merged); err != nil {
		return err
	}
	e.update(t, rw, vals, submitted, c)
	return e.writeResult(w, r, t, rw, http.StatusOK)
}

func (e *Emulator) deleteOne(w http.ResponseWriter, r *http.Request, t *table, id string, c *caller) *apiError {
	ifMatch := strings.TrimSpace(r.Header.Get("If-Match"))
	e.mu.Lock()
	defer e.mu.Unlock()
	rw := e.get(t.Logical, id)
	if rw == nil {
		return notFound(t.Logical, id)
	}
	if ifMatch != "" && ifMatch != "*" && ifMatch != etag(rw.version) {
		return etagMismatch()
	}
	if err := e.checkPriv(c, t, "delete"); err != nil {
		return err
	}
	e.remove(t, rw, c)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// validateRow checks table-specific rules on the row as it would be after
// the write. Callers hold e.mu.
func (e *Emulator) validateRow(t *table, v map[string]any) *apiError {
	switch t.Logical {
	case "serviceendpoint":
		contract, _ := v["contract"].(int64)
		if contract != 8 {
			return nil
		}
		if u, _ := v["url"].(string); u == "" {
			return errf(http.StatusBadRequest, codeInvalidArgument, "A webhook service endpoint (contract 8) needs a url.")
		}
		auth, _ := v["authtype"].(int64)
		switch auth {
		case 4, 5, 6:
			av, _ := v["authvalue"].(string)
			if av == "" {
				return errf(http.StatusBadRequest, codeInvalidArgument, "authvalue is required for authtype %d.", auth)
			}
			if auth != 4 {
				if _, err := parseAuthSettings(av); err != nil {
					return errf(http.StatusBadRequest, codeInvalidArgument, "authvalue for authtype %d must be <settings><setting name=\"…\" value=\"…\" /></settings>: %v", auth, err)
				}
			}
		default:
			return errf(http.StatusBadRequest, codeInvalidArgument, "A webhook service endpoint needs authtype 4 (WebhookKey), 5 (HttpHeader) or 6 (HttpQueryString).")
		}
	case "sdkmessageprocessingstep":
		msg, _ := v["sdkmessageid"].(string)
		if f, _ := v["sdkmessagefilterid"].(string); f != "" {
			fr := e.get("sdkmessagefilter", f)
			if fr != nil && fr.vals["sdkmessageid"] != msg {
				return errf(http.StatusBadRequest, codeInvalidArgument, "The sdkmessagefilter %s does not belong to the sdkmessage %s.", f, msg)
			}
		}
		if a, _ := v["filteringattributes"].(string); a != "" {
			fr := e.get("sdkmessagefilter", fmt.Sprint(v["sdkmessagefilterid"]))
			if fr != nil {
				pt := e.tables[fmt.Sprint(fr.vals["primaryobjecttypecode"])]
				for _, name := range splitList(a) {
					if pt != nil && pt.col(name) == nil {
						return errf(http.StatusBadRequest, codeInvalidArgument, "The filtering attribute '%s' is not an attribute of '%s'.", name, pt.Logical)
					}
				}
			}
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
			out = append(out, p)
		}
	}
	return out
}
