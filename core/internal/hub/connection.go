package hub

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/rtserver/rtserver/core/internal/coded"
	"github.com/rtserver/rtserver/core/internal/dispatch"
	"github.com/rtserver/rtserver/core/internal/socketio"
	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// Error codes carried by the `error` event {event, message, code}.
const (
	CodeInvalidPayload     = coded.InvalidPayload
	CodeInvalidEventData   = coded.InvalidEventData
	CodeInvalidMessageData = coded.InvalidMessageData
	CodeInvalidActionData  = coded.InvalidActionData
	CodeInvalidRoom        = coded.InvalidRoom // also what a plugin's refused join gets
	CodeRoomLimit          = coded.RoomLimit
	CodeUnknownEvent       = coded.UnknownEvent
	CodeRateLimited        = coded.RateLimited
	CodeTooManyPending     = coded.TooManyPending
	CodeInternal           = coded.Internal
)

// HandleConnection sets up an accepted socket: its session, its handlers for the client's
// events, then the system events of a connection (system.go). The handlers are the hub's
// one shared table (they find the session through the socket), so an idle connection does
// not hold a map of closures of its own.
func (h *Hub) HandleConnection(s *socketio.Socket) {
	ss := sessionOf(s)
	if ss == nil { // no guard in front: an anonymous socket
		ss = &session{}
		s.SetSession(ss)
	}
	h.begin(s, ss)
	s.OnDisconnect(h.goneFn)
	s.OnAny(h.anyFn)
	s.UseHandlers(h.table)
	h.welcome(s, ss, wire.FormatTime(time.Now()))
	ss.start = nil // read by begin and welcome alone, on this goroutine
}

// handlerTable builds the event handlers every socket of the hub shares.
func (h *Hub) handlerTable() map[string]socketio.EventHandler {
	t := make(map[string]socketio.EventHandler, 8)
	h.on(t, "register", h.onRegister)
	h.on(t, "room:join", h.onRoomJoin)
	h.on(t, "room:leave", h.onRoomLeave)
	h.on(t, "ping", h.onPing)
	h.onArgs(t, "client:event", h.onClientRequest(dispatch.KindEvent))
	h.onArgs(t, "client:message", h.onClientRequest(dispatch.KindMessage))
	h.onArgs(t, "client:action", h.onClientRequest(dispatch.KindAction))
	return t
}

func (h *Hub) onGone(s *socketio.Socket, reason string) {
	if ss := sessionOf(s); ss != nil {
		h.end(ss)
	}
	h.msgRate.Forget(s.ID())
}

func (h *Hub) onAny(s *socketio.Socket, event string, _ socketio.Args, _ socketio.Ack) {
	if ss := sessionOf(s); ss != nil {
		h.onUnknown(s, ss, event)
	}
}

// handler is a client event handler after the common checks; arg is the first argument.
type handler func(s *socketio.Socket, ss *session, event string, arg json.RawMessage, ack socketio.Ack)

// argsHandler is a handler that also reads what socketio found in the arguments.
type argsHandler func(s *socketio.Socket, ss *session, event string, args *socketio.Args, arg json.RawMessage, ack socketio.Ack)

// on installs in t a handler behind the checks every client event goes through
// (admission.go): the message rate, the payload's nesting depth, and metrics.
func (h *Hub) on(t map[string]socketio.EventHandler, event string, fn handler) {
	h.onArgs(t, event, func(s *socketio.Socket, ss *session, event string, _ *socketio.Args, arg json.RawMessage, ack socketio.Ack) {
		fn(s, ss, event, arg, ack)
	})
}

func (h *Hub) onArgs(t map[string]socketio.EventHandler, event string, fn argsHandler) {
	t[event] = func(s *socketio.Socket, args socketio.Args, ack socketio.Ack) {
		ss := sessionOf(s)
		if ss == nil { // HandleConnection sets it before installing the table
			return
		}
		if !h.admit(s, ss, event, args) {
			return
		}
		var arg json.RawMessage
		if len(args.Raw) > 0 {
			arg = args.Raw[0]
		}
		fn(s, ss, event, &args, arg, ack)
	}
}

// wsError is the payload of the `error` event.
type wsError struct {
	Event      string `json:"event"`
	Message    string `json:"message"`
	Code       string `json:"code"`
	RetryAfter *int   `json:"retryAfter,omitempty"`
}

// reply emits a response event and, when the client asked for one, answers its ack too.
func (h *Hub) reply(s *socketio.Socket, event string, ack socketio.Ack, v any) {
	h.emit(s, event, v)
	if ack != nil {
		_ = ack(v)
	}
}

func (h *Hub) emit(s *socketio.Socket, event string, v any) {
	if err := s.Emit(event, v); err == nil {
		h.countSent(event, 1)
	}
}

func (h *Hub) sendError(s *socketio.Socket, event, message, code string) {
	h.sendErrorPayload(s, wsError{Event: event, Message: message, Code: code})
}

// sendCodedError reports a refusal of the hub's checks; any other error is internal.
func (h *Hub) sendCodedError(s *socketio.Socket, event string, err error) {
	var ce *codedError
	switch {
	case errors.As(err, &ce):
		h.sendError(s, event, ce.Message, ce.Code)
	case errors.Is(err, ErrUnknownSocket):
		// the socket is gone: nobody to tell
	default:
		h.log.Error("event failed", "event", event, "error", err)
		h.sendError(s, event, "Internal server error", CodeInternal)
	}
}

func (h *Hub) sendErrorPayload(s *socketio.Socket, e wsError) {
	if h.m != nil {
		h.m.Errors.WithLabelValues(e.Code).Inc()
	}
	h.emit(s, "error", e)
}
