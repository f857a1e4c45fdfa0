package dataverse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// RemoteExecutionContext is the JSON body Dataverse POSTs to a webhook (a
// serialized Microsoft.Xrm.Sdk.RemoteExecutionContext, reference §4).
// Collections are lists of {key, value}; typed values carry "__type".
type RemoteExecutionContext struct {
	MessageName         string
	PrimaryEntityName   string
	PrimaryEntityID     string
	SecondaryEntityName string
	BusinessUnitID      string
	CorrelationID       string
	InitiatingUserID    string
	UserID              string
	OrganizationID      string
	OrganizationName    string
	OperationID         string
	RequestID           string
	Depth               int
	Mode                int // 0 synchronous, 1 asynchronous
	Stage               int
	IsolationMode       int
	IsInTransaction     bool
	IsExecutingOffline  bool
	IsOfflinePlayback   bool
	OperationCreatedOn  time.Time

	InputParameters  Parameters
	OutputParameters Parameters
	SharedVariables  Parameters
	PreEntityImages  map[string]*Entity
	PostEntityImages map[string]*Entity
	OwningExtension  *EntityReference
	ParentContext    *RemoteExecutionContext
}

// Parameters is a ParameterCollection: key → decoded value (see Entity.Get
// for the value types).
type Parameters map[string]any

// Entity is a Microsoft.Xrm.Sdk.Entity.
type Entity struct {
	ID              string
	LogicalName     string
	Attributes      map[string]any
	FormattedValues map[string]string
}

// EntityReference is a lookup value.
type EntityReference struct {
	ID          string
	LogicalName string
	Name        string
}

// OptionSetValue is a choice value.
type OptionSetValue struct{ Value int }

// Money is a currency amount.
type Money struct{ Value float64 }

// wire types: strict on what we need, tolerant of unknown fields.
type wireContext struct {
	MessageName         *string         `json:"MessageName"`
	PrimaryEntityName   *string         `json:"PrimaryEntityName"`
	PrimaryEntityID     *string         `json:"PrimaryEntityId"`
	SecondaryEntityName string          `json:"SecondaryEntityName"`
	BusinessUnitID      string          `json:"BusinessUnitId"`
	CorrelationID       string          `json:"CorrelationId"`
	InitiatingUserID    string          `json:"InitiatingUserId"`
	UserID              string          `json:"UserId"`
	OrganizationID      string          `json:"OrganizationId"`
	OrganizationName    string          `json:"OrganizationName"`
	OperationID         string          `json:"OperationId"`
	RequestID           *string         `json:"RequestId"`
	Depth               int             `json:"Depth"`
	Mode                int             `json:"Mode"`
	Stage               int             `json:"Stage"`
	IsolationMode       int             `json:"IsolationMode"`
	IsInTransaction     bool            `json:"IsInTransaction"`
	IsExecutingOffline  bool            `json:"IsExecutingOffline"`
	IsOfflinePlayback   bool            `json:"IsOfflinePlayback"`
	OperationCreatedOn  string          `json:"OperationCreatedOn"`
	InputParameters     []wireKV        `json:"InputParameters"`
	OutputParameters    []wireKV        `json:"OutputParameters"`
	SharedVariables     []wireKV        `json:"SharedVariables"`
	PreEntityImages     []wireKV        `json:"PreEntityImages"`
	PostEntityImages    []wireKV        `json:"PostEntityImages"`
	OwningExtension     json.RawMessage `json:"OwningExtension"`
	ParentContext       json.RawMessage `json:"ParentContext"`
}

type wireKV struct {
	Key   *string         `json:"key"`
	Value json.RawMessage `json:"value"`
}

type wireEntity struct {
	Type            string   `json:"__type"`
	ID              string   `json:"Id"`
	LogicalName     *string  `json:"LogicalName"`
	Attributes      []wireKV `json:"Attributes"`
	FormattedValues []wireKV `json:"FormattedValues"`
}

type wireRef struct {
	ID          string  `json:"Id"`
	LogicalName *string `json:"LogicalName"`
	Name        *string `json:"Name"`
}

