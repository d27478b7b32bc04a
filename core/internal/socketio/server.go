package socketio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// Server is a Socket.IO server for the main namespace "/" and, without rooms, broadcasts
// or recovery, the namespaces of Options.Namespaces.
//
// Lock order: recovery.mu (when recovery is on) before Server.mu before Socket.mu.
// Server.mu guards the socket and room indexes; a socket is recorded there, and its
// CONNECT reply queued, under the write lock, so that anyone who can find a socket (a
// broadcast, Server.Socket) finds it already connected on the wire.
type Server struct {
	opts   Options
	log    hclog.Logger
	engine *engineio.Server
	rec    *recovery // nil unless Options.Recovery

	hmu         sync.RWMutex // guards middlewares, onConnection
	middlewares []Middleware
	onConn      func(*Socket)

	mu      sync.RWMutex
	sockets map[string]*Socket
	rooms   map[string]members  // explicit rooms (rooms.go); own-id rooms are implicit
	kept    map[string]struct{} // ids of sessions kept for recovery (recovery.go)
	closed  bool

	targets sync.Pool // *[]*Socket scratch for broadcasts

	fl flusher // writes what broadcasts queue; see flush.go

	obs   atomic.Pointer[observerBox] // see observe.go
	watch atomic.Pointer[watcherBox]  // see watch.go
	names nameTable                   // registered event names, see names.go
}

// NewServer returns a Server with o's zero fields set to their defaults. Mount it (it is
// an http.Handler) at o.Path.
func NewServer(o Options) *Server {
	o.setDefaults()
	for ev, keys := range o.ArgMembers {
		if len(keys) > MaxArgMembers {
			// A wiring mistake, not input: no client can reach it.
			panic(fmt.Sprintf("socketio: ArgMembers[%q] names %d members, at most %d", ev, len(keys), MaxArgMembers))
		}
	}
	s := &Server{
		opts:    o,
		log:     o.Logger.Named("socketio"),
		sockets: make(map[string]*Socket),
		rooms:   make(map[string]members),
		kept:    make(map[string]struct{}),
	}
	s.fl.init(o.MaxOutboundBytes)
	if o.Recovery != nil {
		s.rec = newRecovery(s, *o.Recovery)
		if o.Recovery.Shared != nil {
			s.rec.sh = newShared(s.rec, &s.rec.opts)
		}
	}
	s.engine = engineio.NewServer(engineio.Options{
		Path:             o.Path,
		PingInterval:     o.PingInterval,
		PingTimeout:      o.PingTimeout,
		MaxPayload:       o.MaxPayload,
		Transports:       o.Transports,
		AllowUpgrades:    true,
		AllowedOrigins:   o.AllowedOrigins,
		MaxOutboundBytes: o.MaxOutboundBytes,
		InlineWebsocket:  o.NonBlockingHandlers,
		Admit:            o.AdmitHandshake,
		InboundLimit:     preConnectBytes(o.MaxConnectPayload),
		Logger:           o.Logger,
	}, engineHandler{s})
	return s
}

// preConnectBytes is what a session's websocket may carry before its CONNECT is
// accepted: a few CONNECTs (a refused one may be retried on the same session),
// heartbeats, and one read's worth of what a client sends right behind its CONNECT.
// Without it a peer could keep a message of up to MaxPayload half sent, and held, until
// ConnectTimeout.
func preConnectBytes(maxConnect int) int { return 4*maxConnect + 16<<10 }

// ServeHTTP serves the Engine.IO endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Use appends a connect middleware; middlewares run in the order added.
func (s *Server) Use(m Middleware) {
	s.hmu.Lock()
	s.middlewares = append(s.middlewares, m)
	s.hmu.Unlock()
}

// OnConnection sets the function called for every accepted socket, after its CONNECT
// reply was queued and before any of its events is handled. Register the socket's event
// handlers there. The reply leaves with the handler's first write to the socket, or when
// it returns: a handler that blocks without sending holds it back.
func (s *Server) OnConnection(fn func(*Socket)) {
	s.hmu.Lock()
	s.onConn = fn
	s.hmu.Unlock()
}

