package graph

import (
	"net/http"
	"strconv"
	"time"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

// apiError is a Graph error response: status plus the code and message of
// {"error":{"code","message","innerError":{…}}}.
type apiError struct {
	status     int
	code       string
	message    string
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

// Graph error codes used by the emulator. Outlook (Exchange) errors carry
// the "Error…" prefix, directory and platform errors do not, as on the
// real service.
const (
	codeInvalidAuthToken  = "InvalidAuthenticationToken"
	codeBadRequest        = "BadRequest"
	codeRequestBodyRead   = "RequestBodyRead"
	codeInvalidRequest    = "InvalidRequest"
	codeExtensionError    = "ExtensionError"
	codeItemNotFound      = "ErrorItemNotFound"
	codeInvalidIDMalform  = "ErrorInvalidIdMalformed"
	codeInvalidUser       = "ErrorInvalidUser"
	codeInvalidParameter  = "ErrorInvalidParameter"
	codeInvalidURLQuery   = "ErrorInvalidUrlQuery"
	codeDirNotFound       = "Request_ResourceNotFound"
	codeSubNotFound       = "ResourceNotFound"
	codeThrottled         = "ApplicationThrottled"
	codeSyncStateNotFound = "syncStateNotFound"
	codeTimeZone          = "TimeZoneNotSupportedException"
	codeFailedDependency  = "FailedDependency"
)

type innerError struct {
	Date            string `json:"date"`
	RequestID       string `json:"request-id"`
	ClientRequestID string `json:"client-request-id"`
}

type errorBody struct {
	Error struct {
		Code       string     `json:"code"`
		Message    string     `json:"message"`
		InnerError innerError `json:"innerError"`
	} `json:"error"`
}

// writeError sends err in Graph's error shape, with Retry-After on 429/503.
func (e *Emulator) writeError(w http.ResponseWriter, err *apiError) {
	var b errorBody
	b.Error.Code = err.code
	b.Error.Message = err.message
	b.Error.InnerError = innerError{
		Date:            e.t.Now().Format("2006-01-02T15:04:05"),
		RequestID:       w.Header().Get("request-id"),
		ClientRequestID: w.Header().Get("client-request-id"),
	}
	if err.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((err.retryAfter+time.Second-1)/time.Second)))
	}
	if err.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
	}
	writeJSON(w, err.status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) { tenant.WriteJSON(w, status, v) }
