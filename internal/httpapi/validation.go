package httpapi

import (
	"net/http"
	"net/url"
	"strings"
)

// MaxValidationTokenBytes bounds the validation token we echo. Graph's tokens
// are far shorter; anything longer is not Graph.
const MaxValidationTokenBytes = 4096

// answerValidation answers Graph's validation handshake if r carries a
// validationToken, before the body is read or anything else is checked, and
// reports whether it did. The token's format is opaque and may change, so
// nothing but its length is checked; it is echoed decoded and verbatim as
// text/plain with nosniff, so a browser never renders it as markup.
func (s *Server) answerValidation(w http.ResponseWriter, r *http.Request) bool {
	q, err := url.ParseQuery(r.URL.RawQuery)
	tokens, present := q["validationToken"]
	if !present {
		if err != nil && containsParam(r.URL.RawQuery, "validationToken") {
			s.metrics.ValidationHandshakes.WithLabelValues("malformed").Inc()
			http.Error(w, "malformed validationToken", http.StatusBadRequest)
			return true
		}
		return false
	}
	token := tokens[0]
	if len(tokens) != 1 || len(token) > MaxValidationTokenBytes {
		s.metrics.ValidationHandshakes.WithLabelValues("rejected").Inc()
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.Error(w, "invalid validationToken", http.StatusBadRequest)
		return true
	}
	s.metrics.ValidationHandshakes.WithLabelValues("answered").Inc()
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(token))
	return true
}

// containsParam reports whether a raw query names key, even if some other
// part of it does not parse.
func containsParam(rawQuery, key string) bool {
	for rawQuery != "" {
		var part string
		part, rawQuery, _ = strings.Cut(rawQuery, "&")
		name, _, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil && n == key {
			return true
		}
	}
	return false
}
