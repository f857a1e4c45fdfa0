package dataverse

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// EntityMetadata is the part of EntityDefinitions we read at start-up.
type EntityMetadata struct {
	MetadataID            string                 `json:"MetadataId"`
	LogicalName           string                 `json:"LogicalName"`
	SchemaName            string                 `json:"SchemaName"`
	EntitySetName         string                 `json:"EntitySetName"`
	PrimaryIDAttribute    string                 `json:"PrimaryIdAttribute"`
	PrimaryNameAttribute  string                 `json:"PrimaryNameAttribute"`
	ChangeTrackingEnabled bool                   `json:"ChangeTrackingEnabled"`
	Attributes            []AttributeMetadata    `json:"Attributes"`
	ManyToOne             []RelationshipMetadata `json:"ManyToOneRelationships"`
}

// AttributeMetadata describes one column.
type AttributeMetadata struct {
	LogicalName   string `json:"LogicalName"`
	SchemaName    string `json:"SchemaName"`
	AttributeType string `json:"AttributeType"` // Picklist, String, Lookup, DateTime, BigInt, …
}

// RelationshipMetadata is a many-to-one relationship of the entity.
type RelationshipMetadata struct {
	SchemaName           string `json:"SchemaName"`
	ReferencingAttribute string `json:"ReferencingAttribute"` // e.g. "resource"
	ReferencedEntity     string `json:"ReferencedEntity"`     // e.g. "bookableresource"
	// NavigationProperty is ReferencingEntityNavigationPropertyName, the
	// case-sensitive name to use in "<nav>@odata.bind" and $expand.
	NavigationProperty string `json:"ReferencingEntityNavigationPropertyName"`
}

// Attribute returns the column with the given logical name, or nil.
func (m *EntityMetadata) Attribute(logicalName string) *AttributeMetadata {
	for i := range m.Attributes {
		if m.Attributes[i].LogicalName == logicalName {
			return &m.Attributes[i]
		}
	}
	return nil
}

// NavigationProperties maps referencing attribute (lookup column) to the
// navigation property name, e.g. "resource" → "Resource".
func (m *EntityMetadata) NavigationProperties() map[string]string {
	out := make(map[string]string, len(m.ManyToOne))
	for _, r := range m.ManyToOne {
		out[r.ReferencingAttribute] = r.NavigationProperty
	}
	return out
}

// entityDefPath is EntityDefinitions(LogicalName='x'); logical names are
// plain identifiers, so after validation no quoting issue remains.
func entityDefPath(logicalName string) (string, error) {
	if err := checkIdent(logicalName); err != nil {
		return "", err
	}
	return "EntityDefinitions(LogicalName='" + strings.ToLower(logicalName) + "')", nil
}

// EntityDefinition reads a table's definition with its attributes and
// many-to-one relationships (to learn navigation-property names) and
// ChangeTrackingEnabled.
func (c *Client) EntityDefinition(ctx context.Context, logicalName string) (*EntityMetadata, error) {
	p, err := entityDefPath(logicalName)
	if err != nil {
		return nil, fmt.Errorf("entity definition: %w", err)
	}
	q := Query{
		Select: []string{"MetadataId", "LogicalName", "SchemaName", "EntitySetName", "PrimaryIdAttribute", "PrimaryNameAttribute", "ChangeTrackingEnabled"},
		Expand: []Expand{
			{Nav: "Attributes", Select: []string{"LogicalName", "SchemaName", "AttributeType"}},
			{Nav: "ManyToOneRelationships", Select: []string{"SchemaName", "ReferencingAttribute", "ReferencedEntity", "ReferencingEntityNavigationPropertyName"}},
		},
	}
	qs, err := q.Encode()
	if err != nil {
		return nil, err
	}
	var m EntityMetadata
	if _, err := c.doJSON(ctx, request{method: http.MethodGet, path: p, query: qs}, &m); err != nil {
		return nil, fmt.Errorf("entity definition %s: %w", logicalName, err)
	}
	return &m, nil
}

