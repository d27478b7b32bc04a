package engineio

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio/nbhttp/websocket"
)

const (
	transportPolling uint8 = iota
	transportWebsocket
)

// closeLinger is how long a websocket gets to answer our close frame before it is cut.
const closeLinger = time.Second

// Conn is one Engine.IO session. Its methods are safe for concurrent use.
//
// Lock order: inMu (handler calls) before mu (session state) before Server.mu. mu is
// never held while calling the Handler or while closing a websocket (nbio may call back
// into us); inMu is only ever taken with TryLock by a goroutine that may hold it already.
type Conn struct {
	srv *Server
	id  string
	hs  Handshake

	// inMu serializes Handler calls for the session; see deliver and finishClose.
	inMu         sync.Mutex
	closeReason  atomic.Pointer[string] // set once the session is closed
	onCloseFired atomic.Bool
	hbIdx        int32 // place in Server.hb's heap, -1 when none; guarded by Server.hb.mu; beside the 4-byte flag, so that neither is padded

	// The flags sit together: there is a Conn per idle session, so padding counts.
	mu           sync.Mutex
	closed       bool
	transport    uint8
	upgrading    bool // the probe was answered; polling is paused
	awaitingPong bool
	polling      bool          // a GET is being served
	posting      bool          // a POST is being served
	wsCounted    bool          // wsPending is maintained by HTTPServer's written-size hook
	opened       bool          // OnOpen ran; set by it, read by the handshake's goroutine after start
	hbAt         time.Duration // heartbeat deadline (Server.hb's clock); guarded by Server.hb.mu
	queue        []*Message    // outbound, while polling or upgrading
	queued       int           // bytes in queue (polling encoding)
	pollWake     chan struct{}
	ws           *websocket.Conn
	wsRaw        net.Conn // nbio-backed: frames are written as cached bytes
	wsPending    atomic.Int64
	pend         *[]byte         // frames queued by Queue, not yet written (nbio websockets only)
	inlineWS     *websocket.Conn // the websocket whose messages run on the poller; poller-owned
	probe        *probing        // an upgrade in progress; nil otherwise, as for every idle session
	ctx          any

	// What Options.Admit took for the session, given back once (releaseAdmission).
	admitted atomic.Pointer[func()]
	// Websocket bytes the peer may still send under Options.InboundLimit; -1: no limit.
	inLeft atomic.Int64
}

// ID returns the session id (the engine.io sid).
func (c *Conn) ID() string { return c.id }

// Transport returns the current transport, "polling" or "websocket".
func (c *Conn) Transport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.transport == transportWebsocket {
		return TransportWebsocket
	}
	return TransportPolling
}

// RemoteAddr returns the ip:port of the peer that made the handshake.
func (c *Conn) RemoteAddr() string { return c.hs.RemoteAddr() }

// Handshake returns what the session kept of its handshake request.
func (c *Conn) Handshake() Handshake { return c.hs }

// Request rebuilds the handshake request (headers, query), a new one on every call: see
// Handshake for what is kept.
func (c *Conn) Request() *http.Request { return c.hs.Request() }

// SetContext stores a value for the layer above.
func (c *Conn) SetContext(v any) {
	c.mu.Lock()
	c.ctx = v
	c.mu.Unlock()
}

// Context returns the value stored by SetContext.
func (c *Conn) Context() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ctx
}

// start arms the heartbeat and runs OnOpen; the handshake has been written. register
// left inMu locked, so a close that raced with the handshake waits for OnOpen (and a
// session closed before OnOpen never sees OnClose either).
func (c *Conn) start() {
	c.mu.Lock()
	if !c.closed {
		c.srv.hb.schedule(c, c.srv.opts.PingInterval)
	}
	c.mu.Unlock()
	if c.closeReason.Load() == nil {
		c.srv.handler.OnOpen(c)
	} else {
		c.onCloseFired.Store(true)
	}
	c.inMu.Unlock()
	c.runPendingClose()
}

// Send queues msgs in order and contiguously. It never blocks: on websocket the frames go
// to the non-blocking connection, on polling they wait for the next GET. A session whose
// unsent bytes pass Options.MaxOutboundBytes is closed with "buffer full".
func (c *Conn) Send(msgs ...*Message) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if !c.sendLocked(msgs...) {
		return c.overflowLocked()
	}
	c.mu.Unlock()
	return nil
}

