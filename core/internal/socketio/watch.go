package socketio

// RoomWatcher learns when a room of the main namespace gains its first member on this
// server and when it loses its last; a socket's own id room counts, from just before the
// socket is accepted until it is gone. A cluster adapter subscribes to a room's channel
// only while the room has members here.
//
// RoomsOpened runs on the goroutine that joins, before Join (or the socket's CONNECT)
// returns, and may block to make sure nothing sent to those rooms from then on is missed;
// RoomsClosed must not block. Both run with no lock of the server held. Calls for one room
// may reach the watcher out of order when two goroutines race on it: the watcher keeps a
// count per room (opened +1, closed -1), which ends right whatever the order.
type RoomWatcher interface {
	RoomsOpened(rooms []string)
	RoomsClosed(rooms []string)
}

type watcherBox struct{ w RoomWatcher }

// WatchRooms installs the room watcher (nil removes it). Install it before sockets
// connect: rooms opened earlier are not reported.
func (s *Server) WatchRooms(w RoomWatcher) {
	if w == nil {
		s.watch.Store(nil)
		return
	}
	s.watch.Store(&watcherBox{w})
}

func (s *Server) roomsOpened(rooms []string) {
	if b := s.watch.Load(); b != nil && len(rooms) > 0 {
		b.w.RoomsOpened(rooms)
	}
}

func (s *Server) roomsClosed(rooms []string) {
	if b := s.watch.Load(); b != nil && len(rooms) > 0 {
		b.w.RoomsClosed(rooms)
	}
}
