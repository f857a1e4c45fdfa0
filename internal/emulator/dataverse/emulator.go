// Package dataverse emulates the Dataverse Web API (v9.2) of a Dynamics 365
// Field Service organization for bookingsync's tests and sandbox: the
// scheduling tables, OData queries, optimistic concurrency, change tracking,
// webhook registration and delivery, service-protection limits and
// privilege errors. Facts and their sources are in
// shared/reference/dataverse-api.md; deviations are listed in
// docs/emulator.md (## Dataverse).
package dataverse

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

// APIPath is where the Web API is served on the tenant's listener; the org
// URL is {BaseURL}/dataverse.
const (
	OrgPath = "/dataverse"
	APIPath = OrgPath + "/api/data/v9.2"
)

// Options configure the emulator.
type Options struct {
	// Columns names the opt-in columns on bookableresource.
	Columns CustomColumns
	// FreshOrg seeds the organization as it is before `bookingsync
	// dataverse setup`: without the custom columns and with change
	// tracking off for bookableresourcebooking and bookableresource.
	FreshOrg bool
	// WebhookClient posts webhooks; nil means a client of our own.
	// Tests inject an in-memory transport.
	WebhookClient *http.Client
}

// Emulator is the Dataverse section of the emulated tenant.
type Emulator struct {
	t       *tenant.Tenant
	opts    Options
	log     *slog.Logger
	orgURL  string
	apiBase string

	mu     sync.Mutex // guards everything below up to cfgMu
	tables map[string]*table
	bySet  map[string]*table
	rows   map[string]map[string]*row
	// indexes are GUID-column indexes by table and column (index.go).
	indexes map[string]guidIndex
	version int64
	changes []change
	seeding bool
	orgID   string
	buID    string
	appUser string

	cfgMu    sync.Mutex
	faults   faultState
	settings settingsState
	inflight map[string]int

	routes  tenant.Counter
	sent    atomic.Int64
	dropped atomic.Int64
	retries atomic.Int64
	failed  atomic.Int64

	hooks    *deliverer
	observer atomic.Pointer[Observer] // see Observe
}

var _ tenant.Section = (*Emulator)(nil)

// New builds the emulator. t.BaseURL() must already be set; the org URL is
// registered as a token audience.
func New(t *tenant.Tenant, opts Options, logger *slog.Logger) *Emulator {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts.Columns.fill()
	e := &Emulator{
		t: t, opts: opts, log: logger,
		orgURL:   t.BaseURL() + OrgPath,
		apiBase:  t.BaseURL() + APIPath,
		settings: defaultSettings(),
		inflight: map[string]int{},
		// Row versions start high, as in a used org, and stay monotonic
		// across resets so old delta tokens never look newer than they are.
		version: 1_000_000,
	}
	t.RegisterAudience(e.orgURL)
	e.hooks = newDeliverer(e, opts.WebhookClient)
	if err := e.Reset("empty"); err != nil {
		panic(err) // seeding fixed data cannot fail
	}
	return e
}

// Name implements tenant.Section.
func (e *Emulator) Name() string { return "dataverse" }

// OrgURL is the organization URL clients are configured with.
func (e *Emulator) OrgURL() string { return e.orgURL }

// APIBase is {OrgURL}/api/data/v9.2.
func (e *Emulator) APIBase() string { return e.apiBase }

// Scope is the client-credentials scope for the org.
func (e *Emulator) Scope() string { return e.orgURL + "/.default" }

// AppUserID is the systemuserid of the application user the client's
// token maps to (WhoAmI's UserId).
func (e *Emulator) AppUserID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.appUser
}

// Info implements tenant.Section.
func (e *Emulator) Info() map[string]string {
	return map[string]string{
		"dataverse_base_url": e.apiBase,
		"dataverse_org_url":  e.orgURL,
		"dataverse_scope":    e.Scope(),
	}
}

// Stats implements tenant.Section.
func (e *Emulator) Stats() (map[string]int64, map[string]int64) {
	return e.routes.Snapshot(), map[string]int64{
		"webhooks_sent":    e.sent.Load(),
		"webhooks_dropped": e.dropped.Load(),
		"webhook_retries":  e.retries.Load(),
		"webhooks_failed":  e.failed.Load(),
	}
}

// Close stops webhook delivery.
func (e *Emulator) Close() { e.hooks.close() }

