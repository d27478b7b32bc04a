package socketio

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// client is the Socket.IO side of one Engine.IO session: the sockets it connected, at
// most one per namespace, and the binary packet it is reassembling. Like the reference
// server, a namespace's DISCONNECT detaches that namespace's socket only: the session,
// its heartbeats and its other sockets stay, and the namespace may be connected again.
//
// engineio calls onMessage and onClose one at a time. Socket.Disconnect may detach a
// socket from any goroutine, so the socket table is under mu, a leaf lock: nothing is
// called while it is held.
type client struct {
	srv  *Server
	conn transport

	live atomic.Int32 // connected sockets

	pending *binaryPacket // owned by the inbound path

	// A socket the server disconnected stays until replaced, so that what the client
	// sent it meanwhile is dropped; one the client disconnected is taken out.
	mu   sync.Mutex
	main *Socket            // of "/"
	nsps map[string]*Socket // of Options.Namespaces
	// connectTimer closes the session when no socket is connected ConnectTimeout after
	// the handshake, or after the last socket was disconnected by the client. A
	// connected session drops it: a stopped timer still holds about 150 bytes, for
	// nothing, as long as the connection is idle.
	connectTimer *time.Timer
}

// binaryPacket is a BINARY_EVENT/BINARY_ACK waiting for its attachments.
type binaryPacket struct {
	p    Packet
	atts [][]byte
	size int
}

// maxAttachmentFactor bounds the bytes of one packet's attachments, in MaxPayloads:
// engineio checks each message, this bounds what one packet may make us hold.
const maxAttachmentFactor = 10

func newClient(srv *Server, c transport) *client {
	cl := &client{srv: srv, conn: c}
	cl.connectTimer = time.AfterFunc(srv.opts.ConnectTimeout, cl.connectExpired)
	return cl
}

// connectExpired closes the session if no socket is connected ConnectTimeout after the
// handshake or after the last socket went.
func (cl *client) connectExpired() {
	if cl.live.Load() == 0 {
		cl.srv.log.Debug("no namespace connected in time", "sid", cl.conn.ID())
		cl.conn.Close(engineio.ReasonForcedClose)
	}
}

// stopConnectTimerLocked stops and drops the connect timer; the caller holds mu.
func (cl *client) stopConnectTimerLocked() {
	if cl.connectTimer != nil {
		cl.connectTimer.Stop()
		cl.connectTimer = nil
	}
}

// newSocket returns a socket of the main namespace on a session of its own, not
// connected yet (unit tests drive it with connect and onMessage).
func newSocket(srv *Server, c transport) *Socket {
	return newClient(srv, c).newSocket("/")
}

func (cl *client) newSocket(nsp string) *Socket {
	return &Socket{cl: cl, nsp: nsp}
}

// socket returns the socket of namespace nsp, or nil.
func (cl *client) socket(nsp string) *Socket {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if nsp == "/" {
		return cl.main
	}
	return cl.nsps[nsp]
}

// attach records an accepted socket as its namespace's.
func (cl *client) attach(s *Socket) {
	cl.mu.Lock()
	if s.nsp == "/" {
		cl.main = s
	} else {
		if cl.nsps == nil {
			cl.nsps = make(map[string]*Socket, 1)
		}
		cl.nsps[s.nsp] = s
	}
	// Counted before the timer stops, so that a timer firing meanwhile finds the socket.
	cl.live.Add(1)
	cl.stopConnectTimerLocked()
	cl.mu.Unlock()
}

// forget takes s out of the table, unless replaced meanwhile.
func (cl *client) forget(s *Socket) {
	cl.mu.Lock()
	if cl.main == s {
		cl.main = nil
	} else if cl.nsps[s.nsp] == s {
		delete(cl.nsps, s.nsp)
	}
	cl.mu.Unlock()
}

// detached counts a socket detached while the session goes on; with none left, the
// session must connect one again within ConnectTimeout, as after the handshake.
func (cl *client) detached() {
	if cl.live.Add(-1) == 0 {
		cl.mu.Lock()
		cl.stopConnectTimerLocked()
		if cl.live.Load() == 0 { // attach counts under mu: none came in between
			cl.connectTimer = time.AfterFunc(cl.srv.opts.ConnectTimeout, cl.connectExpired)
		}
		cl.mu.Unlock()
	}
}

// sockets returns every socket the session has had attached.
func (cl *client) sockets() []*Socket {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	out := make([]*Socket, 0, 1+len(cl.nsps))
	if cl.main != nil {
		out = append(out, cl.main)
	}
	for _, s := range cl.nsps {
		out = append(out, s)
	}
	return out
}

// closeWith closes the session for a fault of the peer's.
func (cl *client) closeWith(reason string) {
	if s := cl.socket("/"); s != nil {
		s.closeWith(reason) // its OnDisconnect gets reason even if it was set before
		return
	}
	cl.conn.Close(reason)
}

