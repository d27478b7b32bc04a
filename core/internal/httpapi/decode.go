package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rtserver/rtserver/core/internal/auth"
)

// Request bodies. Pointers tell a missing field from an empty one; json.RawMessage keeps
// "data" exactly as sent (any JSON value) and owns a copy of it, so it may outlive the
// request buffer.
type pushBody struct {
	UserID *string         `json:"userId"`
	Event  *string         `json:"event"`
	Data   json.RawMessage `json:"data"`
}

type broadcastBody struct {
	Event *string         `json:"event"`
	Data  json.RawMessage `json:"data"`
}

type roomBody struct {
	Room  *string         `json:"room"`
	Event *string         `json:"event"`
	Data  json.RawMessage `json:"data"`
}

type notificationBody struct {
	UserID  *string `json:"userId"`
	Title   *string `json:"title"`
	Message *string `json:"message"`
	Type    *string `json:"type"`
}

// Notification types accepted by POST /api/notification.
var notificationTypes = map[string]bool{"info": true, "warning": true, "error": true}

// Event names Socket.IO reserves on the client side; emitting them would be
// misread as connection lifecycle, so the API refuses them.
var reservedEvents = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true, "disconnecting": true,
	"newListener": true, "removeListener": true,
}

// nameLimits are the socket side's limits on event and room names
// (socketio.max_event_name_length, max_room_name_length), applied to the names an API
// caller chooses so that the API cannot send what a client could not.
type nameLimits struct {
	event, room int
}

const defaultMaxNameLength = 128

var jsonNull = json.RawMessage("null")

// decodeObject decodes a body that must be exactly one JSON object into dst, turning
// every failure into a 400 that names the field when it can.
func decodeObject(body []byte, dst any) *apiError {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return errInvalid("Request body must be a JSON object")
	}
	if trimmed[0] != '{' {
		return errInvalid("Request body must be a JSON object")
	}
	// JSON text is UTF-8 (RFC 8259); encoding/json would silently turn invalid bytes in
	// names into U+FFFD and pass them on in data.
	if !utf8.Valid(trimmed) {
		return errInvalid("Request body must be valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errInvalid("Field " + te.Field + " has the wrong type")
		}
		return errInvalid("Invalid JSON body")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errInvalid("Invalid JSON body: trailing data")
	}
	return nil
}

func requireString(p *string, field string) (string, *apiError) {
	if p == nil {
		return "", errInvalid("Missing required field: " + field)
	}
	if *p == "" {
		return "", errInvalid("Field " + field + " must not be empty")
	}
	return *p, nil
}

// requireEvent checks an event name as the socket side would take it: non-blank, at most
// max bytes, no control characters, and not one of Socket.IO's reserved names.
func requireEvent(p *string, max int) (string, *apiError) {
	ev, e := requireString(p, "event")
	if e != nil {
		return "", e
	}
	if e := checkName("event", ev, max); e != nil {
		return "", e
	}
	if reservedEvents[ev] {
		return "", errInvalid("Event name " + ev + " is reserved")
	}
	return ev, nil
}

// requireRoom checks a room name with the rules a client's room:join obeys.
func requireRoom(p *string, max int) (string, *apiError) {
	room, e := requireString(p, "room")
	if e != nil {
		return "", e
	}
	if e := checkName("room", room, max); e != nil {
		return "", e
	}
	return room, nil
}

// checkName refuses a blank name, one over max bytes, invalid UTF-8 and control
// characters. The messages never echo the name.
func checkName(field, name string, max int) *apiError {
	if strings.TrimSpace(name) == "" {
		return errInvalid("Field " + field + " must not be blank")
	}
	if len(name) > max {
		return errInvalid("Field " + field + " must be at most " + strconv.Itoa(max) + " bytes")
	}
	if !utf8.ValidString(name) {
		return errInvalid("Field " + field + " must be valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return errInvalid("Field " + field + " must not contain control characters")
		}
	}
	return nil
}

// requireUserID checks a userId with the rule tokens and the register event obey.
func requireUserID(p *string) (string, *apiError) {
	id, e := requireString(p, "userId")
	if e != nil {
		return "", e
	}
	if err := auth.CheckUserID(id); err != nil {
		return "", errInvalid("Field " + err.Error())
	}
	return id, nil
}

func dataOrNull(d json.RawMessage) json.RawMessage {
	if len(d) == 0 {
		return jsonNull
	}
	return d
}

func decodePush(body []byte, lim nameLimits) (userID, event string, data json.RawMessage, e *apiError) {
	var b pushBody
	if e = decodeObject(body, &b); e != nil {
		return
	}
	if userID, e = requireUserID(b.UserID); e != nil {
		return
	}
	if event, e = requireEvent(b.Event, lim.event); e != nil {
		return
	}
	return userID, event, dataOrNull(b.Data), nil
}

func decodeBroadcast(body []byte, lim nameLimits) (event string, data json.RawMessage, e *apiError) {
	var b broadcastBody
	if e = decodeObject(body, &b); e != nil {
		return
	}
	if event, e = requireEvent(b.Event, lim.event); e != nil {
		return
	}
	return event, dataOrNull(b.Data), nil
}

func decodeRoom(body []byte, lim nameLimits) (room, event string, data json.RawMessage, e *apiError) {
	var b roomBody
	if e = decodeObject(body, &b); e != nil {
		return
	}
	if room, e = requireRoom(b.Room, lim.room); e != nil {
		return
	}
	if event, e = requireEvent(b.Event, lim.event); e != nil {
		return
	}
	return room, event, dataOrNull(b.Data), nil
}

type notification struct {
	userID, title, message, typ string
}

// decodeNotification requires a valid userId; title and message must be strings (empty allowed);
// type must be info, warning or error.
func decodeNotification(body []byte) (n notification, e *apiError) {
	var b notificationBody
	if e = decodeObject(body, &b); e != nil {
		return
	}
	if n.userID, e = requireUserID(b.UserID); e != nil {
		return
	}
	if b.Title == nil {
		return n, errInvalid("Missing required field: title")
	}
	if b.Message == nil {
		return n, errInvalid("Missing required field: message")
	}
	if b.Type == nil {
		return n, errInvalid("Missing required field: type")
	}
	if !notificationTypes[*b.Type] {
		return n, errInvalid("Field type must be one of info, warning, error")
	}
	n.title, n.message, n.typ = *b.Title, *b.Message, *b.Type
	return n, nil
}
