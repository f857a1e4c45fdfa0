package metrics

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// ObserveAPIResponse counts one outbound response (or transport error, when
// status is 0) of api ("graph", "dataverse") for req. Throttling is a 429, or a
// 503 that carries Retry-After (Graph's and Dataverse's way of saying slow down).
func (m *Metrics) ObserveAPIResponse(api string, req *http.Request, status int, retryAfter bool) {
	code := "error"
	if status > 0 {
		code = strconv.Itoa(status)
	}
	m.APIRequests.WithLabelValues(api, Endpoint(req), code).Inc()
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable && retryAfter {
		m.APIThrottled.WithLabelValues(api).Inc()
	}
}

var (
	// keyRE matches an OData key segment: name(…).
	keyRE = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_.]*)\((.*)\)$`)
	// wordRE is a path segment that names something rather than
	// identifying a row: letters, digits, _ . $, not too long.
	wordRE = regexp.MustCompile(`^[A-Za-z$][A-Za-z0-9_.$]{0,39}$`)
	// versionSegments end the base path of the APIs.
	versionSegments = map[string]bool{"v1.0": true, "beta": true, "v9.0": true, "v9.1": true, "v9.2": true}
)

// Endpoint reduces a request to a low-cardinality template: the method and
// the path after the API version with ids replaced, e.g.
// "GET /users/{id}/calendar/events/{id}" or
// "PATCH /bookableresourcebookings({id})". Query strings are dropped.
func Endpoint(req *http.Request) string {
	if req == nil || req.URL == nil {
		return "unknown"
	}
	segs := strings.Split(strings.Trim(req.URL.EscapedPath(), "/"), "/")
	for i, s := range segs {
		if versionSegments[s] {
			segs = segs[i+1:]
			break
		}
	}
	out := make([]string, 0, len(segs))
	for _, s := range segs {
		switch {
		case s == "":
			continue
		case keyRE.MatchString(s):
			m := keyRE.FindStringSubmatch(s)
			key := "{id}"
			if name, _, ok := strings.Cut(m[2], "="); ok && wordRE.MatchString(name) {
				key = name + "={key}" // EntityDefinitions(LogicalName='x')
			}
			out = append(out, m[1]+"("+key+")")
		case wordRE.MatchString(s) && !looksLikeID(s):
			out = append(out, s)
		default:
			out = append(out, "{id}")
		}
		if len(out) == 8 {
			out = append(out, "…")
			break
		}
	}
	return req.Method + " /" + strings.Join(out, "/")
}

// looksLikeID catches word-shaped ids: long runs mixing digits and letters
// (Graph's base64 event ids are longer than wordRE allows anyway).
func looksLikeID(s string) bool {
	digits := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	return len(s) >= 16 && digits >= 4
}
