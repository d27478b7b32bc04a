package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// transport is what a Socket needs of an engineio session; *engineio.Conn satisfies it
// and unit tests substitute a fake.
type transport interface {
	ID() string
	Transport() string
	RemoteAddr() string
	Handshake() engineio.Handshake
	Send(msgs ...*engineio.Message) error
	SendOne(m *engineio.Message) error // Send without the variadic slice's allocation
	Queue(msgs ...*engineio.Message) (first bool, err error)
	Flush()
	Close(reason string)
}

var _ transport = (*engineio.Conn)(nil)

// Socket states.
const (
	statePending   int32 = iota // handshake done, no accepted CONNECT yet
	stateConnected              // recorded in the server, CONNECT reply queued
	stateClosed
)

// Socket is one client connected to a namespace: the main one, "/", or one of
// Options.Namespaces.
type Socket struct {
	// The session's sockets and inbound state; its server and transport are the
	// socket's (cl.srv, cl.conn), not copied here: there is a Socket per idle
	// connection, and three words fewer keep it a size class lower.
	cl  *client
	nsp string

	// Set once before the socket is published (connect), read-only afterwards.
	id        string
	pid       string
	owner     string // names this connection in the shared recovery store (shared.go)
	recovered bool

	// Guarded by mu (below); they share recovered's word rather than padding a word of
	// their own at the end.
	gone        bool // disconnect handlers have been taken
	sharedTable bool // handlers is UseHandlers' table: copy it before changing it
	deliberate  bool // the server or the client closed the socket (setCloseReason)

	state atomic.Int32 // after the flags, to share their word

	// rooms is guarded by srv.mu.
	rooms roomSet

	mu           sync.Mutex // guards the fields below
	handlers     map[string]EventHandler
	anyHandler   func(s *Socket, event string, args Args, ack Ack)
	onDisconnect []func(s *Socket, reason string)
	session      any
	ackSeq       uint64
	acks         map[uint64]*pendingAck
	// Until the socket is gone, the reason given by whoever closed it deliberately
	// (setCloseReason), or empty; from then on, the reason its disconnect handlers got.
	// One field for both, as a Socket per idle connection keeps it.
	reason string
}

// ID returns the socket id (also the name of its own room).
func (s *Socket) ID() string { return s.id }

// Namespace returns the socket's namespace: "/" or one of Options.Namespaces.
func (s *Socket) Namespace() string { return s.nsp }

// Transport returns the current transport: "polling" or "websocket".
func (s *Socket) Transport() string { return s.cl.conn.Transport() }

// RemoteAddr returns the peer's ip:port.
func (s *Socket) RemoteAddr() string { return s.cl.conn.RemoteAddr() }

// Header returns a copy of the handshake request's headers (never nil).
func (s *Socket) Header() http.Header { return s.cl.conn.Handshake().Header() }

// Query returns the handshake request's query parameters (never nil).
func (s *Socket) Query() url.Values { return s.cl.conn.Handshake().Query() }

// Recovered reports whether the socket's id, rooms and session came back through connection
// state recovery.
func (s *Socket) Recovered() bool { return s.recovered }

// Connected reports whether the socket is connected.
func (s *Socket) Connected() bool { return s.state.Load() == stateConnected }

// On sets the handler for one event, replacing any previous one.
func (s *Socket) On(event string, h EventHandler) {
	s.mu.Lock()
	if s.handlers == nil {
		s.handlers = make(map[string]EventHandler, 4)
	} else if s.sharedTable {
		s.handlers = copyHandlers(s.handlers, 1)
		s.sharedTable = false
	}
	s.handlers[event] = h
	s.mu.Unlock()
	s.cl.srv.names.add(event)
}

// OnAny sets the handler for events that have no On handler.
func (s *Socket) OnAny(h func(s *Socket, event string, args Args, ack Ack)) {
	s.mu.Lock()
	s.anyHandler = h
	s.mu.Unlock()
}

// OnDisconnect adds a function called once when the socket disconnects, with the reason.
// Added after the socket is gone, it runs at once.
func (s *Socket) OnDisconnect(fn func(s *Socket, reason string)) {
	s.mu.Lock()
	if s.gone {
		reason := s.reason
		s.mu.Unlock()
		fn(s, reason)
		return
	}
	s.onDisconnect = append(s.onDisconnect, fn)
	s.mu.Unlock()
}

