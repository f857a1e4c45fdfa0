package dataverse

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// The metadata API: enough of EntityDefinitions for a client to read
// navigation-property names (ManyToOneRelationships), option sets,
// create its custom columns (POST …/Attributes) and switch change tracking
// on (PUT of the entity definition), the documented ways.

const mdNS = "Microsoft.Dynamics.CRM."

func label(text string, id string) map[string]any {
	l := map[string]any{"Label": text, "LanguageCode": 1033, "IsManaged": false, "MetadataId": id, "HasChanged": nil}
	return map[string]any{"LocalizedLabels": []any{l}, "UserLocalizedLabel": l}
}

func managed(v any, name string) map[string]any {
	return map[string]any{"Value": v, "CanBeChanged": true, "ManagedPropertyLogicalName": name}
}

func entityMeta(t *table) map[string]any {
	own := "OrganizationOwned"
	if t.UserOwned {
		own = "UserOwned"
	}
	return map[string]any{
		"MetadataId": t.MetaID, "HasChanged": nil, "LogicalName": t.Logical, "SchemaName": t.Schema,
		"EntitySetName": t.Set, "LogicalCollectionName": t.Set, "CollectionSchemaName": t.Schema + "s",
		"ObjectTypeCode": t.OTC, "PrimaryIdAttribute": t.PrimaryID, "PrimaryNameAttribute": t.PrimaryName,
		"OwnershipType": own, "IsCustomEntity": t.Custom, "IsManaged": true, "IsActivity": false,
		"ChangeTrackingEnabled": t.ChangeTracking, "IsOptimisticConcurrencyEnabled": true,
		"CanChangeTrackingBeEnabled": managed(t.CanChangeTracking, "canchangetrackingbeenabled"),
		"DisplayName":                label(t.Display, stableID("label", t.Logical)),
	}
}

var typeNames = map[kind]string{kGUID: "UniqueidentifierType", kString: "StringType", kMemo: "MemoType", kInt: "IntegerType",
	kBigInt: "BigIntType", kDouble: "DoubleType", kBool: "BooleanType", kDateTime: "DateTimeType", kChoice: "PicklistType",
	kState: "StateType", kStatus: "StatusType", kLookup: "LookupType", kOwner: "OwnerType"}

func attrMeta(t *table, c *column) map[string]any {
	m := map[string]any{
		"@odata.type": "#" + mdNS + c.Kind.metadataType(), "MetadataId": c.MetaID, "HasChanged": nil,
		"LogicalName": c.Name, "SchemaName": c.Schema, "EntityLogicalName": t.Logical, "AttributeOf": nil,
		"AttributeType": c.Kind.attributeType(), "AttributeTypeName": map[string]any{"Value": typeNames[c.Kind]},
		"IsCustomAttribute": c.Custom, "IsPrimaryId": c.Name == t.PrimaryID, "IsPrimaryName": c.Name == t.PrimaryName,
		"IsValidForRead": !c.Hidden, "IsValidForCreate": !c.ReadOnly, "IsValidForUpdate": !c.ReadOnly && c.Name != t.PrimaryID,
		"IsValidODataAttribute": true, "RequiredLevel": managed(c.Required, "canmodifyrequirementlevelsettings"),
		"DisplayName": label(c.Display, stableID("label", t.Logical, c.Name)),
	}
	switch c.Kind {
	case kString, kMemo:
		m["MaxLength"] = c.MaxLength
		m["FormatName"] = map[string]any{"Value": "Text"}
	case kInt:
		m["MinValue"], m["MaxValue"], m["Format"] = c.Min, c.Max, "None"
	case kDateTime:
		m["Format"] = "DateAndTime"
		m["DateTimeBehavior"] = map[string]any{"Value": "UserLocal"}
	case kLookup, kOwner:
		var ts []string
		for _, tg := range c.Targets {
			ts = append(ts, tg.Entity)
		}
		m["Targets"] = ts
	case kChoice, kState, kStatus:
		m["DefaultFormValue"] = c.Default
	}
	return m
}

