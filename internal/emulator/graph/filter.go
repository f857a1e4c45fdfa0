package graph

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// A small $filter evaluator for events: comparisons (eq ne gt ge lt le) on
// the properties listed in filterProps, startswith/contains/endswith,
// and/or/not, parentheses, and any() over categories and
// singleValueExtendedProperties — the forms bookingsync and the Outlook
// docs use. Anything else is a 400, never silently ignored.

type filterNode interface {
	eval(env *filterEnv) any
}

type filterEnv struct {
	ev   *eventOut
	ext  map[string]extendedProperty
	vars map[string]any
}

// filterProps are the event property paths a filter may use.
var filterProps = map[string]func(*eventOut) any{
	"subject":                        func(e *eventOut) any { return e.Subject },
	"bodypreview":                    func(e *eventOut) any { return e.BodyPreview },
	"importance":                     func(e *eventOut) any { return e.Importance },
	"sensitivity":                    func(e *eventOut) any { return e.Sensitivity },
	"showas":                         func(e *eventOut) any { return e.ShowAs },
	"type":                           func(e *eventOut) any { return e.Type },
	"icaluid":                        func(e *eventOut) any { return e.ICalUID },
	"id":                             func(e *eventOut) any { return e.ID },
	"seriesmasterid":                 func(e *eventOut) any { return derefOr(e.SeriesMasterID) },
	"isallday":                       func(e *eventOut) any { return e.IsAllDay },
	"iscancelled":                    func(e *eventOut) any { return e.IsCancelled },
	"isreminderon":                   func(e *eventOut) any { return e.IsReminderOn },
	"isorganizer":                    func(e *eventOut) any { return e.IsOrganizer },
	"createddatetime":                func(e *eventOut) any { return mustTime(e.CreatedDateTime) },
	"lastmodifieddatetime":           func(e *eventOut) any { return mustTime(e.LastModifiedDateTime) },
	"start/datetime":                 func(e *eventOut) any { return mustTime(e.Start.DateTime + "Z") },
	"end/datetime":                   func(e *eventOut) any { return mustTime(e.End.DateTime + "Z") },
	"location/displayname":           func(e *eventOut) any { return e.Location.DisplayName },
	"organizer/emailaddress/address": func(e *eventOut) any { return e.Organizer.EmailAddress.Address },
	"categories":                     func(e *eventOut) any { return e.Categories },
}

func derefOr(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func mustTime(s string) any {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t
}

func parseFilter(s string) (filterNode, *apiError) {
	toks, err := lexFilter(s)
	if err != nil {
		return nil, invalidFilter(err.Error())
	}
	p := &filterParser{toks: toks}
	n, err := p.expr(nil)
	if err == nil && p.pos < len(p.toks) {
		err = fmt.Errorf("unexpected '%s'", p.toks[p.pos].s)
	}
	if err != nil {
		return nil, invalidFilter(err.Error())
	}
	return n, nil
}

func invalidFilter(detail string) *apiError {
	return errorf(400, codeBadRequest, "Invalid filter clause: "+detail)
}

type tokKind int

const (
	tIdent tokKind = iota
	tString
	tNumber
	tPunct
)

type token struct {
	kind tokKind
	s    string
}

func lexFilter(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '(' || c == ')' || c == ',' || c == ':':
			toks = append(toks, token{tPunct, string(c)})
			i++
		case c == '\'':
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("unterminated string literal")
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			toks = append(toks, token{tString, b.String()})
		case c == '-' || unicode.IsDigit(c):
			j := i + 1
			for j < len(s) && strings.ContainsRune("0123456789.-:TZ+", rune(s[j])) {
				j++
			}
			toks = append(toks, token{tNumber, s[i:j]})
			i = j
		case unicode.IsLetter(c) || c == '_' || c == '@':
			j := i + 1
			for j < len(s) && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])) || strings.ContainsRune("_/.@", rune(s[j]))) {
				j++
			}
			toks = append(toks, token{tIdent, s[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected character '%c'", c)
		}
	}
	return toks, nil
}

type filterParser struct {
	toks []token
	pos  int
}

func (p *filterParser) peek() (token, bool) {
	if p.pos >= len(p.toks) {
		return token{}, false
	}
	return p.toks[p.pos], true
}

func (p *filterParser) keyword(k string) bool {
	t, ok := p.peek()
	if ok && t.kind == tIdent && strings.EqualFold(t.s, k) {
		p.pos++
		return true
	}
	return false
}

func (p *filterParser) punct(c string) error {
	t, ok := p.peek()
	if !ok || t.kind != tPunct || t.s != c {
		return fmt.Errorf("expected '%s'", c)
	}
	p.pos++
	return nil
}