// maxContextDepth bounds ParentContext nesting (Dataverse stops at depth 8).
const maxContextDepth = 16

// ParseRemoteExecutionContext decodes a webhook body. It requires
// MessageName, PrimaryEntityName and a GUID PrimaryEntityId, validates every
// collection entry and typed value, and ignores unknown fields.
func ParseRemoteExecutionContext(data []byte) (*RemoteExecutionContext, error) {
	c, err := parseContext(data, 0)
	if err != nil {
		return nil, fmt.Errorf("remote execution context: %w", err)
	}
	return c, nil
}

func parseContext(data []byte, depth int) (*RemoteExecutionContext, error) {
	if depth > maxContextDepth {
		return nil, errors.New("ParentContext nested too deeply")
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // .NET serializers may emit a BOM
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("body is not a JSON object")
	}
	var w wireContext
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	if w.MessageName == nil || *w.MessageName == "" {
		return nil, errors.New("MessageName missing")
	}
	if w.PrimaryEntityName == nil || *w.PrimaryEntityName == "" {
		return nil, errors.New("PrimaryEntityName missing")
	}
	if w.PrimaryEntityID == nil {
		return nil, errors.New("PrimaryEntityId missing")
	}
	c := &RemoteExecutionContext{
		MessageName:         *w.MessageName,
		PrimaryEntityName:   *w.PrimaryEntityName,
		SecondaryEntityName: w.SecondaryEntityName,
		OrganizationName:    w.OrganizationName,
		Depth:               w.Depth,
		Mode:                w.Mode,
		Stage:               w.Stage,
		IsolationMode:       w.IsolationMode,
		IsInTransaction:     w.IsInTransaction,
		IsExecutingOffline:  w.IsExecutingOffline,
		IsOfflinePlayback:   w.IsOfflinePlayback,
	}
	var err error
	if c.PrimaryEntityID, err = ParseID(*w.PrimaryEntityID); err != nil {
		return nil, fmt.Errorf("PrimaryEntityId: %w", err)
	}
	for _, f := range []struct {
		name     string
		in       string
		out      *string
		required bool
	}{
		{"BusinessUnitId", w.BusinessUnitID, &c.BusinessUnitID, false},
		{"CorrelationId", w.CorrelationID, &c.CorrelationID, false},
		{"InitiatingUserId", w.InitiatingUserID, &c.InitiatingUserID, false},
		{"UserId", w.UserID, &c.UserID, false},
		{"OrganizationId", w.OrganizationID, &c.OrganizationID, false},
		{"OperationId", w.OperationID, &c.OperationID, false},
	} {
		if f.in == "" {
			continue
		}
		if *f.out, err = ParseID(f.in); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if w.RequestID != nil && *w.RequestID != "" {
		if c.RequestID, err = ParseID(*w.RequestID); err != nil {
			return nil, fmt.Errorf("RequestId: %w", err)
		}
	}
	if w.OperationCreatedOn != "" {
		if c.OperationCreatedOn, err = ParseWCFDate(w.OperationCreatedOn); err != nil {
			return nil, fmt.Errorf("OperationCreatedOn: %w", err)
		}
	}
	for _, p := range []struct {
		name string
		in   []wireKV
		out  *Parameters
	}{
		{"InputParameters", w.InputParameters, &c.InputParameters},
		{"OutputParameters", w.OutputParameters, &c.OutputParameters},
		{"SharedVariables", w.SharedVariables, &c.SharedVariables},
	} {
		if *p.out, err = decodeParams(p.in); err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
	}
	if c.PreEntityImages, err = decodeImages(w.PreEntityImages); err != nil {
		return nil, fmt.Errorf("PreEntityImages: %w", err)
	}
	if c.PostEntityImages, err = decodeImages(w.PostEntityImages); err != nil {
		return nil, fmt.Errorf("PostEntityImages: %w", err)
	}
	if len(w.OwningExtension) > 0 && !isNull(w.OwningExtension) {
		if c.OwningExtension, err = decodeRef(w.OwningExtension); err != nil {
			return nil, fmt.Errorf("OwningExtension: %w", err)
		}
	}
	if len(w.ParentContext) > 0 && !isNull(w.ParentContext) {
		if c.ParentContext, err = parseContext(w.ParentContext, depth+1); err != nil {
			return nil, fmt.Errorf("ParentContext: %w", err)
		}
	}
	return c, nil
}

func decodeParams(kvs []wireKV) (Parameters, error) {
	out := make(Parameters, len(kvs))
	for i, kv := range kvs {
		if kv.Key == nil {
			return nil, fmt.Errorf("entry %d has no key", i)
		}
		v, err := decodeValue(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", *kv.Key, err)
		}
		out[*kv.Key] = v
	}
	return out, nil
}

func decodeImages(kvs []wireKV) (map[string]*Entity, error) {
	out := make(map[string]*Entity, len(kvs))
	for i, kv := range kvs {
		if kv.Key == nil {
			return nil, fmt.Errorf("entry %d has no key", i)
		}
		e, err := decodeEntity(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", *kv.Key, err)
		}
		out[*kv.Key] = e
	}
	return out, nil
}

func decodeEntity(raw json.RawMessage) (*Entity, error) {
	var w wireEntity
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("entity: %w", err)
	}
	if w.LogicalName == nil {
		return nil, errors.New("entity: LogicalName missing")
	}
	e := &Entity{LogicalName: *w.LogicalName, Attributes: map[string]any{}, FormattedValues: map[string]string{}}
	if w.ID != "" {
		id, err := ParseID(w.ID)
		if err != nil {
			return nil, fmt.Errorf("entity Id: %w", err)
		}
		// An Entity in a Create pre-operation context carries the empty GUID.
		if id != "00000000-0000-0000-0000-000000000000" {
			e.ID = id
		}
	}
	attrs, err := decodeParams(w.Attributes)
	if err != nil {
		return nil, fmt.Errorf("entity %s Attributes: %w", e.LogicalName, err)
	}
	e.Attributes = attrs
	for i, kv := range w.FormattedValues {
		if kv.Key == nil {
			return nil, fmt.Errorf("entity %s FormattedValues entry %d has no key", e.LogicalName, i)
		}
		var s string
		if err := json.Unmarshal(kv.Value, &s); err != nil {
			return nil, fmt.Errorf("entity %s FormattedValues %s: %w", e.LogicalName, *kv.Key, err)
		}
		e.FormattedValues[*kv.Key] = s
	}
	return e, nil
}

