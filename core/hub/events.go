package hub

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/rtserver/rtserver/core/auth"
	"github.com/rtserver/rtserver/core/dispatch"
	"github.com/rtserver/rtserver/core/isotime"
	"github.com/rtserver/rtserver/core/jsonobj"
	"github.com/rtserver/rtserver/core/metrics"
	"github.com/rtserver/rtserver/core/socketio"
)

// Error codes carried by the `error` event {event, message, code}.
const (
	CodeInvalidPayload     = "INVALID_PAYLOAD"
	CodeInvalidEventData   = "INVALID_EVENT_DATA"
	CodeInvalidMessageData = "INVALID_MESSAGE_DATA"
	CodeInvalidActionData  = "INVALID_ACTION_DATA"
	CodeInvalidRoom        = "INVALID_ROOM"
	CodeRoomLimit          = "ROOM_LIMIT_EXCEEDED"
	CodeUnknownEvent       = "UNKNOWN_EVENT"
	CodeRateLimited        = "RATE_LIMITED"
	CodeTooManyPending     = "TOO_MANY_PENDING_REQUESTS"
	CodeInternal           = "INTERNAL_SERVER_ERROR"
)

// wsError is the payload of the `error` event.
type wsError struct {
	Event      string `json:"event"`
	Message    string `json:"message"`
	Code       string `json:"code"`
	RetryAfter *int   `json:"retryAfter,omitempty"`
}

// client is the hub's per-socket state: the queue that runs its client:* requests one after
// another (so replies keep the order of requests) without a goroutine while idle, and the
// context its requests run under, which ends when the socket goes.
type client struct {
	mu      sync.Mutex
	queue   []func()
	running bool
	refused int // events refused in a row by the rate limit
	ctx     context.Context
	cancel  context.CancelFunc
	gone    bool
}

// context returns the context of the socket's requests: made at the first request (most
// sockets never send one), cancelled when the socket disconnects, with no deadline (the
// dispatcher applies each plugin's own). It costs no goroutine.
func (c *client) context() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithCancel(context.Background())
		if c.gone {
			c.cancel()
		}
	}
	return c.ctx
}