// Mount registers the Web API under /dataverse/api/data/v9.2/.
func (e *Emulator) Mount(mux *http.ServeMux) {
	mux.HandleFunc(APIPath+"/", e.serveAPI)
	mux.HandleFunc(APIPath, e.serveAPI)
}

func (e *Emulator) now() time.Time { return e.t.Now().UTC().Truncate(time.Second) }

// route is a parsed request path relative to the API base.
type route struct {
	segs     []string
	template string
}

func parseRoute(rel string) route {
	rel = strings.Trim(rel, "/")
	var segs, tmpl []string
	if rel != "" {
		segs = strings.Split(rel, "/")
	}
	for _, s := range segs {
		name, _, hasKey := splitKey(s)
		switch {
		case hasKey && (name == "WhoAmI" || strings.HasSuffix(s, "()")):
			tmpl = append(tmpl, name)
		case hasKey:
			tmpl = append(tmpl, name+"({id})")
		default:
			tmpl = append(tmpl, s)
		}
	}
	return route{segs: segs, template: "/" + strings.Join(tmpl, "/")}
}

func (e *Emulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	rt := parseRoute(strings.TrimPrefix(r.URL.Path, APIPath))
	e.routes.Add(r.Method + " " + rt.template)
	e.observeRequest(r.Method, r.URL.Path, r.Method+" "+rt.template)
	w.Header().Set("OData-Version", "4.0")
	c, aerr := e.authenticate(r)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	w.Header().Set("REQ_ID", c.corr)
	release, aerr := e.admit(c)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	defer release()
	if aerr := e.injectFaults(r.Context()); aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	if aerr := e.dispatch(w, r, rt, c); aerr != nil {
		writeAPIError(w, aerr)
	}
}

