package dataverse

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// Webhook registration through the Web API, mirroring what the Plug-in
// Registration Tool (PRT) creates. Microsoft documents the tables and their
// option values (reference §4) but only walks through registration with the
// PRT; creating the rows through the Web API is [inference]. Assumptions are
// listed on each type and function.

// WebhookAuthType is serviceendpoint.authtype for webhooks.
type WebhookAuthType int

const (
	// AuthWebhookKey sends the value as ?code=<value> (Azure Functions style).
	AuthWebhookKey WebhookAuthType = 4
	// AuthHTTPHeader sends one or more headers.
	AuthHTTPHeader WebhookAuthType = 5
	// AuthHTTPQueryString appends ?k1=v1&k2=v2.
	AuthHTTPQueryString WebhookAuthType = 6
)

// serviceendpoint / sdkmessageprocessingstep option values (reference §4).
const (
	contractWebhook    = 8
	messageFormatJSON  = 2
	StagePostOperation = 40
	ModeAsynchronous   = 1
	ModeSynchronous    = 0
	// supporteddeployment 0 = Server only [inference: PRT default].
	deploymentServerOnly = 0
)

// ImageType is sdkmessageprocessingstepimage.imagetype.
type ImageType int

const (
	PreImage   ImageType = 0
	PostImage  ImageType = 1
	BothImages ImageType = 2
)

