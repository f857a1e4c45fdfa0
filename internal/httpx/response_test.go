package httpx

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestOnResponseSeesEveryAttempt(t *testing.T) {
	sc := &script{steps: []step{
		{status: 429, header: map[string]string{"Retry-After": "0"}},
		{err: errors.New("connection reset")},
		{status: 200},
	}}
	var got []ResponseInfo
	c := &Client{
		HTTP:       &http.Client{Transport: sc},
		Sleep:      func(context.Context, time.Duration) error { return nil },
		OnResponse: func(ri ResponseInfo) { got = append(got, ri) },
	}
	req, _ := http.NewRequest(http.MethodGet, "https://example.test/v1.0/users/x/events", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(got) != 3 {
		t.Fatalf("OnResponse called %d times, want 3: %+v", len(got), got)
	}
	if got[0].StatusCode != 429 || got[0].Header.Get("Retry-After") != "0" || got[0].Attempt != 1 {
		t.Errorf("attempt 1: %+v", got[0])
	}
	if got[1].StatusCode != 0 || got[1].Err == nil || got[1].Attempt != 2 {
		t.Errorf("attempt 2: %+v", got[1])
	}
	if got[2].StatusCode != 200 || got[2].Attempt != 3 || got[2].Request != req {
		t.Errorf("attempt 3: %+v", got[2])
	}
}

func TestOnResponseNotCalledForTokenFailure(t *testing.T) {
	called := false
	c := &Client{HTTP: &http.Client{Transport: &script{}}, Tokens: NewTokenSource(errCred{}, "s/.default"),
		OnResponse: func(ResponseInfo) { called = true }}
	req, _ := http.NewRequest(http.MethodGet, "https://example.test/", nil)
	if _, err := c.Do(req); err == nil {
		t.Fatal("want token error")
	}
	if called {
		t.Error("OnResponse called for a request that never reached the network")
	}
}
