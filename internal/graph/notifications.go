package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrMalformedNotification is wrapped by ParseNotificationCollection errors.
var ErrMalformedNotification = errors.New("graph: malformed notification")

// ParseNotificationCollection parses the body Graph POSTs to a
// notificationUrl or lifecycleNotificationUrl. It is strict about shape and
// lenient about additions: unknown properties are ignored (Graph may add
// some), but the body must be one JSON object with a "value" array, every
// item must carry subscriptionId and subscriptionExpirationDateTime and
// exactly one of changeType (created, updated or deleted) and
// lifecycleEvent, and change notifications must name their resource.
// Values are not checked against our store: clientState comparison is the
// caller's job.
func ParseNotificationCollection(body []byte) (*ChangeNotificationCollection, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformedNotification, fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return nil, fail("%v", err)
	}
	if top == nil {
		return nil, fail("body is null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fail("trailing data after the JSON object")
	}
	rawValue, ok := top["value"]
	if !ok {
		return nil, fail(`missing "value"`)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(rawValue, &items); err != nil || items == nil {
		return nil, fail(`"value" must be an array`)
	}
	var coll ChangeNotificationCollection
	if err := json.Unmarshal(body, &coll); err != nil {
		return nil, fail("%v", err)
	}
	for i := range coll.Value {
		n := &coll.Value[i]
		if !isObject(items[i]) {
			return nil, fail("value[%d] is not an object", i)
		}
		switch {
		case n.SubscriptionID == "":
			return nil, fail("value[%d]: missing subscriptionId", i)
		case n.SubscriptionExpirationDateTime.IsZero():
			return nil, fail("value[%d]: missing subscriptionExpirationDateTime", i)
		case n.ChangeType != "" && n.LifecycleEvent != "":
			return nil, fail("value[%d]: both changeType and lifecycleEvent", i)
		case n.ChangeType == "" && n.LifecycleEvent == "":
			return nil, fail("value[%d]: neither changeType nor lifecycleEvent", i)
		}
		if n.ChangeType != "" {
			switch n.ChangeType {
			case ChangeCreated, ChangeUpdated, ChangeDeleted:
			default:
				return nil, fail("value[%d]: unknown changeType %q", i, n.ChangeType)
			}
			if n.Resource == "" {
				return nil, fail("value[%d]: missing resource", i)
			}
		}
	}
	return &coll, nil
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}
