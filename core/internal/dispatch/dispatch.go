// Package dispatch is the small contract between the core and whatever handles the
// application's own events: client:event, client:message and client:action are turned
// into a Request, handed to a Dispatcher (the plugin host), and its Reply or Error goes
// back to the client as server:response, message:ack or action:result.
package dispatch

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rtserver/rtserver/core/internal/coded"
)

// Kind says which client event a request came from.
type Kind int

const (
	KindEvent   Kind = iota + 1 // client:event, routed by its "type"
	KindMessage                 // client:message, routed by its "type"
	KindAction                  // client:action, routed by its "action"
)

func (k Kind) String() string {
	switch k {
	case KindEvent:
		return "event"
	case KindMessage:
		return "message"
	case KindAction:
		return "action"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Request is one client event handed to a handler.
type Request struct {
	Kind      Kind
	Name      string // the event type, the message type or the action name
	RequestID string // server-generated, echoed in the reply to the client
	MessageID string // server-generated; set for KindMessage only
	SocketID  string
	UserID    string   // the token's userId
	Rooms     []string // the rooms the socket is in (its own id and user rooms excluded)
	// Payload is the whole object the client sent ({type,data}, {content,type,metadata}
	// or {action,params}), as JSON.
	Payload json.RawMessage
}

// Reply is a handler's answer: Data becomes "data" (server:response) or "result"
// (action:result); it is ignored for messages, whose ack carries the messageId.
type Reply struct {
	Data json.RawMessage
}

// Error codes a Dispatcher returns; the client sees them as {success:false, code}. The
// plugin wire defines them: the SDK and the plugins see the same.
const (
	CodeNoHandler         = coded.NoHandler
	CodePluginUnavailable = coded.PluginUnavailable
	CodePluginTimeout     = coded.PluginTimeout
	CodePluginError       = coded.PluginError
)

// Codes of a Host's refusals (see Host).
const (
	CodeUnknownSocket = coded.UnknownSocket
	CodeInvalidRoom   = coded.InvalidRoom
	CodeRoomLimit     = coded.RoomLimit
	CodeInvalidEvent  = coded.InvalidEvent
)

// Error is a failure with a code the client (or, from a Host, the plugin) will see: the
// product's one coded error (coded.Error). The plugin host maps its failures and the
// plugins' to it, and a Host's refusals reach the plugin with their code.
type Error = coded.Error

// Errorf builds an *Error.
func Errorf(code, format string, args ...any) *Error { return coded.Errorf(code, format, args...) }

// CodeOf returns the code carried by err, or def when err carries none.
func CodeOf(err error, def string) string { return coded.CodeOf(err, def) }

// Dispatcher handles client requests. The dispatcher applies its own deadline to each
// request (a plugin's timeout); ctx ends when the client that sent the request is gone,
// and then Dispatch stops waiting, lets the handler know and frees what the request holds.
// A deadline ctx carries is honoured too.
type Dispatcher interface {
	Dispatch(ctx context.Context, req *Request) (*Reply, error)
}

// AsyncDispatcher is a Dispatcher that can also answer through a callback, so that no
// goroutine has to wait for the reply. DispatchAsync must not block; done gets the
// outcome exactly once (perhaps before DispatchAsync returns) and must not block either.
type AsyncDispatcher interface {
	Dispatcher
	DispatchAsync(ctx context.Context, req *Request, done func(*Reply, error))
}

// None is the Dispatcher used while no handler exists: every request gets NO_HANDLER.
type None struct{}

func (None) Dispatch(_ context.Context, req *Request) (*Reply, error) {
	return nil, Errorf(CodeNoHandler, "no handler for %s %q", req.Kind, req.Name)
}

// Host is what handlers may ask of the core (a plugin calls it back through the host
// service). Counts are the number of sockets reached. A refusal is an *Error whose code
// the plugin can tell apart: CodeUnknownSocket, CodeInvalidRoom, CodeRoomLimit,
// CodeInvalidEvent; any other error reaches the plugin as a failure without a code.
type Host interface {
	EmitToUser(ctx context.Context, userID, event string, data json.RawMessage) (int, error)
	EmitToRoom(ctx context.Context, room, event string, data json.RawMessage, exceptSocketID string) (int, error)
	Broadcast(ctx context.Context, event string, data json.RawMessage) (int, error)
	JoinRoom(ctx context.Context, socketID, room string) error
	LeaveRoom(ctx context.Context, socketID, room string) error
	DisconnectSocket(ctx context.Context, socketID string) error
}
