package hub

import (
	"encoding/json"
	"unicode/utf8"
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

// scanRequest finds the routing members of the JSON object raw. Like decoding into
// map[string]json.RawMessage it matches keys exactly after unescaping, and the last of
// duplicate keys wins. It relies on raw being valid JSON (core/socketio validates every
// argument before a handler sees it) and refuses anything that is not an object.
func scanRequest(raw []byte) (requestFields, bool) {
	var f requestFields
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return f, false
	}
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return f, skipWS(raw, i+1) == len(raw)
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return f, false
		}
		end, escaped := stringEnd(raw, i)
		if end < 0 {
			return f, false
		}
		key := raw[i+1 : end-1]
		var unescaped string
		if escaped {
			if json.Unmarshal(raw[i:end], &unescaped) != nil {
				return f, false
			}
			key = []byte(unescaped)
		}
		i = skipWS(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return f, false
		}
		i = skipWS(raw, i+1)
		vend := valueEnd(raw, i)
		if vend < 0 {
			return f, false
		}
		val := raw[i:vend]
		switch string(key) {
		case "type":
			f.typ = val
		case "content":
			f.content = val
		case "action":
			f.action = val
		}
		i = skipWS(raw, vend)
		if i >= len(raw) {
			return f, false
		}
		switch raw[i] {
		case ',':
			i = skipWS(raw, i+1)
		case '}':
			return f, skipWS(raw, i+1) == len(raw)
		default:
			return f, false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting at b[i] (a quote) and whether
// it holds escapes; -1 when it is not terminated.
func stringEnd(b []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, escaped
}

// valueEnd returns the index just past the value starting at b[i]; -1 when it does not end.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := stringEnd(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := stringEnd(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}

// fastString decodes a JSON string value as stringValue does, without reflection when
// it has no escapes and is valid UTF-8 (json.Unmarshal would replace invalid bytes).
func fastString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return stringValue(raw)
	}
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c == '\\' || c == '"' || c < 0x20 {
			return stringValue(raw)
		}
	}
	if !utf8.Valid(body) {
		return stringValue(raw)
	}
	return string(body), true
}

// requiredField returns raw when it is a non-blank string.
func requiredField(raw json.RawMessage) (string, bool) {
	if raw == nil {
		return "", false
	}
	v, ok := fastString(raw)
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