// Queue is Send without the write: on a websocket the frames wait, behind anything queued
// before, for Flush (or for the next Send, which writes them first). first reports that
// nothing was waiting before: the caller then owes the session a Flush (whoever flushes
// writes everything waiting). A broadcast queues to every recipient, then flushes: frames
// that several broadcasts queued to one session meanwhile leave in one write. Polling
// sessions behave as with Send (first is false).
func (c *Conn) Queue(msgs ...*Message) (first bool, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false, ErrClosed
	}
	ok := true
	if c.transport == transportWebsocket && c.wsRaw != nil {
		first = c.pend == nil
		for _, m := range msgs {
			if ok = c.queueWS(m); !ok {
				break
			}
		}
	} else {
		ok = c.sendLocked(msgs...)
	}
	if !ok {
		return false, c.overflowLocked()
	}
	c.mu.Unlock()
	return first, nil
}

// Flush writes what Queue left waiting, if anything.
func (c *Conn) Flush() {
	c.mu.Lock()
	if !c.closed {
		c.flushLocked()
	}
	c.mu.Unlock()
}

// overflowLocked closes the session for "buffer full"; the caller holds mu, which is
// released. Send and Queue are called from anywhere, often under the caller's own locks
// (a broadcast holds the recovery log's, an accept the socket index's), and the close
// runs Handler.OnClose, which takes those locks again: so the rest of the close, OnClose
// included, runs on a goroutine of its own. The session is already closed for everyone
// else when this returns.
func (c *Conn) overflowLocked() error {
	closers := c.shutdownLocked(ReasonBufferFull, closeGone)
	c.mu.Unlock()
	go c.finishClose(ReasonBufferFull, closers)
	return ErrClosed
}

// sendLocked writes or queues msgs; false means the outbound cap was passed.
func (c *Conn) sendLocked(msgs ...*Message) bool {
	if c.transport == transportWebsocket {
		if len(msgs) > 1 && c.wsRaw != nil {
			// Several frames (attachments) leave in one write.
			for _, m := range msgs {
				if !c.queueWS(m) {
					return false
				}
			}
			c.flushLocked()
			return true
		}
		for _, m := range msgs {
			if !c.writeWS(c.ws, m) {
				return false
			}
		}
		return true
	}
	for _, m := range msgs {
		c.queue = append(c.queue, m)
		c.queued += len(m.pollEncoding())
	}
	if c.queued > c.srv.opts.MaxOutboundBytes {
		return false
	}
	c.wakePollLocked()
	return true
}

// pendPool holds the buffers of queued frames; a session holds one only between Queue
// and Flush, so idle sessions cost nothing.
var pendPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 2048)
	return &b
}}

// maxPooledPend bounds the buffers returned to pendPool.
const maxPooledPend = 64 << 10

// queueWS appends m's frame to the session's pending buffer (c.wsRaw is set); false when
// the peer is not reading fast enough.
func (c *Conn) queueWS(m *Message) bool {
	f := m.wsFrame()
	if !c.reserve(len(f)) {
		return false
	}
	if c.pend == nil {
		c.pend = pendPool.Get().(*[]byte)
	}
	*c.pend = append(*c.pend, f...)
	return true
}

// reserve counts n more unsent bytes; false when that passes MaxOutboundBytes.
func (c *Conn) reserve(n int) bool {
	return !c.wsCounted || c.wsPending.Add(int64(n)) <= int64(c.srv.opts.MaxOutboundBytes)
}

// flushLocked writes the pending buffer with one write and releases it.
func (c *Conn) flushLocked() {
	p := c.pend
	if p == nil {
		return
	}
	c.pend = nil
	if c.wsRaw != nil {
		_, _ = c.wsRaw.Write(*p) // nbio copies what the kernel did not take
	}
	dropPend(p)
}

func dropPend(p *[]byte) {
	if cap(*p) <= maxPooledPend {
		*p = (*p)[:0]
		pendPool.Put(p)
	}
}

