package engineio

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

// newUpgrader configures the nbio upgrader shared by every websocket of the server. In
// nbhttp's non-blocking mode an upgraded connection is driven by the poller: an idle
// websocket costs no goroutine and no read buffer.
func (s *Server) newUpgrader() *websocket.Upgrader {
	u := websocket.NewUpgrader()
	// Origins were checked by ServeHTTP (cors) before the upgrade.
	u.CheckOrigin = func(*http.Request) bool { return true }
	// The Engine.IO heartbeat detects dead peers; a read deadline would add a timer per
	// connection for nothing.
	u.KeepaliveTime = 0
	u.MessageLengthLimit = s.opts.MaxPayload
	u.ReleasePayload = true // data is only valid during OnMessage, as the Handler contract says
	u.OnMessage(s.onWSMessage)
	u.OnClose(s.onWSClose)
	return u
}

// upgrade switches the request to a websocket whose session is c.
func (s *Server) upgrade(c *Conn, w http.ResponseWriter, r *http.Request) (*websocket.Conn, error) {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil, err
	}
	ws.SetSession(c)
	return ws, nil
}

// rawConn returns the nbio connection under ws, to which cached frames can be written as
// they are (server frames are unmasked, so the bytes are the same for every recipient),
// and whether HTTPServer counts the bytes it has not yet flushed.
func rawConn(ws *websocket.Conn) (net.Conn, bool) {
	if ws.IsBlockingMod() {
		return nil, false
	}
	under := ws.UnderlayerConn()
	nc := under
	if hc, ok := under.(*nbhttp.Conn); ok {
		nc = hc.Conn
	}
	if _, ok := nc.(*nbio.Conn); !ok {
		return nil, false
	}
	return under, countedEngine(ws.Engine)
}

// serveWebsocketHandshake opens a session directly on websocket (no polling first).
func (s *Server) serveWebsocketHandshake(w http.ResponseWriter, r *http.Request, release func()) {
	c := s.register(r, transportWebsocket, release)
	if c == nil {
		writeError(w, http.StatusServiceUnavailable, codeBadRequest)
		return
	}
	ws, err := s.upgrade(c, w, r)
	if err != nil {
		// The upgrader has answered the request; OnOpen never ran, so no OnClose either.
		s.log.Debug("websocket upgrade failed", "error", err)
		c.closeWith(ReasonTransportError, closeGone)
		c.started()
		return
	}
	c.mu.Lock()
	if c.closed {
		// Closed (server shutdown) while upgrading.
		c.mu.Unlock()
		_ = ws.Close()
		c.started()
		return
	}
	c.ws = ws
	c.wsRaw, c.wsCounted = rawConn(ws)
	c.writeWS(ws, newPacket(packetOpen, s.openJSON(c, true)))
	c.mu.Unlock()
	c.started()
}

// serveUpgrade accepts the probing websocket of a polling session.
func (s *Server) serveUpgrade(c *Conn, w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	closed := c.closed
	ok := !closed && c.transport == transportPolling && c.probe == nil && !c.upgrading
	c.mu.Unlock()
	switch {
	case closed:
		// Kept only to hand its last packets to a GET: gone for anything else.
		writeError(w, http.StatusBadRequest, codeUnknownSID)
		return
	case !s.opts.AllowUpgrades:
		writeError(w, http.StatusBadRequest, codeBadRequest)
		return
	case !ok:
		s.refuseUpgrade(c, w, r)
		return
	}
	ws, err := s.upgrade(c, w, r)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "sid", c.id, "error", err)
		return
	}
	c.mu.Lock()
	if c.closed || c.probe != nil || c.transport != transportPolling {
		c.mu.Unlock()
		_ = ws.Close()
		return
	}
	c.probe = &probing{ws: ws, timer: time.AfterFunc(upgradeTimeout, func() { c.abortProbe(ws) })}
	c.mu.Unlock()
}

// refuseUpgrade answers a websocket for a session that is upgrading or upgraded (a
// second probe, a client retrying) as the reference server does: the handshake completes
// and the websocket is closed at once, with a close frame; the session is left alone.
func (s *Server) refuseUpgrade(c *Conn, w http.ResponseWriter, r *http.Request) {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "sid", c.id, "error", err)
		return
	}
	s.log.Debug("websocket for a session already upgrading or upgraded closed", "sid", c.id)
	// It has no session: whatever it sends is dropped (onWSMessage) until it closes.
	_ = ws.WriteClose(1000, "")
	time.AfterFunc(closeLinger, func() { _ = ws.Close() })
}

