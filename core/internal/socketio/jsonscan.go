package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// A small JSON scanner used on the inbound hot path: it validates a packet payload and
// splits a top-level array into its raw elements without reflection. It accepts exactly
// what encoding/json.Valid accepts (the fuzz test checks that), so every json.RawMessage
// handed to a handler is valid JSON.

// maxJSONDepth bounds nesting so that a hostile payload cannot exhaust the stack.
const maxJSONDepth = 10000

var (
	errBadJSON  = errors.New("invalid JSON payload")
	errBadEvent = errors.New("invalid event name")
)

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at b[i] (no leading space),
// inside depth objects and arrays; it raises *deepest to the nesting it meets, so that the
// one pass that validates a payload also measures it.
func skipValue(b []byte, i, depth int, deepest *int) (int, error) {
	if i >= len(b) {
		return 0, errBadJSON
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{':
		return skipObject(b, i, depth, deepest, nil, nil)
	case c == '[':
		if depth >= maxJSONDepth {
			return 0, errBadJSON
		}
		if depth >= *deepest {
			*deepest = depth + 1
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			if i, err = skipValue(b, i, depth+1, deepest); err != nil {
				return 0, err
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, errBadJSON
			}
			if b[i] == ']' {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, errBadJSON
			}
			i = skipSpace(b, i+1)
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	}
	return 0, errBadJSON
}

// skipObject is skipValue for the object starting at b[i]. When keys is not nil it also
// sets found[k] to the raw value of the member named keys[k] (matched after unescaping,
// the last of duplicates winning, as decoding into a map does), so that a caller that
// routes by a few members needs no second pass over the object.
func skipObject(b []byte, i, depth int, deepest *int, keys []string, found *[MaxArgMembers]json.RawMessage) (int, error) {
	if depth >= maxJSONDepth {
		return 0, errBadJSON
	}
	if depth >= *deepest {
		*deepest = depth + 1
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, errBadJSON
		}
		keyStart := i
		var err error
		if i, err = skipString(b, i); err != nil {
			return 0, err
		}
		key := b[keyStart:i]
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return 0, errBadJSON
		}
		i = skipSpace(b, i+1)
		valueStart := i
		if i, err = skipValue(b, i, depth+1, deepest); err != nil {
			return 0, err
		}
		if keys != nil {
			matchMember(key, b[valueStart:i:i], keys, found)
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, errBadJSON
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, errBadJSON
		}
		i = skipSpace(b, i+1)
	}
}

// matchMember stores value in found at the index of each of keys that the (validated)
// string literal key names.
func matchMember(key, value []byte, keys []string, found *[MaxArgMembers]json.RawMessage) {
	name := key[1 : len(key)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		u, ok := unquoteString(key)
		if !ok {
			return
		}
		name = []byte(u)
	}
	for k, want := range keys {
		if string(name) == want {
			found[k] = value
		}
	}
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, errBadJSON
	}
	return i + len(lit), nil
}

func skipNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, errBadJSON
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return 0, errBadJSON
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return 0, errBadJSON
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return 0, errBadJSON
		}
	}
	return i, nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipString returns the index past the closing quote of the string starting at b[i].
func skipString(b []byte, i int) (int, error) {
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return 0, errBadJSON
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return 0, errBadJSON
				}
				i += 6
			default:
				return 0, errBadJSON
			}
		case c < 0x20:
			return 0, errBadJSON
		default:
			i++
		}
	}
	return 0, errBadJSON
}

// validJSON reports whether b is exactly one JSON value with optional surrounding space.
func validJSON(b []byte) bool {
	i := skipSpace(b, 0)
	var deepest int
	end, err := skipValue(b, i, 0, &deepest)
	if err != nil {
		return false
	}
	return skipSpace(b, end) == len(b)
}

// MaxArgMembers is how many members of an event's first argument Options.ArgMembers may
// name.
const MaxArgMembers = 4

