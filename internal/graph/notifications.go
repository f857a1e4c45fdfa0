package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
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
//
// The body is decoded once: the top-level object is walked token by token
// and "value" decoded straight into the typed items (no intermediate map or
// raw copies). Keys match as encoding/json matches struct fields (case
// insensitively, the last one winning), and "value" must also appear
// spelled exactly so. An item that is not an object fails to decode or
// lacks its subscriptionId.
func ParseNotificationCollection(body []byte) (*ChangeNotificationCollection, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformedNotification, fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	switch {
	case err != nil:
		return nil, fail("%v", err)
	case tok == nil:
		return nil, fail("body is null")
	case tok != json.Delim('{'):
		return nil, fail("body is not a JSON object")
	}
	var coll ChangeNotificationCollection
	sawValue := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fail("%v", err)
		}
		key, _ := tok.(string)
		switch {
		case strings.EqualFold(key, "value"):
			var items []ChangeNotification
			if err := dec.Decode(&items); err != nil {
				return nil, fail("%v", err)
			}
			if key == "value" {
				if items == nil {
					return nil, fail(`"value" must be an array`)
				}
				sawValue = true
			}
			coll.Value = items
		case strings.EqualFold(key, "validationTokens"):
			var tokens []string
			if err := dec.Decode(&tokens); err != nil {
				return nil, fail("%v", err)
			}
			coll.ValidationTokens = tokens
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fail("%v", err)
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fail("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fail("trailing data after the JSON object")
	}
	if !sawValue {
		return nil, fail(`missing "value"`)
	}
	for i := range coll.Value {
		n := &coll.Value[i]
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
