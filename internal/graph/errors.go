package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bookingsync/bookingsync/internal/httpx"
)

// Sentinels for errors.Is on errors returned by Client methods.
var (
	ErrNotFound           = errors.New("graph: not found")                  // 404
	ErrPreconditionFailed = errors.New("graph: precondition failed")        // 412 (If-Match mismatch)
	ErrConflict           = errors.New("graph: conflict")                   // 409, or ErrorIrresolvableConflict
	ErrSyncStateNotFound  = errors.New("graph: delta sync state not found") // 410, syncStateNotFound, resyncRequired
	ErrThrottled          = errors.New("graph: throttled")                  // 429
)

// Error is a non-2xx Graph response.
type Error struct {
	StatusCode int
	Code       string
	Message    string
	RequestID  string
	Date       string
	RetryAfter time.Duration // from the Retry-After header; 0 if absent
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph: HTTP %d", e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request-id %s)", e.RequestID)
	}
	return b.String()
}

// Is maps status codes and error codes to the package sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrPreconditionFailed:
		return e.StatusCode == http.StatusPreconditionFailed
	case ErrConflict:
		return e.StatusCode == http.StatusConflict || strings.EqualFold(e.Code, "ErrorIrresolvableConflict")
	case ErrSyncStateNotFound:
		return e.StatusCode == http.StatusGone ||
			strings.EqualFold(e.Code, "syncStateNotFound") || strings.EqualFold(e.Code, "resyncRequired")
	case ErrThrottled:
		return e.StatusCode == http.StatusTooManyRequests
	}
	return false
}

type errorBody struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError struct {
			RequestID string `json:"request-id"`
			Date      string `json:"date"`
		} `json:"innerError"`
	} `json:"error"`
}

// parseError builds an *Error from a status, headers and body. A body that
// is not Graph's error JSON still yields an *Error with the status.
func parseError(status int, h http.Header, body []byte, now time.Time) *Error {
	e := &Error{StatusCode: status}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
		e.RequestID, e.Date = eb.Error.InnerError.RequestID, eb.Error.InnerError.Date
	}
	if e.Message == "" && len(body) > 0 && eb.Error.Code == "" {
		e.Message = strings.TrimSpace(string(truncate(body, 512)))
	}
	if h != nil {
		if e.RequestID == "" {
			e.RequestID = h.Get("request-id")
		}
		if d, ok := httpx.ParseRetryAfter(h.Get("Retry-After"), now); ok {
			e.RetryAfter = d
		}
	}
	return e
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

var maxExpirationRE = regexp.MustCompile(`(?i)can only be (\d+) minutes in the future`)

// MaxExpirationMinutes recognises the 400 ExtensionError "Subscription
// expiration can only be N minutes in the future." and returns N, so the
// caller can clamp the lifetime and retry. Only the status and message are
// checked: the documented code is ExtensionError, but the message is what
// carries N.
func MaxExpirationMinutes(err error) (int, bool) {
	var ge *Error
	if !errors.As(err, &ge) || ge.StatusCode != http.StatusBadRequest {
		return 0, false
	}
	m := maxExpirationRE.FindStringSubmatch(ge.Message)
	if m == nil {
		return 0, false
	}
	n, convErr := strconv.Atoi(m[1])
	if convErr != nil || n <= 0 {
		return 0, false
	}
	return n, true
}
