package dataverse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// row is one record. vals holds every column that has a value; a missing
// key is null. version is the row's versionnumber (and its etag).
type row struct {
	id      string
	version int64
	vals    map[string]any
}

func (r *row) clone() *row {
	v := make(map[string]any, len(r.vals))
	for k, x := range r.vals {
		v[k] = x
	}
	return &row{id: r.id, version: r.version, vals: v}
}

func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// change is one entry of the change log that change tracking reads.
type change struct {
	version int64
	table   string
	id      string
	deleted bool
}

// caller is who a request acts as.
type caller struct {
	userID     string // systemuserid: modifiedby, UserId in webhook contexts
	initiating string // InitiatingUserId
	onBehalfBy string // modifiedonbehalfby when impersonating with CallerObjectId
	app        bool   // the application user: privilege denials apply
	key        string // concurrency bucket
	tag        string // ?tag= → SharedVariables
	corr       string // correlation id of the request
}

// writeOp is what a create/update/delete did, for webhooks.
type writeOp struct {
	message   string // Create, Update, Delete
	table     *table
	pre, post *row
	submitted []string // logical names present in the request
	caller    *caller
	at        time.Time
}

// nextVersion advances the global row version. Callers hold e.mu.
func (e *Emulator) nextVersion() int64 {
	e.version++
	return e.version
}

func (e *Emulator) rowsOf(t *table) map[string]*row {
	m := e.rows[t.Logical]
	if m == nil {
		m = map[string]*row{}
		e.rows[t.Logical] = m
	}
	return m
}

func (e *Emulator) get(logical, id string) *row {
	return e.rows[logical][id]
}

// insert stores a new row, filling defaults and system columns. Callers
// hold e.mu and have validated vals.
func (e *Emulator) insert(t *table, id string, vals map[string]any, submitted []string, c *caller) *row {
	now := e.now()
	r := &row{id: id, vals: map[string]any{}}
	for _, col := range t.Columns {
		if col.Default != nil {
			r.vals[col.Name] = toStored(col.Default)
		}
	}
	for k, v := range vals {
		if v == nil {
			delete(r.vals, k)
		} else {
			r.vals[k] = v
		}
	}
	r.vals[t.PrimaryID] = id
	fixState(t, r, submitted)
	derive(t, r, submitted)
	r.vals["createdon"] = now
	r.vals["modifiedon"] = now
	r.vals["createdby"] = c.userID
	r.vals["modifiedby"] = c.userID
	if c.onBehalfBy != "" {
		r.vals["modifiedonbehalfby"] = c.onBehalfBy
	}
	if t.UserOwned {
		if _, ok := r.vals["ownerid"]; !ok {
			r.vals["ownerid"] = c.userID
		}
	}
	r.version = e.nextVersion()
	r.vals["versionnumber"] = r.version
	e.rowsOf(t)[id] = r
	e.reindex(t, nil, r)
	e.changes = append(e.changes, change{version: r.version, table: t.Logical, id: id})
	e.fire(writeOp{message: "Create", table: t, post: r.clone(), submitted: submitted, caller: c, at: now})
	return r
}

// update applies vals to r. Every write advances versionnumber and
// modifiedon, even when no value changed.
func (e *Emulator) update(t *table, r *row, vals map[string]any, submitted []string, c *caller) {
	now := e.now()
	pre := r.clone()
	for k, v := range vals {
		if v == nil {
			delete(r.vals, k)
		} else {
			r.vals[k] = v
		}
	}
	fixState(t, r, submitted)
	derive(t, r, submitted)
	r.vals["modifiedon"] = now
	r.vals["modifiedby"] = c.userID
	if c.onBehalfBy != "" {
		r.vals["modifiedonbehalfby"] = c.onBehalfBy
	} else {
		delete(r.vals, "modifiedonbehalfby")
	}
	r.version = e.nextVersion()
	r.vals["versionnumber"] = r.version
	e.reindex(t, pre, r)
	e.changes = append(e.changes, change{version: r.version, table: t.Logical, id: r.id})
	e.fire(writeOp{message: "Update", table: t, pre: pre, post: r.clone(), submitted: submitted, caller: c, at: now})
}

func (e *Emulator) remove(t *table, r *row, c *caller) {
	delete(e.rows[t.Logical], r.id)
	e.reindex(t, r, nil)
	v := e.nextVersion()
	e.changes = append(e.changes, change{version: v, table: t.Logical, id: r.id, deleted: true})
	e.fire(writeOp{message: "Delete", table: t, pre: r.clone(), caller: c, at: e.now()})
}

