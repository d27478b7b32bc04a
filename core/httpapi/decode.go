package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
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

func requireEvent(p *string) (string, *apiError) {
	ev, e := requireString(p, "event")
	if e != nil {
		return "", e
	}
	if reservedEvents[ev] {
		return "", errInvalid("Event name " + ev + " is reserved")
	}
	return ev, nil
}

func dataOrNull(d json.RawMessage) json.RawMessage {
	if len(d) == 0 {
		return jsonNull
	}
	return d
}

func decodePush(body []byte) (userID, event string, data json.RawMessage, e *apiError) {
	var b pushBody
	if e = decodeObject(body, &b); e != nil {
		return
	}
	if userID, e = requireString(b.UserID, "userId"); e != nil {
		return
	}
	if event, e = requireEvent(b.Event); e != nil {
		return
	}
	return userID, event, dataOrNull(b.Data), nil
}

func decodeBroadcast(body []byte) (event string, data json.RawMessage, e *apiError) {
	var b broadcastBody
	if e = decodeObject(body, &b); e != nil {
		return
	}
	if event, e = requireEvent(b.Event); e != nil {
		return
	}
	return event, dataOrNull(b.Data), nil
}

func decodeRoom(body []byte) (room, event string, data json.RawMessage, e *apiError) {
	var b roomBody
	if e = decodeObject(body, &b); e != nil {
		return
	}
	if room, e = requireString(b.Room, "room"); e != nil {
		return
	}
	if event, e = requireEvent(b.Event); e != nil {
		return
	}
	return room, event, dataOrNull(b.Data), nil
}

type notification struct {
	userID, title, message, typ string
}

// decodeNotification requires userId; title and message must be strings (empty allowed);
// type must be info, warning or error.
func decodeNotification(body []byte) (n notification, e *apiError) {
	var b notificationBody
	if e = decodeObject(body, &b); e != nil {
		return
	}
	if n.userID, e = requireString(b.UserID, "userId"); e != nil {
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