// Emit sends an event to this socket. []byte arguments (also inside map[string]any and
// []any) become binary attachments; json.RawMessage is sent as is; anything else goes
// through encoding/json. The packet is encoded before Emit returns: args are not kept.
func (s *Socket) Emit(event string, args ...any) error {
	if s.state.Load() != stateConnected {
		return ErrDisconnected
	}
	if o := s.cl.srv.observer(); o != nil && s.nsp == "/" {
		o.EventOut(s, event, args)
	}
	if s.cl.srv.rec != nil && s.cl.srv.rec.sh != nil && s.nsp == "/" {
		return s.cl.srv.rec.emitDirect(s, event, args)
	}
	if s.cl.srv.rec != nil && s.nsp == "/" {
		// With recovery on, every plain EVENT carries an offset and is logged, as if
		// broadcast to the socket's own room.
		n, err := s.cl.srv.rec.broadcast(s.cl.srv, []string{s.id}, nil, event, args)
		if err == nil && n == 0 {
			err = ErrDisconnected
		}
		return err
	}
	enc, err := encodeNspPacket(PacketEvent, s.nsp, 0, false, &event, args, "")
	if err != nil {
		return err
	}
	return s.send(enc)
}

func (s *Socket) send(enc encoded) error {
	var err error
	if len(enc.atts) == 0 {
		err = s.cl.conn.SendOne(engineio.NewFramedMessage(enc.buf, enc.off))
	} else {
		err = s.cl.conn.Send(enc.messages()...)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	return nil
}

// EmitWithAck sends an event asking for an acknowledgement and waits for it, until ctx is
// done or, when ctx has no deadline, Options.AckTimeout. It blocks: do not call it from a
// handler (use EmitWithAckFunc there).
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	type result struct {
		args Args
		err  error
	}
	ch := make(chan result, 1)
	timeout := time.Duration(0)
	if _, ok := ctx.Deadline(); !ok {
		timeout = s.cl.srv.opts.AckTimeout
	}
	id, err := s.emitWithAck(event, args, timeout, func(a Args, err error) { ch <- result{a, err} })
	if err != nil {
		return Args{}, err
	}
	select {
	case r := <-ch:
		return r.args, r.err
	case <-ctx.Done():
		if pa := s.takeAck(id); pa != nil {
			pa.finish(Args{}, fmt.Errorf("socketio: ack for %q: %w", event, ctx.Err()))
		} // else the ACK, timer or disconnect got there first and fills ch
		r := <-ch
		return r.args, r.err
	}
}

// EmitWithAckFunc sends an event asking for an acknowledgement and returns at once; fn is
// called exactly once, from another goroutine, with the ack's arguments or an error
// (context.DeadlineExceeded after timeout, ErrDisconnected). timeout <= 0 means
// Options.AckTimeout.
func (s *Socket) EmitWithAckFunc(event string, timeout time.Duration, fn func(Args, error), args ...any) error {
	if timeout <= 0 {
		timeout = s.cl.srv.opts.AckTimeout
	}
	_, err := s.emitWithAck(event, args, timeout, fn)
	return err
}

// pendingAck is one EmitWithAck waiting for its ACK; exactly one of the ACK, the timer or
// the disconnect takes it out of Socket.acks and calls fn.
type pendingAck struct {
	s     *Socket
	id    uint64
	event string
	fn    func(Args, error)
	timer *time.Timer
}

func (p *pendingAck) finish(a Args, err error) {
	if p.timer != nil {
		p.timer.Stop()
	}
	p.fn(a, err)
}

func (p *pendingAck) expire() {
	if p.s.takeAck(p.id) != nil {
		p.fn(Args{}, fmt.Errorf("socketio: ack for %q: %w", p.event, context.DeadlineExceeded))
	}
}

// emitWithAck registers fn under a new ack id and sends the EVENT. With timeout > 0, fn
// gets context.DeadlineExceeded when no ack came in time.
func (s *Socket) emitWithAck(event string, args []any, timeout time.Duration, fn func(Args, error)) (uint64, error) {
	if s.state.Load() != stateConnected {
		return 0, ErrDisconnected
	}
	p := &pendingAck{s: s, event: event, fn: fn}
	s.mu.Lock()
	s.ackSeq++
	p.id = s.ackSeq
	s.mu.Unlock()
	enc, err := encodeNspPacket(PacketEvent, s.nsp, p.id, true, &event, args, "")
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	if s.state.Load() == stateClosed {
		s.mu.Unlock()
		fn(Args{}, ErrDisconnected)
		return p.id, nil
	}
	if s.acks == nil {
		s.acks = make(map[uint64]*pendingAck, 2)
	}
	s.acks[p.id] = p
	if timeout > 0 {
		// Armed under mu: whoever takes p out of acks (under mu) sees the timer.
		p.timer = time.AfterFunc(timeout, p.expire)
	}
	s.mu.Unlock()
	if err := s.send(enc); err != nil {
		if p := s.takeAck(p.id); p != nil {
			p.finish(Args{}, err)
		}
	}
	return p.id, nil
}

