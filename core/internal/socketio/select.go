package socketio

// Select returns the connected sockets in any of rooms (every socket when rooms is empty)
// that are in none of except: the recipients a broadcast to (rooms, except) would reach.
// A cluster node answers other nodes' requests (fetch, join, leave, disconnect by rooms)
// with it.
func (s *Server) Select(rooms, except []string) []*Socket {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.collect(nil, rooms, except)
}

// RoomNames lists every room with a member, each connected socket's own id room included,
// as a Node.js socket.io adapter lists its rooms to other nodes.
func (s *Server) RoomNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.rooms)+len(s.sockets))
	for r := range s.rooms {
		out = append(out, r)
	}
	for id := range s.sockets {
		if _, dup := s.rooms[id]; !dup {
			out = append(out, id)
		}
	}
	return out
}