// fixState keeps statecode and statuscode consistent: a new statecode
// without a statuscode takes that state's default status, a statuscode
// sets its state.
func fixState(t *table, r *row, submitted []string) {
	sc, st := t.col("statecode"), t.col("statuscode")
	if sc == nil || st == nil {
		return
	}
	has := func(n string) bool { return contains(submitted, n) }
	switch {
	case has("statuscode"):
		if v, ok := r.vals["statuscode"].(int64); ok {
			if o, ok := st.option(int(v)); ok {
				r.vals["statecode"] = int64(o.State)
			}
		}
	case has("statecode"):
		if v, ok := r.vals["statecode"].(int64); ok {
			for _, o := range st.Options {
				if o.State == int(v) {
					r.vals["statuscode"] = int64(o.Value)
					break
				}
			}
		}
	}
}

// derive fills computed columns. duration follows start and end (minutes)
// when a write moves them without giving a duration [inference: URS keeps
// duration in step with the time slot].
func derive(t *table, r *row, submitted []string) {
	if t.col("duration") == nil || contains(submitted, "duration") {
		return
	}
	if !contains(submitted, "starttime") && !contains(submitted, "endtime") {
		return
	}
	s, ok1 := r.vals["starttime"].(time.Time)
	en, ok2 := r.vals["endtime"].(time.Time)
	if ok1 && ok2 && !en.Before(s) {
		r.vals["duration"] = int64(en.Sub(s) / time.Minute)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// toStored normalises Go literal defaults to stored types.
func toStored(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	}
	return v
}

// decodeBody reads a JSON object request body, keeping numbers exact.
func decodeBody(r *http.Request) (map[string]any, error) {
	data, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil || body == nil {
		return nil, badRequest("The request body is not a JSON object: %v", err)
	}
	return body, nil
}

func readBody(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, 16<<20)); err != nil {
		return nil, errf(http.StatusRequestEntityTooLarge, "", "Request body too large or unreadable: %v", err)
	}
	return buf.Bytes(), nil
}

// parseWrite turns a create/update payload into stored values. It
// returns the values, the logical names submitted (for filteringattributes
// and webhook Targets) and the binds' privilege targets.
func (e *Emulator) parseWrite(t *table, body map[string]any) (map[string]any, []string, []*table, *apiError) {
	vals := map[string]any{}
	var submitted []string
	var bound []*table
	for key, raw := range body {
		if nav, ok := strings.CutSuffix(key, "@odata.bind"); ok {
			col, tg, found := t.navigation(nav)
			if !found {
				return nil, nil, nil, badRequest("An undeclared property '%s' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values.", nav)
			}
			if col.ReadOnly {
				continue
			}
			if raw == nil {
				vals[col.Name] = nil
				submitted = append(submitted, col.Name)
				continue
			}
			s, _ := raw.(string)
			tt := e.tables[tg.Entity]
			id, err := e.parseBindRef(s, tt)
			if err != nil {
				return nil, nil, nil, err
			}
			if e.get(tt.Logical, id) == nil {
				return nil, nil, nil, notFound(tt.Logical, id)
			}
			vals[col.Name] = id
			submitted = append(submitted, col.Name)
			bound = append(bound, tt)
			continue
		}
		if strings.HasPrefix(key, "@") || strings.Contains(key, "@") {
			continue // @odata.etag, @odata.type and instance annotations are not data
		}
		col := t.col(key)
		if col == nil || col.Kind.isLookup() {
			return nil, nil, nil, badRequest("The property '%s' does not exist on type 'Microsoft.Dynamics.CRM.%s'. Make sure to only use property names that are defined by the type.", key, t.Logical)
		}
		if col.ReadOnly {
			continue // Dataverse ignores values for columns not valid for create/update
		}
		v, err := convertValue(t, col, raw)
		if err != nil {
			return nil, nil, nil, err
		}
		vals[col.Name] = v
		submitted = append(submitted, col.Name)
	}
	return vals, submitted, bound, nil
}

