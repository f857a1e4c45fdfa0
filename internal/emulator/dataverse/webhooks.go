package dataverse

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

// Webhooks: a serviceendpoint (contract 8) plus sdkmessageprocessingstep
// rows bound to it through eventhandler_serviceendpoint, with optional
// sdkmessageprocessingstepimage rows — registered through the Web API as
// the Plug-in Registration Tool would (reference §4 marks this path as
// [inference]). Every write to a table runs the matching steps; the POST
// happens asynchronously on the deliverer's goroutine.

// maxWebhookBody is the documented 256 KB limit above which ParentContext,
// InputParameters and the images are dropped.
const maxWebhookBody = 256 * 1024

const (
	xrmContracts = "http://schemas.microsoft.com/xrm/2011/Contracts"
)

type kv struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

type entityRef struct {
	Type          string  `json:"__type,omitempty"`
	ID            string  `json:"Id"`
	KeyAttributes []kv    `json:"KeyAttributes"`
	LogicalName   string  `json:"LogicalName"`
	Name          *string `json:"Name"`
	RowVersion    *string `json:"RowVersion"`
}

type sdkEntity struct {
	Type            string  `json:"__type,omitempty"`
	Attributes      []kv    `json:"Attributes"`
	EntityState     any     `json:"EntityState"`
	FormattedValues []kv    `json:"FormattedValues"`
	ID              string  `json:"Id"`
	KeyAttributes   []kv    `json:"KeyAttributes"`
	LogicalName     string  `json:"LogicalName"`
	RelatedEntities []kv    `json:"RelatedEntities"`
	RowVersion      *string `json:"RowVersion"`
}

// remoteContext is Microsoft.Xrm.Sdk.RemoteExecutionContext as serialised
// in the documented webhook example (field names and order as there).
type remoteContext struct {
	BusinessUnitID      string         `json:"BusinessUnitId"`
	CorrelationID       string         `json:"CorrelationId"`
	Depth               int            `json:"Depth"`
	InitiatingUserID    string         `json:"InitiatingUserId"`
	InputParameters     []kv           `json:"InputParameters"`
	IsExecutingOffline  bool           `json:"IsExecutingOffline"`
	IsInTransaction     bool           `json:"IsInTransaction"`
	IsOfflinePlayback   bool           `json:"IsOfflinePlayback"`
	IsolationMode       int            `json:"IsolationMode"`
	MessageName         string         `json:"MessageName"`
	Mode                int            `json:"Mode"`
	OperationCreatedOn  string         `json:"OperationCreatedOn"`
	OperationID         string         `json:"OperationId"`
	OrganizationID      string         `json:"OrganizationId"`
	OrganizationName    string         `json:"OrganizationName"`
	OutputParameters    []kv           `json:"OutputParameters"`
	OwningExtension     entityRef      `json:"OwningExtension"`
	ParentContext       *remoteContext `json:"ParentContext"`
	PostEntityImages    []kv           `json:"PostEntityImages"`
	PreEntityImages     []kv           `json:"PreEntityImages"`
	PrimaryEntityID     string         `json:"PrimaryEntityId"`
	PrimaryEntityName   string         `json:"PrimaryEntityName"`
	RequestID           *string        `json:"RequestId"`
	SecondaryEntityName string         `json:"SecondaryEntityName"`
	SharedVariables     []kv           `json:"SharedVariables"`
	Stage               int            `json:"Stage"`
	UserID              string         `json:"UserId"`
}

func wcfDate(t time.Time) string { return fmt.Sprintf("/Date(%d)/", t.UnixMilli()) }

// sdkValue converts a stored value to its DataContract JSON form.
func (e *Emulator) sdkValue(c *column, v any, withNames bool) any {
	if v == nil {
		return nil
	}
	switch c.Kind {
	case kDateTime:
		return wcfDate(v.(time.Time))
	case kChoice, kState, kStatus:
		return map[string]any{"__type": "OptionSetValue:" + xrmContracts, "Value": v}
	case kLookup, kOwner:
		id := v.(string)
		tg := e.lookupTarget(c, id)
		ref := entityRef{Type: "EntityReference:" + xrmContracts, ID: id, KeyAttributes: []kv{}, LogicalName: tg.Entity}
		if withNames {
			if n, ok := e.formatted(c, v); ok {
				ref.Name = &n
			}
		}
		return ref
	}
	return v
}

