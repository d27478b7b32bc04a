package sdk

import (
	"context"
	"encoding/json"
	"fmt"

	pluginv1 "github.com/rtserver/rtserver/proto/plugin/v1"
	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// Host is what a plugin may ask of the core. Data is encoded as JSON (a json.RawMessage
// is sent as it is). Counts are the number of sockets reached.
//
// A refusal of the core is a *HostError: test it with errors.Is against ErrUnknownSocket,
// ErrInvalidRoom, ErrRoomLimit, ErrInvalidEvent or ErrNoHost. A call whose ctx ended
// fails with an error that errors.Is finds ctx's error in.
type Host interface {
	EmitToUser(ctx context.Context, userID, event string, data any) (int, error)
	// EmitToRoom skips exceptSocketID when it is not empty.
	EmitToRoom(ctx context.Context, room, event string, data any, exceptSocketID string) (int, error)
	Broadcast(ctx context.Context, event string, data any) (int, error)
	JoinRoom(ctx context.Context, socketID, room string) error
	LeaveRoom(ctx context.Context, socketID, room string) error
	DisconnectSocket(ctx context.Context, socketID string) error
}

// HostError is a host call the core refused. Code says why (errors.Is(err,
// ErrInvalidRoom), ...); Message is the core's explanation.
type HostError struct {
	Op      string // the call, e.g. "join room"; empty in the Err values
	Code    string
	Message string
}

func (e *HostError) Error() string {
	s := "sdk: "
	if e.Op != "" {
		s += e.Op + ": "
	}
	s += e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is reports whether target is a *HostError with the same code: errors.Is(err,
// sdk.ErrUnknownSocket).
func (e *HostError) Is(target error) bool {
	t, ok := target.(*HostError)
	return ok && t.Code == e.Code
}

// The reasons the core refuses a host call, for errors.Is.
var (
	// ErrUnknownSocket: no socket of that id is connected (it left, or never was).
	ErrUnknownSocket = &HostError{Code: wire.CodeUnknownSocket}
	// ErrInvalidRoom: the room name breaks the rule of room names, or is reserved.
	ErrInvalidRoom = &HostError{Code: wire.CodeInvalidRoom}
	// ErrRoomLimit: the socket is in as many rooms as it may be.
	ErrRoomLimit = &HostError{Code: wire.CodeRoomLimit}
	// ErrInvalidEvent: the event name breaks the rule of event names.
	ErrInvalidEvent = &HostError{Code: wire.CodeInvalidEvent}
	// ErrNoHost: there is no core to call: the context came from neither a handler nor
	// Configure, or the core serves no host calls.
	ErrNoHost = &HostError{Code: wire.CodeHostUnavailable}
)

type hostKey struct{}

// HostFrom returns the Host carried by a context the core gave: a handler's, or
// Configure's. The Host stays valid for the life of the plugin process, so a goroutine may
// keep it and call it after the handler has returned; it must then pass a context of its
// own, since a handler's context ends when the handler returns. From any other context
// HostFrom returns a Host whose calls fail with ErrNoHost.
func HostFrom(ctx context.Context) Host {
	if h, ok := ctx.Value(hostKey{}).(Host); ok && h != nil {
		return h
	}
	return noHost{}
}

// WithHost returns ctx carrying h; useful to test handlers without a core.
func WithHost(ctx context.Context, h Host) context.Context {
	return context.WithValue(ctx, hostKey{}, h)
}

type noHost struct{}

func noHostErr(op string) error {
	return &HostError{Op: op, Code: wire.CodeHostUnavailable,
		Message: "no core in this context: HostFrom needs the context of a handler or of Configure"}
}

func (noHost) EmitToUser(context.Context, string, string, any) (int, error) {
	return 0, noHostErr("emit to user")
}
func (noHost) EmitToRoom(context.Context, string, string, any, string) (int, error) {
	return 0, noHostErr("emit to room")
}
func (noHost) Broadcast(context.Context, string, any) (int, error) {
	return 0, noHostErr("broadcast")
}
func (noHost) JoinRoom(context.Context, string, string) error  { return noHostErr("join room") }
func (noHost) LeaveRoom(context.Context, string, string) error { return noHostErr("leave room") }
func (noHost) DisconnectSocket(context.Context, string) error  { return noHostErr("disconnect socket") }

// grpcHost calls the core's Host service over the go-plugin broker connection.
type grpcHost struct {
	c pluginv1.HostClient
}

func encode(data any) ([]byte, error) {
	switch d := data.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return d, nil
	case []byte:
		return d, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("sdk: encode data: %w", err)
	}
	return b, nil
}

// hostErr turns a failed host call into the SDK's errors: the core's refusal into a
// *HostError, a call whose context ended into that context's error.
func hostErr(ctx context.Context, op string, err error) error {
	if code, msg, ok := pluginv1.HostErrorOf(err); ok {
		return &HostError{Op: op, Code: code, Message: msg}
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("sdk: %s: %w (a handler's context ends when the handler returns: "+
			"a goroutine that outlives it passes a context of its own)", op, cerr)
	}
	return fmt.Errorf("sdk: %s: %w", op, err)
}

func (h grpcHost) EmitToUser(ctx context.Context, userID, event string, data any) (int, error) {
	b, err := encode(data)
	if err != nil {
		return 0, err
	}
	r, err := h.c.EmitToUser(ctx, &pluginv1.EmitToUserRequest{UserId: userID, Event: event, Data: b})
	if err != nil {
		return 0, hostErr(ctx, "emit to user", err)
	}
	return int(r.GetCount()), nil
}

func (h grpcHost) EmitToRoom(ctx context.Context, room, event string, data any, except string) (int, error) {
	b, err := encode(data)
	if err != nil {
		return 0, err
	}
	r, err := h.c.EmitToRoom(ctx, &pluginv1.EmitToRoomRequest{Room: room, Event: event, Data: b, ExceptSocketId: except})
	if err != nil {
		return 0, hostErr(ctx, "emit to room", err)
	}
	return int(r.GetCount()), nil
}

func (h grpcHost) Broadcast(ctx context.Context, event string, data any) (int, error) {
	b, err := encode(data)
	if err != nil {
		return 0, err
	}
	r, err := h.c.Broadcast(ctx, &pluginv1.BroadcastRequest{Event: event, Data: b})
	if err != nil {
		return 0, hostErr(ctx, "broadcast", err)
	}
	return int(r.GetCount()), nil
}

func (h grpcHost) JoinRoom(ctx context.Context, socketID, room string) error {
	if _, err := h.c.JoinRoom(ctx, &pluginv1.RoomRequest{SocketId: socketID, Room: room}); err != nil {
		return hostErr(ctx, "join room", err)
	}
	return nil
}

func (h grpcHost) LeaveRoom(ctx context.Context, socketID, room string) error {
	if _, err := h.c.LeaveRoom(ctx, &pluginv1.RoomRequest{SocketId: socketID, Room: room}); err != nil {
		return hostErr(ctx, "leave room", err)
	}
	return nil
}

func (h grpcHost) DisconnectSocket(ctx context.Context, socketID string) error {
	if _, err := h.c.DisconnectSocket(ctx, &pluginv1.DisconnectSocketRequest{SocketId: socketID}); err != nil {
		return hostErr(ctx, "disconnect socket", err)
	}
	return nil
}
