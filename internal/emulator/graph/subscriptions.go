package graph

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

const maxClientState = 128 // the stricter of the two documented limits

type subscription struct {
	id              string
	appID           string
	resource        string // as returned: without a leading slash
	mb              *mailbox
	changeType      string
	changes         map[string]bool
	notificationURL string
	lifecycleURL    string
	clientState     *string
	expiration      time.Time
	tlsVersion      string
	immutable       bool // created with Prefer: IdType="ImmutableId"
	created         time.Time
	lastReauth      time.Time // last reauthorizationRequired sent
}

func (s *subscription) out(withClientState bool) subscriptionOut {
	o := subscriptionOut{
		ID:                        s.id,
		Resource:                  s.resource,
		ApplicationID:             s.appID,
		ChangeType:                s.changeType,
		NotificationURL:           s.notificationURL,
		ExpirationDateTime:        formatTime(s.expiration),
		CreatorID:                 tenant.ServicePrincipalID,
		LatestSupportedTLSVersion: s.tlsVersion,
	}
	if withClientState {
		o.ClientState = s.clientState
	}
	if s.lifecycleURL != "" {
		o.LifecycleNotificationURL = ptr(s.lifecycleURL)
	}
	return o
}

var resourceRE = regexp.MustCompile(`(?i)^/?(users|me)(?:/([^/]+)|\('([^']+)'\))?/events$`)

// resolveResource accepts the documented event resources, /users/{id}/events
// (id or userPrincipalName).
func (e *Emulator) resolveResource(res string) (*mailbox, string, *apiError) {
	m := resourceRE.FindStringSubmatch(strings.TrimSpace(res))
	if m == nil {
		return nil, "", errorf(400, codeInvalidRequest, fmt.Sprintf("Resource '%s' is not supported by the emulator: use /users/{id}/events.", res))
	}
	if strings.EqualFold(m[1], "me") {
		return nil, "", errorf(400, codeBadRequest, "/me request is only valid with delegated authentication flow.")
	}
	who := m[2] + m[3]
	mb := e.lookupUserLocked(who)
	if mb == nil {
		return nil, "", errorf(404, codeExtensionError, fmt.Sprintf("Operation: Create; Exception: [Status Code: NotFound; Reason: The requested user '%s' is invalid.]", who))
	}
	return mb, strings.TrimPrefix(strings.TrimSpace(res), "/"), nil
}

func parseChangeType(s string) (map[string]bool, *apiError) {
	set := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		p := strings.TrimSpace(part)
		switch p {
		case "created", "updated", "deleted":
			set[p] = true
		default:
			return nil, errorf(400, codeInvalidRequest, fmt.Sprintf("'%s' is not a valid value for changeType: use created, updated and/or deleted.", p))
		}
	}
	return set, nil
}

// checkNotificationURL: HTTPS as Graph requires, or plain HTTP to a loopback
// host (an emulator-only allowance for local receivers).
func checkNotificationURL(field, raw string) *apiError {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errorf(400, codeInvalidRequest, fmt.Sprintf("Invalid %s '%s': it must be an absolute URL.", field, raw))
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return errorf(400, codeInvalidRequest, fmt.Sprintf("Invalid %s '%s': the URL must use HTTPS.", field, raw))
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkExpiration applies Graph's lifetime rules; now is the request time.
// Graph: "Any value under 45 minutes after the time of the request is
// automatically set to 45 minutes after the request time" (the floor is
// Options.MinSubscriptionSeconds, 45 minutes unless a test lowers it).
func checkExpiration(raw string, now time.Time, o Options) (time.Time, *apiError) {
	maxMinutes, minLifetime := o.MaxSubscriptionMinutes, time.Duration(o.MinSubscriptionSeconds)*time.Second
	exp, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return time.Time{}, errorf(400, codeRequestBodyRead, fmt.Sprintf("Cannot convert the literal '%s' to the expected type 'Edm.DateTimeOffset'.", raw))
	}
	exp = exp.UTC()
	if !exp.After(now) {
		return time.Time{}, errorf(400, codeInvalidRequest, "Subscription expiration can't be in the past.")
	}
	if exp.Sub(now) > time.Duration(maxMinutes)*time.Minute {
		return time.Time{}, errorf(400, codeExtensionError, fmt.Sprintf("Subscription expiration can only be %d minutes in the future.", maxMinutes))
	}
	if exp.Sub(now) < minLifetime {
		exp = now.Add(minLifetime)
	}
	return exp, nil
}

