package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	pluginv1 "github.com/rtserver/rtserver/proto/plugin/v1"
)

// Host is what a handler may ask of the core. Data is encoded as JSON (a
// json.RawMessage is sent as it is). Counts are the number of sockets reached.
type Host interface {
	EmitToUser(ctx context.Context, userID, event string, data any) (int, error)
	// EmitToRoom skips exceptSocketID when it is not empty.
	EmitToRoom(ctx context.Context, room, event string, data any, exceptSocketID string) (int, error)
	Broadcast(ctx context.Context, event string, data any) (int, error)
	JoinRoom(ctx context.Context, socketID, room string) error
	LeaveRoom(ctx context.Context, socketID, room string) error
	DisconnectSocket(ctx context.Context, socketID string) error
}

type hostKey struct{}

// HostFrom returns the Host carried by a handler's context. Outside a handler (or
// before the core connected) it returns a Host whose calls all fail.
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

var errNoHost = errors.New("sdk: not connected to the core")

type noHost struct{}

func (noHost) EmitToUser(context.Context, string, string, any) (int, error) { return 0, errNoHost }
func (noHost) EmitToRoom(context.Context, string, string, any, string) (int, error) {
	return 0, errNoHost
}
func (noHost) Broadcast(context.Context, string, any) (int, error) { return 0, errNoHost }
func (noHost) JoinRoom(context.Context, string, string) error      { return errNoHost }
func (noHost) LeaveRoom(context.Context, string, string) error     { return errNoHost }
func (noHost) DisconnectSocket(context.Context, string) error      { return errNoHost }

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

func (h grpcHost) EmitToUser(ctx context.Context, userID, event string, data any) (int, error) {
	b, err := encode(data)
	if err != nil {
		return 0, err
	}
	r, err := h.c.EmitToUser(ctx, &pluginv1.EmitToUserRequest{UserId: userID, Event: event, Data: b})
	if err != nil {
		return 0, fmt.Errorf("sdk: emit to user %q: %w", userID, err)
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
		return 0, fmt.Errorf("sdk: emit to room %q: %w", room, err)
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
		return 0, fmt.Errorf("sdk: broadcast: %w", err)
	}
	return int(r.GetCount()), nil
}

func (h grpcHost) JoinRoom(ctx context.Context, socketID, room string) error {
	if _, err := h.c.JoinRoom(ctx, &pluginv1.RoomRequest{SocketId: socketID, Room: room}); err != nil {
		return fmt.Errorf("sdk: join room %q: %w", room, err)
	}
	return nil
}

func (h grpcHost) LeaveRoom(ctx context.Context, socketID, room string) error {
	if _, err := h.c.LeaveRoom(ctx, &pluginv1.RoomRequest{SocketId: socketID, Room: room}); err != nil {
		return fmt.Errorf("sdk: leave room %q: %w", room, err)
	}
	return nil
}

func (h grpcHost) DisconnectSocket(ctx context.Context, socketID string) error {
	if _, err := h.c.DisconnectSocket(ctx, &pluginv1.DisconnectSocketRequest{SocketId: socketID}); err != nil {
		return fmt.Errorf("sdk: disconnect socket %q: %w", socketID, err)
	}
	return nil
}
