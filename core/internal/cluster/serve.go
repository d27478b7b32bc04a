package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/rtserver/rtserver/core/internal/socketio"
)

// onRequest answers another node's request (or the emitter's). Malformed or oversized
// requests are counted and ignored. The work runs off the receive loop, at most
// maxServing at once; a request that finds them all busy is dropped and counted, so a
// flood cannot stall the delivery of broadcasts.
func (a *Adapter) onRequest(payload string) {
	if len(payload) > maxRequestBytes {
		a.m.requests.WithLabelValues("too_large").Inc()
		return
	}
	var req wireRequest
	var bcast *msgpackBroadcastRequest
	if len(payload) > 0 && payload[0] == '{' {
		if err := json.Unmarshal([]byte(payload), &req); err != nil {
			a.m.requests.WithLabelValues("malformed").Inc()
			a.log.Debug("malformed request ignored", "error", err)
			return
		}
	} else {
		b, err := decodeBroadcastRequest([]byte(payload))
		if err != nil {
			a.m.requests.WithLabelValues("malformed").Inc()
			a.log.Debug("malformed request ignored", "error", err)
			return
		}
		bcast = b
		req = wireRequest{UID: b.UID, RequestID: b.RequestID, Type: reqBroadcast}
	}
	if req.UID == a.uid {
		return // our own request: the requester answers for itself
	}
	if (req.UID != "" && len(req.UID) > maxIDLen) || len(req.RequestID) > maxIDLen || len(req.SID) > maxIDLen {
		a.m.requests.WithLabelValues("malformed").Inc()
		return
	}
	a.serveBounded(func() {
		if err := a.serve(&req, bcast); errors.Is(err, errNotAnswered) {
			a.m.requests.WithLabelValues("answer_failed").Inc()
			a.log.Warn("answer to another node not published", "type", req.Type, "error", err)
			return
		} else if err != nil {
			a.m.requests.WithLabelValues("malformed").Inc()
			a.log.Debug("request ignored", "type", req.Type, "error", err)
			return
		}
		a.m.requests.WithLabelValues("served").Inc()
	})
}

// selectOpts reads a request's {rooms, except}.
func selectOpts(o *wireOpts) (rooms, except []string, err error) {
	if o == nil {
		return nil, nil, nil
	}
	if rooms, err = jsonRooms(o.Rooms); err != nil {
		return nil, nil, err
	}
	if except, err = jsonRooms(o.Except); err != nil {
		return nil, nil, err
	}
	return rooms, except, nil
}

func (a *Adapter) serve(req *wireRequest, bcast *msgpackBroadcastRequest) error {
	io := a.io
	switch req.Type {
	case reqSockets:
		rooms, err := jsonRooms(req.Rooms)
		if err != nil {
			return err
		}
		ids := []string{}
		if io != nil {
			for _, so := range io.Select(rooms, nil) {
				ids = append(ids, so.ID())
			}
		}
		return a.respond(req, map[string]any{"requestId": req.RequestID, "sockets": ids})

	case reqAllRooms:
		rooms := []string{}
		if io != nil {
			rooms = io.RoomNames()
		}
		return a.respond(req, map[string]any{"requestId": req.RequestID, "rooms": rooms})

	case reqRemoteJoin, reqRemoteLeave, reqRemoteDisconn:
		if req.Opts != nil {
			rooms, except, err := selectOpts(req.Opts)
			if err != nil {
				return err
			}
			named, err := jsonRooms(req.Rooms)
			if err != nil {
				return err
			}
			if io == nil {
				return nil
			}
			for _, so := range io.Select(rooms, except) {
				apply(so, req.Type, named)
			}
			return nil // the opts form has no answer
		}
		var named []string
		if req.Type != reqRemoteDisconn {
			var err error
			if named, err = jsonRoomOrRooms(req.Room); err != nil {
				return err
			}
		}
		var so *socketio.Socket
		if io != nil && req.SID != "" {
			so = io.Socket(req.SID)
		}
		if so == nil {
			if req.Nack {
				return a.respond(req, wireResponse{RequestID: req.RequestID, UnknownSocket: true})
			}
			return nil // only the node that holds the socket answers
		}
		apply(so, req.Type, named)
		return a.respond(req, wireResponse{RequestID: req.RequestID})

	case reqRemoteFetch:
		rooms, except, err := selectOpts(req.Opts)
		if err != nil {
			return err
		}
		out := []fetchedSocket{}
		if io != nil {
			for _, so := range io.Select(rooms, except) {
				out = append(out, describe(so))
			}
		}
		return a.respond(req, map[string]any{"requestId": req.RequestID, "sockets": out})

	case reqServerSideEmit:
		// This product has no server-side listeners: an emit from another node is counted
		// and, when it asks for acknowledgements, acknowledged with null so that the
		// sender's serverSideEmitWithAck completes instead of timing out.
		a.m.requests.WithLabelValues("server_side_emit").Inc()
		if req.RequestID == "" {
			return nil
		}
		t := reqServerSideEmit
		return a.respond(req, wireResponse{Type: &t, RequestID: req.RequestID, Data: json.RawMessage("null")})

	case reqBroadcast:
		return a.serveBroadcastWithAck(req, bcast)
	}
	return nil // a type of a later protocol version: ignored as the Node.js adapter does
}