// leave ends the socket's requests: the queued ones are dropped, the running one is
// cancelled. The cancel runs outside mu: it completes the running call, whose callback
// takes mu again (next).
func (c *client) leave() {
	c.mu.Lock()
	c.gone = true
	c.queue = nil
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

const keyClient = "hub.client"

func clientOf(s *socketio.Socket) *client {
	c, _ := s.Get(keyClient).(*client)
	return c
}

type serverInfo struct {
	Version     string `json:"version"`
	Environment string `json:"environment"`
}

type welcome struct {
	Message    string     `json:"message"`
	SocketID   string     `json:"socketId"`
	Timestamp  string     `json:"timestamp"`
	ServerInfo serverInfo `json:"serverInfo"`
}

// HandleConnection sets up an accepted socket: its handlers for the client's events, then
// the system:welcome event.
func (h *Hub) HandleConnection(s *socketio.Socket) {
	c := &client{}
	s.Set(keyClient, c)
	if s.Recovered() {
		h.restore(s)
	}
	s.OnDisconnect(func(s *socketio.Socket, reason string) {
		c.leave()
		h.unregister(s)
		h.msgRate.Forget(s.ID())
	})
	s.OnAny(h.onUnknown)
	h.on(s, "register", h.onRegister)
	h.on(s, "room:join", h.onRoomJoin)
	h.on(s, "room:leave", h.onRoomLeave)
	h.on(s, "ping", h.onPing)
	h.on(s, "client:event", h.onClientRequest(dispatch.KindEvent))
	h.on(s, "client:message", h.onClientRequest(dispatch.KindMessage))
	h.on(s, "client:action", h.onClientRequest(dispatch.KindAction))

	now := isotime.Format(time.Now())
	h.emit(s, "system:welcome", welcome{
		Message:    "Welcome to the Socket.IO server",
		SocketID:   s.ID(),
		Timestamp:  now,
		ServerInfo: serverInfo{Version: h.opts.Version, Environment: h.opts.Environment},
	})
	h.announceReconnect(s, now)
}

// Reconnect is what a client said of its reconnection in the CONNECT auth payload.
type Reconnect struct {
	AskedRecovery bool // it sent the private session id of an earlier connection
	Attempt       int  // the client's reconnection attempt number (0: a first connection)
	Delay         int  // the delay before that attempt, in milliseconds
}

const keyReconnect = "hub.reconnect"

// SetReconnect records the reconnection details of a connecting socket.
func SetReconnect(s *socketio.Socket, r Reconnect) { s.Set(keyReconnect, r) }

type recovered struct {
	UserID    string `json:"userId"`
	Timestamp string `json:"timestamp"`
}

type recoveryFailed struct {
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
}

type reconnectStatus struct {
	Attempt   int    `json:"attempt"`
	Delay     int    `json:"delay"`
	Timestamp string `json:"timestamp"`
}

// announceReconnect tells a reconnected client how it came back: its state recovered, or
// not although it asked, and the reconnection attempt it reported. A first connection
// gets none of these.
func (h *Hub) announceReconnect(s *socketio.Socket, now string) {
	r, _ := s.Get(keyReconnect).(Reconnect)
	// Counted before the event goes out, so a client that reads /metrics on receipt
	// sees its own outcome.
	switch {
	case s.Recovered():
		h.countRecovery(metrics.RecoveryRecovered)
		h.emit(s, "system:state_recovered", recovered{UserID: UserID(s), Timestamp: now})
	case r.AskedRecovery:
		h.countRecovery(metrics.RecoveryFailed)
		h.emit(s, "system:state_recovery_failed", recoveryFailed{Message: "Failed to recover connection state", Timestamp: now})
	}
	if r.Attempt > 0 {
		h.emit(s, "system:reconnect_status", reconnectStatus{Attempt: r.Attempt, Delay: max(r.Delay, 0), Timestamp: now})
		if h.m != nil {
			h.m.Reconnects.Inc()
		}
	}
}

func (h *Hub) countRecovery(result string) {
	if h.m != nil {
		h.m.Recovery.WithLabelValues(result).Inc()
	}
}

// handler is a client event handler after the common checks.
type handler func(s *socketio.Socket, event string, arg json.RawMessage, ack socketio.Ack)

// on installs a handler behind the checks every client event goes through: the message
// rate, the payload's nesting depth, and metrics.
func (h *Hub) on(s *socketio.Socket, event string, fn handler) {
	s.On(event, func(s *socketio.Socket, args socketio.Args, ack socketio.Ack) {
		if !h.admit(s, event) {
			return
		}
		var arg json.RawMessage
		if len(args.Raw) > 0 {
			arg = args.Raw[0]
		}
		if !h.checkDepth(arg) {
			h.sendError(s, event, "Payload is nested too deeply", CodeInvalidPayload)
			return
		}
		fn(s, event, arg, ack)
	})
}

// admit counts an incoming event and applies the per-connection message rate. A socket that
// keeps sending after being told to stop is disconnected.
func (h *Hub) admit(s *socketio.Socket, event string) bool {
	if h.m != nil {
		h.m.CountReceived(event)
	}
	if h.msgRate == nil {
		return true
	}
	r := h.msgRate.Allow(s.ID())
	c := clientOf(s)
	if r.Allowed {
		if c != nil {
			c.mu.Lock()
			c.refused = 0
			c.mu.Unlock()
		}
		return true
	}
	if h.m != nil {
		h.m.RateLimited.WithLabelValues("ws_message").Inc()
	}
	refused := 0
	if c != nil {
		c.mu.Lock()
		c.refused++
		refused = c.refused
		c.mu.Unlock()
	}
	if refused > h.opts.FloodDisconnectAfter {
		h.log.Warn("disconnecting flooding socket", "socket", s.ID(), "user", UserID(s))
		s.Disconnect()
		return false
	}
	retry := int(r.RetryAfter.Round(time.Second) / time.Second)
	if retry < 1 {
		retry = 1
	}
	h.sendErrorPayload(s, wsError{Event: event, Message: "Rate limit exceeded", Code: CodeRateLimited, RetryAfter: &retry})
	return false
}

func (h *Hub) onUnknown(s *socketio.Socket, event string, args socketio.Args, ack socketio.Ack) {
	if !h.admit(s, event) {
		return
	}
	name := event
	if len(name) > h.opts.MaxEventNameLen {
		name = name[:h.opts.MaxEventNameLen]
	}
	h.sendError(s, name, "Unknown event", CodeUnknownEvent)
}

type registerReq struct {
	UserID *string `json:"userId"`
}

type registerAck struct {
	Success bool   `json:"success"`
	UserID  string `json:"userId,omitempty"`
	Error   string `json:"error,omitempty"`
}

func (h *Hub) onRegister(s *socketio.Socket, event string, arg json.RawMessage, ack socketio.Ack) {
	var req registerReq
	reply := func(r registerAck) {
		h.emit(s, "register:ack", r)
		if ack != nil {
			_ = ack(r)
		}
	}
	if !isObject(arg) || json.Unmarshal(arg, &req) != nil {
		reply(registerAck{Error: "Invalid registration data: expected {\"userId\": string}"})
		return
	}
	if req.UserID == nil || *req.UserID == "" || isBlank(*req.UserID) {
		reply(registerAck{Error: "Missing userId"})
		return
	}
	if err := auth.CheckUserID(*req.UserID); err != nil {
		reply(registerAck{Error: err.Error()})
		return
	}
	if *req.UserID != UserID(s) {
		reply(registerAck{Error: "userId does not match the authenticated user"})
		return
	}
	h.register(s, *req.UserID)
	reply(registerAck{Success: true, UserID: *req.UserID})
}

type roomReq struct {
	Room *string `json:"room"`
}

type roomAck struct {
	Success bool   `json:"success"`
	Room    string `json:"room"`
}

func (h *Hub) parseRoom(s *socketio.Socket, event string, arg json.RawMessage) (string, bool) {
	var req roomReq
	if !isObject(arg) || json.Unmarshal(arg, &req) != nil || req.Room == nil {
		h.sendError(s, event, "Invalid room data: expected {\"room\": string}", CodeInvalidRoom)
		return "", false
	}
	if err := h.checkRoomName(*req.Room); err != nil {
		h.sendError(s, event, err.Message, err.Code)
		return "", false
	}
	return *req.Room, true
}

func (h *Hub) onRoomJoin(s *socketio.Socket, event string, arg json.RawMessage, ack socketio.Ack) {
	room, ok := h.parseRoom(s, event, arg)
	if !ok {
		return
	}
	if err := h.checkRoom(s.ID(), room); err != nil {
		h.sendCodedError(s, event, err)
		return
	}
	if err := h.fan.Join(s.ID(), room); err != nil {
		return // the socket is gone
	}
	h.reply(s, "room:join:ack", ack, roomAck{Success: true, Room: room})
}

func (h *Hub) onRoomLeave(s *socketio.Socket, event string, arg json.RawMessage, ack socketio.Ack) {
	room, ok := h.parseRoom(s, event, arg)
	if !ok {
		return
	}
	if err := h.fan.Leave(s.ID(), room); err != nil {
		return // the socket is gone
	}
	h.reply(s, "room:leave:ack", ack, roomAck{Success: true, Room: room})
}

func (h *Hub) onPing(s *socketio.Socket, event string, arg json.RawMessage, ack socketio.Ack) {
	if ack != nil {
		_ = ack()
	}
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
	if ce, ok := err.(*codedError); ok {
		h.sendError(s, event, ce.Message, ce.Code)
		return
	}
	if errors.Is(err, ErrUnknownSocket) {
		return // the socket is gone: nobody to tell
	}
	h.log.Error("room check failed", "event", event, "error", err)
	h.sendError(s, event, "Internal server error", CodeInternal)
}

func (h *Hub) sendErrorPayload(s *socketio.Socket, e wsError) {
	if h.m != nil {
		h.m.Errors.WithLabelValues(e.Code).Inc()
	}
	h.emit(s, "error", e)
}

// The three application events: what each accepts and how it answers.
type kindSpec struct {
	responseEvent string
	invalidCode   string
	invalidMsg    string
	// name extracts the routing name and validates the payload.
	name func(f requestFields) (string, bool)
}

var kinds = map[dispatch.Kind]*kindSpec{
	dispatch.KindEvent: {
		responseEvent: "server:response",
		invalidCode:   CodeInvalidEventData,
		invalidMsg:    "Invalid event data. Expected {type: string, data?: object}.",
		name: func(f requestFields) (string, bool) {
			return requiredField(f.typ)
		},
	},
	dispatch.KindMessage: {
		responseEvent: "message:ack",
		invalidCode:   CodeInvalidMessageData,
		invalidMsg:    "Invalid message data. Missing content.",
		name: func(f requestFields) (string, bool) {
			if _, ok := requiredField(f.content); !ok {
				return "", false
			}
			if f.typ == nil || string(f.typ) == "null" {
				return "", true
			}
			return jsonobj.String(f.typ)
		},
	},
	dispatch.KindAction: {
		responseEvent: "action:result",
		invalidCode:   CodeInvalidActionData,
		invalidMsg:    "Invalid action data. Expected {action: string, params?: object}.",
		name: func(f requestFields) (string, bool) {
			return requiredField(f.action)
		},
	},
}

func (h *Hub) onClientRequest(kind dispatch.Kind) handler {
	spec := kinds[kind]
	return func(s *socketio.Socket, event string, arg json.RawMessage, ack socketio.Ack) {
		fields, ok := scanRequest(arg)
		if !ok {
			h.sendError(s, event, spec.invalidMsg, spec.invalidCode)
			return
		}
		name, ok := spec.name(fields)
		if !ok || len(name) > h.opts.MaxEventNameLen {
			h.sendError(s, event, spec.invalidMsg, spec.invalidCode)
			return
		}
		all, err := h.fan.SocketRooms(s.ID())
		if err != nil {
			return // the socket is gone
		}
		req := &dispatch.Request{
			Kind:      kind,
			Name:      name,
			RequestID: h.ids.next(),
			SocketID:  s.ID(),
			UserID:    UserID(s),
			Rooms:     clientRooms(s.ID(), all),
			Payload:   append(json.RawMessage(nil), arg...),
		}
		if kind == dispatch.KindMessage {
			req.MessageID = h.ids.next()
		}
		c := clientOf(s)
		if c == nil {
			h.sendError(s, event, "Too many requests waiting for a reply", CodeTooManyPending)
			return
		}
		start := func() {
			h.currentDispatcher().DispatchAsync(c.context(), req, func(rep *dispatch.Reply, err error) {
				h.answer(s, spec, req, ack, rep, err)
				c.next()
			})
		}
		if !c.submit(start, h.opts.MaxPending) {
			h.sendError(s, event, "Too many requests waiting for a reply", CodeTooManyPending)
		}
	}
}

// response is the payload of server:response, message:ack and action:result.
type response struct {
	Success   bool            `json:"success"`
	RequestID string          `json:"requestId"`
	MessageID string          `json:"messageId,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     string          `json:"error,omitempty"`
	Code      string          `json:"code,omitempty"`
}

// answer sends the reply of a dispatched request to its socket.
func (h *Hub) answer(s *socketio.Socket, spec *kindSpec, req *dispatch.Request, ack socketio.Ack, rep *dispatch.Reply, err error) {
	res := response{Success: err == nil, RequestID: req.RequestID, MessageID: req.MessageID}
	if err != nil {
		res.Code = dispatch.CodeOf(err, CodeInternal)
		var de *dispatch.Error
		if e, ok := err.(*dispatch.Error); ok {
			de = e
		}
		if de != nil {
			res.Error = de.Message
		} else {
			h.log.Error("dispatch failed", "kind", req.Kind.String(), "name", req.Name, "error", err)
			res.Error = "Internal server error"
		}
	} else if rep != nil && len(rep.Data) > 0 {
		switch req.Kind {
		case dispatch.KindEvent:
			res.Data = rep.Data
		case dispatch.KindAction:
			res.Result = rep.Data
		}
	}
	if err == nil && req.Kind == dispatch.KindEvent && res.Data == nil {
		res.Data = json.RawMessage("{}")
	}
	if err == nil && req.Kind == dispatch.KindAction && res.Result == nil {
		res.Result = json.RawMessage("{}")
	}
	if err != nil {
		h.reply(s, spec.responseEvent, ack, res)
		return
	}
	// Success, the hot path: the bytes are built in a scratch buffer, which the packet
	// encoder copies before reply returns.
	bp := responseBuffers.Get().(*[]byte)
	b := appendResponse((*bp)[:0], &res)
	h.reply(s, spec.responseEvent, ack, json.RawMessage(b))
	if cap(b) <= 64<<10 {
		*bp = b
		responseBuffers.Put(bp)
	}
}

// responseBuffers holds scratch buffers for the JSON of successful responses.
var responseBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// submit starts a request of the socket at once when none of its requests is running,
// else queues it behind them (so replies keep the order of requests); it refuses when max
// requests already wait. start must not block, and must call next once its request is
// answered.
func (c *client) submit(start func(), max int) bool {
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return true // nobody to answer
	}
	if c.running {
		if len(c.queue) >= max {
			c.mu.Unlock()
			return false
		}
		c.queue = append(c.queue, start)
		c.mu.Unlock()
		return true
	}
	c.running = true
	c.mu.Unlock()
	start()
	return true
}

// next ends the running request: the oldest queued one starts, on a pooled goroutine (next
// runs on the dispatcher's, which must not be held up), or the socket is idle again.
func (c *client) next() {
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.running = false
		c.queue = nil
		c.mu.Unlock()
		return
	}
	start := c.queue[0]
	c.queue[0] = nil
	c.queue = c.queue[1:]
	c.mu.Unlock()
	runners.Submit(start)
}

// clientRooms lists the rooms of all that a socket joined itself (not its own id room nor
// its user room).
func clientRooms(socketID string, all []string) []string {
	out := make([]string, 0, len(all))
	for _, r := range all {
		if r == socketID || len(r) > 0 && r[0] == 0 {
			continue
		}
		out = append(out, r)
	}
	return out
}

// idGen makes request and message ids unique across nodes and restarts: a random prefix per
// process and a counter.
type idGen struct {
	prefix string
	mu     sync.Mutex
	n      uint64
}

func newIDGen() *idGen { return &idGen{prefix: randomPrefix()} }

func (g *idGen) next() string {
	g.mu.Lock()
	g.n++
	n := g.n
	g.mu.Unlock()
	return g.prefix + "-" + strconv.FormatUint(n, 36)
}
