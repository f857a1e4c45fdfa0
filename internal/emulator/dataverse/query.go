package dataverse

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Annotation names (reference §1.6, §2).
const (
	annFormatted = "OData.Community.Display.V1.FormattedValue"
	annNav       = "Microsoft.Dynamics.CRM.associatednavigationproperty"
	annLogical   = "Microsoft.Dynamics.CRM.lookuplogicalname"
)

// maxPage is Dataverse's page size cap (reference §2 Paging).
const maxPage = 5000

// prefer is the parsed Prefer header.
type prefer struct {
	maxPageSize  int
	annotations  annFilter
	annRaw       string
	trackChanges bool
	returnRep    bool
}

// parsePrefer splits Prefer on commas outside quotes: the annotation list
// is itself comma-separated inside its quotes.
func parsePrefer(h http.Header) prefer {
	var p prefer
	for _, line := range h.Values("Prefer") {
		for _, part := range splitOutside(line, ',', '"', '"') {
			name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			name = strings.ToLower(strings.TrimSpace(name))
			val = strings.Trim(strings.TrimSpace(val), `"`)
			switch name {
			case "odata.maxpagesize":
				if n, err := strconv.Atoi(val); err == nil && n > 0 {
					p.maxPageSize = min(n, maxPage)
				}
			case "odata.include-annotations":
				p.annRaw = val
				for _, a := range strings.Split(val, ",") {
					if a = strings.TrimSpace(a); a != "" {
						p.annotations = append(p.annotations, a)
					}
				}
			case "odata.track-changes":
				p.trackChanges = true
			case "return":
				p.returnRep = val == "representation"
			}
		}
	}
	return p
}

// splitOutside splits s on sep where sep is not between open and close.
func splitOutside(s string, sep, open, close byte) []string {
	var out []string
	depth, start := 0, 0
	inQuote := open == close
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == open:
			quoted = !quoted
		case !inQuote && c == open:
			depth++
		case !inQuote && c == close:
			depth--
		case c == sep && depth == 0 && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

type annFilter []string

func (a annFilter) want(term string) bool {
	for _, p := range a {
		if p == "*" || p == term {
			return true
		}
		if pre, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(term, pre) {
			return true
		}
	}
	return false
}

type expandOpt struct {
	nav      string
	col      *column
	t        *table
	sel      []*column
	selNames []string
}

type orderKey struct {
	col  *column
	desc bool
}

type queryOpts struct {
	sel      []*column
	selNames []string
	expand   []expandOpt
	filter   predicate
	hint     *eqHint // narrows the rows the filter runs on (index.go)
	order    []orderKey
	top      int
	count    bool
}

var allowedOptions = map[string]bool{"$select": true, "$filter": true, "$orderby": true, "$top": true,
	"$expand": true, "$count": true, "$skiptoken": true, "$deltatoken": true}

func checkOptions(q url.Values) *apiError {
	for k := range q {
		if strings.HasPrefix(k, "$") && !allowedOptions[k] {
			switch k {
			case "$skip", "$search", "$format":
				return badRequest("The query parameter %s is not supported", k)
			}
			return badRequest("The query parameter %s is not supported by the emulator", k)
		}
	}
	return nil
}

func (e *Emulator) parseSelect(t *table, s string) ([]*column, []string, *apiError) {
	if strings.TrimSpace(s) == "" {
		return nil, nil, nil
	}
	var cols []*column
	var names []string
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		c := t.byValueName(n)
		if c == nil || c.Hidden {
			return nil, nil, noProperty(n, t.Logical)
		}
		cols = append(cols, c)
		names = append(names, n)
	}
	return cols, names, nil
}