// Socket returns the connected socket with that id, or nil.
func (s *Server) Socket(id string) *Socket {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sockets[id]
}

// SocketCount returns the number of connected sockets.
func (s *Server) SocketCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.sockets)
}

// RoomCount returns the number of rooms other than each socket's own id room.
func (s *Server) RoomCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.rooms)
}

// Reserved reports whether room is the id of another socket, connected or kept for
// connection state recovery: no socket may join such a room, since it would receive
// everything sent to that socket. Join ignores such rooms; callers that answer a client
// check here first to say why.
func (s *Server) Reserved(room string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.reservedLocked(room)
}

func (s *Server) reservedLocked(room string) bool {
	if s.sockets[room] != nil {
		return true
	}
	_, ok := s.kept[room]
	return ok
}

// RoomSize returns the number of sockets in room (1 for a connected socket's id).
func (s *Server) RoomSize(room string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := s.rooms[room]
	n := m.len()
	if so := s.sockets[room]; so != nil && !m.has(so) {
		n++
	}
	return n
}

// Close refuses new sockets and closes every session (reason "server shutting down"); it
// returns once every session is closed or ctx is done.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.engine.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("socketio: close: %w", ctx.Err())
	}
	if s.rec != nil {
		if s.rec.sh != nil {
			s.rec.sh.stop(ctx) // the final states of the sockets just closed
		}
		s.rec.stop()
	}
	return nil
}

// Emit sends an event to every socket; returns the number of sockets reached.
func (s *Server) Emit(event string, args ...any) (int, error) {
	return s.EmitTo(nil, nil, event, args...)
}

// EmitTo sends an event to the union of rooms, except sockets in exceptRooms (a socket id
// is a room holding that socket). The packet is encoded once. Returns sockets reached.
// With no rooms it reaches every socket.
func (s *Server) EmitTo(rooms []string, exceptRooms []string, event string, args ...any) (int, error) {
	if s.rec != nil && s.rec.sh == nil {
		return s.rec.broadcast(s, rooms, exceptRooms, event, args)
	}
	// With shared recovery, only packets the store logged (EmitAt) carry an offset.
	return s.emitPlain(rooms, exceptRooms, event, args)
}

// emitPlain delivers an event with no offset and logs nothing.
func (s *Server) emitPlain(rooms, exceptRooms []string, event string, args []any) (int, error) {
	enc, err := encodePacket(PacketEvent, 0, false, &event, args, "")
	if err != nil {
		return 0, err
	}
	msgs := enc.messages()
	tp := s.getTargets()
	s.mu.RLock()
	*tp = s.collect(*tp, rooms, exceptRooms)
	s.mu.RUnlock()
	started := s.getTargets()
	n := queueTo(*tp, msgs, started)
	s.putTargets(tp)
	s.fl.write(*started, size(msgs))
	s.putTargets(started)
	return n, nil
}

func (s *Server) getTargets() *[]*Socket {
	if v := s.targets.Get(); v != nil {
		tp := v.(*[]*Socket)
		*tp = (*tp)[:0]
		return tp
	}
	t := make([]*Socket, 0, 64)
	return &t
}

func (s *Server) putTargets(tp *[]*Socket) {
	clear(*tp) // drop references so closed sockets can be collected
	if cap(*tp) <= 1<<16 {
		s.targets.Put(tp)
	}
}

