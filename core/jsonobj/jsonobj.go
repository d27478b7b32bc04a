// Package jsonobj reads members of a JSON object in one pass over its bytes, without
// reflection. The reader is the plugin wire's (wire.Members): the SDK reads a request's
// payload with the same rules the core routed it by.
package jsonobj

import (
	"encoding/json"

	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// Fields is wire.Members: out[i] is the raw value of member keys[i] of the object raw.
func Fields(raw []byte, keys []string, out []json.RawMessage) bool {
	return wire.Members(raw, keys, out)
}

// String is wire.String: the JSON string value raw, decoded.
func String(raw json.RawMessage) (string, bool) { return wire.String(raw) }