func (s *Socket) takeAck(id uint64) *pendingAck {
	s.mu.Lock()
	p := s.acks[id]
	delete(s.acks, id)
	s.mu.Unlock()
	return p
}

// Join adds the socket to rooms. Joining its own id, or another socket's (connected or
// kept for recovery: Server.Reserved), is a no-op. Rooms are of the main namespace:
// a socket of another namespace joins none.
func (s *Socket) Join(rooms ...string) {
	if s.nsp != "/" {
		return
	}
	var opened []string
	s.cl.srv.mu.Lock()
	if s.state.Load() == stateConnected {
		for _, r := range rooms {
			if s.cl.srv.joinLocked(s, r) {
				opened = append(opened, r)
			}
		}
	}
	s.cl.srv.mu.Unlock()
	s.cl.srv.roomsOpened(opened)
	s.sharedChanged()
}

// Leave removes the socket from room.
func (s *Socket) Leave(room string) {
	s.cl.srv.mu.Lock()
	closed := s.cl.srv.leaveLocked(s, room)
	s.cl.srv.mu.Unlock()
	if closed {
		s.cl.srv.roomsClosed([]string{room})
	}
	s.sharedChanged()
}

// sharedChanged queues the write of the socket's record to the shared recovery store.
func (s *Socket) sharedChanged() {
	if s.cl.srv.rec != nil && s.cl.srv.rec.sh != nil && s.state.Load() == stateConnected {
		s.cl.srv.rec.sh.changed(s, WriteUpdate)
	}
}

// Rooms returns the socket's rooms, its own id first.
func (s *Socket) Rooms() []string {
	s.cl.srv.mu.RLock()
	defer s.cl.srv.mu.RUnlock()
	out := make([]string, 0, 1+s.rooms.len())
	out = append(out, s.id)
	return s.rooms.appendTo(out)
}

// Disconnect sends DISCONNECT; OnDisconnect handlers get "server namespace disconnect".
// A socket of the main namespace also closes the transport (a client the server sends
// away does not keep a session open); one of another namespace only leaves it.
func (s *Socket) Disconnect() {
	if s.state.Load() != stateConnected {
		return
	}
	s.mu.Lock()
	s.setCloseReason(ReasonServerDisconnect)
	s.mu.Unlock()
	_ = s.cl.conn.SendOne(engineio.NewMessage(withNamespace([]byte{'0' + byte(PacketDisconnect)}, s.nsp), false))
	if s.nsp != "/" {
		if s.onClose(ReasonServerDisconnect) {
			s.cl.detached()
		}
		return
	}
	if s.cl.conn.Transport() != engineio.TransportPolling {
		s.cl.conn.Close(engineio.ReasonForcedClose)
		return
	}
	// On polling, engineio hands the DISCONNECT and its own close packet to the same GET,
	// and the official client handles Socket.IO packets a tick after engine packets: it
	// would see "transport close" first and reconnect. So the socket is detached now and
	// the session is left to the client, which closes it on DISCONNECT, with a fallback.
	s.onClose(ReasonServerDisconnect)
	c := s.cl.conn
	time.AfterFunc(disconnectGrace, func() { c.Close(engineio.ReasonForcedClose) })
}

// disconnectGrace is how long a polling session may linger after a server DISCONNECT.
const disconnectGrace = 2 * time.Second

// SetSession attaches the application's own state to the socket, in one typed value
// that the application reads back with Session. It is kept across recovery: a recovered socket starts with the session of the connection it continues
// (set before the middlewares run, which may replace it).
func (s *Socket) SetSession(v any) {
	s.mu.Lock()
	s.session = v
	s.mu.Unlock()
}

// Session returns what SetSession stored, or nil.
func (s *Socket) Session() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.session
}

