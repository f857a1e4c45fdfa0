package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

func chance(p float64) bool { return rand.Float64() < p }
func randIntN(n int) int    { return rand.IntN(n) }

// preferences are the Prefer header values Graph honours for Outlook.
type preferences struct {
	timeZone     string // outlook.timezone
	zone         *time.Location
	immutableIDs bool // IdType="ImmutableId"
	textBody     bool // outlook.body-content-type="text"
	maxPageSize  int  // odata.maxpagesize
	applied      []string
}

func parsePrefer(h http.Header) preferences {
	var p preferences
	for _, line := range h.Values("Prefer") {
		for _, part := range strings.Split(line, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			v = strings.Trim(strings.TrimSpace(v), `"`)
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "outlook.timezone":
				if loc, err := loadZone(v); err == nil {
					p.timeZone, p.zone = v, loc
					p.applied = append(p.applied, `outlook.timezone="`+v+`"`)
				}
			case "idtype":
				p.immutableIDs = strings.EqualFold(v, "ImmutableId")
				if p.immutableIDs {
					p.applied = append(p.applied, `IdType="ImmutableId"`)
				}
			case "outlook.body-content-type":
				p.textBody = strings.EqualFold(v, "text")
				p.applied = append(p.applied, `outlook.body-content-type="`+strings.ToLower(v)+`"`)
			case "odata.maxpagesize":
				if n, err := strconv.Atoi(v); err == nil && n > 0 {
					p.maxPageSize = n
					p.applied = append(p.applied, "odata.maxpagesize="+v)
				}
			}
		}
	}
	return p
}

func (p preferences) setApplied(w http.ResponseWriter) {
	if len(p.applied) > 0 {
		w.Header().Set("Preference-Applied", strings.Join(p.applied, ","))
	}
}

// queryParam reads an OData system query option case-insensitively, with
// or without the "$" (Graph v1.0 accepts both).
func queryParam(q url.Values, name string) (string, bool) {
	for k, v := range q {
		if strings.EqualFold(strings.TrimPrefix(k, "$"), name) && len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}

// pageParams reads $top and $skip against the route's default and limit.
func pageParams(q url.Values, def, max int) (top, skip int, aerr *apiError) {
	top = def
	if s, ok := queryParam(q, "top"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, errorf(400, codeBadRequest, fmt.Sprintf("Invalid value '%s' for $top query option found. The $top query option requires a non-negative integer value.", s))
		}
		top = n
	}
	if top > max {
		top = max
	}
	if s, ok := queryParam(q, "skip"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, errorf(400, codeBadRequest, fmt.Sprintf("Invalid value '%s' for $skip query option found. The $skip query option requires a non-negative integer value.", s))
		}
		skip = n
	}
	return top, skip, nil
}

// nextLinkFor is the request's URL on the API base with $skip advanced.
func (e *Emulator) nextLinkFor(r *http.Request, skip int) string {
	q := url.Values{}
	for k, v := range r.URL.Query() {
		if !strings.EqualFold(strings.TrimPrefix(k, "$"), "skip") {
			q[k] = v
		}
	}
	q.Set("$skip", strconv.Itoa(skip))
	return e.t.BaseURL() + r.URL.Path + "?" + encodeQuery(q)
}

// encodeQuery keeps "$" literal in names, as Graph's own links do.
func encodeQuery(q url.Values) string {
	return strings.ReplaceAll(q.Encode(), "%24", "$")
}

// selection is a parsed $select.
type selection map[string]bool

// parseSelect validates $select against the properties of the type.
func parseSelect(q url.Values, typeName string, known []string) (selection, *apiError) {
	s, ok := queryParam(q, "select")
	if !ok || strings.TrimSpace(s) == "" {
		return nil, nil
	}
	sel := selection{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		canon := ""
		for _, k := range known {
			if strings.EqualFold(k, f) {
				canon = k
			}
		}
		if canon == "" {
			return nil, errorf(400, codeBadRequest, fmt.Sprintf("Could not find a property named '%s' on type '%s'.", f, typeName))
		}
		sel[canon] = true
	}
	return sel, nil
}

// project keeps only the selected top-level properties of a JSON object,
// plus the always-returned ones, preserving order.
func project(raw []byte, sel selection, always ...string) ([]byte, error) {
	if sel == nil {
		return raw, nil
	}
	keep := func(k string) bool {
		if sel[k] || strings.HasPrefix(k, "@") {
			return true
		}
		for _, a := range always {
			if a == k {
				return true
			}
		}
		return false
	}
	return filterObject(raw, keep)
}

// filterObject rewrites a JSON object keeping the members keep accepts.
func filterObject(raw []byte, keep func(string) bool) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("project: not an object")
	}
	var out bytes.Buffer
	out.WriteByte('{')
	first := true
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("project: %w", err)
		}
		key := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, fmt.Errorf("project %s: %w", key, err)
		}
		if !keep(key) {
			continue
		}
		if !first {
			out.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(key)
		out.Write(kb)
		out.WriteByte(':')
		out.Write(val)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// withMembers prepends annotations such as @odata.context to an object.
func withMembers(raw []byte, pairs ...string) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := 0; i+1 < len(pairs); i += 2 {
		k, _ := json.Marshal(pairs[i])
		v, _ := json.Marshal(pairs[i+1])
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
		b.WriteByte(',')
	}
	inner := bytes.TrimSpace(raw)
	inner = inner[1:]                     // drop '{'
	if len(bytes.TrimSpace(inner)) == 1 { // empty object: drop the trailing comma
		b.Truncate(b.Len() - 1)
	}
	b.Write(inner)
	return b.Bytes()
}

// writeRaw sends an already-encoded JSON body.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_, _ = w.Write([]byte("\n"))
}

// collection writes {"@odata.context", value, @odata.nextLink}.
func writeCollection(w http.ResponseWriter, context string, items []json.RawMessage, nextLink, deltaLink string) {
	var b bytes.Buffer
	ctx, _ := json.Marshal(context)
	b.WriteString(`{"@odata.context":`)
	b.Write(ctx)
	if nextLink != "" {
		nl, _ := json.Marshal(nextLink)
		b.WriteString(`,"@odata.nextLink":`)
		b.Write(nl)
	}
	if deltaLink != "" {
		dl, _ := json.Marshal(deltaLink)
		b.WriteString(`,"@odata.deltaLink":`)
		b.Write(dl)
	}
	b.WriteString(`,"value":[`)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteString("]}")
	writeRaw(w, http.StatusOK, b.Bytes())
}
