package wire

// A request's payload is the whole JSON object the client sent. The core routes it by one
// or two of its members and the SDK hands the same members to the handler, so both read
// them here, with the same rules, in one pass over the bytes and without reflection:
// decoding into a map or a struct with encoding/json costs several times more (a quarter
// of the server's CPU per plugin round trip when the core did it).

import (
	"encoding/json"
	"unicode/utf8"
)

// Members finds the members of the JSON object raw named in keys and sets out[i] to the
// raw value of keys[i] (nil when absent; a present value is never empty). Like decoding
// into map[string]json.RawMessage it matches keys exactly after unescaping, and the last
// of duplicate keys wins. It relies on raw being valid JSON and reports false for
// anything that is not an object. len(out) must be at least len(keys).
func Members(raw []byte, keys []string, out []json.RawMessage) bool {
	clear(out[:len(keys)])
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return skipWS(raw, i+1) == len(raw)
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return false
		}
		end, escaped := stringEnd(raw, i)
		if end < 0 {
			return false
		}
		key := raw[i+1 : end-1]
		if escaped {
			var unescaped string
			if json.Unmarshal(raw[i:end], &unescaped) != nil {
				return false
			}
			key = []byte(unescaped)
		}
		i = skipWS(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return false
		}
		i = skipWS(raw, i+1)
		vend := valueEnd(raw, i)
		if vend < 0 {
			return false
		}
		for k, name := range keys {
			if string(key) == name {
				out[k] = raw[i:vend]
			}
		}
		i = skipWS(raw, vend)
		if i >= len(raw) {
			return false
		}
		switch raw[i] {
		case ',':
			i = skipWS(raw, i+1)
		case '}':
			return skipWS(raw, i+1) == len(raw)
		default:
			return false
		}
	}
}

// String decodes the JSON string value raw as json.Unmarshal into a string would, without
// reflection when it has no escapes and is valid UTF-8 (json.Unmarshal would replace
// invalid bytes). false when raw is not a string.
func String(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return slowString(raw)
	}
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c == '\\' || c == '"' || c < 0x20 {
			return slowString(raw)
		}
	}
	if !utf8.Valid(body) {
		return slowString(raw)
	}
	return string(body), true
}

func slowString(raw json.RawMessage) (string, bool) {
	var v string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	return v, true
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
			if j == i {
				return -1 // no value at all: not valid JSON
			}
			return j
		}
		j++
	}
	return j
}