// writeWS writes one message to ws, after anything queued; false when the peer is not
// reading fast enough. A write error is not reported here: nbio closes the connection and
// OnClose follows.
func (c *Conn) writeWS(ws *websocket.Conn, m *Message) bool {
	if raw := c.wsRaw; raw != nil && ws == c.ws {
		if c.pend != nil {
			if !c.queueWS(m) {
				return false
			}
			c.flushLocked()
			return true
		}
		f := m.wsFrame()
		if !c.reserve(len(f)) {
			return false
		}
		_, _ = raw.Write(f)
		return true
	}
	// Blocking-mode connections (served by net/http) use the library's own async queue.
	mt := websocket.TextMessage
	if m.binary {
		mt = websocket.BinaryMessage
	}
	_ = ws.WriteMessage(mt, m.wsPayload())
	return true
}

func (c *Conn) wakePollLocked() {
	if c.pollWake != nil {
		close(c.pollWake)
		c.pollWake = nil
	}
}

// Close sends a close packet where the transport allows, then runs Handler.OnClose. Called
// from inside a Handler method, OnClose runs once that method returns.
func (c *Conn) Close(reason string) {
	c.closeWith(reason, closeGraceful)
}

// closeMode is how a session's transport is told that the session ended.
type closeMode uint8

const (
	// closeGraceful (Conn.Close): what is queued, then the close packet; on a websocket
	// a close frame follows.
	closeGraceful closeMode = iota
	// closeAbort: the server ends the session over a fault (ping timeout, parse error,
	// protocol violation). The queue is dropped; a pending polling GET gets the close
	// packet and a websocket a close frame, as the reference server does, so the client
	// sees a clean close rather than an error on its next request.
	closeAbort
	// closeGone: the peer left (its close packet, a closed transport) or cannot be
	// written to (buffer full): nothing more is written, a pending GET gets a noop.
	closeGone
)

func (c *Conn) closeWith(reason string, mode closeMode) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	closers := c.shutdownLocked(reason, mode)
	c.mu.Unlock()
	c.finishClose(reason, closers)
}

// shutdownLocked marks the session closed and does the transport's part; it returns the
// websockets to close once mu is released.
// probing is a polling session's upgrade in progress: the probing websocket and the
// deadline for its completion. Held behind one pointer, as the Conn of an idle session
// has neither.
type probing struct {
	ws    *websocket.Conn
	timer *time.Timer
}

// probeWS is the probing websocket, nil when none; under mu.
func (c *Conn) probeWS() *websocket.Conn {
	if c.probe == nil {
		return nil
	}
	return c.probe.ws
}

func (c *Conn) shutdownLocked(reason string, mode closeMode) []*websocket.Conn {
	graceful := mode == closeGraceful
	c.closed = true
	c.closeReason.Store(&reason)
	c.srv.open.Add(-1)
	c.srv.hb.stop(c)
	var closers []*websocket.Conn
	if p := c.probe; p != nil {
		p.timer.Stop()
		closers = append(closers, p.ws)
		c.probe = nil
	}
	if c.transport == transportWebsocket {
		c.srv.forget(c)
		if c.ws != nil {
			if mode != closeGone {
				if graceful {
					c.writeWS(c.ws, msgClose)
				}
				_ = c.ws.WriteClose(1000, "")
				ws := c.ws
				time.AfterFunc(closeLinger, func() { _ = ws.Close() })
			} else {
				closers = append(closers, c.ws)
			}
		}
		if c.pend != nil { // not graceful, or the close packet did not fit
			dropPend(c.pend)
			c.pend = nil
		}
		c.queue, c.queued = nil, 0
		return closers
	}
	// Polling, graceful: what is queued (a Socket.IO disconnect, say) plus the close packet
	// is handed to the pending GET, or to the next one within a grace period, then the sid
	// is gone. Otherwise the queue is dropped; on an abort a pending GET still gets the
	// close packet (the next GET finds no session).
	switch {
	case graceful:
		c.queue = append(c.queue, msgClose)
	case mode == closeAbort && c.polling:
		c.queue, c.queued = []*Message{msgClose}, 0
	default:
		c.queue, c.queued = nil, 0
	}
	if len(c.queue) == 0 && !c.polling {
		c.srv.forget(c)
		return closers
	}
	c.wakePollLocked()
	if !c.polling {
		grace := c.srv.opts.PingInterval
		if grace > 30*time.Second {
			grace = 30 * time.Second
		}
		time.AfterFunc(grace, func() { c.srv.forget(c) })
	}
	return closers
}

