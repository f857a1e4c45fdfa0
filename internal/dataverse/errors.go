package dataverse

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bookingsync/bookingsync/internal/httpx"
)

// Sentinels callers branch on. *Error matches them through Is.
var (
	ErrNotFound           = errors.New("dataverse: not found")
	ErrPreconditionFailed = errors.New("dataverse: precondition failed")
	// ErrChangeTrackingExpired means the delta token is older than the
	// organization's expirechangetrackingindays: do a full sync (start again
	// with Track).
	ErrChangeTrackingExpired = errors.New("dataverse: change tracking token expired, perform a full sync")
	// ErrAlreadyExists: a create with a client-chosen key (CreateWithIDReturn,
	// or If-None-Match: *) found a row with that key: 412 "A record with
	// matching key values already exists." (reference §2). Such an error
	// also matches ErrPreconditionFailed by its status.
	ErrAlreadyExists   = errors.New("dataverse: a record with matching key values already exists")
	ErrPrivilegeDenied = errors.New("dataverse: privilege denied")
	ErrThrottled       = errors.New("dataverse: throttled by service protection limits")
)

// Error codes (Web API hex form) we recognise.
const (
	// codeExpiredVersionStamp is ErrorCodes.ExpiredVersionStamp. Microsoft
	// documents it for RetrieveMetadataChanges; reference §3 quotes its
	// message for an expired change-tracking token. The HTTP status that
	// accompanies it on the Web API is [unverified], so we match on the code
	// or the message regardless of status.
	codeExpiredVersionStamp = "0x80044352"
	msgExpiredVersionStamp  = "version stamp associated with the client has expired"

	// codeDuplicateRecord is ErrorCodes.DuplicateRecord; the status-code
	// table maps it to 412 (reference §2). The message is matched too, as
	// the reference quotes the message but not the code.
	codeDuplicateRecord = "0x80040237"
	msgDuplicateRecord  = "record with matching key values already exists"

	// Service protection codes (reference §5).
	codeThrottleRequests    = "0x80072322"
	codeThrottleExecTime    = "0x80072321"
	codeThrottleConcurrency = "0x80072326"
)

// Error is a non-2xx response from the Web API.
type Error struct {
	StatusCode int
	Code       string // e.g. "0x80040265"; often empty
	Message    string
	// RetryAfter is the server's Retry-After (seconds form) on 429/503; zero
	// if absent.
	RetryAfter time.Duration
	Method     string
	URL        string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dataverse: %s %s: %d", e.Method, e.URL, e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// Is maps status codes and Dataverse error codes to the package sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrPreconditionFailed:
		return e.StatusCode == http.StatusPreconditionFailed
	case ErrAlreadyExists:
		return strings.EqualFold(e.Code, codeDuplicateRecord) ||
			strings.Contains(strings.ToLower(e.Message), msgDuplicateRecord)
	case ErrPrivilegeDenied:
		return e.StatusCode == http.StatusForbidden
	case ErrThrottled:
		if e.StatusCode == http.StatusTooManyRequests {
			return true
		}
		switch strings.ToLower(e.Code) {
		case codeThrottleRequests, codeThrottleExecTime, codeThrottleConcurrency:
			return true
		}
	case ErrChangeTrackingExpired:
		return strings.EqualFold(e.Code, codeExpiredVersionStamp) ||
			strings.Contains(strings.ToLower(e.Message), msgExpiredVersionStamp)
	}
	return false
}

// maxErrorBody bounds how much of an error body we read.
const maxErrorBody = 64 << 10

// parseError builds an *Error from a non-2xx response. It reads (and the
// caller closes) the body.
func parseError(resp *http.Response) *Error {
	e := &Error{StatusCode: resp.StatusCode}
	if resp.Request != nil {
		e.Method = resp.Request.Method
		e.URL = redactURL(resp.Request.URL.String())
	}
	if d, ok := httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = d
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var env struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		e.Code, e.Message = env.Error.Code, env.Error.Message
	} else if s := strings.TrimSpace(string(body)); s != "" {
		// Not Dataverse JSON (a proxy page, say); keep a short prefix for logs.
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		e.Message = s
	}
	return e
}

// redactURL drops the query: $filter values can contain personal data and
// delta tokens are long.
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}
