package sdk

import (
	"context"
	"encoding/json"

	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// Wildcard, as a route name, matches every name of its kind that no plugin
// claims exactly.
const Wildcard = "*"

// Info describes a plugin and the routes it asks for. The core's configuration may
// override the routes.
type Info struct {
	Name    string
	Version string
	// Event types (client:event), message types (client:message) and action names
	// (client:action) this plugin handles; Wildcard matches any.
	Events   []string
	Messages []string
	Actions  []string
}

// Plugin is the one interface every plugin implements.
type Plugin interface {
	Info() Info
}

// EventHandler handles client:event; the reply's Data becomes server:response data.
type EventHandler interface {
	OnEvent(ctx context.Context, e Event) (Reply, error)
}

// MessageHandler handles client:message; a nil error acks the message.
type MessageHandler interface {
	OnMessage(ctx context.Context, m Message) (Reply, error)
}

// ActionHandler handles client:action; the reply's Data becomes action:result result.
type ActionHandler interface {
	OnAction(ctx context.Context, a Action) (Reply, error)
}

// Configurer receives the plugin's configuration block (as JSON; empty when the
// core has none) once, before any request. An error stops the plugin from loading.
type Configurer interface {
	Configure(ctx context.Context, config json.RawMessage) error
}

// Client is who sent a request.
type Client struct {
	SocketID string
	UserID   string
	// Rooms the socket is in (its own id and user rooms excluded).
	Rooms []string
}

// InRoom reports whether the sending socket is in room.
func (c Client) InRoom(room string) bool {
	for _, r := range c.Rooms {
		if r == room {
			return true
		}
	}
	return false
}

// Event is a client:event {type, data}.
type Event struct {
	Client
	RequestID string
	Type      string
	Data      json.RawMessage
	// Raw is the whole object the client sent.
	Raw json.RawMessage
}

// Message is a client:message {content, type, metadata}.
type Message struct {
	Client
	RequestID string
	MessageID string
	Type      string
	Content   string
	Metadata  json.RawMessage
	Raw       json.RawMessage
}

// Action is a client:action {action, params}.
type Action struct {
	Client
	RequestID string
	Action    string
	Params    json.RawMessage
	Raw       json.RawMessage
}

// Reply is a handler's answer. Data is encoded as JSON (a json.RawMessage is sent
// as it is); nil sends null.
type Reply struct {
	Data any
}

// Codes the core gives failed requests; a plugin may use its own codes as well.
const (
	// CodePluginError: a handler's failure without a code of its own, or a panic.
	CodePluginError = wire.CodePluginError
	// CodePluginTimeout is the code of a handler error caused by the core's deadline.
	CodePluginTimeout = wire.CodePluginTimeout
	// CodeNoHandler: the plugin has no handler for the request's kind.
	CodeNoHandler = wire.CodeNoHandler
)

// CodeBadRequest is a code for a plugin to refuse a request it cannot use.
const CodeBadRequest = "BAD_REQUEST"

// CodedError is an error with a code the client will see as {success:false, code}.
type CodedError struct {
	Code    string
	Message string
}

func (e *CodedError) Error() string { return e.Code + ": " + e.Message }

// Error returns an error the client sees with the given code and message. A code is
// 1 to 64 of A-Z, 0-9 and _, starting with a letter (^[A-Z][A-Z0-9_]{0,63}$).
//
// Any other error returned by a handler, a panic, or a code that is not valid reaches
// the client as PLUGIN_ERROR with the message "Plugin error": its text may hold file
// paths or other internals, so the core logs it, with the request id, instead.
func Error(code, msg string) error { return &CodedError{Code: code, Message: msg} }