func optionSetMeta(t *table, c *column) map[string]any {
	var os []any
	for _, o := range c.Options {
		om := map[string]any{"Value": o.Value, "Label": label(o.Label, stableID("option", t.Logical, c.Name, fmt.Sprint(o.Value)))}
		if c.Kind == kStatus {
			om["State"] = o.State
		}
		os = append(os, om)
	}
	typ := map[kind]string{kChoice: "Picklist", kState: "State", kStatus: "Status"}[c.Kind]
	return map[string]any{"MetadataId": stableID("optionset", t.Logical, c.Name), "Name": t.Logical + "_" + c.Name,
		"IsGlobal": false, "OptionSetType": typ, "Options": os}
}

func (e *Emulator) relationships(t *table) []map[string]any {
	var out []map[string]any
	for _, c := range t.Columns {
		for _, tg := range c.Targets {
			tt := e.tables[tg.Entity]
			if tt == nil {
				continue
			}
			out = append(out, map[string]any{
				"MetadataId": stableID("relationship", tg.Relationship), "HasChanged": nil,
				"SchemaName": tg.Relationship, "RelationshipType": "OneToManyRelationship", "IsCustomRelationship": false,
				"ReferencedAttribute": tt.PrimaryID, "ReferencedEntity": tg.Entity,
				"ReferencingAttribute": c.Name, "ReferencingEntity": t.Logical,
				"ReferencedEntityNavigationPropertyName":  tg.Relationship,
				"ReferencingEntityNavigationPropertyName": tg.Nav,
			})
		}
	}
	return out
}

// metaKey resolves EntityDefinitions(LogicalName='x') or (MetadataId).
func (e *Emulator) metaTable(key string) *table {
	if v, ok := strings.CutPrefix(key, "LogicalName="); ok {
		return e.tables[strings.Trim(v, "'")]
	}
	for _, t := range e.tables {
		if strings.EqualFold(t.MetaID, key) {
			return t
		}
	}
	return nil
}

func (t *table) metaColumn(key string) *column {
	if v, ok := strings.CutPrefix(key, "LogicalName="); ok {
		return t.col(strings.Trim(v, "'"))
	}
	for _, c := range t.Columns {
		if strings.EqualFold(c.MetaID, key) {
			return c
		}
	}
	return nil
}

