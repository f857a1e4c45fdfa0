package dataverse

import "strings"

// GUID-column indexes. A list filtered on a lookup ("_resource_value eq …",
// as every per-resource window pass asks) would otherwise evaluate the
// filter on every row of the table under the emulator's lock: with 100,000
// bookings and 10,000 resources that scan was most of the emulator's CPU
// (bench scale's profile). An index is built on a column's first hinted
// query and kept current by insert, update and remove; results are the
// same, because the filter still runs on every candidate.

// guidIndex maps a column's value (lower case) to the rows holding it.
type guidIndex map[string]map[string]*row

func indexKey(table, col string) string { return table + "\x00" + col }

func indexValue(v any) (string, bool) {
	s, ok := v.(string)
	return strings.ToLower(s), ok && s != ""
}

// candidates returns the rows of t whose column col holds one of values,
// building col's index first if needed. Callers hold e.mu.
func (e *Emulator) candidates(t *table, col string, values []string) []*row {
	if e.indexes == nil {
		e.indexes = map[string]guidIndex{}
	}
	k := indexKey(t.Logical, col)
	idx, ok := e.indexes[k]
	if !ok {
		idx = guidIndex{}
		for _, r := range e.rows[t.Logical] {
			idx.add(col, r)
		}
		e.indexes[k] = idx
	}
	var out []*row
	seen := map[string]bool{}
	for _, v := range values {
		if seen[v] {
			continue
		}
		seen[v] = true
		for _, r := range idx[v] {
			out = append(out, r)
		}
	}
	return out
}

func (idx guidIndex) add(col string, r *row) {
	v, ok := indexValue(r.vals[col])
	if !ok {
		return
	}
	m := idx[v]
	if m == nil {
		m = map[string]*row{}
		idx[v] = m
	}
	m[r.id] = r
}

func (idx guidIndex) drop(col string, r *row, old any) {
	v, ok := indexValue(old)
	if !ok {
		return
	}
	delete(idx[v], r.id)
	if len(idx[v]) == 0 {
		delete(idx, v)
	}
}

// reindex keeps t's indexes current after a write: pre is the row before
// (nil for an insert), post after (nil for a remove). Callers hold e.mu.
func (e *Emulator) reindex(t *table, pre, post *row) {
	for k, idx := range e.indexes {
		table, col, _ := strings.Cut(k, "\x00")
		if table != t.Logical {
			continue
		}
		if pre != nil {
			idx.drop(col, pre, pre.vals[col])
		}
		if post != nil {
			idx.add(col, post)
		}
	}
}
