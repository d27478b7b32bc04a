package hub

import (
	"encoding/json"

	"github.com/rtserver/rtserver/core/internal/socketio"
)

// memoryAdapter is the single-node Adapter: core/socketio's Server holds the sockets and
// the room index, and delivers.
type memoryAdapter struct{ io *socketio.Server }

var _ Adapter = (*memoryAdapter)(nil)

// NewMemoryAdapter returns the Adapter of a single node, on io.
func NewMemoryAdapter(io *socketio.Server) Adapter { return &memoryAdapter{io: io} }

func (a *memoryAdapter) Broadcast(to Target, event string, data json.RawMessage) (int, error) {
	return a.io.EmitTo(to.Rooms, to.Except, event, data)
}

func (a *memoryAdapter) socket(id string) (*socketio.Socket, error) {
	if s := a.io.Socket(id); s != nil {
		return s, nil
	}
	return nil, ErrUnknownSocket
}

func (a *memoryAdapter) Join(socketID string, rooms ...string) error {
	s, err := a.socket(socketID)
	if err != nil {
		return err
	}
	s.Join(rooms...)
	return nil
}

func (a *memoryAdapter) Leave(socketID string, rooms ...string) error {
	s, err := a.socket(socketID)
	if err != nil {
		return err
	}
	for _, r := range rooms {
		s.Leave(r)
	}
	return nil
}

func (a *memoryAdapter) SocketRooms(socketID string) ([]string, error) {
	s, err := a.socket(socketID)
	if err != nil {
		return nil, err
	}
	return s.Rooms(), nil
}

func (a *memoryAdapter) Disconnect(socketID string) error {
	s, err := a.socket(socketID)
	if err != nil {
		return err
	}
	s.Disconnect()
	return nil
}

func (a *memoryAdapter) Reserved(room string) bool { return a.io.Reserved(room) }
func (a *memoryAdapter) SocketCount() int          { return a.io.SocketCount() }
func (a *memoryAdapter) RoomCount() int            { return a.io.RoomCount() }
