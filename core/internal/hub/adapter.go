package hub

import (
	"encoding/json"

	"github.com/rtserver/rtserver/core/internal/dispatch"
)

// Adapter is the hub's fan-out: every emit to a socket, a user, a room or everyone, every
// join and leave the hub makes, and the counts it reports go through it. The in-memory
// adapter (adapter_memory.go) serves one node and is the default. A cluster adapter
// implements the same methods across nodes (with Redis, wire-compatible with
// @socket.io/redis-adapter: a broadcast carries its rooms and except rooms to every node;
// a join, leave or disconnect of a socket another node holds is a request to that node);
// nothing above this interface changes with it.
//
// A socket is a room of its own, named by its id; a user is the internal room userRoom.
// Methods may be called from any goroutine, and never call back into the hub.
type Adapter interface {
	// Broadcast sends event with data to the sockets in any of to.Rooms (every socket
	// when to.Rooms is empty) that are in none of to.Except. It returns the number of
	// sockets reached (on this node, for a cluster adapter).
	Broadcast(to Target, event string, data json.RawMessage) (int, error)
	// Join puts a socket in rooms; ErrUnknownSocket when no such socket is connected.
	Join(socketID string, rooms ...string) error
	// Leave takes a socket out of rooms; ErrUnknownSocket as Join.
	Leave(socketID string, rooms ...string) error
	// SocketRooms lists the rooms a socket is in, its own id room included.
	SocketRooms(socketID string) ([]string, error)
	// Disconnect closes a socket's connection; ErrUnknownSocket as Join.
	Disconnect(socketID string) error
	// Reserved reports whether room is a socket's own room (its id), whether that socket
	// is connected or kept for connection state recovery: no other socket may join it.
	Reserved(room string) bool
	// SocketCount is the number of connected sockets; RoomCount the number of rooms with
	// at least one member, sockets' own id rooms excluded.
	SocketCount() int
	RoomCount() int
}

// Target is whom a Broadcast reaches: rooms (none: everyone) minus the except rooms.
type Target struct {
	Rooms  []string
	Except []string
}

// ErrUnknownSocket is returned for a socket id that is not connected.
var ErrUnknownSocket error = &dispatch.Error{Code: dispatch.CodeUnknownSocket, Message: "unknown socket"}
