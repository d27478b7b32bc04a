package socketio

import (
	"net/http"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// Observer watches the events of the main namespace's sockets: those handed to a handler
// and those emitted to one socket. Its methods run on the goroutine that handles or emits
// and must not block; they must check cheaply whether anyone is watching before doing work.
type Observer interface {
	EventIn(s *Socket, event string, args Args)
	EventOut(s *Socket, event string, args []any)
}

// observerBox lets an interface value sit in an atomic.Pointer.
type observerBox struct{ o Observer }

// Observe installs the observer of the main namespace's events (nil removes it).
func (s *Server) Observe(o Observer) {
	if o == nil {
		s.obs.Store(nil)
		return
	}
	s.obs.Store(&observerBox{o})
}

func (s *Server) observer() Observer {
	if b := s.obs.Load(); b != nil {
		return b.o
	}
	return nil
}

// Sockets lists the connected sockets of the main namespace, in no particular order.
func (s *Server) Sockets() []*Socket {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Socket, 0, len(s.sockets))
	for _, so := range s.sockets {
		out = append(out, so)
	}
	return out
}

// RoomMembers lists the ids of the main namespace's connected sockets in room (a socket's
// own id is a room of one).
func (s *Server) RoomMembers(room string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if so, ok := s.sockets[room]; ok {
		return []string{so.id}
	}
	m := s.rooms[room]
	out := make([]string, 0, m.len())
	for so := range m.all() {
		out = append(out, so.id)
	}
	return out
}

// ClientID returns the id of the Engine.IO session the socket rides on.
func (s *Socket) ClientID() string { return s.cl.conn.ID() }

// Request rebuilds the handshake request, a new one on every call (nil in unit tests
// without one).
func (s *Socket) Request() *http.Request { return s.cl.conn.Handshake().Request() }

// Handshake returns what the session kept of its handshake request: the narrow readers
// (Handshake.Values, RemoteAddr) build no header map.
func (s *Socket) Handshake() engineio.Handshake { return s.cl.conn.Handshake() }