// AuthSettings encodes key/value pairs for AuthHTTPHeader and
// AuthHTTPQueryString as the PRT stores them in authvalue:
// <settings><setting name="k" value="v" /></settings> [inference: the
// format the PRT writes; not documented in the reference]. Keys are sorted
// so the value is deterministic.
func AuthSettings(kv map[string]string) (string, error) {
	if len(kv) == 0 {
		return "", errors.New("auth settings: no keys")
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		if k == "" {
			return "", errors.New("auth settings: empty key")
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("<settings>")
	for _, k := range keys {
		b.WriteString(`<setting name="`)
		_ = xml.EscapeText(&b, []byte(k))
		b.WriteString(`" value="`)
		_ = xml.EscapeText(&b, []byte(kv[k]))
		b.WriteString(`" />`)
	}
	b.WriteString("</settings>")
	return b.String(), nil
}

// WebhookSpec is the desired registration.
type WebhookSpec struct {
	// Name identifies the serviceendpoint; EnsureWebhook finds it by name,
	// so it must be unique in the environment.
	Name string
	URL  string
	Auth WebhookAuthType
	// AuthValue is the key (AuthWebhookKey) or the AuthSettings XML.
	// Dataverse never returns it (IsValidForRead=False), so EnsureWebhook
	// always writes it.
	AuthValue string
	// Entity is the primary entity logical name, e.g. "bookableresourcebooking".
	Entity string
	Steps  []StepSpec
}

// StepSpec is one sdkmessageprocessingstep (always PostOperation, async).
type StepSpec struct {
	Message string // "Create", "Update" or "Delete"
	// FilteringAttributes limits Update steps to changes of these columns.
	FilteringAttributes []string
	Images              []ImageSpec
}

// ImageSpec is one sdkmessageprocessingstepimage.
type ImageSpec struct {
	Alias      string // entityalias; also the key in Pre/PostEntityImages
	Type       ImageType
	Attributes []string // empty = all columns
}

// WebhookRegistration reports the ids of the rows ensured.
type WebhookRegistration struct {
	EndpointID string
	// StepIDs by message name; pass them in
	// MSCRM.BypassBusinessLogicExecutionStepIds to suppress echoes
	// [inference, reference §4].
	StepIDs  map[string]string
	ImageIDs map[string]string // by "<message>/<alias>"
}

// stepName is the deterministic name EnsureWebhook gives a step.
func stepName(endpoint, message, entity string) string {
	return endpoint + ": " + message + " of " + entity
}

// ServiceEndpointBody is the serviceendpoint row written by EnsureWebhook.
// Assumptions [inference]: contract 8 (Webhook) with messageformat 2 (JSON),
// the fields the PRT sets for a webhook; namespace-related columns are left
// empty.
func ServiceEndpointBody(spec WebhookSpec) (Body, error) {
	if spec.Name == "" || spec.URL == "" || spec.AuthValue == "" {
		return nil, errors.New("webhook: Name, URL and AuthValue are required")
	}
	if u, err := url.Parse(spec.URL); err != nil || !(u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())) {
		return nil, fmt.Errorf("webhook: URL %q must be https (http only on loopback, for the emulator)", spec.URL)
	}
	switch spec.Auth {
	case AuthWebhookKey, AuthHTTPHeader, AuthHTTPQueryString:
	default:
		return nil, fmt.Errorf("webhook: unsupported auth type %d", spec.Auth)
	}
	return Body{
		"name":          spec.Name,
		"url":           spec.URL,
		"contract":      contractWebhook,
		"authtype":      int(spec.Auth),
		"authvalue":     spec.AuthValue,
		"messageformat": messageFormatJSON,
	}, nil
}

// StepBody is the sdkmessageprocessingstep row for one message.
// Assumptions [inference]: the lookups are bound through the navigation
// properties sdkmessageid, sdkmessagefilterid and
// eventhandler_serviceendpoint (the last is named in reference §4);
// rank 1 and supporteddeployment 0 (server) as the PRT defaults;
// asyncautodelete true so successful system jobs don't pile up.
func StepBody(spec WebhookSpec, step StepSpec, endpointID, messageID, filterID string) (Body, error) {
	b := Body{
		"name":                stepName(spec.Name, step.Message, spec.Entity),
		"description":         "bookingsync webhook (" + spec.Name + ")",
		"stage":               StagePostOperation,
		"mode":                ModeAsynchronous,
		"rank":                1,
		"supporteddeployment": deploymentServerOnly,
		"asyncautodelete":     true,
	}
	if len(step.FilteringAttributes) > 0 {
		if step.Message != "Update" {
			return nil, fmt.Errorf("webhook step %s: filtering attributes apply to Update only", step.Message)
		}
		cols := slices.Clone(step.FilteringAttributes)
		for _, c := range cols {
			if err := checkIdent(c); err != nil {
				return nil, fmt.Errorf("webhook step %s: %w", step.Message, err)
			}
		}
		slices.Sort(cols)
		b["filteringattributes"] = strings.Join(cols, ",")
	}
	for _, bind := range []struct{ nav, set, id string }{
		{"sdkmessageid", SetSdkMessages, messageID},
		{"sdkmessagefilterid", SetSdkMessageFilters, filterID},
		{"eventhandler_serviceendpoint", SetServiceEndpoints, endpointID},
	} {
		if err := b.Bind(bind.nav, bind.set, bind.id); err != nil {
			return nil, fmt.Errorf("webhook step %s: %w", step.Message, err)
		}
	}
	return b, nil
}

// ImageBody is the sdkmessageprocessingstepimage row.
// Assumption [inference]: messagepropertyname is "Id" for Create (the
// created id is the output) and "Target" for Update/Delete, as the PRT sets
// it; the step is bound through sdkmessageprocessingstepid.
func ImageBody(message string, img ImageSpec, stepID string) (Body, error) {
	if err := checkIdent(img.Alias); err != nil {
		return nil, fmt.Errorf("webhook image: alias: %w", err)
	}
	switch {
	case message == "Create" && img.Type != PostImage:
		return nil, fmt.Errorf("webhook image %s: Create has no pre-image", img.Alias)
	case message == "Delete" && img.Type != PreImage:
		return nil, fmt.Errorf("webhook image %s: Delete has only a pre-image", img.Alias)
	}
	prop := "Target"
	if message == "Create" {
		prop = "Id"
	}
	b := Body{
		"name":                img.Alias,
		"entityalias":         img.Alias,
		"imagetype":           int(img.Type),
		"messagepropertyname": prop,
	}
	if len(img.Attributes) > 0 {
		cols := slices.Clone(img.Attributes)
		for _, c := range cols {
			if err := checkIdent(c); err != nil {
				return nil, fmt.Errorf("webhook image %s: %w", img.Alias, err)
			}
		}
		slices.Sort(cols)
		b["attributes"] = strings.Join(cols, ",")
	}
	if err := b.Bind("sdkmessageprocessingstepid", SetSteps, stepID); err != nil {
		return nil, fmt.Errorf("webhook image %s: %w", img.Alias, err)
	}
	return b, nil
}

// EnsureWebhook creates or updates the service endpoint, its steps and
// their images so that they match spec. Rows are found by name (endpoint),
// by name + event handler (step) and by name + step (image); existing rows
// are PATCHed to the desired values, missing rows are created. Steps or
// images that exist but are not in spec are left alone.
func (c *Client) EnsureWebhook(ctx context.Context, spec WebhookSpec) (*WebhookRegistration, error) {
	if err := checkIdent(spec.Entity); err != nil {
		return nil, fmt.Errorf("ensure webhook: entity: %w", err)
	}
	epBody, err := ServiceEndpointBody(spec)
	if err != nil {
		return nil, err
	}
	reg := &WebhookRegistration{StepIDs: map[string]string{}, ImageIDs: map[string]string{}}

	reg.EndpointID, err = c.upsertByFilter(ctx, SetServiceEndpoints, "serviceendpointid",
		And(Eq("name", String(spec.Name)), Eq("contract", Int(contractWebhook))), epBody)
	if err != nil {
		return nil, fmt.Errorf("ensure webhook %s: service endpoint: %w", spec.Name, err)
	}

	for _, step := range spec.Steps {
		msgID, err := c.findOne(ctx, SetSdkMessages, "sdkmessageid", Eq("name", String(step.Message)))
		if err != nil {
			return nil, fmt.Errorf("ensure webhook %s: sdkmessage %s: %w", spec.Name, step.Message, err)
		}
		// primaryobjecttypecode is an EntityName column compared as a
		// string [inference: common usage, not in the reference].
		filterID, err := c.findOne(ctx, SetSdkMessageFilters, "sdkmessagefilterid",
			And(Eq("primaryobjecttypecode", String(spec.Entity)), Eq("_sdkmessageid_value", GUID(msgID))))
		if err != nil {
			return nil, fmt.Errorf("ensure webhook %s: sdkmessagefilter %s/%s: %w", spec.Name, step.Message, spec.Entity, err)
		}
		body, err := StepBody(spec, step, reg.EndpointID, msgID, filterID)
		if err != nil {
			return nil, err
		}
		stepID, err := c.upsertByFilter(ctx, SetSteps, "sdkmessageprocessingstepid",
			And(Eq("name", String(stepName(spec.Name, step.Message, spec.Entity))), Eq("_eventhandler_value", GUID(reg.EndpointID))), body)
		if err != nil {
			return nil, fmt.Errorf("ensure webhook %s: step %s: %w", spec.Name, step.Message, err)
		}
		reg.StepIDs[step.Message] = stepID
		for _, img := range step.Images {
			ib, err := ImageBody(step.Message, img, stepID)
			if err != nil {
				return nil, err
			}
			imgID, err := c.upsertByFilter(ctx, SetStepImages, "sdkmessageprocessingstepimageid",
				And(Eq("name", String(img.Alias)), Eq("_sdkmessageprocessingstepid_value", GUID(stepID))), ib)
			if err != nil {
				return nil, fmt.Errorf("ensure webhook %s: image %s/%s: %w", spec.Name, step.Message, img.Alias, err)
			}
			reg.ImageIDs[step.Message+"/"+img.Alias] = imgID
		}
	}
	return reg, nil
}

// findOne returns the id of the single row matching f; zero or several
// matches are errors.
func (c *Client) findOne(ctx context.Context, set, idCol string, f Filter) (string, error) {
	ids, err := c.findIDs(ctx, set, idCol, f)
	if err != nil {
		return "", err
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("%w: no %s row matches", ErrNotFound, set)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("%d %s rows match; expected one", len(ids), set)
}

func (c *Client) findIDs(ctx context.Context, set, idCol string, f Filter) ([]string, error) {
	var ids []string
	err := c.List(ctx, set, Query{Select: []string{idCol}, Filter: f}, func(raw json.RawMessage) error {
		var row map[string]any
		if err := json.Unmarshal(raw, &row); err != nil {
			return err
		}
		s, _ := row[idCol].(string)
		id, err := ParseID(s)
		if err != nil {
			return fmt.Errorf("%s: %w", idCol, err)
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

// upsertByFilter PATCHes the single row matching f, or creates one.
func (c *Client) upsertByFilter(ctx context.Context, set, idCol string, f Filter, body Body) (string, error) {
	ids, err := c.findIDs(ctx, set, idCol, f)
	if err != nil {
		return "", err
	}
	switch len(ids) {
	case 0:
		return c.Create(ctx, set, body)
	case 1:
		return ids[0], c.Update(ctx, set, ids[0], body, "")
	}
	return "", fmt.Errorf("%d %s rows match; expected at most one (remove duplicates by hand)", len(ids), set)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