// onMessage handles one inbound engineio message.
func (cl *client) onMessage(data []byte, binary bool) {
	if cl.live.Load() == 0 {
		// Unauthenticated: only a small CONNECT is taken (Options.MaxConnectPayload).
		if binary || len(data) > cl.srv.opts.MaxConnectPayload {
			cl.srv.log.Debug("message refused before CONNECT", "sid", cl.conn.ID(), "bytes", len(data), "binary", binary)
			cl.closeWith(engineio.ReasonParseError)
			return
		}
	}
	if binary {
		bp := cl.pending
		if bp == nil {
			cl.closeWith(engineio.ReasonParseError)
			return
		}
		bp.size += len(data)
		if bp.size > maxAttachmentFactor*cl.srv.opts.MaxPayload {
			cl.closeWith(engineio.ReasonParseError)
			return
		}
		bp.atts = append(bp.atts, bytes.Clone(data))
		if len(bp.atts) < bp.p.Attachments {
			return
		}
		cl.pending = nil
		// Every placeholder must name one of the attachments, as the reference parser
		// requires ("illegal attachments"): a handler never sees a dangling one.
		if !validPlaceholders(bp.p.Args, len(bp.atts)) {
			cl.srv.log.Debug("illegal attachments", "sid", cl.conn.ID())
			cl.closeWith(engineio.ReasonParseError)
			return
		}
		cl.dispatch(&bp.p, bp.atts)
		return
	}
	if cl.pending != nil {
		cl.closeWith(engineio.ReasonParseError) // attachments were expected
		return
	}
	// Handlers may keep the arguments: they alias one private copy of the message.
	p, err := decodePacketNames(bytes.Clone(data), cl.srv.opts.ArgMembers, cl.srv.names.load())
	if err != nil {
		cl.srv.log.Debug("malformed packet", "sid", cl.conn.ID(), "error", err)
		cl.closeWith(engineio.ReasonParseError)
		return
	}
	if p.Attachments > 0 {
		if cl.live.Load() == 0 {
			cl.srv.log.Debug("attachments announced before CONNECT", "sid", cl.conn.ID())
			cl.closeWith(engineio.ReasonParseError)
			return
		}
		cl.pending = &binaryPacket{p: p, atts: make([][]byte, 0, p.Attachments)}
		return
	}
	cl.dispatch(&p, nil)
}

// dispatch hands a whole packet to its namespace's socket, or connects one. p is a
// pointer because a Packet is a few hundred bytes, copied at every call by value.
func (cl *client) dispatch(p *Packet, atts [][]byte) {
	s := cl.socket(p.Namespace)
	if s != nil && s.state.Load() == stateClosed {
		if p.Type != PacketConnect {
			// Disconnected by the server meanwhile: what was in flight is dropped.
			return
		}
		s = nil
	}
	switch {
	case s == nil && p.Type == PacketConnect:
		if !cl.srv.hasNamespace(p.Namespace) {
			b, _ := encodeConnectError(p.Namespace, "Invalid namespace", nil)
			_ = cl.conn.SendOne(engineio.NewMessage(b, false))
			return
		}
		cl.newSocket(p.Namespace).connect(p.Data)
	case s != nil && (p.Type == PacketEvent || p.Type == PacketBinaryEvent):
		s.handleEvent(p, atts)
	case s != nil && (p.Type == PacketAck || p.Type == PacketBinaryAck):
		if pa := s.takeAck(p.ID); pa != nil {
			pa.finish(Args{Raw: p.Args, Attachments: atts, Depth: p.Depth}, nil)
		}
	case s != nil && p.Type == PacketDisconnect:
		// Only this namespace leaves; the session stays open, as with the reference.
		s.mu.Lock()
		s.setCloseReason(ReasonClientDisconnect)
		s.mu.Unlock()
		cl.forget(s) // what it sends this namespace now is out of place
		if s.onClose(ReasonClientDisconnect) {
			cl.detached()
		}
	case s != nil && p.Type == PacketConnect:
		// The official server closes here; a duplicate CONNECT is ignored instead because
		// some clients (zishang520/socket.io v3) send one when their open handling races,
		// and the first reply already connected them.
		cl.srv.log.Debug("duplicate CONNECT ignored", "id", s.id, "nsp", p.Namespace)
	default:
		// A packet the state does not allow (EVENT before CONNECT, CONNECT_ERROR from a
		// client): the official server closes, so do we.
		cl.srv.log.Debug("packet not allowed in this state", "sid", cl.conn.ID(), "type", p.Type, "nsp", p.Namespace)
		cl.closeWith(engineio.ReasonForcedClose)
	}
}

// onClose runs once when the engineio session ends: every socket still connected goes.
func (cl *client) onClose(reason string) {
	cl.mu.Lock()
	cl.stopConnectTimerLocked()
	cl.mu.Unlock()
	all := cl.sockets()
	if len(all) == 0 {
		cl.srv.log.Debug("session closed before connect", "sid", cl.conn.ID(), "reason", reason)
	}
	for _, s := range all {
		s.onClose(reason)
	}
}