// setCloseReason records that the socket is being closed deliberately, for reason, unless
// it already was; under mu. A socket already gone keeps the reason its handlers got.
func (s *Socket) setCloseReason(reason string) {
	if s.deliberate || reason == "" {
		return
	}
	s.deliberate = true
	if !s.gone {
		s.reason = reason
	}
}

// closeWith closes the transport with reason; OnDisconnect gets reason too.
func (s *Socket) closeWith(reason string) {
	s.mu.Lock()
	s.setCloseReason(reason)
	s.mu.Unlock()
	s.cl.conn.Close(reason)
}

func (s *Socket) handleEvent(p *Packet, atts [][]byte) {
	s.mu.Lock()
	h := s.handlers[p.Event]
	anyH := s.anyHandler
	s.mu.Unlock()
	if h == nil && anyH == nil {
		return
	}
	var ack Ack
	if p.HasID {
		ack = s.ackFunc(p.ID)
	}
	args := Args{Raw: p.Args, Attachments: atts, Depth: p.Depth, Members: p.Members}
	defer s.recoverHandler(p.Event)
	if o := s.cl.srv.observer(); o != nil && s.nsp == "/" {
		o.EventIn(s, p.Event, args)
	}
	if h != nil {
		h(s, args, ack)
	} else {
		anyH(s, p.Event, args, ack)
	}
}

func (s *Socket) recoverHandler(what string) {
	if r := recover(); r != nil {
		s.cl.srv.log.Error("handler panic", "where", what, "sid", s.id, "panic", r)
	}
}

func (s *Socket) ackFunc(id uint64) Ack {
	var done atomic.Bool
	return func(args ...any) error {
		if !done.CompareAndSwap(false, true) {
			return nil
		}
		enc, err := encodeNspPacket(PacketAck, s.nsp, id, true, nil, args, "")
		if err != nil {
			return err
		}
		return s.send(enc)
	}
}

// connect runs the middlewares and accepts or refuses the CONNECT.
func (s *Socket) connect(auth []byte) {
	var restored *savedSession
	if s.cl.srv.rec != nil && auth != nil && s.nsp == "/" {
		restored = s.cl.srv.rec.takeSession(auth)
	}
	if restored != nil {
		s.id, s.pid = restored.id, restored.pid
	} else {
		s.id = newID()
		if s.cl.srv.rec != nil && s.nsp == "/" {
			s.pid = newID()
		}
	}
	if restored != nil {
		// Restored data first, so that middleware (auth) can overwrite it.
		s.mu.Lock()
		s.session = restored.session
		s.mu.Unlock()
	}
	s.cl.srv.hmu.RLock()
	mws := s.cl.srv.middlewares
	onConn := s.cl.srv.onConn
	s.cl.srv.hmu.RUnlock()
	for _, mw := range mws {
		if err := s.runMiddleware(mw, auth); err != nil {
			s.refuse(err)
			return
		}
	}
	switch {
	case s.nsp != "/":
		if !s.acceptOther() {
			return
		}
	case s.cl.srv.rec != nil:
		if !s.cl.srv.rec.accept(s, restored) {
			return
		}
	case !s.cl.srv.accept(s, nil):
		return
	}
	s.cl.attach(s)
	if l, ok := s.cl.conn.(interface{ LiftInboundLimit() }); ok {
		l.LiftInboundLimit() // accepted: MaxPayload alone bounds its messages now
	}
	s.cl.srv.log.Debug("socket connected", "id", s.id, "sid", s.cl.conn.ID(), "recovered", s.recovered)
	if onConn != nil {
		func() {
			defer s.recoverHandler("OnConnection")
			onConn(s)
		}()
	}
	// The CONNECT reply was only queued (acceptLocked): it leaves now with what
	// OnConnection queued meanwhile, in one write, unless an earlier write to the socket
	// (the handler's or a broadcast's) already carried it, in order.
	s.cl.conn.Flush()
}

func (s *Socket) runMiddleware(mw Middleware, auth []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.cl.srv.log.Error("middleware panic", "panic", r)
			err = errors.New("internal error")
		}
	}()
	return mw(s, json.RawMessage(auth))
}

func (s *Socket) refuse(err error) {
	msg, data := err.Error(), any(nil)
	var ce *ConnectError
	if errors.As(err, &ce) {
		msg, data = ce.Message, ce.Data
	}
	b, encErr := encodeConnectError(s.nsp, msg, data)
	if encErr != nil {
		s.cl.srv.log.Warn("connect error data", "error", encErr)
		b, _ = encodeConnectError(s.nsp, msg, nil)
	}
	_ = s.cl.conn.SendOne(engineio.NewMessage(b, false))
}