// authenticate checks the bearer token for the org audience and works out
// who the request acts as: the application user; a directory user with
// the emulator-only X-Emulator-User header (a dispatcher editing in the
// UI); or an impersonated user with CallerObjectId.
func (e *Emulator) authenticate(r *http.Request) (*caller, *apiError) {
	claims, err := e.t.Authorize(r, e.orgURL)
	if err != nil {
		h := http.Header{}
		h.Set("WWW-Authenticate", `Bearer authorization_uri=`+e.t.AuthorityHost()+e.t.Config().TenantID+`/oauth2/authorize, resource_id=`+e.orgURL)
		return nil, &apiError{Status: http.StatusUnauthorized, Code: "", Header: h,
			Message: "Bearer token is missing, invalid, expired or not issued for " + e.orgURL + "."}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := &caller{userID: e.appUser, initiating: e.appUser, app: true, key: "app:" + claims.AppID,
		tag: r.URL.Query().Get("tag"), corr: tenant.NewGUID()}
	if v := r.Header.Get("X-Emulator-User"); v != "" {
		u := e.findUser(v)
		if u == "" {
			return nil, errf(http.StatusBadRequest, codeInvalidArgument, "X-Emulator-User: no systemuser with systemuserid or azureactivedirectoryobjectid %s", v)
		}
		c.userID, c.initiating, c.app, c.key = u, u, false, "user:"+u
	} else if v := r.Header.Get("CallerObjectId"); v != "" {
		u := e.findUser(v)
		if u == "" {
			return nil, errf(http.StatusBadRequest, codeInvalidArgument, "The user with Azure AD object id %s (CallerObjectId) was not found in the organization.", v)
		}
		c.userID, c.onBehalfBy = u, e.appUser
	}
	return c, nil
}

func (e *Emulator) findUser(id string) string {
	id = strings.ToLower(strings.Trim(id, "{}"))
	if e.get("systemuser", id) != nil {
		return id
	}
	for _, r := range e.rows["systemuser"] {
		if r.vals["azureactivedirectoryobjectid"] == id {
			return r.id
		}
	}
	return ""
}

// dispatch routes a request.
func (e *Emulator) dispatch(w http.ResponseWriter, r *http.Request, rt route, c *caller) *apiError {
	if len(rt.segs) == 0 {
		return e.serviceDocument(w, r)
	}
	first := rt.segs[0]
	name, key, hasKey := splitKey(first)
	switch {
	case first == "$metadata" || first == "$batch":
		return errf(http.StatusNotImplemented, "", "%s is not implemented by the emulator.", first)
	case name == "WhoAmI":
		if r.Method != http.MethodGet {
			return methodNotAllowed(r)
		}
		return e.whoAmI(w, c)
	case name == "EntityDefinitions":
		return e.serveMetadata(w, r, rt, c)
	}
	e.mu.Lock()
	t := e.bySet[name]
	e.mu.Unlock()
	if t == nil {
		return errf(http.StatusNotFound, codeODataParse, "Resource not found for the segment '%s'.", name)
	}
	switch {
	case !hasKey && len(rt.segs) == 1:
		switch r.Method {
		case http.MethodGet:
			return e.list(w, r, t, c)
		case http.MethodPost:
			return e.create(w, r, t, c)
		}
		return methodNotAllowed(r)
	case !hasKey && len(rt.segs) == 2 && rt.segs[1] == "$count" && r.Method == http.MethodGet:
		return e.count(w, r, t, c)
	case hasKey && len(rt.segs) == 1:
		id, err := parseGUID(key)
		if err != nil {
			return badRequest("Bad Request - Error in query syntax: '%s' is not a valid key (only GUID keys are supported by the emulator).", key)
		}
		switch r.Method {
		case http.MethodGet:
			return e.getOne(w, r, t, id, c)
		case http.MethodPatch:
			return e.upsert(w, r, t, id, c)
		case http.MethodDelete:
			return e.deleteOne(w, r, t, id, c)
		}
		return methodNotAllowed(r)
	}
	return errf(http.StatusNotImplemented, "", "The path %s is not implemented by the emulator.", r.URL.Path)
}

func methodNotAllowed(r *http.Request) *apiError {
	return errf(http.StatusMethodNotAllowed, "0x80060888", "The HTTP method '%s' is not allowed for this resource.", r.Method)
}

// writeOData writes a JSON body with the Web API's content type.
func writeOData(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// --- faults, settings, limits ---

type faultState struct {
	ThrottleRate     float64 `json:"throttle_rate"`
	ErrorRate        float64 `json:"error_rate"`
	LatencyMS        int     `json:"latency_ms"`
	DropWebhooksRate float64 `json:"drop_webhooks_rate"`
}

// SetFaults implements tenant.Section: omitted fields stay, {} clears.
func (e *Emulator) SetFaults(raw json.RawMessage) error {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return fmtErr("faults: %w", err)
	}
	var in struct {
		ThrottleRate     *float64 `json:"throttle_rate"`
		ErrorRate        *float64 `json:"error_rate"`
		LatencyMS        *int     `json:"latency_ms"`
		DropWebhooksRate *float64 `json:"drop_webhooks_rate"`
	}
	if err := strictDecode(raw, &in); err != nil {
		return fmtErr("faults: %w", err)
	}
	for name, p := range map[string]*float64{"throttle_rate": in.ThrottleRate, "error_rate": in.ErrorRate, "drop_webhooks_rate": in.DropWebhooksRate} {
		if p != nil && (*p < 0 || *p > 1) {
			return fmtErr("faults: %s must be between 0 and 1", name)
		}
	}
	if in.LatencyMS != nil && *in.LatencyMS < 0 {
		return fmtErr("faults: latency_ms must not be negative")
	}
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	if len(probe) == 0 {
		e.faults = faultState{}
		return nil
	}
	setIf(&e.faults.ThrottleRate, in.ThrottleRate)
	setIf(&e.faults.ErrorRate, in.ErrorRate)
	setIf(&e.faults.LatencyMS, in.LatencyMS)
	setIf(&e.faults.DropWebhooksRate, in.DropWebhooksRate)
	return nil
}

// Faults implements tenant.Section.
func (e *Emulator) Faults() any {
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	return e.faults
}

type settingsState struct {
	MaxConcurrent       int
	WebhookTimeout      time.Duration
	ChangeTrackingDay   time.Duration
	ThrottleRetryAfterS int
	Deny                map[string]map[string]bool // logical name → privilege
}

func defaultSettings() settingsState {
	return settingsState{MaxConcurrent: 52, WebhookTimeout: 60 * time.Second, ChangeTrackingDay: 24 * time.Hour,
		ThrottleRetryAfterS: 5, Deny: map[string]map[string]bool{}}
}

var privileges = map[string]string{"create": "Create", "read": "Read", "write": "Write", "delete": "Delete", "append": "Append", "appendto": "AppendTo"}

// SetSettings implements tenant.Section. Keys:
//
//	expire_change_tracking_days  organization.expirechangetrackingindays (0–365)
//	change_tracking_day_s        seconds in a change-tracking "day" (86400; shrink to compress time)
//	max_concurrent_requests      per-user concurrent request limit (52)
//	webhook_timeout_ms           webhook request timeout (60000)
//	throttle_retry_after_s       Retry-After of injected 429s (5)
//	deny                         {"bookableresourcebookings": ["write", …]} replaces all denials; {} clears
func (e *Emulator) SetSettings(raw json.RawMessage) error {
	var in struct {
		ExpireDays          *int                 `json:"expire_change_tracking_days"`
		DayS                *int                 `json:"change_tracking_day_s"`
		MaxConcurrent       *int                 `json:"max_concurrent_requests"`
		WebhookTimeoutMS    *int                 `json:"webhook_timeout_ms"`
		ThrottleRetryAfterS *int                 `json:"throttle_retry_after_s"`
		Deny                *map[string][]string `json:"deny"`
	}
	if err := strictDecode(raw, &in); err != nil {
		return fmtErr("settings: %w", err)
	}
	positive := map[string]*int{"change_tracking_day_s": in.DayS, "max_concurrent_requests": in.MaxConcurrent,
		"webhook_timeout_ms": in.WebhookTimeoutMS, "throttle_retry_after_s": in.ThrottleRetryAfterS}
	for name, p := range positive {
		if p != nil && *p < 1 {
			return fmtErr("settings: %s must be at least 1", name)
		}
	}
	if in.ExpireDays != nil && (*in.ExpireDays < 0 || *in.ExpireDays > 365) {
		return fmtErr("settings: expire_change_tracking_days must be between 0 and 365")
	}
	var deny map[string]map[string]bool
	if in.Deny != nil {
		deny = map[string]map[string]bool{}
		e.mu.Lock()
		for name, privs := range *in.Deny {
			t := e.bySet[name]
			if t == nil {
				t = e.tables[name]
			}
			if t == nil {
				e.mu.Unlock()
				return fmtErr("settings: deny: unknown table %q (use an entity set or logical name)", name)
			}
			m := map[string]bool{}
			for _, p := range privs {
				if privileges[strings.ToLower(p)] == "" {
					e.mu.Unlock()
					return fmtErr("settings: deny: unknown privilege %q (want create, read, write, delete, append or appendto)", p)
				}
				m[strings.ToLower(p)] = true
			}
			deny[t.Logical] = m
		}
		e.mu.Unlock()
	}
	if in.ExpireDays != nil {
		e.mu.Lock()
		if org := e.org(); org != nil {
			org.vals["expirechangetrackingindays"] = int64(*in.ExpireDays)
		}
		e.mu.Unlock()
	}
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	if in.DayS != nil {
		e.settings.ChangeTrackingDay = time.Duration(*in.DayS) * time.Second
	}
	if in.MaxConcurrent != nil {
		e.settings.MaxConcurrent = *in.MaxConcurrent
	}
	if in.WebhookTimeoutMS != nil {
		e.settings.WebhookTimeout = time.Duration(*in.WebhookTimeoutMS) * time.Millisecond
	}
	if in.ThrottleRetryAfterS != nil {
		e.settings.ThrottleRetryAfterS = *in.ThrottleRetryAfterS
	}
	if deny != nil {
		e.settings.Deny = deny
	}
	return nil
}

// Settings implements tenant.Section.
func (e *Emulator) Settings() any {
	e.mu.Lock()
	days := int64(7)
	if org := e.org(); org != nil {
		days, _ = org.vals["expirechangetrackingindays"].(int64)
	}
	sets := map[string]string{}
	for l, t := range e.tables {
		sets[l] = t.Set
	}
	e.mu.Unlock()
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	deny := map[string][]string{}
	for l, m := range e.settings.Deny {
		for p := range m {
			deny[sets[l]] = append(deny[sets[l]], p)
		}
	}
	return map[string]any{
		"expire_change_tracking_days": days,
		"change_tracking_day_s":       int(e.settings.ChangeTrackingDay / time.Second),
		"max_concurrent_requests":     e.settings.MaxConcurrent,
		"webhook_timeout_ms":          int(e.settings.WebhookTimeout / time.Millisecond),
		"throttle_retry_after_s":      e.settings.ThrottleRetryAfterS,
		"deny":                        deny,
	}
}

func (e *Emulator) org() *row {
	for _, r := range e.rows["organization"] {
		return r
	}
	return nil
}

// admit enforces the per-user concurrent request limit; concurrency
// violations fail at once (reference §5).
func (e *Emulator) admit(c *caller) (func(), *apiError) {
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	limit := e.settings.MaxConcurrent
	if e.inflight[c.key] >= limit {
		return nil, throttled(codeThrottleConcurrcy, e.settings.ThrottleRetryAfterS,
			"Number of concurrent requests exceeded the limit of "+itoa(limit)+".")
	}
	e.inflight[c.key]++
	return func() {
		e.cfgMu.Lock()
		e.inflight[c.key]--
		e.cfgMu.Unlock()
	}, nil
}

// injectFaults applies the configured throttling, errors and latency.
func (e *Emulator) injectFaults(ctx context.Context) *apiError {
	e.cfgMu.Lock()
	f, retry := e.faults, e.settings.ThrottleRetryAfterS
	e.cfgMu.Unlock()
	if f.ThrottleRate > 0 && rand.Float64() < f.ThrottleRate {
		if rand.IntN(2) == 0 {
			return throttled(codeThrottleRequests, retry, "Number of requests exceeded the limit of 6000 over time window of 300 seconds.")
		}
		return throttled(codeThrottleExecTime, retry, "Combined execution time of incoming requests exceeded limit of 1,200,000 milliseconds over time window of 300 seconds. Decrease number of concurrent requests or reduce the duration of requests and try again later.")
	}
	if f.ErrorRate > 0 && rand.Float64() < f.ErrorRate {
		return errf(http.StatusInternalServerError, codeUnexpected, "An unexpected error occurred.")
	}
	if f.LatencyMS > 0 {
		tm := time.NewTimer(time.Duration(f.LatencyMS) * time.Millisecond)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
		}
	}
	return nil
}