// sdkEntityOf builds an Entity with the named columns (all with a value
// when names is nil).
func (e *Emulator) sdkEntityOf(t *table, r *row, names []string, typed, images bool) sdkEntity {
	ent := sdkEntity{Attributes: []kv{}, FormattedValues: []kv{}, ID: r.id, KeyAttributes: []kv{}, LogicalName: t.Logical, RelatedEntities: []kv{}}
	if typed {
		ent.Type = "Entity:" + xrmContracts
	}
	cols := t.Columns
	if names != nil {
		cols = nil
		for _, n := range names {
			if c := t.col(n); c != nil {
				cols = append(cols, c)
			}
		}
	}
	for _, c := range cols {
		v, ok := r.vals[c.Name]
		if names == nil && !ok {
			continue
		}
		ent.Attributes = append(ent.Attributes, kv{Key: c.Name, Value: e.sdkValue(c, v, images)})
		if images && v != nil && c.Kind.isChoice() {
			if fv, ok := e.formatted(c, v); ok {
				ent.FormattedValues = append(ent.FormattedValues, kv{Key: c.Name, Value: fv})
			}
		}
	}
	return ent
}

type step struct {
	id, name   string
	stage      int
	mode       int
	rank       int64
	endpoint   *row
	filterAttr []string
}

// matchingSteps finds enabled steps for the message on the table whose
// handler is a webhook endpoint. Callers hold e.mu.
func (e *Emulator) matchingSteps(op writeOp) []step {
	var msgID string
	for _, m := range e.rows["sdkmessage"] {
		if strings.EqualFold(fmt.Sprint(m.vals["name"]), op.message) {
			msgID = m.id
		}
	}
	var out []step
	for _, s := range e.rows["sdkmessageprocessingstep"] {
		if s.vals["sdkmessageid"] != msgID || s.vals["statecode"] != int64(0) {
			continue
		}
		if f, ok := s.vals["sdkmessagefilterid"].(string); ok {
			fr := e.get("sdkmessagefilter", f)
			if fr == nil || fr.vals["primaryobjecttypecode"] != op.table.Logical {
				continue
			}
		}
		epID, _ := s.vals["eventhandler"].(string)
		ep := e.get("serviceendpoint", epID)
		if ep == nil || ep.vals["contract"] != int64(8) {
			continue
		}
		st := step{id: s.id, endpoint: ep.clone()}
		st.name, _ = s.vals["name"].(string)
		if v, ok := s.vals["stage"].(int64); ok {
			st.stage = int(v)
		}
		if v, ok := s.vals["mode"].(int64); ok {
			st.mode = int(v)
		}
		st.rank, _ = s.vals["rank"].(int64)
		if a, _ := s.vals["filteringattributes"].(string); a != "" && op.message == "Update" {
			st.filterAttr = splitList(a)
			hit := false
			for _, n := range st.filterAttr {
				if contains(op.submitted, n) {
					hit = true
				}
			}
			if !hit {
				continue
			}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].rank != out[j].rank {
			return out[i].rank < out[j].rank
		}
		return out[i].id < out[j].id
	})
	return out
}

// fire runs the webhook steps matching a write. Callers hold e.mu; the
// body is built now (so images show the row as of this write) and posted
// later by the deliverer.
func (e *Emulator) fire(op writeOp) {
	if e.seeding {
		return
	}
	queued := 0
	for _, st := range e.matchingSteps(op) {
		d, err := e.buildDelivery(op, st)
		if err != nil {
			e.log.Error("build webhook", "step", st.id, "err", err)
			continue
		}
		e.hooks.enqueue(d)
		queued++
	}
	e.observeWrite(op, queued)
}

func (e *Emulator) images(op writeOp, st step) (pre, post []kv) {
	pre, post = []kv{}, []kv{}
	for _, im := range e.rows["sdkmessageprocessingstepimage"] {
		if im.vals["sdkmessageprocessingstepid"] != st.id {
			continue
		}
		typ, _ := im.vals["imagetype"].(int64)
		alias, _ := im.vals["entityalias"].(string)
		var names []string
		if a, _ := im.vals["attributes"].(string); a != "" {
			names = splitList(a)
		}
		if (typ == 0 || typ == 2) && op.pre != nil {
			pre = append(pre, kv{Key: alias, Value: e.sdkEntityOf(op.table, op.pre, names, false, true)})
		}
		if (typ == 1 || typ == 2) && op.post != nil && op.message != "Delete" {
			post = append(post, kv{Key: alias, Value: e.sdkEntityOf(op.table, op.post, names, false, true)})
		}
	}
	sort.Slice(pre, func(i, j int) bool { return pre[i].Key < pre[j].Key })
	sort.Slice(post, func(i, j int) bool { return post[i].Key < post[j].Key })
	return pre, post
}