func (e *Emulator) serveMetadata(w http.ResponseWriter, r *http.Request, rt route, c *caller) *apiError {
	q := r.URL.Query()
	e.mu.Lock()
	defer e.mu.Unlock()
	_, key, hasKey := splitKey(rt.segs[0])
	if !hasKey {
		if len(rt.segs) != 1 || r.Method != http.MethodGet {
			return methodNotAllowed(r)
		}
		var items []map[string]any
		for _, t := range sortedTables(e.tables) {
			m := entityMeta(t)
			if err := e.expandEntity(t, m, q.Get("$expand")); err != nil {
				return err
			}
			items = append(items, m)
		}
		return e.writeMetaList(w, q, items, "EntityMetadata", e.apiBase+"/$metadata#EntityDefinitions")
	}
	t := e.metaTable(key)
	if t == nil {
		return errf(http.StatusNotFound, "0x80040217", "Could not find entity with key %s.", key)
	}
	if len(rt.segs) == 1 {
		switch r.Method {
		case http.MethodGet:
			m := entityMeta(t)
			if err := e.expandEntity(t, m, q.Get("$expand")); err != nil {
				return err
			}
			return e.writeMetaOne(w, q, m, "EntityMetadata", e.apiBase+"/$metadata#EntityDefinitions/$entity")
		case http.MethodPut:
			return e.putEntity(w, r, t)
		case http.MethodPatch:
			return errf(http.StatusMethodNotAllowed, "0x80060888", "PATCH is not supported for EntityDefinitions; update the definition with PUT.")
		}
		return methodNotAllowed(r)
	}
	nav, navKey, navHasKey := splitKey(rt.segs[1])
	cast := ""
	if len(rt.segs) == 3 {
		cast = strings.TrimPrefix(rt.segs[2], mdNS)
	} else if len(rt.segs) > 3 {
		return errf(http.StatusNotImplemented, "", "The path %s is not implemented by the emulator.", r.URL.Path)
	}
	ctx := e.apiBase + "/$metadata#EntityDefinitions('" + t.Logical + "')/" + nav
	switch nav {
	case "ManyToOneRelationships":
		if r.Method != http.MethodGet || navHasKey || cast != "" {
			return methodNotAllowed(r)
		}
		return e.writeMetaList(w, q, e.relationships(t), "OneToManyRelationshipMetadata", ctx)
	case "Attributes":
		if r.Method == http.MethodPost && !navHasKey && cast == "" {
			return e.createAttribute(w, r, t)
		}
		if r.Method != http.MethodGet {
			return methodNotAllowed(r)
		}
		expandOS := false
		for _, x := range strings.Split(q.Get("$expand"), ",") {
			switch strings.TrimSpace(x) {
			case "":
			case "OptionSet", "GlobalOptionSet":
				if cast == "" {
					return badRequest("Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.AttributeMetadata'.", x)
				}
				expandOS = true
			default:
				return badRequest("Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.AttributeMetadata'.", x)
			}
		}
		build := func(col *column) map[string]any {
			m := attrMeta(t, col)
			if expandOS && col.Kind.isChoice() {
				os := optionSetMeta(t, col)
				m["OptionSet"], m["GlobalOptionSet"] = os, nil
			}
			return m
		}
		if navHasKey {
			col := t.metaColumn(navKey)
			if col == nil || (cast != "" && col.Kind.metadataType() != cast) {
				return errf(http.StatusNotFound, "0x80040217", "Could not find attribute with key %s on entity %s.", navKey, t.Logical)
			}
			suffix := "/$entity"
			if cast != "" {
				suffix = "/" + mdNS + cast + "/$entity"
			}
			return e.writeMetaOne(w, q, build(col), "AttributeMetadata", ctx+suffix)
		}
		var items []map[string]any
		for _, col := range t.Columns {
			if cast == "" || col.Kind.metadataType() == cast {
				items = append(items, build(col))
			}
		}
		if cast != "" {
			ctx += "/" + mdNS + cast
		}
		return e.writeMetaList(w, q, items, "AttributeMetadata", ctx)
	}
	return errf(http.StatusNotImplemented, "", "EntityDefinitions/%s is not implemented by the emulator.", nav)
}

func (e *Emulator) expandEntity(t *table, m map[string]any, expand string) *apiError {
	for _, x := range strings.Split(expand, ",") {
		switch strings.TrimSpace(x) {
		case "":
		case "Attributes":
			var attrs []map[string]any
			for _, c := range t.Columns {
				attrs = append(attrs, attrMeta(t, c))
			}
			m["Attributes"] = attrs
		case "ManyToOneRelationships":
			m["ManyToOneRelationships"] = e.relationships(t)
		default:
			return badRequest("Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.EntityMetadata'.", x)
		}
	}
	return nil
}

// selectMeta applies $select; MetadataId and @odata.type always stay, and
// expanded properties are kept.
func selectMeta(m map[string]any, sel string, typ string, expand string) (map[string]any, *apiError) {
	if sel == "" {
		return m, nil
	}
	out := map[string]any{"MetadataId": m["MetadataId"]}
	if v, ok := m["@odata.type"]; ok {
		out["@odata.type"] = v
	}
	for _, n := range strings.Split(sel, ",") {
		n = strings.TrimSpace(n)
		v, ok := m[n]
		if !ok {
			return nil, badRequest("Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.%s'.", n, typ)
		}
		out[n] = v
	}
	for _, x := range strings.Split(expand, ",") {
		if v, ok := m[strings.TrimSpace(x)]; ok {
			out[strings.TrimSpace(x)] = v
		}
	}
	return out, nil
}

func (e *Emulator) writeMetaOne(w http.ResponseWriter, q url.Values, m map[string]any, typ, ctx string) *apiError {
	out, err := selectMeta(m, q.Get("$select"), typ, q.Get("$expand"))
	if err != nil {
		return err
	}
	out["@odata.context"] = ctx
	writeOData(w, http.StatusOK, out)
	return nil
}