// checkPriv answers 403 PrivilegeDenied when the application user's role
// has been configured (settings deny) to lack the privilege on the table.
func (e *Emulator) checkPriv(c *caller, t *table, priv string) *apiError {
	if !c.app {
		return nil
	}
	e.cfgMu.Lock()
	denied := e.settings.Deny[t.Logical][priv]
	e.cfgMu.Unlock()
	if !denied {
		return nil
	}
	name := "prv" + privileges[priv] + t.Logical
	return errf(http.StatusForbidden, codePrivilegeDenied,
		"Principal user (Id=%s, type=8, roleCount=1, privilegeCount=412, accessMode=4), is missing %s privilege (Id=%s) on OTC=%d for entity '%s'. context: The principal user (Id=%s) is missing the privilege in its security role.",
		c.initiating, name, stableID("privilege", name), t.OTC, t.Logical, c.initiating)
}

func (e *Emulator) serviceDocument(w http.ResponseWriter, r *http.Request) *apiError {
	if r.Method != http.MethodGet {
		return methodNotAllowed(r)
	}
	e.mu.Lock()
	var sets []map[string]string
	for _, t := range sortedTables(e.tables) {
		sets = append(sets, map[string]string{"name": t.Set, "kind": "EntitySet", "url": t.Set})
	}
	e.mu.Unlock()
	writeOData(w, http.StatusOK, map[string]any{"@odata.context": e.apiBase + "/$metadata", "value": sets})
	return nil
}

func (e *Emulator) whoAmI(w http.ResponseWriter, c *caller) *apiError {
	e.mu.Lock()
	out := map[string]any{
		"@odata.context": e.apiBase + "/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
		"BusinessUnitId": e.buID,
		"UserId":         c.userID,
		"OrganizationId": e.orgID,
	}
	e.mu.Unlock()
	writeOData(w, http.StatusOK, out)
	return nil
}

// absURL turns a request into its absolute URL on the org host.
func (e *Emulator) absURL(r *http.Request) *url.URL {
	u := *r.URL
	base, _ := url.Parse(e.t.BaseURL())
	u.Scheme, u.Host = base.Scheme, base.Host
	return &u
}
