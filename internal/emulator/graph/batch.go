package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// JSON batching: at most 20 steps, dependsOn ordering (424 when a
// dependency failed), each step served by the same handlers — and counted,
// throttled and faulted — as if sent alone. Steps run one at a time in
// dependency order; Graph may run independent steps in parallel, which
// clients cannot rely on anyway.

const maxBatchSteps = 20

type batchStep struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      json.RawMessage   `json:"body,omitempty"`
	DependsOn []string          `json:"dependsOn,omitempty"`
}

type batchResult struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

var batchMethods = map[string]bool{"GET": true, "POST": true, "PATCH": true, "PUT": true, "DELETE": true}

func (e *Emulator) batch(w http.ResponseWriter, r *http.Request, _ *reqCtx) *apiError {
	if r.Context().Value(inBatchKey) != nil {
		return errorf(400, codeBadRequest, "Nested batch requests are not supported.")
	}
	raw, aerr := readJSONBody(r)
	if aerr != nil {
		return aerr
	}
	var body struct {
		Requests []batchStep `json:"requests"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Requests == nil {
		return errorf(400, codeBadRequest, "Invalid batch payload format.")
	}
	steps := body.Requests
	if len(steps) > maxBatchSteps {
		return errorf(400, codeBadRequest, fmt.Sprintf("Number of batch request steps exceeds the maximum of %d.", maxBatchSteps))
	}
	order, aerr := batchOrder(steps)
	if aerr != nil {
		return aerr
	}
	status := map[string]int{}
	results := make([]batchResult, 0, len(steps))
	for _, i := range order {
		s := steps[i]
		failedDep := ""
		for _, dep := range s.DependsOn {
			if st := status[dep]; st < 200 || st > 299 {
				failedDep = dep
			}
		}
		var res batchResult
		if failedDep != "" {
			res = e.stepError(s.ID, errorf(424, codeFailedDependency, fmt.Sprintf("The request with id %s failed, so this dependent request was not executed.", failedDep)))
		} else {
			res = e.runStep(r, s)
		}
		status[s.ID] = res.Status
		results = append(results, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"responses": results})
	return nil
}

// batchOrder validates ids and dependencies and returns a dependency-first
// order, otherwise keeping request order.
func batchOrder(steps []batchStep) ([]int, *apiError) {
	index := map[string]int{}
	for i, s := range steps {
		if s.ID == "" {
			return nil, errorf(400, codeBadRequest, "Each batch request must have an id.")
		}
		if _, dup := index[s.ID]; dup {
			return nil, errorf(400, codeBadRequest, fmt.Sprintf("Batch request ids must be unique: '%s' is repeated.", s.ID))
		}
		index[s.ID] = i
		if !batchMethods[strings.ToUpper(s.Method)] {
			return nil, errorf(400, codeBadRequest, fmt.Sprintf("Invalid method '%s' in batch request %s.", s.Method, s.ID))
		}
		if s.URL == "" || strings.Contains(s.URL, "://") {
			return nil, errorf(400, codeBadRequest, fmt.Sprintf("Batch request %s must have a relative url.", s.ID))
		}
		if len(s.Body) > 0 && contentType(s.Headers) == "" {
			return nil, errorf(400, codeBadRequest, fmt.Sprintf("Write request id : %s does not contain Content-Type header or body.", s.ID))
		}
	}
	state := make([]int, len(steps)) // 0 new, 1 visiting, 2 done
	var order []int
	var visit func(i int) *apiError
	visit = func(i int) *apiError {
		switch state[i] {
		case 1:
			return errorf(400, codeBadRequest, fmt.Sprintf("Batch request %s is part of a dependsOn cycle.", steps[i].ID))
		case 2:
			return nil
		}
		state[i] = 1
		for _, dep := range steps[i].DependsOn {
			j, ok := index[dep]
			if !ok {
				return errorf(400, codeBadRequest, fmt.Sprintf("Batch request %s depends on unknown request '%s'.", steps[i].ID, dep))
			}
			if aerr := visit(j); aerr != nil {
				return aerr
			}
		}
		state[i] = 2
		order = append(order, i)
		return nil
	}
	for i := range steps {
		if aerr := visit(i); aerr != nil {
			return nil, aerr
		}
	}
	return order, nil
}

func contentType(h map[string]string) string {
	for k, v := range h {
		if strings.EqualFold(k, "Content-Type") {
			return v
		}
	}
	return ""
}

func (e *Emulator) stepError(id string, aerr *apiError) batchResult {
	rec := newRecorder()
	e.writeError(rec, aerr)
	return rec.result(id)
}

// runStep serves one step through the shared mux.
func (e *Emulator) runStep(outer *http.Request, s batchStep) batchResult {
	var body []byte
	if len(s.Body) > 0 {
		body = s.Body
	}
	target := basePath + "/" + strings.TrimLeft(s.URL, "/")
	ctx := context.WithValue(outer.Context(), inBatchKey, true)
	req, err := http.NewRequestWithContext(ctx, strings.ToUpper(s.Method), target, bytes.NewReader(body))
	if err != nil {
		return e.stepError(s.ID, errorf(400, codeBadRequest, fmt.Sprintf("Invalid request url '%s'.", s.URL)))
	}
	req.Header.Set("Authorization", outer.Header.Get("Authorization"))
	for k, v := range s.Headers {
		req.Header.Set(k, v)
	}
	rec := newRecorder()
	e.mux.ServeHTTP(rec, req)
	return rec.result(s.ID)
}

// recorder captures a step's response.
type recorder struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.buf.Write(b)
}
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

var batchHeaders = []string{"Content-Type", "Retry-After", "Location", "Preference-Applied", "Cache-Control", "ETag"}

func (r *recorder) result(id string) batchResult {
	res := batchResult{ID: id, Status: r.status, Headers: map[string]string{}}
	if res.Status == 0 {
		res.Status = http.StatusOK
	}
	for _, h := range batchHeaders {
		if v := r.header.Get(h); v != "" {
			res.Headers[h] = v
		}
	}
	b := bytes.TrimSpace(r.buf.Bytes())
	if len(b) > 0 {
		if json.Valid(b) {
			res.Body = append(json.RawMessage(nil), b...)
		} else {
			enc, _ := json.Marshal(string(b))
			res.Body = enc
		}
	}
	return res
}