func (e *Emulator) writeMetaList(w http.ResponseWriter, q url.Values, items []map[string]any, typ, ctx string) *apiError {
	var pred predicate
	if f := q.Get("$filter"); f != "" && len(items) > 0 {
		p, err := parseFilter(f, mapBinder(items[0], typ))
		if err != nil {
			return badRequest("%s", err.Error())
		}
		pred = p
	}
	value := []map[string]any{}
	for _, m := range items {
		if pred != nil && !pred(m) {
			continue
		}
		out, err := selectMeta(m, q.Get("$select"), typ, q.Get("$expand"))
		if err != nil {
			return err
		}
		value = append(value, out)
	}
	writeOData(w, http.StatusOK, map[string]any{"@odata.context": ctx, "value": value})
	return nil
}

// mapBinder resolves $filter paths on metadata objects (e.g.
// ChangeTrackingEnabled, LogicalName, CanChangeTrackingBeEnabled/Value),
// taking each property's type from a prototype.
func mapBinder(proto map[string]any, typ string) binder {
	return func(path []string) (fieldKind, func(any) any, error) {
		var cur any = proto
		for _, p := range path {
			m, ok := cur.(map[string]any)
			if !ok {
				return 0, nil, fmt.Errorf("Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.%s'.", p, typ)
			}
			if cur, ok = m[p]; !ok {
				return 0, nil, fmt.Errorf("Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.%s'.", p, typ)
			}
		}
		var k fieldKind
		switch v := cur.(type) {
		case string:
			k = fkString
			if path[len(path)-1] == "MetadataId" {
				k = fkGUID
			}
		case bool:
			k = fkBool
		case int, int64, float64:
			k = fkNumber
		default:
			_ = v
			return 0, nil, fmt.Errorf("The property '%s' cannot be used in $filter.", strings.Join(path, "/"))
		}
		get := func(rec any) any {
			var cur any = rec
			for _, p := range path {
				m, ok := cur.(map[string]any)
				if !ok {
					return nil
				}
				cur = m[p]
			}
			switch v := cur.(type) {
			case int:
				return int64(v)
			case string:
				if k == fkGUID {
					return strings.ToLower(v)
				}
			}
			return cur
		}
		return k, get, nil
	}
}

