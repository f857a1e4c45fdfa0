package graph

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

var userProps = jsonFieldNames(userOut{})

func userJSON(u tenant.User) userOut {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	return userOut{
		BusinessPhones:    []string{},
		DisplayName:       u.DisplayName,
		GivenName:         opt(u.GivenName),
		JobTitle:          opt(u.JobTitle),
		Mail:              opt(u.Mail),
		Surname:           opt(u.Surname),
		UserPrincipalName: u.UserPrincipalName,
		ID:                u.ID,
	}
}

func (e *Emulator) getUser(w http.ResponseWriter, r *http.Request, _ *reqCtx) *apiError {
	sel, aerr := parseSelect(r.URL.Query(), "microsoft.graph.user", userProps)
	if aerr != nil {
		return aerr
	}
	uid := r.PathValue("uid")
	mb := e.lookupUser(uid)
	if mb == nil {
		return errorf(404, codeDirNotFound, fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", uid))
	}
	raw, _ := json.Marshal(userJSON(mb.user))
	raw, err := project(raw, sel, "id")
	if err != nil {
		return errorf(500, "generalException", err.Error())
	}
	writeRaw(w, http.StatusOK, withMembers(raw, "@odata.context", e.BaseURL()+"/$metadata#users/$entity"))
	return nil
}

// listUsers pages with an opaque $skiptoken, as the directory does.
func (e *Emulator) listUsers(w http.ResponseWriter, r *http.Request, _ *reqCtx) *apiError {
	q := r.URL.Query()
	sel, aerr := parseSelect(q, "microsoft.graph.user", userProps)
	if aerr != nil {
		return aerr
	}
	top, _, aerr := pageParams(q, 100, 999)
	if aerr != nil {
		return aerr
	}
	skip := 0
	if tok, ok := queryParam(q, "skiptoken"); ok {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n < 0 {
			return errorf(400, codeBadRequest, "Invalid $skiptoken.")
		}
		skip = n
	}
	e.mu.Lock()
	total := len(e.order)
	var users []tenant.User
	for i := skip; i < total && i < skip+top; i++ {
		users = append(users, e.order[i].user)
	}
	e.mu.Unlock()
	items := make([]json.RawMessage, 0, len(users))
	for _, u := range users {
		raw, _ := json.Marshal(userJSON(u))
		raw, err := project(raw, sel, "id")
		if err != nil {
			return errorf(500, "generalException", err.Error())
		}
		items = append(items, raw)
	}
	next := ""
	if skip+top < total {
		nq := r.URL.Query()
		for k := range nq {
			if k == "$skiptoken" || k == "skiptoken" {
				delete(nq, k)
			}
		}
		nq.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(skip+top))))
		next = e.t.BaseURL() + r.URL.Path + "?" + encodeQuery(nq)
	}
	writeCollection(w, e.BaseURL()+"/$metadata#users", items, next, "")
	return nil
}