// NavigationProperties is EntityDefinition(...).NavigationProperties().
func (c *Client) NavigationProperties(ctx context.Context, logicalName string) (map[string]string, error) {
	m, err := c.EntityDefinition(ctx, logicalName)
	if err != nil {
		return nil, err
	}
	return m.NavigationProperties(), nil
}

// Label is a localized display string.
type Label struct {
	Text         string
	LanguageCode int // 0 means 1033 (English)
}

func (l Label) json() map[string]any {
	lc := l.LanguageCode
	if lc == 0 {
		lc = 1033
	}
	ll := map[string]any{
		"@odata.type":  "Microsoft.Dynamics.CRM.LocalizedLabel",
		"Label":        l.Text,
		"LanguageCode": lc,
	}
	return map[string]any{
		"@odata.type":     "Microsoft.Dynamics.CRM.Label",
		"LocalizedLabels": []any{ll},
	}
}

// ChoiceOption is one value of a local choice column.
type ChoiceOption struct {
	Value int
	Label Label
}

// ChoiceColumn defines a local (non-global) choice column.
type ChoiceColumn struct {
	SchemaName  string // with publisher prefix, e.g. "bsync_OutlookSync"
	DisplayName Label
	Description Label
	Options     []ChoiceOption
}

// TextColumn defines a single-line text column.
type TextColumn struct {
	SchemaName  string // e.g. "bsync_OutlookSyncStatus"
	DisplayName Label
	Description Label
	MaxLength   int
}

func requiredNone() map[string]any {
	return map[string]any{"Value": "None", "CanBeChanged": true, "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"}
}

// ChoiceColumnBody is the PicklistAttributeMetadata POSTed by
// CreateChoiceColumn (exported for golden tests and dry runs).
func ChoiceColumnBody(col ChoiceColumn) (map[string]any, error) {
	if err := checkIdent(col.SchemaName); err != nil {
		return nil, fmt.Errorf("choice column: %w", err)
	}
	if len(col.Options) == 0 {
		return nil, fmt.Errorf("choice column %s: no options", col.SchemaName)
	}
	opts := make([]any, 0, len(col.Options))
	seen := map[int]bool{}
	for _, o := range col.Options {
		if seen[o.Value] {
			return nil, fmt.Errorf("choice column %s: duplicate option value %d", col.SchemaName, o.Value)
		}
		seen[o.Value] = true
		opts = append(opts, map[string]any{"Value": o.Value, "Label": o.Label.json()})
	}
	return map[string]any{
		"@odata.type":       "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
		"AttributeType":     "Picklist",
		"AttributeTypeName": map[string]any{"Value": "PicklistType"},
		"SchemaName":        col.SchemaName,
		"DisplayName":       col.DisplayName.json(),
		"Description":       col.Description.json(),
		"RequiredLevel":     requiredNone(),
		"SourceTypeMask":    0,
		"OptionSet": map[string]any{
			"@odata.type":   "Microsoft.Dynamics.CRM.OptionSetMetadata",
			"Options":       opts,
			"IsGlobal":      false,
			"OptionSetType": "Picklist",
		},
	}, nil
}

// TextColumnBody is the StringAttributeMetadata POSTed by CreateTextColumn.
func TextColumnBody(col TextColumn) (map[string]any, error) {
	if err := checkIdent(col.SchemaName); err != nil {
		return nil, fmt.Errorf("text column: %w", err)
	}
	if col.MaxLength < 1 || col.MaxLength > 4000 {
		return nil, fmt.Errorf("text column %s: MaxLength %d out of range 1..4000", col.SchemaName, col.MaxLength)
	}
	return map[string]any{
		"@odata.type":       "Microsoft.Dynamics.CRM.StringAttributeMetadata",
		"AttributeType":     "String",
		"AttributeTypeName": map[string]any{"Value": "StringType"},
		"SchemaName":        col.SchemaName,
		"DisplayName":       col.DisplayName.json(),
		"Description":       col.Description.json(),
		"RequiredLevel":     requiredNone(),
		"FormatName":        map[string]any{"Value": "Text"},
		"MaxLength":         col.MaxLength,
	}, nil
}