// parseQuery reads $select, $filter, $orderby, $top, $expand, $count.
// Callers hold e.mu (the filter may follow lookups).
func (e *Emulator) parseQuery(t *table, q url.Values) (*queryOpts, *apiError) {
	o := &queryOpts{top: -1}
	var err *apiError
	if o.sel, o.selNames, err = e.parseSelect(t, q.Get("$select")); err != nil {
		return nil, err
	}
	if s := q.Get("$expand"); s != "" {
		if o.expand, err = e.parseExpand(t, s); err != nil {
			return nil, err
		}
	}
	if s := q.Get("$filter"); s != "" {
		pred, hint, perr := parseFilterHint(s, e.rowBinder(t))
		if perr != nil {
			return nil, badRequest("%s", perr.Error())
		}
		o.filter, o.hint = pred, hint
	}
	if s := q.Get("$orderby"); s != "" {
		for _, item := range strings.Split(s, ",") {
			f := strings.Fields(item)
			if len(f) == 0 || len(f) > 2 || (len(f) == 2 && f[1] != "asc" && f[1] != "desc") {
				return nil, badRequest("Syntax error in $orderby '%s'.", s)
			}
			c := t.byValueName(f[0])
			if c == nil || c.Hidden {
				return nil, noProperty(f[0], t.Logical)
			}
			o.order = append(o.order, orderKey{col: c, desc: len(f) == 2 && f[1] == "desc"})
		}
	}
	if s := q.Get("$top"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 0 {
			return nil, badRequest("Invalid value '%s' for $top query option found. The $top query option requires a non-negative integer value.", s)
		}
		o.top = n
	}
	if s := q.Get("$count"); s != "" {
		if s != "true" && s != "false" {
			return nil, badRequest("'%s' is not a valid count option.", s)
		}
		o.count = s == "true"
	}
	return o, nil
}