// apply joins, leaves or disconnects one local socket for a request.
func apply(so *socketio.Socket, typ int, rooms []string) {
	switch typ {
	case reqRemoteJoin:
		so.Join(rooms...)
	case reqRemoteLeave:
		for _, r := range rooms {
			so.Leave(r)
		}
	case reqRemoteDisconn:
		so.Disconnect()
	}
}

func describe(so *socketio.Socket) fetchedSocket {
	h := handshake{Headers: map[string]string{}, Query: map[string]string{}, Auth: map[string]any{},
		Address: so.RemoteAddr(), URL: "/socket.io/", Time: time.Now().UTC().Format(time.RFC1123),
		Issued: time.Now().UnixMilli()}
	for k, v := range so.Header() {
		if len(v) > 0 && k != "Cookie" && k != "Authorization" {
			h.Headers[lowerASCII(k)] = v[0]
		}
	}
	for k, v := range so.Query() {
		if len(v) > 0 && k != "token" {
			h.Query[k] = v[0]
		}
	}
	return fetchedSocket{ID: so.ID(), Handshake: h, Rooms: so.Rooms(), Data: map[string]any{}}
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// respond publishes an answer to req on the requester's own response channel, or on the
// shared one when the request names no requester.
func (a *Adapter) respond(req *wireRequest, v any) error {
	if req.RequestID == "" {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return a.publishResponse(req.UID, b)
}

// errNotAnswered wraps a failure to publish an answer (Redis unreachable).
var errNotAnswered = errors.New("cluster: answer not published")

func (a *Adapter) publishResponse(uid string, b []byte) error {
	ch := a.respChannel()
	if validID(uid) && uid != "emitter" {
		ch = a.ownRespChannel(uid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	if err := a.client.Publish(ctx, ch, b).Err(); err != nil {
		return fmt.Errorf("%w: %w", errNotAnswered, err)
	}
	return nil
}

// msgpackBroadcastRequest is a BROADCAST request: a Node.js node's emit with
// acknowledgements (io.timeout(ms).emitWithAck).
type msgpackBroadcastRequest struct {
	UID       string
	RequestID string
	event     string
	args      []any
	rooms     []string
	except    []string
	timeout   time.Duration
}

func decodeBroadcastRequest(msg []byte) (*msgpackBroadcastRequest, error) {
	var m map[string]any
	if err := msgpack.Unmarshal(msg, &m); err != nil {
		return nil, err
	}
	r := &msgpackBroadcastRequest{}
	r.UID, _ = m["uid"].(string)
	r.RequestID, _ = m["requestId"].(string)
	if t, _ := toInt(m["type"]); t != reqBroadcast || !validID(r.RequestID) {
		return nil, errIgnored
	}
	packet, _ := m["packet"].(map[string]any)
	if nsp, ok := packet["nsp"]; ok && nsp != mainNamespace {
		return nil, errIgnored
	}
	data, _ := packet["data"].([]any)
	if len(data) == 0 {
		return nil, errIgnored
	}
	var ok bool
	if r.event, ok = data[0].(string); !ok {
		return nil, errIgnored
	}
	r.args = data[1:]
	opts, _ := m["opts"].(map[string]any)
	r.rooms = roomList(opts["rooms"])
	r.except = roomList(opts["except"])
	if len(r.rooms) > maxRequestRooms || len(r.except) > maxRequestRooms {
		return nil, errIgnored
	}
	flags, _ := opts["flags"].(map[string]any)
	ms, _ := toInt(flags["timeout"])
	r.timeout = time.Duration(ms) * time.Millisecond
	return r, nil
}

// maxAckTimeout bounds how long this node keeps an emit's acknowledgements open for
// another node.
const maxAckTimeout = 5 * time.Minute

// serveBroadcastWithAck delivers another node's emit with acknowledgements to this node's
// sockets, tells it how many sockets were reached (BROADCAST_CLIENT_COUNT) and forwards
// each acknowledgement (BROADCAST_ACK, MessagePack, the first argument).
func (a *Adapter) serveBroadcastWithAck(req *wireRequest, b *msgpackBroadcastRequest) error {
	if b == nil || a.io == nil {
		return nil
	}
	timeout := b.timeout
	if timeout <= 0 || timeout > maxAckTimeout {
		timeout = maxAckTimeout
	}
	n := 0
	for _, so := range a.io.Select(b.rooms, b.except) {
		err := so.EmitWithAckFunc(b.event, timeout, func(args socketio.Args, err error) {
			if err != nil {
				return
			}
			var first any
			if len(args.Raw) > 0 {
				first = args.Raw[0]
			}
			msg, err := encodeAckResponse(b.RequestID, first)
			if err != nil {
				return
			}
			// Off the socket's goroutine: a publish may wait for Redis.
			a.goBackground(func() { _ = a.publishResponse(b.UID, msg) })
		}, b.args...)
		if err == nil {
			n++
		}
	}
	t := reqBroadcastCount
	return a.respond(req, wireResponse{Type: &t, RequestID: req.RequestID, ClientCount: &n})
}

// encodeAckResponse is a BROADCAST_ACK response: MessagePack {type, requestId, packet}.
func encodeAckResponse(requestID string, arg any) ([]byte, error) {
	var v any
	if raw, ok := arg.(json.RawMessage); ok {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	w := &writer{enc: enc}
	w.mapLen(3)
	w.str("type")
	w.int(reqBroadcastAckRes)
	w.str("requestId")
	w.str(requestID)
	w.str("packet")
	w.value(v)
	return buf.Bytes(), w.err
}