func (p *filterParser) expr(vars map[string]bool) (filterNode, error) {
	left, err := p.and(vars)
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		right, err := p.and(vars)
		if err != nil {
			return nil, err
		}
		left = boolOp{or: true, l: left, r: right}
	}
	return left, nil
}

func (p *filterParser) and(vars map[string]bool) (filterNode, error) {
	left, err := p.unary(vars)
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		right, err := p.unary(vars)
		if err != nil {
			return nil, err
		}
		left = boolOp{l: left, r: right}
	}
	return left, nil
}

func (p *filterParser) unary(vars map[string]bool) (filterNode, error) {
	if p.keyword("not") {
		n, err := p.unary(vars)
		if err != nil {
			return nil, err
		}
		return notOp{n}, nil
	}
	if t, ok := p.peek(); ok && t.kind == tPunct && t.s == "(" {
		p.pos++
		n, err := p.expr(vars)
		if err != nil {
			return nil, err
		}
		return n, p.punct(")")
	}
	left, err := p.operand(vars)
	if err != nil {
		return nil, err
	}
	if _, ok := left.(anyOp); ok {
		return left, nil
	}
	if _, ok := left.(funcOp); ok {
		return left, nil
	}
	t, ok := p.peek()
	if !ok || t.kind != tIdent {
		return nil, fmt.Errorf("expected a comparison operator")
	}
	op := strings.ToLower(t.s)
	switch op {
	case "eq", "ne", "gt", "ge", "lt", "le":
	default:
		return nil, fmt.Errorf("unsupported operator '%s'", t.s)
	}
	p.pos++
	right, err := p.operand(vars)
	if err != nil {
		return nil, err
	}
	return cmpOp{op: op, l: left, r: right}, nil
}

func (p *filterParser) operand(vars map[string]bool) (filterNode, error) {
	t, ok := p.peek()
	if !ok {
		return nil, fmt.Errorf("unexpected end of filter")
	}
	p.pos++
	switch t.kind {
	case tString:
		return literal{t.s}, nil
	case tNumber:
		if tm, err := time.Parse(time.RFC3339Nano, t.s); err == nil {
			return literal{tm}, nil
		}
		f, err := strconv.ParseFloat(t.s, 64)
		if err != nil {
			return nil, fmt.Errorf("bad literal '%s'", t.s)
		}
		return literal{f}, nil
	case tPunct:
		return nil, fmt.Errorf("unexpected '%s'", t.s)
	}
	low := strings.ToLower(t.s)
	switch low {
	case "true":
		return literal{true}, nil
	case "false":
		return literal{false}, nil
	case "null":
		return literal{nil}, nil
	case "startswith", "contains", "endswith":
		if err := p.punct("("); err != nil {
			return nil, err
		}
		a, err := p.operand(vars)
		if err != nil {
			return nil, err
		}
		if err := p.punct(","); err != nil {
			return nil, err
		}
		b, err := p.operand(vars)
		if err != nil {
			return nil, err
		}
		return funcOp{name: low, a: a, b: b}, p.punct(")")
	}
	if coll, ok := strings.CutSuffix(low, "/any"); ok {
		if coll != "categories" && coll != "singlevalueextendedproperties" {
			return nil, fmt.Errorf("any() is supported on categories and singleValueExtendedProperties, not '%s'", coll)
		}
		if err := p.punct("("); err != nil {
			return nil, err
		}
		v, ok := p.peek()
		if !ok || v.kind != tIdent {
			return nil, fmt.Errorf("expected a lambda variable")
		}
		p.pos++
		if err := p.punct(":"); err != nil {
			return nil, err
		}
		inner := map[string]bool{strings.ToLower(v.s): true}
		for k := range vars {
			inner[k] = true
		}
		body, err := p.expr(inner)
		if err != nil {
			return nil, err
		}
		return anyOp{coll: coll, v: strings.ToLower(v.s), body: body}, p.punct(")")
	}
	head, rest, _ := strings.Cut(low, "/")
	if vars[head] {
		switch rest {
		case "", "id", "value":
			return varRef{v: head, field: rest}, nil
		}
		return nil, fmt.Errorf("unknown member '%s'", t.s)
	}
	if _, ok := filterProps[low]; !ok {
		return nil, fmt.Errorf("property '%s' is not supported in a filter by the emulator", t.s)
	}
	return propRef{low}, nil
}

type literal struct{ v any }

func (l literal) eval(*filterEnv) any { return l.v }

type propRef struct{ path string }

func (p propRef) eval(env *filterEnv) any { return filterProps[p.path](env.ev) }

type varRef struct{ v, field string }