// collect appends the recipients of (rooms, except) to dst. Caller holds s.mu.
func (s *Server) collect(dst []*Socket, rooms, except []string) []*Socket {
	var excluded map[*Socket]struct{}
	var excludedOne *Socket
	if len(except) == 1 && s.rooms[except[0]].len() == 0 {
		// The common "everyone but the sender" case needs no set.
		excludedOne = s.sockets[except[0]]
	} else if len(except) > 0 {
		excluded = make(map[*Socket]struct{})
		for _, r := range except {
			for so := range s.rooms[r].all() {
				excluded[so] = struct{}{}
			}
			if so := s.sockets[r]; so != nil {
				excluded[so] = struct{}{}
			}
		}
	}
	keep := func(so *Socket) bool {
		if so == excludedOne {
			return false
		}
		if excluded != nil {
			if _, ok := excluded[so]; ok {
				return false
			}
		}
		return true
	}
	if len(rooms) == 0 {
		for _, so := range s.sockets {
			if keep(so) {
				dst = append(dst, so)
			}
		}
		return dst
	}
	if len(rooms) == 1 {
		m := s.rooms[rooms[0]]
		// The map is ranged over directly: this is the loop of every room broadcast.
		if m.many != nil {
			for so := range m.many {
				if keep(so) {
					dst = append(dst, so)
				}
			}
		} else if m.one != nil && keep(m.one) {
			dst = append(dst, m.one)
		}
		if so := s.sockets[rooms[0]]; so != nil && keep(so) && !m.has(so) {
			dst = append(dst, so)
		}
		return dst
	}
	seen := make(map[*Socket]struct{})
	add := func(so *Socket) {
		if _, ok := seen[so]; ok || !keep(so) {
			return
		}
		seen[so] = struct{}{}
		dst = append(dst, so)
	}
	for _, r := range rooms {
		for so := range s.rooms[r].all() {
			add(so)
		}
		if so := s.sockets[r]; so != nil {
			add(so)
		}
	}
	return dst
}

// joinLocked adds so to room unless room is so's own id or reserved; it reports whether
// room had no member before (RoomWatcher). Caller holds s.mu.
func (s *Server) joinLocked(so *Socket, room string) (opened bool) {
	if room == so.id || s.reservedLocked(room) {
		return false
	}
	if !so.rooms.add(room) {
		return false
	}
	m := s.rooms[room]
	opened = m.len() == 0
	m.add(so)
	s.rooms[room] = m
	return opened
}

// leaveLocked removes so from room; it reports whether room has no member left
// (RoomWatcher). Caller holds s.mu.
func (s *Server) leaveLocked(so *Socket, room string) (closed bool) {
	if !so.rooms.remove(room) {
		return false
	}
	return s.dropMemberLocked(so, room)
}

// leaveAllLocked removes so from every room it joined, appending to closed those left
// with no member (RoomWatcher). Caller holds s.mu.
func (s *Server) leaveAllLocked(so *Socket, closed []string) []string {
	for room := range so.rooms.all() {
		if s.dropMemberLocked(so, room) {
			closed = append(closed, room)
		}
	}
	so.rooms = roomSet{}
	return closed
}

// dropMemberLocked removes so from room's members; it reports whether room has no
// member left. Caller holds s.mu.
func (s *Server) dropMemberLocked(so *Socket, room string) (closed bool) {
	m, ok := s.rooms[room]
	if !ok {
		return false
	}
	m.remove(so)
	if m.len() == 0 {
		delete(s.rooms, room)
		return true
	}
	s.rooms[room] = m
	return false
}

// newID returns a random, URL-safe 20-character id.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// engineHandler adapts engineio's callbacks to the server without exposing them on Server.
type engineHandler struct{ s *Server }

func (h engineHandler) OnOpen(c *engineio.Conn) {
	c.SetContext(newClient(h.s, c))
}

func (h engineHandler) OnMessage(c *engineio.Conn, data []byte, binary bool) {
	if cl, ok := c.Context().(*client); ok {
		cl.onMessage(data, binary)
	}
}

func (h engineHandler) OnClose(c *engineio.Conn, reason string) {
	if cl, ok := c.Context().(*client); ok {
		cl.onClose(reason)
	}
}

// hasNamespace reports whether a CONNECT to nsp may be accepted.
func (s *Server) hasNamespace(nsp string) bool {
	return nsp == "/" || slices.Contains(s.opts.Namespaces, nsp)
}