// finishClose closes websockets and runs OnClose, never concurrently with another Handler
// call for the session.
func (c *Conn) finishClose(reason string, closers []*websocket.Conn) {
	for _, ws := range closers {
		_ = ws.Close()
	}
	c.srv.log.Debug("session closed", "sid", c.id, "reason", reason)
	c.runPendingClose()
}

// runPendingClose runs OnClose if the session is closed, OnClose has not run, and no
// Handler call is in progress; otherwise the call in progress runs it when it ends.
func (c *Conn) runPendingClose() {
	reason := c.closeReason.Load()
	if reason == nil || c.onCloseFired.Load() {
		return
	}
	if !c.inMu.TryLock() {
		return
	}
	if c.onCloseFired.CompareAndSwap(false, true) {
		c.srv.handler.OnClose(c, *reason)
	}
	c.inMu.Unlock()
}

// deliver runs fn (which calls the Handler) under the inbound lock unless the session is
// closed, then runs OnClose if a close arrived meanwhile.
func (c *Conn) deliver(fn func()) {
	c.inMu.Lock()
	if c.closeReason.Load() == nil {
		fn()
	}
	c.inMu.Unlock()
	c.runPendingClose()
}

// onPacket handles one inbound packet; the caller holds inMu. It reports false when the
// session closed and the rest of a payload must be dropped.
func (c *Conn) onPacket(p packet) bool {
	switch p.typ {
	case packetMessage:
		c.srv.handler.OnMessage(c, p.data, p.binary)
	case packetPong:
		c.onPong()
	case packetClose:
		c.closeWith(ReasonTransportClose, closeGone)
		return false
	case packetNoop, packetUpgrade:
		// A noop is harmless; an upgrade outside a probe is ignored like the reference does.
	case packetPing:
		// v4 heartbeats go server->client; a client ping outside a probe is an error.
		c.closeWith(ReasonTransportError, closeAbort)
		return false
	default:
		c.closeWith(ReasonParseError, closeAbort)
		return false
	}
	return c.closeReason.Load() == nil
}

// onTimer drives the heartbeat: send a ping, then expect the pong within pingTimeout. It
// runs once the session's deadline passed (Server.hb); a session rescheduled meanwhile
// (its pong came in between) has a deadline again, and this firing is stale.
func (c *Conn) onTimer() {
	c.mu.Lock()
	if c.closed || c.srv.hb.pending(c) {
		c.mu.Unlock()
		return
	}
	if c.awaitingPong {
		closers := c.shutdownLocked(ReasonPingTimeout, closeAbort)
		c.mu.Unlock()
		c.finishClose(ReasonPingTimeout, closers)
		return
	}
	c.awaitingPong = true
	c.srv.hb.schedule(c, c.srv.opts.PingTimeout)
	if !c.sendLocked(msgPing) {
		_ = c.overflowLocked()
		return
	}
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		clearReadDeadline(ws)
	}
}

// clearReadDeadline takes away a read deadline nbio may have left on a websocket. nbio
// arms the HTTP idle timeout on a new connection right after handing it to its poller;
// when the request is read and upgraded before that line runs, the upgrade's clearing
// comes first and the websocket is closed one idle timeout after it opened, however
// busy it is (seen: about 1 connection in 600 under a connect storm, closed as a
// "transport error" 120 s after CONNECT). The heartbeat is what watches a websocket, so
// each ping clears the deadline again: by the first one, nbio is long done with the
// connection. Called without c.mu: nbio may call back into the session.
func clearReadDeadline(ws *websocket.Conn) {
	_ = ws.SetReadDeadline(time.Time{})
}

func (c *Conn) onPong() {
	c.mu.Lock()
	if !c.closed && c.awaitingPong {
		c.awaitingPong = false
		c.srv.hb.schedule(c, c.srv.opts.PingInterval)
	}
	c.mu.Unlock()
}