func (r varRef) eval(env *filterEnv) any {
	switch x := env.vars[r.v].(type) {
	case extendedProperty:
		if r.field == "id" {
			return extIDValue(x.ID)
		}
		return x.Value
	default:
		return x
	}
}

// extIDValue marks an extended property id so comparisons use id rules.
type extIDValue string

type boolOp struct {
	or   bool
	l, r filterNode
}

func (b boolOp) eval(env *filterEnv) any {
	l, _ := b.l.eval(env).(bool)
	if b.or {
		if l {
			return true
		}
	} else if !l {
		return false
	}
	r, _ := b.r.eval(env).(bool)
	return r
}

type notOp struct{ n filterNode }

func (n notOp) eval(env *filterEnv) any {
	v, _ := n.n.eval(env).(bool)
	return !v
}

type anyOp struct {
	coll, v string
	body    filterNode
}

func (a anyOp) eval(env *filterEnv) any {
	var elems []any
	if a.coll == "categories" {
		for _, c := range env.ev.Categories {
			elems = append(elems, c)
		}
	} else {
		for _, p := range env.ext {
			elems = append(elems, p)
		}
	}
	saved := env.vars[a.v]
	defer func() { env.vars[a.v] = saved }()
	for _, el := range elems {
		env.vars[a.v] = el
		if ok, _ := a.body.eval(env).(bool); ok {
			return true
		}
	}
	return false
}

type funcOp struct {
	name string
	a, b filterNode
}

func (f funcOp) eval(env *filterEnv) any {
	as, ok1 := asString(f.a.eval(env))
	bs, ok2 := asString(f.b.eval(env))
	if !ok1 || !ok2 {
		return false
	}
	as, bs = strings.ToLower(as), strings.ToLower(bs)
	switch f.name {
	case "startswith":
		return strings.HasPrefix(as, bs)
	case "endswith":
		return strings.HasSuffix(as, bs)
	default:
		return strings.Contains(as, bs)
	}
}

func asString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case extIDValue:
		return string(x), true
	}
	return "", false
}

type cmpOp struct {
	op   string
	l, r filterNode
}

func (c cmpOp) eval(env *filterEnv) any {
	l, r := c.l.eval(env), c.r.eval(env)
	cmp, ok := compareValues(l, r)
	if !ok {
		switch c.op {
		case "eq":
			return l == nil && r == nil
		case "ne":
			return !(l == nil && r == nil)
		}
		return false
	}
	switch c.op {
	case "eq":
		return cmp == 0
	case "ne":
		return cmp != 0
	case "gt":
		return cmp > 0
	case "ge":
		return cmp >= 0
	case "lt":
		return cmp < 0
	default:
		return cmp <= 0
	}
}

// compareValues orders two filter values. Strings compare
// case-insensitively (Exchange does), extended property ids by id rules.
func compareValues(l, r any) (int, bool) {
	if li, ok := l.(extIDValue); ok {
		rs, ok := asString(r)
		if !ok {
			return 0, false
		}
		if normalizeExtID(string(li)) == normalizeExtID(rs) {
			return 0, true
		}
		return strings.Compare(string(li), rs), true
	}
	if ri, ok := r.(extIDValue); ok {
		c, ok := compareValues(ri, l)
		return -c, ok
	}
	switch lv := l.(type) {
	case string:
		if rt, ok := r.(time.Time); ok {
			if lt, ok := mustTime(lv).(time.Time); ok {
				return lt.Compare(rt), true
			}
		}
		rs, ok := r.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(strings.ToLower(lv), strings.ToLower(rs)), true
	case time.Time:
		switch rv := r.(type) {
		case time.Time:
			return lv.Compare(rv), true
		case string:
			if rt, ok := parseWindowParam(rv, time.UTC); ok {
				return lv.Compare(rt), true
			}
		}
	case bool:
		if rb, ok := r.(bool); ok {
			if lv == rb {
				return 0, true
			}
			return 1, true
		}
	case float64:
		if rf, ok := r.(float64); ok {
			switch {
			case lv < rf:
				return -1, true
			case lv > rf:
				return 1, true
			}
			return 0, true
		}
	}
	return 0, false
}

// normalizeExtID canonicalises "String {GUID} Name X": the type and GUID
// are case-insensitive, the name is not (as the docs say).
func normalizeExtID(id string) string {
	f := strings.Fields(id)
	if len(f) >= 4 && (strings.EqualFold(f[2], "Name") || strings.EqualFold(f[2], "Id")) {
		return strings.ToLower(f[0]) + " " + strings.ToLower(f[1]) + " " + strings.ToLower(f[2]) + " " + strings.Join(f[3:], " ")
	}
	if len(f) == 2 { // "{type} {proptag}"
		return strings.ToLower(f[0]) + " " + strings.ToLower(f[1])
	}
	return id
}