func decodeRef(raw json.RawMessage) (*EntityReference, error) {
	var w wireRef
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("entity reference: %w", err)
	}
	if w.LogicalName == nil {
		return nil, errors.New("entity reference: LogicalName missing")
	}
	id, err := ParseID(w.ID)
	if err != nil {
		return nil, fmt.Errorf("entity reference Id: %w", err)
	}
	r := &EntityReference{ID: id, LogicalName: *w.LogicalName}
	if w.Name != nil {
		r.Name = *w.Name
	}
	return r, nil
}

// decodeValue turns a serialized value into a Go value:
// null → nil; bool; JSON number → json.Number; "/Date(…)/" → time.Time;
// other strings → string; typed objects → *Entity, *EntityReference,
// OptionSetValue, Money; other objects and arrays → json.RawMessage.
func decodeValue(raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || isNull(raw) {
		return nil, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		if strings.HasPrefix(s, "/Date(") {
			return ParseWCFDate(s)
		}
		return s, nil
	case 't', 'f':
		var b bool
		err := json.Unmarshal(raw, &b)
		return b, err
	case '{':
		var head struct {
			Type string `json:"__type"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, err
		}
		typ, _, _ := strings.Cut(head.Type, ":")
		switch typ {
		case "Entity":
			return decodeEntity(raw)
		case "EntityReference":
			return decodeRef(raw)
		case "OptionSetValue":
			var v struct{ Value *int }
			if err := json.Unmarshal(raw, &v); err != nil || v.Value == nil {
				return nil, fmt.Errorf("OptionSetValue without integer Value: %s", raw)
			}
			return OptionSetValue{Value: *v.Value}, nil
		case "Money":
			var v struct{ Value *float64 }
			if err := json.Unmarshal(raw, &v); err != nil || v.Value == nil {
				return nil, fmt.Errorf("Money without numeric Value: %s", raw)
			}
			return Money{Value: *v.Value}, nil
		}
		return json.RawMessage(raw), nil
	case '[':
		return json.RawMessage(raw), nil
	default:
		var n json.Number
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&n); err != nil {
			return nil, err
		}
		return n, nil
	}
}

var wcfDateRE = regexp.MustCompile(`^/Date\((-?\d+)([+-]\d{4})?\)/$`)

// ParseWCFDate parses the WCF JSON date "/Date(1506409448000-0700)/":
// milliseconds since the Unix epoch (UTC), optionally followed by the
// sender's offset, which only affects presentation.
func ParseWCFDate(s string) (time.Time, error) {
	m := wcfDateRE.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, fmt.Errorf("not a /Date(ms)/ value: %q", s)
	}
	ms, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q: %w", s, err)
	}
	t := time.UnixMilli(ms).UTC()
	if m[2] != "" {
		h, _ := strconv.Atoi(m[2][1:3])
		mi, _ := strconv.Atoi(m[2][3:5])
		off := h*3600 + mi*60
		if m[2][0] == '-' {
			off = -off
		}
		t = t.In(time.FixedZone("", off))
	}
	return t, nil
}

// Target returns InputParameters["Target"] as an Entity (Create, Update) or
// an EntityReference (Delete); the other result is nil.
func (c *RemoteExecutionContext) Target() (*Entity, *EntityReference) {
	switch v := c.InputParameters["Target"].(type) {
	case *Entity:
		return v, nil
	case *EntityReference:
		return nil, v
	}
	return nil, nil
}

// TargetID returns the id of the row the message is about: the Target's id,
// or PrimaryEntityId when the Target has none.
func (c *RemoteExecutionContext) TargetID() string {
	e, r := c.Target()
	switch {
	case e != nil && e.ID != "":
		return e.ID
	case r != nil:
		return r.ID
	}
	return c.PrimaryEntityID
}

// PreImage returns the pre-image registered under alias, or nil.
func (c *RemoteExecutionContext) PreImage(alias string) *Entity { return c.PreEntityImages[alias] }

// PostImage returns the post-image registered under alias, or nil.
func (c *RemoteExecutionContext) PostImage(alias string) *Entity { return c.PostEntityImages[alias] }

// Tag returns SharedVariables["tag"] (the Web API "tag" parameter), if
// present. Whether it reaches async webhooks is [unverified] (reference §4).
func (c *RemoteExecutionContext) Tag() (string, bool) {
	s, ok := c.SharedVariables["tag"].(string)
	return s, ok
}

// Has reports whether the attribute is present (possibly null, which means
// the column was cleared).
func (e *Entity) Has(name string) bool {
	if e == nil {
		return false
	}
	_, ok := e.Attributes[name]
	return ok
}

// Get returns the decoded attribute value (see decodeValue for types).
func (e *Entity) Get(name string) (any, bool) {
	if e == nil {
		return nil, false
	}
	v, ok := e.Attributes[name]
	return v, ok
}

// String returns a string attribute; ok is false if absent, null or not a string.
func (e *Entity) String(name string) (string, bool) {
	v, _ := e.Get(name)
	s, ok := v.(string)
	return s, ok
}

// Int returns an integer attribute or the value of an OptionSetValue.
func (e *Entity) Int(name string) (int64, bool) {
	v, _ := e.Get(name)
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case OptionSetValue:
		return int64(x.Value), true
	}
	return 0, false
}

// Time returns a date attribute (sent as /Date(ms)/).
func (e *Entity) Time(name string) (time.Time, bool) {
	v, _ := e.Get(name)
	t, ok := v.(time.Time)
	return t, ok
}

// Ref returns a lookup attribute.
func (e *Entity) Ref(name string) (*EntityReference, bool) {
	v, _ := e.Get(name)
	r, ok := v.(*EntityReference)
	return r, ok
}

// Bool returns a boolean attribute.
func (e *Entity) Bool(name string) (bool, bool) {
	v, _ := e.Get(name)
	b, ok := v.(bool)
	return b, ok
}