// abortProbe drops a probing websocket that did not complete the upgrade; the session
// carries on over polling.
func (c *Conn) abortProbe(ws *websocket.Conn) {
	c.mu.Lock()
	p := c.probe
	if p == nil || p.ws != ws {
		c.mu.Unlock()
		return
	}
	c.probe = nil
	c.upgrading = false
	p.timer.Stop()
	c.mu.Unlock()
	_ = ws.Close()
}

func (s *Server) onWSMessage(ws *websocket.Conn, mt websocket.MessageType, data []byte) {
	c, _ := ws.Session().(*Conn)
	if c == nil {
		_ = ws.Close()
		return
	}
	c.mu.Lock()
	probe := c.probeWS() == ws
	current := c.ws == ws
	c.mu.Unlock()
	switch {
	case probe:
		c.onProbeFrame(ws, mt, data)
		return
	case !current:
		return
	}
	if mt == websocket.BinaryMessage {
		c.deliver(func() { c.srv.handler.OnMessage(c, data, true) })
		return
	}
	p, err := decodeText(data)
	if err != nil {
		c.closeWith(ReasonParseError, closeAbort)
		return
	}
	c.deliver(func() { c.onPacket(p) })
}

// onProbeFrame runs the upgrade: "2probe" is answered "3probe" and pauses polling (the
// pending GET returns); "5" moves the session and its queue to the websocket.
func (c *Conn) onProbeFrame(ws *websocket.Conn, mt websocket.MessageType, data []byte) {
	if mt == websocket.TextMessage && string(data) == "2probe" {
		c.mu.Lock()
		if c.probeWS() == ws && !c.closed {
			c.upgrading = true
			c.writeWS(ws, msgProbe)
			c.wakePollLocked()
		}
		c.mu.Unlock()
		return
	}
	if mt == websocket.TextMessage && string(data) == "5" {
		c.mu.Lock()
		if c.probeWS() != ws || c.closed {
			c.mu.Unlock()
			return
		}
		c.probe.timer.Stop()
		c.probe = nil
		c.upgrading = false
		c.transport = transportWebsocket
		c.ws = ws
		c.wsRaw, c.wsCounted = rawConn(ws)
		// Everything queued while polling was paused goes out first, in order.
		queue := c.queue
		c.queue, c.queued = nil, 0
		ok := len(queue) == 0 || c.sendLocked(queue...)
		c.wakePollLocked()
		if !ok {
			_ = c.overflowLocked()
			return
		}
		c.mu.Unlock()
		return
	}
	c.abortProbe(ws)
}

func (s *Server) onWSClose(ws *websocket.Conn, err error) {
	c, _ := ws.Session().(*Conn)
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.probeWS() == ws {
		c.mu.Unlock()
		c.abortProbe(ws)
		return
	}
	current := c.ws == ws && !c.closed
	c.mu.Unlock()
	if current {
		c.closeWith(closeReason(err), closeGone)
	}
}

// LiftInboundLimit ends Options.InboundLimit for the session: from now on its
// websockets are bounded per message (MaxPayload) only.
func (c *Conn) LiftInboundLimit() { c.inLeft.Store(-1) }

// countInbound charges n bytes read from the session's websocket to its inbound limit,
// before nbio parses them; false when they pass it and the session was closed.
func (c *Conn) countInbound(n int) bool {
	for {
		left := c.inLeft.Load()
		if left < 0 {
			return true
		}
		if left < int64(n) {
			break
		}
		if c.inLeft.CompareAndSwap(left, left-int64(n)) {
			return true
		}
	}
	c.srv.log.Debug("inbound limit passed", "sid", c.id, "limit", c.srv.opts.InboundLimit)
	c.closeWith(ReasonParseError, closeAbort)
	return false
}

// closeReason maps why nbio closed a websocket to a session close reason.
func closeReason(err error) string {
	var ce *websocket.CloseError
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return ReasonTransportClose
	case errors.As(err, &ce) && (ce.Code == 1000 || ce.Code == 1001 || ce.Code == 1005):
		return ReasonTransportClose
	case errors.Is(err, nbio.ErrOverflow):
		return ReasonBufferFull
	}
	return ReasonTransportError
}
