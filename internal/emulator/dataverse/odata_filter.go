package dataverse

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is the $filter language: a tokenizer and a recursive-descent
// parser that compiles straight into a predicate. Literals are values in the
// compiled closures, never text spliced into anything, so no crafted value
// can change the structure of a query.

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tGUID
	tDateTime
	tDate
	tLParen
	tRParen
	tComma
	tSlash
)

type token struct {
	kind tokKind
	text string // identifier, number text, or the decoded string literal
	pos  int
}

var (
	reGUID     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	reDateTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})`)
	reDate     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}`)
	reNumber   = regexp.MustCompile(`^-?\d+(\.\d+)?([eE][+-]?\d+)?`)
	reIdent    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*`)
)

func isIdentByte(b byte) bool {
	return b == '_' || b == '.' || b == '-' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

func tokenize(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '(':
			toks = append(toks, token{tLParen, "(", i})
			i++
			continue
		case c == ')':
			toks = append(toks, token{tRParen, ")", i})
			i++
			continue
		case c == ',':
			toks = append(toks, token{tComma, ",", i})
			i++
			continue
		case c == '/':
			toks = append(toks, token{tSlash, "/", i})
			i++
			continue
		case c == '\'':
			// OData string literal: a quote inside is written as two quotes.
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(src) {
					return nil, fmt.Errorf("unterminated string literal at position %d", i)
				}
				if src[j] == '\'' {
					if j+1 < len(src) && src[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(src[j])
				j++
			}
			toks = append(toks, token{tString, b.String(), i})
			i = j + 1
			continue
		}
		rest := src[i:]
		// The longest literal forms are tried first; each must end at a
		// token boundary so "2026-01-01x" is an error, not a date.
		try := func(re *regexp.Regexp, k tokKind) bool {
			m := re.FindString(rest)
			if m == "" || (len(m) < len(rest) && isIdentByte(rest[len(m)]) && k != tIdent) {
				return false
			}
			toks = append(toks, token{k, m, i})
			i += len(m)
			return true
		}
		if try(reGUID, tGUID) || try(reDateTime, tDateTime) || try(reDate, tDate) || try(reNumber, tNumber) || try(reIdent, tIdent) {
			continue
		}
		return nil, fmt.Errorf("syntax error at position %d in '%s'", i, src)
	}
	return append(toks, token{tEOF, "", len(src)}), nil
}

// fieldKind is the comparison type of a property.
type fieldKind int

const (
	fkString fieldKind = iota
	fkNumber
	fkBool
	fkTime
	fkGUID
)

func (k fieldKind) edm() string {
	return [...]string{"Edm.String", "Edm.Int32", "Edm.Boolean", "Edm.DateTimeOffset", "Edm.Guid"}[k]
}

// binder resolves a property path (a column, _x_value, or Nav/column) to
// its kind and an accessor; it rejects unknown names.
type binder func(path []string) (fieldKind, func(rec any) any, error)

type predicate func(rec any) bool

type filterParser struct {
	toks []token
	i    int
	bind binder
	src  string
}

// parseFilter compiles a $filter expression.
func parseFilter(src string, bind binder) (predicate, error) {
	pred, _, err := parseFilterHint(src, bind)
	return pred, err
}

// eqHint says that a filter can only hold for rows whose property key (a
// single-segment path) has one of values (GUIDs, lower case): the query can
// start from an index of that column instead of every row. The predicate
// still decides; the hint only narrows where it looks.
type eqHint struct {
	key    string
	values []string
}

// parseFilterHint is parseFilter with the filter's eqHint (nil if none).
func parseFilterHint(src string, bind binder) (predicate, *eqHint, error) {
	toks, err := tokenize(src)
	if err != nil {
		return nil, nil, err
	}
	p := &filterParser{toks: toks, bind: bind, src: src}
	pred, hint, err := p.parseOr()
	if err != nil {
		return nil, nil, err
	}
	if p.peek().kind != tEOF {
		return nil, nil, fmt.Errorf("syntax error at position %d in '%s'", p.peek().pos, src)
	}
	return pred, hint, nil
}

func (p *filterParser) peek() token { return p.toks[p.i] }
func (p *filterParser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *filterParser) keyword(kw string) bool {
	t := p.peek()
	if t.kind == tIdent && t.text == kw {
		p.i++
		return true
	}
	return false
}

func (p *filterParser) expect(k tokKind, what string) error {
	t := p.next()
	if t.kind != k {
		return fmt.Errorf("syntax error: expected %s at position %d in '%s'", what, t.pos, p.src)
	}
	return nil
}

// The parse functions return the predicate and its eqHint: a comparison
// "key eq GUID" gives one; "a and b" keeps either side's; "a or b" only
// one on the same key from both sides (the union); anything else none.

func (p *filterParser) parseOr() (predicate, *eqHint, error) {
	l, lh, err := p.parseAnd()
	if err != nil {
		return nil, nil, err
	}
	for p.keyword("or") {
		r, rh, err := p.parseAnd()
		if err != nil {
			return nil, nil, err
		}
		a, b := l, r
		l = func(rec any) bool { return a(rec) || b(rec) }
		if lh != nil && rh != nil && lh.key == rh.key {
			lh = &eqHint{key: lh.key, values: append(slices.Clone(lh.values), rh.values...)}
		} else {
			lh = nil
		}
	}
	return l, lh, nil
}

func (p *filterParser) parseAnd() (predicate, *eqHint, error) {
	l, lh, err := p.parseUnary()
	if err != nil {
		return nil, nil, err
	}
	for p.keyword("and") {
		r, rh, err := p.parseUnary()
		if err != nil {
			return nil, nil, err
		}
		a, b := l, r
		l = func(rec any) bool { return a(rec) && b(rec) }
		if lh == nil {
			lh = rh
		}
	}
	return l, lh, nil
}

func (p *filterParser) parseUnary() (predicate, *eqHint, error) {
	if p.keyword("not") {
		x, _, err := p.parseUnary()
		if err != nil {
			return nil, nil, err
		}
		return func(rec any) bool { return !x(rec) }, nil, nil
	}
	if p.peek().kind == tLParen {
		p.next()
		x, h, err := p.parseOr()
		if err != nil {
			return nil, nil, err
		}
		if err := p.expect(tRParen, "')'"); err != nil {
			return nil, nil, err
		}
		return x, h, nil
	}
	t := p.peek()
	if t.kind == tIdent && p.toks[p.i+1].kind == tLParen {
		pred, err := p.parseFunc()
		return pred, nil, err
	}
	return p.parseComparison()
}

var stringFuncs = map[string]func(s, sub string) bool{
	"contains":   strings.Contains,
	"startswith": strings.HasPrefix,
	"endswith":   strings.HasSuffix,
}

func (p *filterParser) parseFunc() (predicate, error) {
	name := p.next().text
	fn, ok := stringFuncs[name]
	if !ok {
		return nil, fmt.Errorf("unknown function '%s'", name)
	}
	p.next() // (
	path, err := p.parsePath()
	if err != nil {
		return nil, err
	}
	k, get, err := p.bind(path)
	if err != nil {
		return nil, err
	}
	if k != fkString {
		return nil, fmt.Errorf("no function signature for the function with name '%s' matches the specified arguments (%s)", name, k.edm())
	}
	if err := p.expect(tComma, "','"); err != nil {
		return nil, err
	}
	lit := p.next()
	if lit.kind != tString {
		return nil, fmt.Errorf("the second argument of '%s' must be a string literal", name)
	}
	if err := p.expect(tRParen, "')'"); err != nil {
		return nil, err
	}
	sub := strings.ToLower(lit.text)
	return func(rec any) bool {
		s, ok := get(rec).(string)
		return ok && fn(strings.ToLower(s), sub)
	}, nil
}

func (p *filterParser) parsePath() ([]string, error) {
	t := p.next()
	if t.kind != tIdent || isKeyword(t.text) {
		return nil, fmt.Errorf("syntax error: expected a property name at position %d in '%s'", t.pos, p.src)
	}
	path := []string{t.text}
	for p.peek().kind == tSlash {
		p.next()
		n := p.next()
		if n.kind != tIdent {
			return nil, fmt.Errorf("syntax error: expected a property name at position %d in '%s'", n.pos, p.src)
		}
		path = append(path, n.text)
	}
	return path, nil
}

func isKeyword(s string) bool {
	switch s {
	case "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "null", "true", "false":
		return true
	}
	return false
}

var opNames = map[string]string{"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual", "lt": "LessThan", "le": "LessThanOrEqual"}

// literal is a parsed constant.
type literal struct {
	null bool
	kind fieldKind
	s    string
	n    float64
	b    bool
	t    time.Time
}

func (p *filterParser) parseLiteral() (literal, bool, error) {
	t := p.peek()
	switch t.kind {
	case tString:
		p.next()
		return literal{kind: fkString, s: t.text}, true, nil
	case tGUID:
		p.next()
		return literal{kind: fkGUID, s: strings.ToLower(t.text)}, true, nil
	case tNumber:
		p.next()
		n, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return literal{}, false, fmt.Errorf("invalid number '%s'", t.text)
		}
		return literal{kind: fkNumber, n: n}, true, nil
	case tDateTime:
		p.next()
		tm, err := time.Parse(time.RFC3339Nano, t.text)
		if err != nil {
			// RFC3339 needs seconds; OData allows hh:mm.
			tm, err = time.Parse("2006-01-02T15:04Z07:00", t.text)
			if err != nil {
				return literal{}, false, fmt.Errorf("invalid date/time '%s'", t.text)
			}
		}
		return literal{kind: fkTime, t: tm.UTC()}, true, nil
	case tDate:
		p.next()
		tm, err := time.Parse("2006-01-02", t.text)
		if err != nil {
			return literal{}, false, fmt.Errorf("invalid date '%s'", t.text)
		}
		return literal{kind: fkTime, t: tm}, true, nil
	case tIdent:
		switch t.text {
		case "null":
			p.next()
			return literal{null: true}, true, nil
		case "true", "false":
			p.next()
			return literal{kind: fkBool, b: t.text == "true"}, true, nil
		}
	}
	return literal{}, false, nil
}

func (p *filterParser) parseComparison() (predicate, *eqHint, error) {
	// property op literal, or literal op property (the operator is flipped).
	lit, isLit, err := p.parseLiteral()
	if err != nil {
		return nil, nil, err
	}
	var path []string
	if !isLit {
		if path, err = p.parsePath(); err != nil {
			return nil, nil, err
		}
	}
	opTok := p.next()
	op := opTok.text
	if opTok.kind != tIdent || opNames[op] == "" {
		return nil, nil, fmt.Errorf("syntax error: expected a comparison operator at position %d in '%s'", opTok.pos, p.src)
	}
	if isLit {
		if path, err = p.parsePath(); err != nil {
			return nil, nil, err
		}
		op = map[string]string{"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}[op]
	} else {
		var ok bool
		lit, ok, err = p.parseLiteral()
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, nil, fmt.Errorf("syntax error: expected a literal at position %d in '%s' (comparing two properties is not supported)", p.peek().pos, p.src)
		}
	}
	k, get, err := p.bind(path)
	if err != nil {
		return nil, nil, err
	}
	if lit.null {
		switch op {
		case "eq":
			return func(rec any) bool { return get(rec) == nil }, nil, nil
		case "ne":
			return func(rec any) bool { return get(rec) != nil }, nil, nil
		}
		return func(any) bool { return false }, nil, nil
	}
	if lit.kind != k {
		return nil, nil, fmt.Errorf("A binary operator with incompatible types was detected. Found operand types '%s' and '%s' for operator kind '%s'.", k.edm(), lit.kind.edm(), opNames[op])
	}
	if k == fkBool || k == fkGUID {
		if op != "eq" && op != "ne" {
			return nil, nil, fmt.Errorf("A binary operator with incompatible types was detected. Found operand types '%s' and '%s' for operator kind '%s'.", k.edm(), lit.kind.edm(), opNames[op])
		}
	}
	var hint *eqHint
	if op == "eq" && k == fkGUID && len(path) == 1 {
		hint = &eqHint{key: path[0], values: []string{lit.s}}
	}
	return func(rec any) bool {
		v := get(rec)
		if v == nil {
			return op == "ne"
		}
		c, ok := compareValue(v, lit)
		if !ok {
			return false
		}
		switch op {
		case "eq":
			return c == 0
		case "ne":
			return c != 0
		case "gt":
			return c > 0
		case "ge":
			return c >= 0
		case "lt":
			return c < 0
		default:
			return c <= 0
		}
	}, hint, nil
}

// compareValue orders a stored value against a literal. Strings and GUIDs
// compare case-insensitively, as Dataverse's SQL collation does.
func compareValue(v any, lit literal) (int, bool) {
	switch x := v.(type) {
	case string:
		return strings.Compare(strings.ToLower(x), strings.ToLower(lit.s)), true
	case int64:
		return cmpFloat(float64(x), lit.n), true
	case int:
		return cmpFloat(float64(x), lit.n), true
	case float64:
		return cmpFloat(x, lit.n), true
	case bool:
		if x == lit.b {
			return 0, true
		}
		return 1, true
	case time.Time:
		return x.Compare(lit.t), true
	}
	return 0, false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