// putEntity replaces an entity definition; the emulator applies
// ChangeTrackingEnabled from it (once on, it stays on, as documented).
func (e *Emulator) putEntity(w http.ResponseWriter, r *http.Request, t *table) *apiError {
	body, err := decodeBody(r)
	if err != nil {
		return badRequest("%v", err)
	}
	if ln, ok := body["LogicalName"].(string); ok && ln != t.Logical {
		return badRequest("The LogicalName '%s' in the body does not match the entity '%s'.", ln, t.Logical)
	}
	if v, ok := body["ChangeTrackingEnabled"].(bool); ok && v && !t.ChangeTracking {
		if !t.CanChangeTracking {
			return errf(http.StatusBadRequest, codeInvalidArgument, "Change tracking cannot be enabled for the entity '%s'.", t.Logical)
		}
		t.ChangeTracking = true
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func labelText(v any) string {
	m, _ := v.(map[string]any)
	if l, ok := m["LocalizedLabels"].([]any); ok && len(l) > 0 {
		if lm, ok := l[0].(map[string]any); ok {
			s, _ := lm["Label"].(string)
			return s
		}
	}
	return ""
}

// createAttribute adds a column (POST EntityDefinitions(...)/Attributes).
// Supported types: String, Memo, Integer, Boolean, DateTime, Picklist
// with a local option set.
func (e *Emulator) createAttribute(w http.ResponseWriter, r *http.Request, t *table) *apiError {
	body, err := decodeBody(r)
	if err != nil {
		return badRequest("%v", err)
	}
	typ, _ := body["@odata.type"].(string)
	typ = strings.TrimPrefix(strings.TrimPrefix(typ, "#"), mdNS)
	schema, _ := body["SchemaName"].(string)
	if schema == "" {
		return errf(http.StatusBadRequest, codeInvalidArgument, "SchemaName is required.")
	}
	prefix, rest, ok := strings.Cut(schema, "_")
	if !ok || prefix == "" || rest == "" {
		return errf(http.StatusBadRequest, codeInvalidArgument, "The SchemaName '%s' must start with a customization prefix and an underscore.", schema)
	}
	logical := strings.ToLower(schema)
	if t.col(logical) != nil {
		return errf(http.StatusBadRequest, codeDuplicateRecord, "An attribute with the name '%s' already exists on the entity '%s'.", logical, t.Logical)
	}
	c := &column{Name: logical, Schema: schema, Custom: true, Display: labelText(body["DisplayName"])}
	if c.Display == "" {
		c.Display = schema
	}
	if rl, ok := body["RequiredLevel"].(map[string]any); ok {
		if v, _ := rl["Value"].(string); v != "" {
			c.Required = v
		}
	}
	num := func(k string, def int64) (int64, *apiError) {
		v, ok := body[k]
		if !ok || v == nil {
			return def, nil
		}
		n, err := fmt.Sscan(fmt.Sprint(v), &def)
		if err != nil || n != 1 {
			return 0, badRequest("Invalid %s.", k)
		}
		return def, nil
	}
	switch typ {
	case "StringAttributeMetadata", "MemoAttributeMetadata":
		c.Kind = kString
		if typ == "MemoAttributeMetadata" {
			c.Kind = kMemo
		}
		ml, err := num("MaxLength", 100)
		if err != nil {
			return err
		}
		if ml < 1 || ml > 1048576 {
			return errf(http.StatusBadRequest, codeInvalidArgument, "MaxLength %d is out of range.", ml)
		}
		c.MaxLength = int(ml)
	case "IntegerAttributeMetadata":
		c.Kind = kInt
		var err *apiError
		if c.Min, err = num("MinValue", -2147483648); err != nil {
			return err
		}
		if c.Max, err = num("MaxValue", 2147483647); err != nil {
			return err
		}
	case "BooleanAttributeMetadata":
		c.Kind = kBool
	case "DateTimeAttributeMetadata":
		c.Kind = kDateTime
	case "PicklistAttributeMetadata":
		c.Kind = kChoice
		osm, _ := body["OptionSet"].(map[string]any)
		if osm == nil {
			return errf(http.StatusBadRequest, codeInvalidArgument, "A Picklist attribute needs an OptionSet (global option sets are not supported by the emulator).")
		}
		raw, _ := osm["Options"].([]any)
		if len(raw) == 0 {
			return errf(http.StatusBadRequest, codeInvalidArgument, "The OptionSet has no Options.")
		}
		next := int64(100000000) // default publisher prefix 10000 × 10,000
		seen := map[int64]bool{}
		for _, o := range raw {
			om, _ := o.(map[string]any)
			v, err := optionValue(om["Value"], &next)
			if err != nil {
				return badRequest("Invalid option value: %v", err)
			}
			if seen[v] {
				return errf(http.StatusBadRequest, codeDuplicateRecord, "The option value %d is used twice.", v)
			}
			seen[v] = true
			c.Options = append(c.Options, option{Value: int(v), Label: labelText(om["Label"])})
		}
		sort.Slice(c.Options, func(i, j int) bool { return c.Options[i].Value < c.Options[j].Value })
	default:
		return errf(http.StatusBadRequest, codeInvalidArgument, "The attribute type '%s' is not supported by the emulator (String, Memo, Integer, Boolean, DateTime, Picklist).", typ)
	}
	t.addColumn(c)
	w.Header().Set("OData-EntityId", e.apiBase+"/EntityDefinitions(LogicalName='"+t.Logical+"')/Attributes("+c.MetaID+")")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func optionValue(v any, next *int64) (int64, error) {
	if v == nil {
		n := *next
		*next++
		return n, nil
	}
	var n int64
	if _, err := fmt.Sscan(fmt.Sprint(v), &n); err != nil {
		return 0, err
	}
	if n >= *next {
		*next = n + 1
	}
	return n, nil
}