func decodeSubscriptionIn(r *http.Request) (*subscriptionIn, *apiError) {
	body, aerr := readJSONBody(r)
	if aerr != nil {
		return nil, aerr
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return nil, errorf(400, codeBadRequest, "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
	}
	known := map[string]bool{"id": true, "applicationid": true, "creatorid": true}
	for _, n := range jsonFieldNames(subscriptionIn{}) {
		known[strings.ToLower(n)] = true
	}
	for k := range members {
		if !strings.HasPrefix(k, "@") && !known[strings.ToLower(k)] {
			return nil, errorf(400, codeRequestBodyRead, fmt.Sprintf("The property '%s' does not exist on type 'microsoft.graph.subscription'. Make sure to only use property names that are defined by the type or mark the type as open type.", k))
		}
	}
	var in subscriptionIn
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, errorf(400, codeRequestBodyRead, "Invalid JSON: "+err.Error())
	}
	return &in, nil
}

func required(field string, v *string) *apiError {
	if v == nil || strings.TrimSpace(*v) == "" {
		return errorf(400, codeInvalidRequest, fmt.Sprintf("The property '%s' is required.", field))
	}
	return nil
}

func (e *Emulator) createSubscription(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError {
	in, aerr := decodeSubscriptionIn(r)
	if aerr != nil {
		return aerr
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"changeType", in.ChangeType}, {"notificationUrl", in.NotificationURL}, {"resource", in.Resource}, {"expirationDateTime", in.ExpirationDateTime}} {
		if aerr := required(f.name, f.v); aerr != nil {
			return aerr
		}
	}
	changes, aerr := parseChangeType(*in.ChangeType)
	if aerr != nil {
		return aerr
	}
	if aerr := checkNotificationURL("notificationUrl", *in.NotificationURL); aerr != nil {
		return aerr
	}
	lifecycleURL := ""
	if in.LifecycleNotificationURL != nil && *in.LifecycleNotificationURL != "" {
		lifecycleURL = *in.LifecycleNotificationURL
		if aerr := checkNotificationURL("lifecycleNotificationUrl", lifecycleURL); aerr != nil {
			return aerr
		}
	}
	if in.IncludeResourceData != nil && *in.IncludeResourceData {
		return errorf(400, codeInvalidRequest, "Rich notifications (includeResourceData) are not supported by the emulator.")
	}
	if in.ClientState != nil && len(*in.ClientState) > maxClientState {
		return errorf(400, codeInvalidRequest, fmt.Sprintf("clientState can be at most %d characters.", maxClientState))
	}
	tlsVersion := "v1_2"
	if in.LatestSupportedTLSVersion != nil {
		tlsVersion = *in.LatestSupportedTLSVersion
		if !slices.Contains([]string{"v1_0", "v1_1", "v1_2", "v1_3"}, tlsVersion) {
			return errorf(400, codeInvalidRequest, fmt.Sprintf("'%s' is not a valid latestSupportedTlsVersion.", tlsVersion))
		}
	}
	opts := e.options()
	now := e.t.Now()
	exp, aerr := checkExpiration(*in.ExpirationDateTime, now, opts)
	if aerr != nil {
		return aerr
	}
	s := &subscription{
		id:              uuid.NewString(),
		appID:           rc.claims.AppID,
		changeType:      *in.ChangeType,
		changes:         changes,
		notificationURL: *in.NotificationURL,
		lifecycleURL:    lifecycleURL,
		clientState:     in.ClientState,
		expiration:      exp,
		tlsVersion:      tlsVersion,
		immutable:       rc.prefs.immutableIDs,
		created:         now,
	}
	e.mu.Lock()
	s.mb, s.resource, aerr = e.resolveResource(*in.Resource)
	if aerr == nil {
		aerr = e.checkSubscriptionLimitsLocked(s, opts)
	}
	e.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	// The handshake runs without the lock: receivers may take seconds.
	if aerr := e.validateEndpoint(r.Context(), s.notificationURL); aerr != nil {
		return aerr
	}
	if s.lifecycleURL != "" {
		if aerr := e.validateEndpoint(r.Context(), s.lifecycleURL); aerr != nil {
			return aerr
		}
	}
	e.mu.Lock()
	if aerr := e.checkSubscriptionLimitsLocked(s, opts); aerr != nil {
		e.mu.Unlock()
		return aerr
	}
	e.subs[s.id] = s
	if e.subsByMb[s.mb.id] == nil {
		e.subsByMb[s.mb.id] = map[string]*subscription{}
	}
	e.subsByMb[s.mb.id][s.id] = s
	out := s.out(true)
	e.mu.Unlock()
	out.ODataContext = e.BaseURL() + "/$metadata#subscriptions/$entity"
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// checkSubscriptionLimitsLocked: one subscription per app, resource and
// changeType (409), and the per-mailbox cap (403).
func (e *Emulator) checkSubscriptionLimitsLocked(s *subscription, opts Options) *apiError {
	e.expireLocked(e.t.Now())
	mine := e.subsByMb[s.mb.id]
	if len(mine) >= opts.SubscriptionsPerMailbox {
		return errorf(403, codeExtensionError, fmt.Sprintf("Operation: Create; Exception: [Status Code: Forbidden; Reason: The mailbox has reached its limit of %d active subscriptions.]", opts.SubscriptionsPerMailbox))
	}
	for _, o := range mine {
		if o.appID == s.appID && maps0eq(o.changes, s.changes) {
			return errorf(409, codeExtensionError, fmt.Sprintf("Subscription Id %s already exists for the requested combination", o.id))
		}
	}
	return nil
}

func maps0eq(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// expireLocked drops subscriptions whose expiration has passed: Graph
// "deletes the subscription and doesn't send notifications".
func (e *Emulator) expireLocked(now time.Time) {
	for _, s := range e.subs {
		if !now.Before(s.expiration) {
			e.removeSubscriptionLocked(s)
			e.counters.subscriptionsExpired.Add(1)
		}
	}
}

func (e *Emulator) removeSubscriptionLocked(s *subscription) {
	delete(e.subs, s.id)
	if m := e.subsByMb[s.mb.id]; m != nil {
		delete(m, s.id)
		if len(m) == 0 {
			delete(e.subsByMb, s.mb.id)
		}
	}
}

// subscriptionLocked finds one of the caller's subscriptions.
func (e *Emulator) subscriptionLocked(id, appID string) (*subscription, *apiError) {
	e.expireLocked(e.t.Now())
	s := e.subs[id]
	if s == nil || s.appID != appID {
		return nil, errorf(404, codeSubNotFound, fmt.Sprintf("The object was not found. Subscription '%s' does not exist.", id))
	}
	return s, nil
}

const subscriptionPageSize = 100

func (e *Emulator) listSubscriptions(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError {
	skip := 0
	if tok, ok := queryParam(r.URL.Query(), "skiptoken"); ok {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 {
			return errorf(400, codeBadRequest, "Invalid $skiptoken.")
		}
		skip = n
	}
	size := subscriptionPageSize
	if rc.prefs.maxPageSize > 0 {
		size = rc.prefs.maxPageSize
	}
	e.mu.Lock()
	e.expireLocked(e.t.Now())
	var mine []*subscription
	for _, s := range e.subs {
		if s.appID == rc.claims.AppID {
			mine = append(mine, s)
		}
	}
	sort.Slice(mine, func(i, j int) bool {
		if !mine[i].created.Equal(mine[j].created) {
			return mine[i].created.Before(mine[j].created)
		}
		return mine[i].id < mine[j].id
	})
	var items []json.RawMessage
	for i := skip; i < len(mine) && i < skip+size; i++ {
		raw, _ := json.Marshal(mine[i].out(false))
		items = append(items, raw)
	}
	more := skip+size < len(mine)
	e.mu.Unlock()
	next := ""
	if more {
		next = e.BaseURL() + "/subscriptions?$skiptoken=" + strconv.Itoa(skip+size)
	}
	writeCollection(w, e.BaseURL()+"/$metadata#subscriptions", nonNil(items), next, "")
	return nil
}

func (e *Emulator) getSubscription(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError {
	e.mu.Lock()
	s, aerr := e.subscriptionLocked(r.PathValue("sid"), rc.claims.AppID)
	var out subscriptionOut
	if aerr == nil {
		out = s.out(false)
	}
	e.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	out.ODataContext = e.BaseURL() + "/$metadata#subscriptions/$entity"
	writeJSON(w, http.StatusOK, out)
	return nil
}

// updateSubscription renews (expirationDateTime) and/or moves
// (notificationUrl, validated again). A PATCH also reauthorizes.
func (e *Emulator) updateSubscription(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError {
	in, aerr := decodeSubscriptionIn(r)
	if aerr != nil {
		return aerr
	}
	id := r.PathValue("sid")
	e.mu.Lock()
	s, aerr := e.subscriptionLocked(id, rc.claims.AppID)
	var cur subscription
	if aerr == nil {
		cur = *s
	}
	e.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	if in.LifecycleNotificationURL != nil && *in.LifecycleNotificationURL != cur.lifecycleURL {
		return errorf(400, codeInvalidRequest, "lifecycleNotificationUrl can't be added or changed on an existing subscription: delete it and create a new one.")
	}
	unchangeable := []struct {
		name string
		v    *string
		cur  string
	}{{"resource", in.Resource, cur.resource}, {"changeType", in.ChangeType, cur.changeType}}
	for _, u := range unchangeable {
		if u.v != nil && strings.TrimPrefix(*u.v, "/") != u.cur {
			return errorf(400, codeInvalidRequest, fmt.Sprintf("The property '%s' of a subscription can't be updated.", u.name))
		}
	}
	now := e.t.Now()
	exp := cur.expiration
	if in.ExpirationDateTime != nil {
		if exp, aerr = checkExpiration(*in.ExpirationDateTime, now, e.options()); aerr != nil {
			return aerr
		}
	}
	newURL := cur.notificationURL
	if in.NotificationURL != nil && *in.NotificationURL != cur.notificationURL {
		newURL = *in.NotificationURL
		if aerr := checkNotificationURL("notificationUrl", newURL); aerr != nil {
			return aerr
		}
		if aerr := e.validateEndpoint(r.Context(), newURL); aerr != nil {
			return aerr
		}
	}
	e.mu.Lock()
	s, aerr = e.subscriptionLocked(id, rc.claims.AppID)
	if aerr != nil {
		e.mu.Unlock()
		return aerr
	}
	s.expiration, s.notificationURL, s.lastReauth = exp, newURL, time.Time{}
	out := s.out(false)
	e.mu.Unlock()
	out.ODataContext = e.BaseURL() + "/$metadata#subscriptions/$entity"
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (e *Emulator) deleteSubscription(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, aerr := e.subscriptionLocked(r.PathValue("sid"), rc.claims.AppID)
	if aerr != nil {
		return aerr
	}
	e.removeSubscriptionLocked(s)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (e *Emulator) reauthorizeSubscription(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, aerr := e.subscriptionLocked(r.PathValue("sid"), rc.claims.AppID)
	if aerr != nil {
		return aerr
	}
	s.lastReauth = time.Time{}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// notifyLocked queues a change notification for every live subscription on
// the mailbox that asked for changeType.
func (e *Emulator) notifyLocked(mb *mailbox, changeType string, in instance) {
	subs := e.subsByMb[mb.id]
	if len(subs) == 0 {
		return
	}
	now := e.t.Now()
	tenantID := e.t.Config().TenantID
	etag := etagFor(changeKeyFor(mb.id, in.ev.seq))
	for _, s := range subs {
		if !s.changes[changeType] || !now.Before(s.expiration) {
			continue
		}
		id := in.ref(mb).id(s.immutable)
		res := "Users/" + mb.user.ID + "/Events/" + id
		n := changeNotification{
			ID:                             randomToken(9),
			SubscriptionID:                 s.id,
			SubscriptionExpirationDateTime: formatTime(s.expiration),
			ClientState:                    s.clientState,
			ChangeType:                     changeType,
			Resource:                       res,
			TenantID:                       tenantID,
			ResourceData:                   &resourceData{ODataType: "#Microsoft.Graph.Event", ODataID: res, ODataETag: etag, ID: id},
		}
		if overflow := e.delivery.enqueue(s.notificationURL, false, s.id, n); overflow {
			e.lifecycleLocked(s, "missed")
		}
	}
}

// lifecycleLocked queues a lifecycle notification; false if the
// subscription has no lifecycleNotificationUrl.
func (e *Emulator) lifecycleLocked(s *subscription, event string) bool {
	if s.lifecycleURL == "" {
		return false
	}
	n := changeNotification{
		SubscriptionID:                 s.id,
		SubscriptionExpirationDateTime: formatTime(s.expiration),
		TenantID:                       e.t.Config().TenantID,
		ClientState:                    s.clientState,
		LifecycleEvent:                 event,
	}
	e.delivery.enqueue(s.lifecycleURL, true, s.id, n)
	return true
}

// subscriptionLive reports whether change notifications for id may still
// be delivered.
func (e *Emulator) subscriptionLive(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.subs[id]
	return s != nil && e.t.Now().Before(s.expiration)
}

// sweep expires subscriptions and sends reauthorizationRequired ahead of
// expiry, every SweepInterval.
func (e *Emulator) sweep() {
	defer e.wg.Done()
	for {
		tm := time.NewTimer(e.options().SweepInterval)
		select {
		case <-e.stop:
			tm.Stop()
			return
		case <-tm.C:
		}
		e.mu.Lock()
		e.sweepLocked(e.t.Now())
		e.mu.Unlock()
	}
}

func (e *Emulator) sweepLocked(now time.Time) {
	opts := e.options()
	e.expireLocked(now)
	for _, s := range e.subs {
		if s.lifecycleURL == "" || now.Before(s.expiration.Add(-opts.ReauthorizationLead)) {
			continue
		}
		if s.lastReauth.IsZero() || now.Sub(s.lastReauth) >= opts.ReauthorizationInterval {
			s.lastReauth = now
			e.lifecycleLocked(s, "reauthorizationRequired")
		}
	}
}