func (e *Emulator) target(op writeOp) any {
	t := op.table
	switch op.message {
	case "Delete":
		return entityRef{Type: "EntityReference:" + xrmContracts, ID: op.pre.id, KeyAttributes: []kv{}, LogicalName: t.Logical}
	case "Create":
		return e.sdkEntityOf(t, op.post, nil, true, false)
	}
	// Update: the submitted columns, the key and the audit columns the
	// platform adds, as in the documented example.
	names := append([]string(nil), op.submitted...)
	names = append(names, t.PrimaryID, "modifiedon", "modifiedby", "modifiedonbehalfby")
	return e.sdkEntityOf(t, op.post, names, true, false)
}

type delivery struct {
	url    string
	header http.Header
	body   []byte
}

func (e *Emulator) buildDelivery(op writeOp, st step) (delivery, error) {
	t := op.table
	id := ""
	if op.post != nil {
		id = op.post.id
	} else {
		id = op.pre.id
	}
	pre, post := e.images(op, st)
	owning := entityRef{ID: st.id, KeyAttributes: []kv{}, LogicalName: "sdkmessageprocessingstep"}
	in := []kv{{Key: "Target", Value: e.target(op)}}
	var out []kv
	if op.message == "Create" {
		out = []kv{{Key: "id", Value: id}}
	}
	shared := []kv{}
	if op.caller.tag != "" {
		shared = append(shared, kv{Key: "tag", Value: op.caller.tag})
	}
	created := fmt.Sprintf("/Date(%d+0000)/", op.at.UnixMilli())
	opID := tenant.NewGUID()
	ctx := &remoteContext{
		BusinessUnitID: e.buID, CorrelationID: op.caller.corr, Depth: 1, InitiatingUserID: op.caller.initiating,
		InputParameters: in, IsolationMode: 1, MessageName: op.message, Mode: st.mode, OperationCreatedOn: created,
		OperationID: opID, OrganizationID: e.orgID, OrganizationName: e.orgName(), OutputParameters: nonNil(out),
		OwningExtension: owning, PostEntityImages: post, PreEntityImages: pre, PrimaryEntityID: id,
		PrimaryEntityName: t.Logical, SecondaryEntityName: "none", SharedVariables: shared, Stage: st.stage, UserID: op.caller.userID,
	}
	parentIn := []kv{{Key: "Target", Value: e.target(op)}}
	if op.message != "Delete" {
		parentIn = append(parentIn, kv{Key: "SuppressDuplicateDetection", Value: false})
	}
	ctx.ParentContext = &remoteContext{
		BusinessUnitID: e.buID, CorrelationID: op.caller.corr, Depth: 1, InitiatingUserID: op.caller.initiating,
		InputParameters: parentIn, IsolationMode: 1, MessageName: op.message, Mode: st.mode, OperationCreatedOn: created,
		OperationID: opID, OrganizationID: e.orgID, OrganizationName: e.orgName(), OutputParameters: nonNil(out),
		OwningExtension: owning, PostEntityImages: []kv{}, PreEntityImages: []kv{}, PrimaryEntityID: id,
		PrimaryEntityName: t.Logical, SecondaryEntityName: "none", Stage: 30, UserID: op.caller.userID,
		SharedVariables: []kv{{Key: "ChangedEntityTypes", Value: []map[string]string{
			{"__type": "KeyValuePairOfstringstring:#System.Collections.Generic", "key": t.Logical, "value": op.message}}}},
	}
	body, err := json.Marshal(ctx)
	if err != nil {
		return delivery{}, fmt.Errorf("marshal context: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("x-request-id", tenant.NewGUID())
	if u, err := url.Parse(e.orgURL); err == nil {
		h.Set("x-ms-dynamics-organization", u.Host)
	}
	h.Set("x-ms-dynamics-entity-name", t.Logical)
	h.Set("x-ms-dynamics-request-name", op.message)
	h.Set("x-ms-correlation-request-id", op.caller.corr)
	if len(body) > maxWebhookBody {
		ctx.ParentContext, ctx.InputParameters, ctx.PreEntityImages, ctx.PostEntityImages = nil, []kv{}, []kv{}, []kv{}
		if body, err = json.Marshal(ctx); err != nil {
			return delivery{}, fmt.Errorf("marshal context: %w", err)
		}
		h.Set("x-ms-dynamics-msg-size-exceeded", "true")
	}
	target, err := endpointURL(st.endpoint, h)
	if err != nil {
		return delivery{}, err
	}
	return delivery{url: target, header: h, body: body}, nil
}

func nonNil(v []kv) []kv {
	if v == nil {
		return []kv{}
	}
	return v
}

func (e *Emulator) orgName() string { return "org" + strings.ReplaceAll(e.orgID, "-", "")[:8] }

type authSettings struct {
	Settings []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	} `xml:"setting"`
}

// parseAuthSettings reads the HttpHeader/HttpQueryString authvalue the
// Plug-in Registration Tool stores: <settings><setting name="k" value="v" /></settings>
// [inference from the tool's behaviour; the docs show only key/value pairs].
func parseAuthSettings(s string) ([][2]string, error) {
	var as authSettings
	if err := xml.Unmarshal([]byte(s), &as); err != nil {
		return nil, fmt.Errorf("parse settings: %w", err)
	}
	if len(as.Settings) == 0 {
		return nil, errors.New("no <setting> elements")
	}
	out := make([][2]string, 0, len(as.Settings))
	for _, st := range as.Settings {
		if st.Name == "" {
			return nil, errors.New("a <setting> lacks a name")
		}
		out = append(out, [2]string{st.Name, st.Value})
	}
	return out, nil
}

// endpointURL applies the endpoint's authentication: ?code= (WebhookKey),
// headers (HttpHeader) or query parameters (HttpQueryString).
func endpointURL(ep *row, h http.Header) (string, error) {
	raw, _ := ep.vals["url"].(string)
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("webhook url %q: %w", raw, err)
	}
	auth, _ := ep.vals["authtype"].(int64)
	av, _ := ep.vals["authvalue"].(string)
	q := u.Query()
	switch auth {
	case 4:
		q.Set("code", av)
	case 5, 6:
		pairs, err := parseAuthSettings(av)
		if err != nil {
			return "", err
		}
		for _, p := range pairs {
			if auth == 5 {
				h.Set(p[0], p[1])
			} else {
				q.Set(p[0], p[1])
			}
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// deliverer posts webhooks on its own goroutine, in order.
type deliverer struct {
	e      *Emulator
	client *http.Client
	mu     sync.Mutex
	queue  []delivery
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func newDeliverer(e *Emulator, client *http.Client) *deliverer {
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &deliverer{e: e, client: client, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go d.run()
	return d
}

func (d *deliverer) enqueue(x delivery) {
	d.mu.Lock()
	d.queue = append(d.queue, x)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *deliverer) clear() {
	d.mu.Lock()
	d.queue = nil
	d.mu.Unlock()
}

func (d *deliverer) close() {
	d.once.Do(func() {
		d.cancel()
		<-d.done
	})
}

func (d *deliverer) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.mu.Unlock()
			select {
			case <-d.wake:
				continue
			case <-d.ctx.Done():
				return
			}
		}
		x := d.queue[0]
		d.queue = d.queue[1:]
		d.mu.Unlock()
		d.deliver(x)
		if d.ctx.Err() != nil {
			return
		}
	}
}

// deliver posts once and once more on 502/503/504, the documented retry.
func (d *deliverer) deliver(x delivery) {
	e := d.e
	e.cfgMu.Lock()
	drop, timeout := e.faults.DropWebhooksRate, e.settings.WebhookTimeout
	e.cfgMu.Unlock()
	if drop > 0 && rand.Float64() < drop {
		e.dropped.Add(1)
		return
	}
	e.sent.Add(1)
	status, err := d.post(x, timeout)
	if err == nil && (status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout) {
		e.retries.Add(1)
		status, err = d.post(x, timeout)
	}
	if err != nil || status < 200 || status > 299 {
		e.failed.Add(1)
		e.log.Warn("webhook delivery failed", "url", redact(x.url), "status", status, "err", err)
	}
}

func (d *deliverer) post(x delivery, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(d.ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.url, bytes.NewReader(x.body))
	if err != nil {
		return 0, fmt.Errorf("webhook request: %w", err)
	}
	req.Header = x.header.Clone()
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // the body is ignored, as by Dataverse
	resp.Body.Close()
	return resp.StatusCode, nil
}

func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}
