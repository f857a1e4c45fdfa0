package d365

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	stdsync "sync"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	dvemu "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

const testBase = "https://dv.example.test"

// env is an in-process Dataverse emulator (demo seed) with a client and a
// Source against it; requests go through an in-memory transport.
type env struct {
	t    *testing.T
	ctx  context.Context
	tn   *tenant.Tenant
	emu  *dvemu.Emulator
	c    *dataverse.Client
	src  *Source
	doer *muxDoer
}

// muxDoer serves requests with the emulator's handler and signs each with a
// fresh token, so advancing the tenant clock never expires the caller.
// It logs each request, and may run a hook after the emulator has answered
// and before the caller sees the answer (to interleave another writer).
type muxDoer struct {
	h   http.Handler
	tn  *tenant.Tenant
	aud string

	mu     stdsync.Mutex
	log    []string // "METHOD /path?query", relative to the API base
	after  func(r *http.Request)
	inHook bool
}

func (d *muxDoer) Do(r *http.Request) (*http.Response, error) {
	tok, _ := d.tn.Issue(d.aud)
	r.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	d.h.ServeHTTP(rec, r)
	d.mu.Lock()
	hook := d.after
	if d.inHook {
		hook = nil // requests the hook makes are neither logged nor hooked
	} else {
		d.log = append(d.log, r.Method+" "+r.URL.RequestURI())
	}
	if hook != nil {
		d.inHook = true
	}
	d.mu.Unlock()
	if hook != nil {
		hook(r)
		d.mu.Lock()
		d.inHook = false
		d.mu.Unlock()
	}
	return rec.Result(), nil
}

// record returns the requests fn made (not those of a hook), and runs
// after once per request fn makes.
func (e *env) record(after func(r *http.Request), fn func()) []string {
	d := e.doer
	d.mu.Lock()
	d.log, d.after = nil, after
	d.mu.Unlock()
	fn()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.log
	d.log, d.after = nil, nil
	return out
}

func newEnv(t *testing.T, pageSize int) *env {
	t.Helper()
	return newEnvWith(t, pageSize, dvemu.Options{})
}

// newEnvWith is newEnv with emulator options (e.g. a webhook client).
func newEnvWith(t *testing.T, pageSize int, opts dvemu.Options) *env {
	t.Helper()
	tn := tenant.New(tenant.Config{})
	tn.SetBaseURL(testBase)
	emu := dvemu.New(tn, opts, nil)
	t.Cleanup(emu.Close)
	if err := emu.Reset("demo"); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	emu.Mount(mux)
	doer := &muxDoer{h: mux, tn: tn, aud: emu.OrgURL()}
	c, err := dataverse.New(dataverse.Options{
		APIBase:  emu.APIBase(),
		Scope:    emu.Scope(),
		Doer:     doer,
		PageSize: pageSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: context.Background(), tn: tn, emu: emu, c: c, src: New(c, Options{}), doer: doer}
}

// calls returns the emulator's per-route request counters.
func (e *env) calls() map[string]int64 {
	routes, _ := e.emu.Stats()
	return routes
}

// delta reports how many requests per route fn made.
func (e *env) delta(fn func()) map[string]int64 {
	before := e.calls()
	fn()
	out := map[string]int64{}
	for k, v := range e.calls() {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func (e *env) create(set string, body dataverse.Body) string {
	e.t.Helper()
	id, err := e.c.Create(e.ctx, set, body)
	if err != nil {
		e.t.Fatalf("create %s: %v", set, err)
	}
	return id
}

func (e *env) bind(body dataverse.Body, nav, set, id string) dataverse.Body {
	e.t.Helper()
	if err := body.Bind(nav, set, id); err != nil {
		e.t.Fatal(err)
	}
	return body
}

// workOrder creates an account, an incident type and a work order.
func (e *env) workOrder(number string) string {
	e.t.Helper()
	acc := e.create("accounts", dataverse.Body{"name": "Contoso Ltd"})
	inc := e.create("msdyn_incidenttypes", dataverse.Body{"msdyn_name": "Repair boiler"})
	body := dataverse.Body{
		"msdyn_name": number, "msdyn_addressname": "Head office", "msdyn_address1": "1 Main St",
		"msdyn_address2": "Floor 2", "msdyn_city": "Springfield", "msdyn_stateorprovince": "IL",
		"msdyn_postalcode": "62701", "msdyn_country": "US", "msdyn_workordersummary": "Boiler leaks",
		"msdyn_instructions": "Ring twice <b>loud</b>",
	}
	e.bind(body, "msdyn_serviceaccount", "accounts", acc)
	e.bind(body, "msdyn_primaryincidenttype", "msdyn_incidenttypes", inc)
	return e.create(dataverse.SetWorkOrders, body)
}

// booking creates a booking; workOrder may be "".
func (e *env) booking(resource, status, name string, start, end time.Time, workOrder string) string {
	e.t.Helper()
	body := dataverse.Body{"name": name, "starttime": wireTime(start), "endtime": wireTime(end)}
	e.bind(body, dataverse.NavBookingResource, dataverse.SetResources, resource)
	e.bind(body, dataverse.NavBookingStatus, dataverse.SetBookingStatuses, status)
	if workOrder != "" {
		e.bind(body, dataverse.NavBookingWorkOrder, dataverse.SetWorkOrders, workOrder)
	}
	return e.create(dataverse.SetBookings, body)
}

// raw reads a booking with the client directly, for versions and etags.
func (e *env) raw(id string) *dataverse.Booking {
	e.t.Helper()
	b, err := e.c.GetBooking(e.ctx, id)
	if err != nil {
		e.t.Fatalf("get booking %s: %v", id, err)
	}
	return b
}

func (e *env) update(set, id string, body dataverse.Body) {
	e.t.Helper()
	if err := e.c.Update(e.ctx, set, id, body, ""); err != nil {
		e.t.Fatalf("update %s %s: %v", set, id, err)
	}
}

func (e *env) settings(v map[string]any) {
	e.t.Helper()
	raw, _ := json.Marshal(v)
	if err := e.emu.SetSettings(raw); err != nil {
		e.t.Fatal(err)
	}
}

func technician(i int) string { return dvemu.ResourceID(tenant.Technicians()[i].ID) }

func statusID(name string) string { return dvemu.BookingStatusID(name) }

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
