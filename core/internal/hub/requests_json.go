package hub

import (
	"encoding/json"

	"github.com/rtserver/rtserver/core/internal/socketio"

	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// The client:* hot path reads only one or two members of the request object and answers
// with a fixed-shape object. Decoding into a map and marshalling the reply with
// reflection cost about a quarter of the server's CPU per plugin round trip; these
// helpers do the same with a single pass over the bytes.

// requestFields holds the raw values of the members a client:* request is routed by; nil
// means absent (a present value is never empty).
type requestFields struct {
	typ, content, action json.RawMessage
}

var requestKeys = []string{"type", "content", "action"}

// ArgMembers is what the hub asks socketio (Options.ArgMembers) to pick up from the first
// argument of each event while it validates the packet: the members a client:* request
// is routed by, so the payload is scanned once.
func ArgMembers() map[string][]string {
	return map[string][]string{
		"client:event":   requestKeys,
		"client:message": requestKeys,
		"client:action":  requestKeys,
	}
}

// requestOf reads the routing members of a client:* request from what socketio picked
// up; a socketio server not told ArgMembers leaves them to scanRequest.
func requestOf(args *socketio.Args, arg json.RawMessage) (requestFields, bool) {
	m := &args.Members
	if !m.Scanned {
		return scanRequest(arg)
	}
	return requestFields{typ: m.Values[0], content: m.Values[1], action: m.Values[2]}, m.Object
}

// scanRequest finds the routing members of the JSON object raw (wire.Members). It
// relies on raw being valid JSON (core/socketio validates every argument before a handler
// sees it) and refuses anything that is not an object.
func scanRequest(raw []byte) (requestFields, bool) {
	var out [3]json.RawMessage
	ok := wire.Members(raw, requestKeys, out[:])
	return requestFields{typ: out[0], content: out[1], action: out[2]}, ok
}

// requiredField returns raw when it is a non-blank string.
func requiredField(raw json.RawMessage) (string, bool) {
	if raw == nil {
		return "", false
	}
	v, ok := wire.String(raw)
	if !ok || isBlank(v) {
		return "", false
	}
	return v, true
}

// appendResponse appends the JSON of a successful response, field for field what
// json.Marshal makes of it, except that data and result are copied as they are: the
// plugin's JSON is checked (cheaply, not re-encoded) when the packet is encoded, since
// the whole object goes out as a json.RawMessage. Ids are ours (hex and base 36
// digits): they need no escaping.
func appendResponse(b []byte, r *response) []byte {
	b = append(b, `{"success":true,"requestId":"`...)
	b = append(b, r.RequestID...)
	b = append(b, '"')
	if r.MessageID != "" {
		b = append(b, `,"messageId":"`...)
		b = append(b, r.MessageID...)
		b = append(b, '"')
	}
	if len(r.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, r.Data...)
	}
	if len(r.Result) > 0 {
		b = append(b, `,"result":`...)
		b = append(b, r.Result...)
	}
	return append(b, '}')
}
