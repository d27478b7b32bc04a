package hub

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"

	"github.com/rtserver/rtserver/core/internal/dispatch"
	"github.com/rtserver/rtserver/core/internal/socketio"
	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// Requests to plugins: client:event, client:message and client:action are checked, made
// into a dispatch.Request and handed to the Dispatcher; its answer goes back as
// server:response, message:ack or action:result (and to the client's ack). A socket's
// requests are answered in order, one at a time; they end when the socket goes.

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
			return wire.String(f.typ)
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

func (h *Hub) onClientRequest(kind dispatch.Kind) argsHandler {
	spec := kinds[kind]
	return func(s *socketio.Socket, ss *session, event string, args *socketio.Args, arg json.RawMessage, ack socketio.Ack) {
		fields, ok := requestOf(args, arg)
		if !ok {
			h.sendError(s, event, spec.invalidMsg, spec.invalidCode)
			return
		}
		name, ok := spec.name(fields)
		if !ok || len(name) > h.opts.MaxEventNameLen {
			h.sendError(s, event, spec.invalidMsg, spec.invalidCode)
			return
		}
		// The requesting socket is always on this node: its rooms are read from it, not
		// asked of the Adapter.
		req := &dispatch.Request{
			Kind:      kind,
			Name:      name,
			RequestID: h.ids.next(),
			SocketID:  s.ID(),
			UserID:    ss.userID,
			Rooms:     clientRooms(s.ID(), s.Rooms()),
			// arg aliases socketio's private copy of the message, which nothing else
			// writes: the request may keep it without a copy of its own.
			Payload: arg,
		}
		if kind == dispatch.KindMessage {
			req.MessageID = h.ids.next()
		}
		// The usual case, no request of this socket running, costs no queued closure.
		if ss.begin() {
			h.dispatch(s, ss, spec, req, ack)
			return
		}
		if !ss.enqueue(func() { h.dispatch(s, ss, spec, req, ack) }, h.opts.MaxPending) {
			h.sendError(s, event, "Too many requests waiting for a reply", CodeTooManyPending)
		}
	}
}

// dispatch hands a request of the socket to the Dispatcher; its answer starts the next.
func (h *Hub) dispatch(s *socketio.Socket, ss *session, spec *kindSpec, req *dispatch.Request, ack socketio.Ack) {
	h.currentDispatcher().DispatchAsync(ss.context(), req, func(rep *dispatch.Reply, err error) {
		h.answer(s, spec, req, ack, rep, err)
		ss.next()
	})
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

// context returns the context of the socket's requests: made at the first request (most
// sockets never send one), cancelled when the socket disconnects, with no deadline (the
// dispatcher applies each plugin's own). It costs no goroutine.
func (ss *session) context() context.Context {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ctx == nil {
		ss.ctx, ss.cancel = context.WithCancel(context.Background())
		if ss.gone {
			ss.cancel()
		}
	}
	return ss.ctx
}

// endRequests ends the socket's requests: the queued ones are dropped, the running one
// is cancelled. The cancel runs outside mu: it completes the running call, whose callback
// takes mu again (next).
func (ss *session) endRequests() {
	ss.mu.Lock()
	ss.queue = nil
	cancel := ss.cancel
	ss.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// begin marks a request of the socket running when none is (the caller starts it at once);
// false when one is running (the new one must queue behind it, so that replies keep the
// order of requests) or the socket is gone.
func (ss *session) begin() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.running || ss.gone {
		return false
	}
	ss.running = true
	return true
}

// enqueue queues start behind the running request; it refuses when max requests already
// wait. start must not block, and must call next once its request is answered. A gone
// socket's requests are dropped: nobody is there to answer.
func (ss *session) enqueue(start func(), max int) bool {
	ss.mu.Lock()
	switch {
	case ss.gone:
		ss.mu.Unlock()
		return true
	case !ss.running:
		// The running request ended between begin and here: this one is the next.
		ss.running = true
		ss.mu.Unlock()
		runners.Submit(start)
		return true
	case len(ss.queue) >= max:
		ss.mu.Unlock()
		return false
	}
	ss.queue = append(ss.queue, start)
	ss.mu.Unlock()
	return true
}

// next ends the running request: the oldest queued one starts, on a pooled goroutine (next
// runs on the dispatcher's, which must not be held up), or the socket is idle again.
func (ss *session) next() {
	ss.mu.Lock()
	if len(ss.queue) == 0 {
		ss.running = false
		ss.queue = nil
		ss.mu.Unlock()
		return
	}
	start := ss.queue[0]
	ss.queue[0] = nil
	ss.queue = ss.queue[1:]
	ss.mu.Unlock()
	runners.Submit(start)
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