// parseExpand supports single-valued navigation properties with a nested
// $select, which is what Dataverse allows for them.
func (e *Emulator) parseExpand(t *table, s string) ([]expandOpt, *apiError) {
	var out []expandOpt
	for _, item := range splitOutside(s, ',', '(', ')') {
		item = strings.TrimSpace(item)
		nav, inner, hasInner := strings.Cut(item, "(")
		col, tg, ok := t.navigation(nav)
		if !ok {
			return nil, noProperty(nav, t.Logical)
		}
		tt := e.tables[tg.Entity]
		x := expandOpt{nav: nav, col: col, t: tt}
		if hasInner {
			inner = strings.TrimSuffix(inner, ")")
			for _, opt := range splitOutside(inner, ';', '(', ')') {
				k, v, _ := strings.Cut(strings.TrimSpace(opt), "=")
				if k != "$select" {
					return nil, badRequest("The query option %s is not supported inside $expand of the single-valued navigation property '%s'.", k, nav)
				}
				var err *apiError
				if x.sel, x.selNames, err = e.parseSelect(tt, v); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, x)
	}
	return out, nil
}

func fieldKindOf(c *column) fieldKind {
	switch c.Kind {
	case kString, kMemo:
		return fkString
	case kBool:
		return fkBool
	case kDateTime:
		return fkTime
	case kGUID, kLookup, kOwner:
		return fkGUID
	}
	return fkNumber
}

// rowBinder resolves $filter property paths on a table's rows: a column,
// _x_value, or Nav/column through a single-valued navigation property.
func (e *Emulator) rowBinder(t *table) binder {
	return func(path []string) (fieldKind, func(any) any, error) {
		switch len(path) {
		case 1:
			c := t.byValueName(path[0])
			if c == nil || c.Hidden {
				return 0, nil, fmt.Errorf("Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.%s'.", path[0], t.Logical)
			}
			name := c.Name
			return fieldKindOf(c), func(rec any) any { return rec.(*row).vals[name] }, nil
		case 2:
			col, tg, ok := t.navigation(path[0])
			if !ok {
				return 0, nil, fmt.Errorf("Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.%s'.", path[0], t.Logical)
			}
			tt := e.tables[tg.Entity]
			c := tt.byValueName(path[1])
			if c == nil || c.Hidden {
				return 0, nil, fmt.Errorf("Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.%s'.", path[1], tt.Logical)
			}
			return fieldKindOf(c), func(rec any) any {
				id, _ := rec.(*row).vals[col.Name].(string)
				if tr := e.get(tt.Logical, id); tr != nil {
					return tr.vals[c.Name]
				}
				return nil
			}, nil
		}
		return 0, nil, fmt.Errorf("property paths longer than Nav/property are not supported")
	}
}

// selectRows filters and orders a table's rows. Without $orderby rows come
// in primary-key order, which keeps paging stable.
func (e *Emulator) selectRows(t *table, o *queryOpts) []*row {
	var out []*row
	keep := func(r *row) {
		if o.filter == nil || o.filter(r) {
			out = append(out, r)
		}
	}
	if c := e.hintColumn(t, o.hint); c != nil {
		for _, r := range e.candidates(t, c.Name, o.hint.values) {
			keep(r)
		}
	} else {
		for _, r := range e.rows[t.Logical] {
			keep(r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		for _, k := range o.order {
			c := compareAny(out[i].vals[k.col.Name], out[j].vals[k.col.Name])
			if c != 0 {
				return (c < 0) != k.desc
			}
		}
		return out[i].id < out[j].id
	})
	return out
}

// hintColumn is the column an eqHint names, if it is one of t's own GUID
// columns (stored as the GUID string the index keys on).
func (e *Emulator) hintColumn(t *table, h *eqHint) *column {
	if h == nil {
		return nil
	}
	c := t.byValueName(h.key)
	if c == nil || c.Hidden || fieldKindOf(c) != fkGUID {
		return nil
	}
	return c
}

// compareAny orders stored values; null sorts first, as in SQL Server.
func compareAny(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	switch x := a.(type) {
	case string:
		return strings.Compare(strings.ToLower(x), strings.ToLower(b.(string)))
	case int64:
		return cmpFloat(float64(x), float64(b.(int64)))
	case float64:
		return cmpFloat(x, b.(float64))
	case bool:
		y := b.(bool)
		if x == y {
			return 0
		} else if !x {
			return -1
		}
		return 1
	case time.Time:
		return x.Compare(b.(time.Time))
	}
	return 0
}

// render serialises a row as the Web API does: @odata.etag, the selected
// columns (all readable ones without $select) with lookups as _x_value,
// requested annotations and expanded navigation properties.
func (e *Emulator) render(t *table, r *row, cols []*column, exp []expandOpt, ann annFilter) map[string]any {
	out := map[string]any{"@odata.etag": etag(r.version)}
	if cols == nil {
		for _, c := range t.Columns {
			if !c.Hidden {
				cols = append(cols, c)
			}
		}
	}
	for _, c := range cols {
		e.renderCol(out, c, r.vals[c.Name], ann)
	}
	if _, ok := out[t.PrimaryID]; !ok {
		out[t.PrimaryID] = r.id
	}
	for _, x := range exp {
		id, _ := r.vals[x.col.Name].(string)
		if tr := e.get(x.t.Logical, id); tr != nil {
			out[x.nav] = e.render(x.t, tr, x.sel, nil, ann)
		} else {
			out[x.nav] = nil
		}
	}
	return out
}

func (e *Emulator) renderCol(out map[string]any, c *column, v any, ann annFilter) {
	name := c.valueName()
	if v == nil {
		out[name] = nil
		return
	}
	if tm, ok := v.(time.Time); ok {
		out[name] = tm.UTC().Format("2006-01-02T15:04:05Z")
	} else {
		out[name] = v
	}
	if len(ann) == 0 {
		return
	}
	if fv, ok := e.formatted(c, v); ok && ann.want(annFormatted) {
		out[name+"@"+annFormatted] = fv
	}
	if c.Kind.isLookup() {
		tg := e.lookupTarget(c, v.(string))
		if ann.want(annNav) {
			out[name+"@"+annNav] = tg.Nav
		}
		if ann.want(annLogical) {
			out[name+"@"+annLogical] = tg.Entity
		}
	}
}

// lookupTarget picks the target a lookup value points to (the first
// target holding that id).
func (e *Emulator) lookupTarget(c *column, id string) target {
	for _, tg := range c.Targets {
		if e.get(tg.Entity, id) != nil {
			return tg
		}
	}
	return c.Targets[0]
}

// formatted is the FormattedValue annotation: labels for choices, Yes/No,
// grouped integers, US-style dates and the target's primary name for lookups.
func (e *Emulator) formatted(c *column, v any) (string, bool) {
	switch c.Kind {
	case kChoice, kState, kStatus:
		if o, ok := c.option(int(v.(int64))); ok {
			return o.Label, true
		}
	case kBool:
		if v.(bool) {
			return "Yes", true
		}
		return "No", true
	case kInt:
		return groupDigits(v.(int64)), true
	case kDouble:
		return strconv.FormatFloat(v.(float64), 'f', 2, 64), true
	case kDateTime:
		return v.(time.Time).UTC().Format("1/2/2006 3:04 PM"), true
	case kLookup, kOwner:
		tg := e.lookupTarget(c, v.(string))
		if tr := e.get(tg.Entity, v.(string)); tr != nil {
			if n, ok := tr.vals[e.tables[tg.Entity].PrimaryName].(string); ok {
				return n, true
			}
		}
	}
	return "", false
}

func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// contextURL builds @odata.context: {base}/$metadata#set(cols,Nav(cols))suffix.
func (e *Emulator) contextURL(t *table, selNames []string, exp []expandOpt, suffix string) string {
	parts := append([]string(nil), selNames...)
	for _, x := range exp {
		parts = append(parts, x.nav+"("+strings.Join(x.selNames, ",")+")")
	}
	s := e.apiBase + "/$metadata#" + t.Set
	if len(parts) > 0 {
		s += "(" + strings.Join(parts, ",") + ")"
	}
	return s + suffix
}

// Paging cookies look like Dataverse's $skiptoken:
// <cookie pagenumber="2" pagingcookie="%3ccookie%20page%3d%221%22%3e%3c{pk}%20last%3d%22%7b{ID}%7d%22 ... />
// The emulator resumes after the row named "last" (keyset paging, like the
// real paging cookie) and falls back to the page number if that row is gone.
func pagingCookie(pk string, page int, first, last string, extra string) string {
	inner := fmt.Sprintf(`<cookie page="%d"%s><%s last="{%s}" first="{%s}" /></cookie>`, page-1, extra, pk, strings.ToUpper(last), strings.ToUpper(first))
	return fmt.Sprintf(`<cookie pagenumber="%d" pagingcookie="%s" istracking="False" />`, page, escapeLower(escapeLower(inner)))
}

var (
	rePageNumber = regexp.MustCompile(`pagenumber="(\d+)"`)
	reLast       = regexp.MustCompile(`last="\{([0-9A-Fa-f-]{36})\}"`)
	reSnapshot   = regexp.MustCompile(`snapshot="(\d+)"`)
)

type skipToken struct {
	page     int
	last     string
	snapshot int64
}

func parseSkipToken(s string) (skipToken, error) {
	m := rePageNumber.FindStringSubmatch(s)
	if m == nil {
		return skipToken{}, fmt.Errorf("invalid $skiptoken")
	}
	st := skipToken{}
	st.page, _ = strconv.Atoi(m[1])
	inner := s
	for range 2 {
		if u, err := url.PathUnescape(inner); err == nil {
			inner = u
		}
	}
	if m := reLast.FindStringSubmatch(inner); m != nil {
		st.last = strings.ToLower(m[1])
	}
	if m := reSnapshot.FindStringSubmatch(inner); m != nil {
		st.snapshot, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if st.page < 2 {
		return skipToken{}, fmt.Errorf("invalid $skiptoken page")
	}
	return st, nil
}

// startOf finds where a page starts in rows.
func startOf(rows []*row, st skipToken, pageSize int) int {
	if st.last != "" {
		for i, r := range rows {
			if r.id == st.last {
				return i + 1
			}
		}
	}
	return min((st.page-1)*pageSize, len(rows))
}

// escapeLower percent-encodes everything but unreserved characters with
// lower-case hex, the way Dataverse writes its tokens.
func escapeLower(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

// withQuery rebuilds the request's absolute URL with $skiptoken replaced,
// keeping the client's own encoding of the other options.
func (e *Emulator) withSkipToken(r *http.Request, token string) string {
	var keep []string
	for _, p := range strings.Split(r.URL.RawQuery, "&") {
		if p == "" || strings.HasPrefix(p, "$skiptoken=") || strings.HasPrefix(p, "%24skiptoken=") {
			continue
		}
		keep = append(keep, p)
	}
	keep = append(keep, "$skiptoken="+escapeLower(token))
	return e.t.BaseURL() + r.URL.Path + "?" + strings.Join(keep, "&")
}
