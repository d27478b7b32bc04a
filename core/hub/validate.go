package hub

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// codedError is a refusal with the code the client sees.
type codedError struct {
	Code    string
	Message string
}

func (e *codedError) Error() string { return e.Code + ": " + e.Message }

func isObject(raw json.RawMessage) bool {
	for _, b := range raw {
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

func isBlank(s string) bool { return strings.TrimSpace(s) == "" }

// jsonDepth returns the deepest nesting of objects and arrays in raw, stopping early once it
// passes limit. It does not validate the JSON: the decoder does that.
func jsonDepth(raw []byte, limit int) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, b := range raw {
		if inString {
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
			continue
		}
		switch b {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > limit {
					return deepest
				}
			}
		case '}', ']':
			depth--
		}
	}
	return deepest
}

func (h *Hub) checkDepth(raw json.RawMessage) bool {
	return jsonDepth(raw, h.opts.MaxJSONDepth) <= h.opts.MaxJSONDepth
}

// checkRoomName validates a room name a client or plugin chose: a non-blank string of
// printable characters within the length limit.
func (h *Hub) checkRoomName(room string) *codedError {
	if isBlank(room) {
		return &codedError{CodeInvalidRoom, "Room name must be a non-empty string"}
	}
	if len(room) > h.opts.MaxRoomNameLen {
		return &codedError{CodeInvalidRoom, "Room name is too long"}
	}
	if !utf8.ValidString(room) {
		return &codedError{CodeInvalidRoom, "Room name must be valid UTF-8"}
	}
	for _, r := range room {
		if unicode.IsControl(r) {
			return &codedError{CodeInvalidRoom, "Room name must not contain control characters"}
		}
	}
	return nil
}

// checkRoom validates a join of a socket to room: the name, the per-socket room limit, and
// that the room is not another socket's private room. An unknown socket is
// ErrUnknownSocket.
func (h *Hub) checkRoom(socketID, room string) error {
	if err := h.checkRoomName(room); err != nil {
		return err
	}
	if room != socketID && h.fan.Reserved(room) {
		return &codedError{CodeInvalidRoom, "Room name is reserved"}
	}
	all, err := h.fan.SocketRooms(socketID)
	if err != nil {
		return err
	}
	if len(clientRooms(socketID, all)) >= h.opts.MaxRoomsPerSocket && !slices.Contains(all, room) {
		return &codedError{CodeRoomLimit, "Too many rooms for this socket"}
	}
	return nil
}

// checkEventName validates an event name chosen by a plugin or an API caller.
func (h *Hub) checkEventName(event string) error {
	if isBlank(event) || len(event) > h.opts.MaxEventNameLen || !utf8.ValidString(event) {
		return &codedError{"INVALID_EVENT", "Event name must be a non-empty string within the length limit"}
	}
	return nil
}

func randomPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
