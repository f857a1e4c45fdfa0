package graph

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

// Control routes of the Graph section, beside the lead's generic ones.

func controlError(w http.ResponseWriter, status int, err error) {
	tenant.WriteJSON(w, status, map[string]string{"error": err.Error()})
}

func readControlBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if err := decodeStrict(body, v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	return nil
}

var lifecycleEvents = []string{"missed", "subscriptionRemoved", "reauthorizationRequired"}

// controlLifecycle: POST /_emulator/lifecycle {"subscription_id","event"}.
// subscriptionRemoved also removes the subscription, as Graph does.
func (e *Emulator) controlLifecycle(w http.ResponseWriter, r *http.Request) {
	var body struct {
		SubscriptionID string `json:"subscription_id"`
		Event          string `json:"event"`
	}
	if err := readControlBody(r, &body); err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	valid := false
	for _, ev := range lifecycleEvents {
		valid = valid || ev == body.Event
	}
	if !valid {
		controlError(w, http.StatusBadRequest, fmt.Errorf("event %q: want missed, subscriptionRemoved or reauthorizationRequired", body.Event))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.subs[body.SubscriptionID]
	if s == nil {
		controlError(w, http.StatusNotFound, fmt.Errorf("subscription %q not found", body.SubscriptionID))
		return
	}
	if !e.lifecycleLocked(s, body.Event) {
		controlError(w, http.StatusConflict, fmt.Errorf("subscription %s has no lifecycleNotificationUrl", s.id))
		return
	}
	if body.Event == "subscriptionRemoved" {
		e.removeSubscriptionLocked(s)
	}
	tenant.WriteJSON(w, http.StatusAccepted, map[string]any{"subscription_id": s.id, "event": body.Event, "queued": true})
}

// userSpec is one user of POST /_emulator/graph/users.
type userSpec struct {
	ID                string `json:"id"`
	DisplayName       string `json:"displayName"`
	GivenName         string `json:"givenName"`
	Surname           string `json:"surname"`
	UserPrincipalName string `json:"userPrincipalName"`
	Mail              string `json:"mail"`
	JobTitle          string `json:"jobTitle"`
	TimeZone          string `json:"timeZone"`
}

const maxGeneratedUsers = 100000

// generatedNamespace makes generated user ids a function of prefix and
// index, so load tools can compute them.
var generatedNamespace = uuid.MustParse("8a4b9c1e-2f3d-4e5a-9b6c-7d8e9f0a1b2c")

// controlCreateUsers: POST /_emulator/graph/users with explicit users
// and/or {"generate": {"count": N, "prefix": "load"}}.
func (e *Emulator) controlCreateUsers(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Users    []userSpec `json:"users"`
		Generate *struct {
			Count  int    `json:"count"`
			Prefix string `json:"prefix"`
		} `json:"generate"`
	}
	if err := readControlBody(r, &body); err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	var users []tenant.User
	for _, s := range body.Users {
		if s.ID == "" {
			s.ID = uuid.NewString()
		}
		if s.Mail == "" {
			s.Mail = s.UserPrincipalName
		}
		if s.DisplayName == "" {
			s.DisplayName = s.UserPrincipalName
		}
		users = append(users, tenant.User(s))
	}
	if g := body.Generate; g != nil {
		if g.Count < 1 || g.Count > maxGeneratedUsers {
			controlError(w, http.StatusBadRequest, fmt.Errorf("generate.count must be between 1 and %d", maxGeneratedUsers))
			return
		}
		if g.Prefix == "" {
			g.Prefix = "tech"
		}
		for i := 1; i <= g.Count; i++ {
			name := g.Prefix + "-" + strconv.Itoa(i)
			upn := name + "@" + tenant.Domain
			users = append(users, tenant.User{
				ID:          uuid.NewSHA1(generatedNamespace, []byte(name)).String(),
				DisplayName: "Load Technician " + strconv.Itoa(i), GivenName: "Load", Surname: "Technician " + strconv.Itoa(i),
				UserPrincipalName: upn, Mail: upn, JobTitle: "Field Technician", TimeZone: "UTC",
			})
		}
	}
	if len(users) == 0 {
		controlError(w, http.StatusBadRequest, fmt.Errorf("no users: give \"users\" or \"generate\""))
		return
	}
	e.mu.Lock()
	ids := make([]string, 0, len(users))
	for _, u := range users {
		if u.TimeZone != "" {
			if _, err := loadZone(u.TimeZone); err != nil {
				e.mu.Unlock()
				controlError(w, http.StatusBadRequest, fmt.Errorf("user %s: time zone %q is not supported", u.UserPrincipalName, u.TimeZone))
				return
			}
		}
		mb, err := e.addUserLocked(u)
		if err != nil {
			e.mu.Unlock()
			controlError(w, http.StatusConflict, fmt.Errorf("after creating %d users: %w", len(ids), err))
			return
		}
		ids = append(ids, mb.user.ID)
	}
	e.mu.Unlock()
	tenant.WriteJSON(w, http.StatusCreated, map[string]any{"created": len(ids), "ids": ids})
}

// CreateUser adds a mailbox, for in-process callers such as tests.
func (e *Emulator) CreateUser(u tenant.User) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.addUserLocked(u)
	return err
}
