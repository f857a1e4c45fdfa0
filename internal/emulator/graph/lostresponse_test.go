package graph

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

// TestLoseResponseFault: an event write under lose_response_rate is
// applied, but the client gets a 504 (or a reset connection) and cannot
// tell; a retried POST with the same transactionId is answered with the
// first event, so a client that retries never makes a duplicate.
func TestLoseResponseFault(t *testing.T) {
	h := newHarness(t, Options{NoExtraUpdate: true}, false)
	const tx = "0b7a4f3e-1c9d-4e55-9b0e-4a3f2d1c0b9a"
	body := map[string]any{
		"subject":       "Lost",
		"transactionId": tx,
		"start":         map[string]any{"dateTime": "2030-03-04T09:00:00", "timeZone": "UTC"},
		"end":           map[string]any{"dateTime": "2030-03-04T10:00:00", "timeZone": "UTC"},
	}
	events := func() []any {
		t.Helper()
		return h.mustStatus(h.do("GET", "/users/"+adele+"/events", nil), 200).json(t)["value"].([]any)
	}
	stat := func(name string) int64 {
		_, c := h.em.Stats()
		return c[name]
	}
	setFaults := func(raw string) {
		t.Helper()
		if err := h.em.SetFaults([]byte(raw)); err != nil {
			t.Fatal(err)
		}
	}

	setFaults(`{"lose_response_rate": 1, "lose_response_method": "post"}`)
	r := h.do("POST", "/users/"+adele+"/events", body)
	if r.status != http.StatusGatewayTimeout || r.errorCode(t) != "UnknownError" || r.header.Get("request-id") == "" {
		t.Fatalf("lost create answered %d %s (request-id %q), want 504 UnknownError", r.status, r.body, r.header.Get("request-id"))
	}
	evs := events()
	if len(evs) != 1 || evs[0].(map[string]any)["subject"] != "Lost" {
		t.Fatalf("the write was not applied: %v", evs)
	}
	id := evs[0].(map[string]any)["id"].(string)

	// The client's retry carries the same transactionId: while responses
	// are still lost it gets another 504, and still only one event exists.
	if r := h.do("POST", "/users/"+adele+"/events", body); r.status != http.StatusGatewayTimeout {
		t.Fatalf("retry under the fault: %d %s", r.status, r.body)
	}
	// PATCH is not subject to a POST-only fault.
	h.mustStatus(h.do("PATCH", "/users/"+adele+"/events/"+id, map[string]any{"categories": []string{"x"}}), 200)
	// A write that fails is answered as usual: nothing to lose.
	if r := h.do("POST", "/users/"+adele+"/events", map[string]any{"subject": "no times"}); r.status != 400 {
		t.Errorf("failed write under the fault: %d %s", r.status, r.body)
	}
	// Steps of a $batch are not affected.
	batch := map[string]any{"requests": []any{map[string]any{"id": "1", "method": "POST", "url": "/users/" + lee + "/events",
		"headers": map[string]string{"Content-Type": "application/json"}, "body": map[string]any{
			"subject": "batched", "start": body["start"], "end": body["end"]}}}}
	step := h.mustStatus(h.do("POST", "/$batch", batch), 200).json(t)["responses"].([]any)[0].(map[string]any)
	if step["status"] != 201.0 {
		t.Errorf("batched create under the fault: %v", step)
	}

	setFaults(`{}`)
	again := h.mustStatus(h.do("POST", "/users/"+adele+"/events", body), 201).json(t)
	if again["id"] != id {
		t.Errorf("retry after the fault created %v, want the first event %s", again["id"], id)
	}
	if n := len(events()); n != 1 {
		t.Errorf("%d events after retries, want 1", n)
	}
	routes, _ := h.em.Stats()
	if routes["POST /users/{id}/events"] != 5 || stat("graph_lost_responses") != 2 || stat("graph_transaction_replays") != 2 {
		t.Errorf("POSTs %d, lost %d, replays %d; want 5 (one batched), 2, 2", routes["POST /users/{id}/events"],
			stat("graph_lost_responses"), stat("graph_transaction_replays"))
	}

	// PATCH only: the update is applied, the answer is lost.
	setFaults(`{"lose_response_rate": 1, "lose_response_method": "PATCH"}`)
	if r := h.do("PATCH", "/users/"+adele+"/events/"+id, map[string]any{"subject": "Patched"}); r.status != http.StatusGatewayTimeout {
		t.Fatalf("lost update answered %d %s", r.status, r.body)
	}
	if got := h.mustStatus(h.do("GET", "/users/"+adele+"/events/"+id, nil), 200).json(t)["subject"]; got != "Patched" {
		t.Errorf("lost update not applied: subject %v", got)
	}

	// Reset: no response at all, the write still happened.
	setFaults(`{"lose_response_method": "", "lose_response_mode": "reset"}`)
	raw, _ := json.Marshal(map[string]any{"subject": "Reset", "transactionId": "reset-1", "start": body["start"], "end": body["end"]})
	req, _ := http.NewRequest("POST", h.base+basePath+"/users/"+lee+"/events", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := h.client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("reset mode answered %d", resp.StatusCode)
	}
	setFaults(`{}`)
	found := h.mustStatus(h.do("GET", "/users/"+lee+"/events?$filter="+url.QueryEscape("subject eq 'Reset'"), nil), 200).json(t)["value"].([]any)
	if len(found) != 1 {
		t.Errorf("reset create: %d events, want 1", len(found))
	}
	if got := stat("graph_lost_responses"); got != 4 {
		t.Errorf("graph_lost_responses = %d, want 4", got)
	}

	for _, bad := range []string{`{"lose_response_rate": 2}`, `{"lose_response_mode": "drop"}`, `{"lose_response_method": "DELETE"}`} {
		if err := h.em.SetFaults([]byte(bad)); err == nil {
			t.Errorf("SetFaults(%s) accepted", bad)
		}
	}
	setFaults(`{"lose_response_rate": 0.5, "lose_response_mode": "timeout", "lose_response_method": "PATCH"}`)
	if f := h.em.Faults().(Faults); f.LoseResponseRate != 0.5 || f.LoseResponseMode != LoseTimeout || f.LoseResponseMethod != "PATCH" {
		t.Errorf("faults = %+v", f)
	}
}
