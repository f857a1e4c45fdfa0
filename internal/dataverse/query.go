package dataverse

import (
	"fmt"
	"strconv"
	"strings"
)

// Query holds the OData system query options we use. Dataverse does not
// support $skip, $search or $format (reference §2); page with
// [Client.List] instead.
type Query struct {
	Select  []string
	Filter  Filter
	Expand  []Expand
	OrderBy []OrderBy
	Top     int // ignored by Dataverse when paging with odata.maxpagesize
}

// Expand is one $expand item: a single-valued navigation property and the
// columns to read from the related row.
type Expand struct {
	Nav    string
	Select []string
}

// OrderBy is one $orderby item.
type OrderBy struct {
	Prop string
	Desc bool
}

// Encode returns the raw query string ("$select=…&$filter=…"), validating
// every name and the filter.
func (q Query) Encode() (string, error) {
	var parts []string
	if len(q.Select) > 0 {
		s, err := selectList(q.Select)
		if err != nil {
			return "", err
		}
		parts = append(parts, "$select="+escapeQuery(s))
	}
	if !q.Filter.IsZero() {
		f, err := q.Filter.Build()
		if err != nil {
			return "", fmt.Errorf("$filter: %w", err)
		}
		parts = append(parts, "$filter="+escapeQuery(f))
	}
	if len(q.Expand) > 0 {
		items := make([]string, 0, len(q.Expand))
		for _, e := range q.Expand {
			if err := checkIdent(e.Nav); err != nil {
				return "", fmt.Errorf("$expand: %w", err)
			}
			item := e.Nav
			if len(e.Select) > 0 {
				s, err := selectList(e.Select)
				if err != nil {
					return "", fmt.Errorf("$expand %s: %w", e.Nav, err)
				}
				item += "($select=" + s + ")"
			}
			items = append(items, item)
		}
		parts = append(parts, "$expand="+escapeQuery(strings.Join(items, ",")))
	}
	if len(q.OrderBy) > 0 {
		items := make([]string, 0, len(q.OrderBy))
		for _, o := range q.OrderBy {
			if err := checkPath(o.Prop); err != nil {
				return "", fmt.Errorf("$orderby: %w", err)
			}
			dir := " asc"
			if o.Desc {
				dir = " desc"
			}
			items = append(items, o.Prop+dir)
		}
		parts = append(parts, "$orderby="+escapeQuery(strings.Join(items, ",")))
	}
	if q.Top < 0 {
		return "", fmt.Errorf("$top: negative value %d", q.Top)
	}
	if q.Top > 0 {
		parts = append(parts, "$top="+strconv.Itoa(q.Top))
	}
	return strings.Join(parts, "&"), nil
}

func selectList(cols []string) (string, error) {
	for _, c := range cols {
		if err := checkIdent(c); err != nil {
			return "", fmt.Errorf("$select: %w", err)
		}
	}
	return strings.Join(cols, ","), nil
}

// escapeQuery percent-encodes a query option value. Besides unreserved
// characters it leaves the OData punctuation ,()'/:$*@ readable; everything
// else, including space, &, #, + and %, is encoded so a literal can never
// end the option or start another.
func escapeQuery(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~',
			c == ',', c == '(', c == ')', c == '\'', c == '/', c == ':', c == '$', c == '*', c == '@':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}
