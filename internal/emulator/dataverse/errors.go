package dataverse

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Dataverse error codes (Web API hex form). Where shared/reference/dataverse-api.md
// names a code it is used as given; the others are the platform's usual
// ErrorCodes values and are listed in docs/emulator.md as emulator choices.
const (
	codeODataParse        = "0x80060888" // OData URI/payload parse errors
	codeObjectNotExist    = "0x80040217" // "<entity> With Id = <id> Does Not Exist"
	codeDuplicateRecord   = "0x80040237" // "A record with matching key values already exists."
	codePrivilegeDenied   = "0x80040220"
	codeUnexpected        = "0x80040216"
	codeInvalidArgument   = "0x80040203"
	codeLengthExceeded    = "0x80044331"
	codeOutsideRange      = "0x8004431a"
	codeExpiredVersion    = "0x80044352" // ExpiredVersionStamp
	codeThrottleRequests  = "0x80072322"
	codeThrottleExecTime  = "0x80072321"
	codeThrottleConcurrcy = "0x80072326"
)

// apiError is an error answered in Dataverse's JSON shape
// {"error":{"code":"…","message":"…"}}.
type apiError struct {
	Status  int
	Code    string
	Message string
	Header  http.Header
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errf(http.StatusBadRequest, codeODataParse, format, args...)
}

func notFound(entity, id string) *apiError {
	return errf(http.StatusNotFound, codeObjectNotExist, "%s With Id = %s Does Not Exist", entity, id)
}

func noProperty(name, entity string) *apiError {
	return badRequest("Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.%s'.", name, entity)
}

// etagMismatch is the documented 412 body (reference §2, conditional operations).
func etagMismatch() *apiError {
	return &apiError{Status: http.StatusPreconditionFailed, Code: "",
		Message: "The version of the existing record doesn't match the RowVersion property provided."}
}

func throttled(code string, retryAfter int, msg string) *apiError {
	h := http.Header{}
	h.Set("Retry-After", strconv.Itoa(retryAfter))
	return &apiError{Status: http.StatusTooManyRequests, Code: code, Message: msg, Header: h}
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	for k, vs := range e.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(e.Status)
	body := map[string]any{"error": map[string]any{"code": e.Code, "message": e.Message}}
	_ = json.NewEncoder(w).Encode(body)
}