// CreateChoiceColumn adds a local choice column to an existing table the
// way Microsoft documents it: POST EntityDefinitions(LogicalName='t')/Attributes
// with a PicklistAttributeMetadata body and MSCRM.SolutionUniqueName when
// solution is non-empty (learn.microsoft.com, "Create and update column
// definitions using the Web API"; not in dataverse-api.md). It returns the
// new attribute's MetadataId.
func (c *Client) CreateChoiceColumn(ctx context.Context, table string, col ChoiceColumn, solution string) (string, error) {
	body, err := ChoiceColumnBody(col)
	if err != nil {
		return "", err
	}
	return c.createAttribute(ctx, table, body, solution)
}

// CreateTextColumn adds a single-line text column (see CreateChoiceColumn).
func (c *Client) CreateTextColumn(ctx context.Context, table string, col TextColumn, solution string) (string, error) {
	body, err := TextColumnBody(col)
	if err != nil {
		return "", err
	}
	return c.createAttribute(ctx, table, body, solution)
}

func (c *Client) createAttribute(ctx context.Context, table string, body map[string]any, solution string) (string, error) {
	p, err := entityDefPath(table)
	if err != nil {
		return "", fmt.Errorf("create column: %w", err)
	}
	r := request{method: http.MethodPost, path: p + "/Attributes", body: body}
	if solution != "" {
		if err := checkIdent(solution); err != nil {
			return "", fmt.Errorf("create column: solution: %w", err)
		}
		r.headers = map[string]string{"MSCRM.SolutionUniqueName": solution}
	}
	resp, err := c.doJSON(ctx, r, nil)
	if err != nil {
		return "", fmt.Errorf("create column %s.%v: %w", table, body["SchemaName"], err)
	}
	id, err := entityIDFromHeader(resp.Header.Get("OData-EntityId"))
	if err != nil {
		return "", fmt.Errorf("create column %s.%v: %w", table, body["SchemaName"], err)
	}
	return id, nil
}

// EnableChangeTracking sets EntityMetadata.ChangeTrackingEnabled = true.
// Table definitions are updated with PUT of the whole definition (Microsoft:
// "Update table definitions"), so we GET it, flip the flag and PUT it back
// with MSCRM.MergeLabels: true. It is a no-op if already enabled. Change
// tracking cannot be disabled again (reference §3).
func (c *Client) EnableChangeTracking(ctx context.Context, table string) error {
	p, err := entityDefPath(table)
	if err != nil {
		return fmt.Errorf("enable change tracking: %w", err)
	}
	var def map[string]json.RawMessage
	if _, err := c.doJSON(ctx, request{method: http.MethodGet, path: p}, &def); err != nil {
		return fmt.Errorf("enable change tracking %s: %w", table, err)
	}
	var enabled bool
	if raw, ok := def["ChangeTrackingEnabled"]; ok {
		if err := json.Unmarshal(raw, &enabled); err != nil {
			return fmt.Errorf("enable change tracking %s: ChangeTrackingEnabled: %w", table, err)
		}
	}
	if enabled {
		return nil
	}
	delete(def, "@odata.context")
	def["ChangeTrackingEnabled"] = json.RawMessage("true")
	r := request{method: http.MethodPut, path: p, body: def, headers: map[string]string{"MSCRM.MergeLabels": "true"}}
	if _, err := c.doJSON(ctx, r, nil); err != nil {
		return fmt.Errorf("enable change tracking %s: %w", table, err)
	}
	return nil
}

// Publish publishes customizations of the given tables (PublishXml action),
// needed before changed definitions are active.
func (c *Client) Publish(ctx context.Context, tables ...string) error {
	var b strings.Builder
	b.WriteString("<importexportxml><entities>")
	for _, t := range tables {
		if err := checkIdent(t); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		b.WriteString("<entity>" + strings.ToLower(t) + "</entity>")
	}
	b.WriteString("</entities></importexportxml>")
	r := request{method: http.MethodPost, path: "PublishXml", body: map[string]string{"ParameterXml": b.String()}}
	if _, err := c.doJSON(ctx, r, nil); err != nil {
		return fmt.Errorf("publish %v: %w", tables, err)
	}
	return nil
}