// split is a JSON array cut into its raw elements (sub-slices of the input, trimmed) by
// one validating pass.
type split struct {
	elems []json.RawMessage
	// depth is the deepest nesting of objects and arrays within an element (0 when all
	// are scalars).
	depth int
	// event is elems[0] read as an event name, when the array is an EVENT's.
	event string
	// members are what memberKeys named for event, found in elems[1].
	members Members
}

// splitArray splits b, which must be exactly one JSON array. For an EVENT's array
// (isEvent) the first element must be an event name; when memberKeys names keys for
// that event, the members of the second element (the first argument) with those names
// are picked up by the same pass.
func splitArray(b []byte, isEvent bool, memberKeys map[string][]string) (split, error) {
	return splitArrayNames(b, isEvent, memberKeys, nil)
}

// splitArrayNames is splitArray that takes the event name from names when it is there
// (decodePacketNames).
func splitArrayNames(b []byte, isEvent bool, memberKeys map[string][]string, names map[string]string) (split, error) {
	var out split
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return out, errBadJSON
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		if skipSpace(b, i+1) != len(b) {
			return out, errBadJSON
		}
		return out, nil
	}
	deepest := 1 // the array itself
	var keys []string
	badEvent := false // told once the whole array is known to be valid JSON
	for {
		var end int
		var err error
		if keys != nil && len(out.elems) == 1 {
			out.members.Scanned = true
		}
		if out.members.Scanned && len(out.elems) == 1 && b[i] == '{' {
			out.members.Object = true
			end, err = skipObject(b, i, 1, &deepest, keys, &out.members.Values)
		} else {
			end, err = skipValue(b, i, 1, &deepest)
		}
		if err != nil {
			return out, err
		}
		if out.elems == nil && isEvent {
			// Room for an event name and its argument in one allocation: appending to nil
			// allocates for one element, then again at the second. (An ACK's array mostly
			// holds one element: appending to nil is right for it.)
			out.elems = make([]json.RawMessage, 0, 2)
		}
		out.elems = append(out.elems, b[i:end:end])
		if isEvent && len(out.elems) == 1 {
			ev, ok := eventName(out.elems[0], names)
			badEvent = !ok
			out.event = ev
			if keys = memberKeys[ev]; len(keys) == 0 {
				keys = nil
			}
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return out, errBadJSON
		}
		if b[i] == ']' {
			if skipSpace(b, i+1) != len(b) {
				return out, errBadJSON
			}
			if badEvent {
				return out, errBadEvent
			}
			out.depth = deepest - 1
			return out, nil
		}
		if b[i] != ',' {
			return out, errBadJSON
		}
		i = skipSpace(b, i+1)
	}
}

// unquoteString decodes a JSON string literal (already validated) into a Go string. The
// common case, no escapes, is a plain copy; escapes go through the slow path.
func unquoteString(lit []byte) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	body := lit[1 : len(lit)-1]
	simple := true
	for _, c := range body {
		if c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple {
		return string(body), true
	}
	return unquoteSlow(body)
}

func unquoteSlow(body []byte) (string, bool) {
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); {
		c := body[i]
		if c == '\\' {
			if i+1 >= len(body) {
				return "", false
			}
			switch body[i+1] {
			case '"', '\\', '/':
				out = append(out, body[i+1])
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(body, i+2)
				if !ok {
					return "", false
				}
				i += 6
				if r >= 0xD800 && r < 0xDC00 {
					// A high surrogate pairs with a following \uDC00-\uDFFF escape.
					if i+6 <= len(body) && body[i] == '\\' && body[i+1] == 'u' {
						if r2, ok := hex4(body, i+2); ok && r2 >= 0xDC00 && r2 < 0xE000 {
							out = utf8.AppendRune(out, (r-0xD800)<<10+(r2-0xDC00)+0x10000)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				} else if r >= 0xDC00 && r < 0xE000 {
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return "", false
			}
			i += 2
			continue
		}
		if c < utf8.RuneSelf {
			out = append(out, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(body[i:])
		out = utf8.AppendRune(out, r)
		i += size
	}
	return string(out), true
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string literal. Invalid UTF-8 becomes U+FFFD and
// U+2028/U+2029 are escaped, as encoding/json does.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
