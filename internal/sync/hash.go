package sync

import (
	"crypto/sha256"
	"encoding/hex"
	"html"
	"strings"
	"time"
)

// FieldSet is a set of synced event fields.
type FieldSet uint8

// The synced fields, in hash order.
const (
	FieldSubject FieldSet = 1 << iota
	FieldBody
	FieldLocation
	FieldStart
	FieldEnd
	FieldShowAs

	FieldTimes = FieldStart | FieldEnd
	AllFields  = FieldSubject | FieldBody | FieldLocation | FieldStart | FieldEnd | FieldShowAs
)

var fieldNames = [...]string{"subject", "body", "location", "start", "end", "showAs"}

const numFields = len(fieldNames)

// Has reports whether every field of g is in f.
func (f FieldSet) Has(g FieldSet) bool { return f&g == g }

// String lists the fields, e.g. "subject,start"; "" for none.
func (f FieldSet) String() string {
	var names []string
	for i, n := range fieldNames {
		if f&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

// ApplyFields returns dst with the fields in f taken from src (what a PATCH
// of those fields does to an event).
func ApplyFields(dst, src Content, f FieldSet) Content {
	if f.Has(FieldSubject) {
		dst.Subject = src.Subject
	}
	if f.Has(FieldBody) {
		dst.Body = src.Body
	}
	if f.Has(FieldLocation) {
		dst.Location = src.Location
	}
	if f.Has(FieldStart) {
		dst.Start = src.Start
	}
	if f.Has(FieldEnd) {
		dst.End = src.End
	}
	if f.Has(FieldShowAs) {
		dst.ShowAs = src.ShowAs
	}
	return dst
}

// normalized returns each field as it is compared: subject and location
// with whitespace collapsed, the body reduced to its visible text, times in
// UTC to the minute, showAs lower-case. Outlook's rewrapping of our HTML,
// sub-minute noise and time-zone representation are not edits.
func normalized(c Content) [numFields]string {
	return [numFields]string{
		collapseSpace(c.Subject),
		VisibleText(c.Body),
		collapseSpace(c.Location),
		normTime(c.Start),
		normTime(c.End),
		strings.ToLower(strings.TrimSpace(c.ShowAs)),
	}
}

func normTime(t time.Time) string { return t.UTC().Truncate(time.Minute).Format(time.RFC3339) }

func collapseSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

// Diff is the set of fields in which a and b differ after normalisation.
func Diff(a, b Content) FieldSet {
	na, nb := normalized(a), normalized(b)
	var f FieldSet
	for i := range na {
		if na[i] != nb[i] {
			f |= 1 << i
		}
	}
	return f
}

// hashPrefix versions the hash format: a link whose hash has another
// prefix counts as "every field changed" (one rewrite, then stable).
const hashPrefix = "v1:"

// ContentHash is a stable hash of the normalised synced fields. It is made
// of one short hash per field ("v1:" and six dot-separated 12-hex-digit
// parts) so that ChangedFields can tell which fields changed since a link
// was recorded without storing the content; two hashes are equal exactly
// when all fields are.
func ContentHash(c Content) string {
	n := normalized(c)
	parts := make([]string, numFields)
	for i, v := range n {
		parts[i] = fieldHash(i, v)
	}
	return hashPrefix + strings.Join(parts, ".")
}

func fieldHash(i int, v string) string {
	sum := sha256.Sum256([]byte(fieldNames[i] + "\x00" + v))
	return hex.EncodeToString(sum[:6])
}

// ChangedFields is the set of fields of c that differ from the content
// hash was taken of. An empty or unknown hash counts as all fields changed.
func ChangedFields(hash string, c Content) FieldSet {
	parts := strings.Split(strings.TrimPrefix(hash, hashPrefix), ".")
	if !strings.HasPrefix(hash, hashPrefix) || len(parts) != numFields {
		return AllFields
	}
	n := normalized(c)
	var f FieldSet
	for i, v := range n {
		if parts[i] != fieldHash(i, v) {
			f |= 1 << i
		}
	}
	return f
}

// VisibleText reduces HTML to the text a reader sees, whitespace collapsed:
// tags dropped (block tags and <br> become spaces), comments and the
// contents of head/style/script/title dropped, entities decoded. Outlook
// stores our body wrapped in <html><head>…</head><body>…</body></html> and
// may re-indent it; none of that changes the result. Plain text passes
// through (with whitespace collapsed).
func VisibleText(s string) string {
	var b strings.Builder
	skip := "" // element whose content is invisible, until its end tag
	for i := 0; i < len(s); {
		if s[i] != '<' || i+1 == len(s) || !startsTag(s[i+1]) {
			j := strings.IndexByte(s[i+1:], '<')
			if j < 0 {
				j = len(s)
			} else {
				j += i + 1
			}
			if skip == "" {
				b.WriteString(s[i:j])
			}
			i = j
			continue
		}
		if strings.HasPrefix(s[i:], "<!--") {
			end := strings.Index(s[i+4:], "-->")
			if end < 0 {
				break
			}
			i += 4 + end + 3
			continue
		}
		end := tagEnd(s, i+1)
		if end < 0 {
			break // an unterminated tag is not text either
		}
		tag := s[i+1 : end]
		i = end + 1
		closing := strings.HasPrefix(tag, "/")
		name := tagName(strings.TrimPrefix(tag, "/"))
		switch {
		case skip != "":
			if closing && name == skip {
				skip = ""
			}
		case invisibleTags[name] && !closing && !strings.HasSuffix(tag, "/"):
			skip = name
		case !inlineTags[name]:
			b.WriteByte(' ')
		}
	}
	return collapseSpace(html.UnescapeString(b.String()))
}

func startsTag(c byte) bool {
	return c == '/' || c == '!' || c == '?' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// tagEnd finds the '>' closing a tag that starts at i, skipping quoted
// attribute values; -1 if there is none.
func tagEnd(s string, i int) int {
	var quote byte
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return i
		}
	}
	return -1
}

func tagName(tag string) string {
	end := strings.IndexAny(tag, " \t\r\n/>")
	if end >= 0 {
		tag = tag[:end]
	}
	return strings.ToLower(tag)
}

var invisibleTags = map[string]bool{"head": true, "style": true, "script": true, "title": true}

// inlineTags do not separate words; every other tag does.
var inlineTags = map[string]bool{
	"a": true, "abbr": true, "b": true, "big": true, "code": true, "em": true, "font": true, "i": true,
	"small": true, "span": true, "strong": true, "sub": true, "sup": true, "u": true,
}