// parseBindRef accepts "/set(id)", "set(id)" or an absolute URL ending in set(id).
func (e *Emulator) parseBindRef(s string, want *table) (string, *apiError) {
	ref := s
	if u, err := url.Parse(s); err == nil && u.IsAbs() {
		ref = u.Path
	}
	ref = ref[strings.LastIndex(ref, "/")+1:]
	set, key, ok := splitKey(ref)
	if !ok || set == "" {
		return "", badRequest("Invalid @odata.bind value '%s': expected /%s(<id>).", s, want.Set)
	}
	if set != want.Set {
		return "", badRequest("The entity set '%s' in the @odata.bind value '%s' does not match the navigation property's entity type '%s'.", set, s, want.Logical)
	}
	id, err := parseGUID(key)
	if err != nil {
		return "", badRequest("Invalid @odata.bind value '%s': %v", s, err)
	}
	return id, nil
}

// splitKey splits "name(key)" into name and key.
func splitKey(seg string) (string, string, bool) {
	i := strings.IndexByte(seg, '(')
	if i < 0 || !strings.HasSuffix(seg, ")") {
		return seg, "", false
	}
	return seg[:i], seg[i+1 : len(seg)-1], true
}

func parseGUID(s string) (string, error) {
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", fmt.Errorf("'%s' is not a valid GUID", s)
	}
	return u.String(), nil
}

func convertValue(t *table, c *column, raw any) (any, *apiError) {
	if raw == nil {
		if c.Kind == kGUID && c.Name == t.PrimaryID {
			return nil, badRequest("The primary key '%s' cannot be null.", c.Name)
		}
		return nil, nil
	}
	typeErr := func(edm string) *apiError {
		return badRequest("Cannot convert the literal '%v' to the expected type '%s'.", raw, edm)
	}
	switch c.Kind {
	case kString, kMemo:
		s, ok := raw.(string)
		if !ok {
			return nil, typeErr("Edm.String")
		}
		if c.MaxLength > 0 && utf8.RuneCountInString(s) > c.MaxLength {
			return nil, errf(http.StatusBadRequest, codeLengthExceeded,
				"A validation error occurred. The length of the '%s' attribute of the '%s' entity exceeded the maximum allowed length of '%d'.", c.Name, t.Logical, c.MaxLength)
		}
		return s, nil
	case kInt, kChoice, kState, kStatus:
		n, ok := raw.(json.Number)
		if !ok {
			return nil, typeErr("Edm.Int32")
		}
		v, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return nil, typeErr("Edm.Int32")
		}
		if c.Kind == kInt {
			if v < c.Min || v > c.Max {
				return nil, errf(http.StatusBadRequest, codeOutsideRange,
					"A validation error occurred. The value %d of '%s' on record of type '%s' is outside the valid range. Accepted Values: %d to %d", v, c.Name, t.Logical, c.Min, c.Max)
			}
			return v, nil
		}
		if _, ok := c.option(int(v)); !ok {
			vals := make([]string, len(c.Options))
			for i, o := range c.Options {
				vals[i] = strconv.Itoa(o.Value)
			}
			return nil, errf(http.StatusBadRequest, codeOutsideRange,
				"A validation error occurred. The value %d of '%s' on record of type '%s' is outside the valid range. Accepted Values: %s", v, c.Name, t.Logical, strings.Join(vals, ","))
		}
		return v, nil
	case kDouble:
		n, ok := raw.(json.Number)
		if !ok {
			return nil, typeErr("Edm.Double")
		}
		f, err := n.Float64()
		if err != nil {
			return nil, typeErr("Edm.Double")
		}
		return f, nil
	case kBool:
		b, ok := raw.(bool)
		if !ok {
			return nil, typeErr("Edm.Boolean")
		}
		return b, nil
	case kDateTime:
		s, ok := raw.(string)
		if !ok {
			return nil, typeErr("Edm.DateTimeOffset")
		}
		tm, err := parseDateTime(s)
		if err != nil {
			return nil, badRequest("Cannot convert the literal '%s' to the expected type 'Edm.DateTimeOffset'.", s)
		}
		return tm, nil
	case kGUID:
		s, ok := raw.(string)
		if !ok {
			return nil, typeErr("Edm.Guid")
		}
		id, err := parseGUID(s)
		if err != nil {
			return nil, typeErr("Edm.Guid")
		}
		return id, nil
	}
	return nil, badRequest("The property '%s' cannot be written.", c.Name)
}

// parseDateTime accepts ISO 8601 with Z or an offset (stored as UTC,
// seconds precision, as Dataverse stores DateTime) and, like Dataverse,
// a value without offset as UTC.
func parseDateTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if tm, err := time.Parse(layout, s); err == nil {
			return tm.UTC().Truncate(time.Second), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid date/time %q", s)
}