// accept records the socket (and restored rooms) and queues its CONNECT reply followed by
// replay, all under the write lock: a broadcast either ran before (and is in replay) or
// sees the socket after its CONNECT. Returns false when the server or socket is closed.
func (srv *Server) accept(s *Socket, restored *savedSession, replay ...*engineio.Message) bool {
	// The socket's own room and the rooms it gets back are opened before its CONNECT is
	// sent: nothing sent to them once the client knows its id may be missed.
	want := []string{s.id}
	if restored != nil {
		want = append(want, restored.rooms...)
	}
	srv.roomsOpened(want)
	var opened, closed []string
	ok := srv.acceptLocked(s, restored, &opened, &closed, replay)
	// Rooms this socket did not open after all, or opened first, are balanced here.
	srv.roomsClosed(closed)
	if ok {
		closed = nil
		for _, r := range want[1:] {
			if !slices.Contains(opened, r) {
				closed = append(closed, r) // another member opened it already
			}
		}
		srv.roomsClosed(closed)
	} else {
		srv.roomsClosed(want)
	}
	return ok
}

func (srv *Server) acceptLocked(s *Socket, restored *savedSession, opened, closed *[]string, replay []*engineio.Message) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closed || s.state.Load() != statePending {
		return false
	}
	if old := srv.sockets[s.id]; old != nil {
		// Only a restored id can collide; the live socket keeps it.
		return false
	}
	srv.sockets[s.id] = s
	if restored != nil {
		// Between takeSession and here the id was free: whoever joined its room then
		// must not receive what is sent to the recovered socket.
		for _, intruder := range slices.Collect(srv.rooms[s.id].all()) {
			if srv.leaveLocked(intruder, s.id) {
				*closed = append(*closed, s.id)
			}
		}
		for _, r := range restored.rooms {
			if srv.joinLocked(s, r) {
				*opened = append(*opened, r)
			}
		}
		s.recovered = true
	}
	s.state.Store(stateConnected)
	msgs := make([]*engineio.Message, 0, 1+len(replay))
	msgs = append(msgs, engineio.NewMessage(encodeConnect(s.id, s.pid), false))
	msgs = append(msgs, replay...)
	// Queued, not written: connect flushes it once OnConnection has run, so that the
	// reply and the handler's first events (the welcome) share a system call. Queue never
	// writes, so nothing blocks here under srv.mu.
	_, _ = s.cl.conn.Queue(msgs...)
	return true
}

// acceptOther connects a socket of a namespace other than "/": it is in none of the
// server's indexes (rooms, broadcasts and recovery are of the main namespace).
func (s *Socket) acceptOther() bool {
	if !s.state.CompareAndSwap(statePending, stateConnected) {
		return false
	}
	_ = s.cl.conn.SendOne(engineio.NewMessage(withNamespace(encodeConnect(s.id, ""), s.nsp), false))
	return true
}

// onClose runs once when the socket leaves: its session ended, or its namespace was
// disconnected. It reports whether the socket was connected until now.
func (s *Socket) onClose(reason string) bool {
	prev := s.state.Swap(stateClosed)
	s.mu.Lock()
	if s.deliberate && !s.gone {
		reason = s.reason
	}
	acks := s.acks
	s.acks = nil
	var handlers []func(*Socket, string)
	if prev == stateConnected {
		handlers = s.onDisconnect
		s.onDisconnect = nil
		s.gone, s.reason = true, reason
	}
	s.mu.Unlock()
	if prev != stateConnected {
		return false
	}
	s.cl.srv.log.Debug("socket disconnected", "id", s.id, "nsp", s.nsp, "reason", reason)
	srv := s.cl.srv
	if srv.rec != nil && s.nsp == "/" {
		srv.rec.persist(s, reason)
	}
	closed := []string{s.id}
	srv.mu.Lock()
	if srv.sockets[s.id] == s {
		delete(srv.sockets, s.id)
	}
	closed = srv.leaveAllLocked(s, closed)
	srv.mu.Unlock()
	if s.nsp == "/" {
		srv.roomsClosed(closed)
	}
	for _, pa := range acks {
		pa.finish(Args{}, ErrDisconnected)
	}
	for _, fn := range handlers {
		func() {
			defer s.recoverHandler("OnDisconnect")
			fn(s, reason)
		}()
	}
	return true
}
