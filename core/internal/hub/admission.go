package hub

import (
	"time"

	"github.com/rtserver/rtserver/core/internal/socketio"
)

// Admission of a client event: every event a socket sends is counted, then held to the
// socket's message rate (a socket that keeps sending after being told to stop is
// disconnected), and a known event's payload to the nesting depth limit. The connection
// rate and the connection counts are the connection guard's (core/server), at the
// handshake.

// admit reports whether the event may be handled; when not, the client has been told why
// (or disconnected). The depth is the arguments' nesting, measured by core/socketio as it
// validated them: the payload is not scanned again here.
func (h *Hub) admit(s *socketio.Socket, ss *session, event string, args socketio.Args) bool {
	if !h.admitRate(s, ss, event) {
		return false
	}
	if args.Depth > h.opts.MaxJSONDepth {
		h.sendError(s, event, "Payload is nested too deeply", CodeInvalidPayload)
		return false
	}
	return true
}

// admitRate counts an incoming event and applies the per-connection message rate.
func (h *Hub) admitRate(s *socketio.Socket, ss *session, event string) bool {
	if h.m != nil {
		h.m.CountReceived(event)
	}
	if h.msgRate == nil {
		return true
	}
	r := h.msgRate.AllowOwned(s.ID()) // the id is a string of its own, kept by the socket anyway
	refused := ss.countRefused(!r.Allowed)
	if r.Allowed {
		return true
	}
	if h.m != nil {
		h.m.RateLimited.WithLabelValues("ws_message").Inc()
	}
	if refused > h.opts.FloodDisconnectAfter {
		h.log.Warn("disconnecting flooding socket", "socket", s.ID(), "user", ss.userID, "ip", ss.clientIP)
		s.Disconnect()
		return false
	}
	retry := max(int(r.RetryAfter.Round(time.Second)/time.Second), 1)
	h.sendErrorPayload(s, wsError{Event: event, Message: "Rate limit exceeded", Code: CodeRateLimited, RetryAfter: &retry})
	return false
}

// onUnknown answers an event the hub has no handler for, once admitted by the rate.
func (h *Hub) onUnknown(s *socketio.Socket, ss *session, event string) {
	if !h.admitRate(s, ss, event) {
		return
	}
	name := event
	if len(name) > h.opts.MaxEventNameLen {
		name = name[:h.opts.MaxEventNameLen]
	}
	h.sendError(s, name, "Unknown event", CodeUnknownEvent)
}
