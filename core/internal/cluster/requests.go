package cluster

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The request/response protocol of @socket.io/redis-adapter 8.x (classic). A node
// publishes a request on <prefix>-request#/# (every node subscribes to it, so PUBSUB
// NUMSUB of that channel is the number of nodes). A node answers on
// <prefix>-response#/#<uid># when it knows the requester's uid (this product, and the
// Node.js adapter which subscribes to it too), else on <prefix>-response#/#. Requests and
// responses are JSON objects with a numbered type; the Node.js adapter sends BROADCAST
// requests and BROADCAST_ACK responses as MessagePack, which the first byte tells apart
// ('{' is JSON).
const (
	reqSockets         = 0 // socket ids in rooms: {requestId, rooms} -> {requestId, sockets: [id]}
	reqAllRooms        = 1 // every room: -> {requestId, rooms: [room]}
	reqRemoteJoin      = 2 // {opts, rooms}: matching sockets join; {sid, room, requestId} -> {requestId}
	reqRemoteLeave     = 3 // as reqRemoteJoin
	reqRemoteDisconn   = 4 // {opts, close}, or {sid, close, requestId} -> {requestId}
	reqRemoteFetch     = 5 // {opts} -> {requestId, sockets: [{id, handshake, rooms, data}]}
	reqServerSideEmit  = 6 // {data: [event, ...args]} (+requestId: -> {type, requestId, data})
	reqBroadcast       = 7 // MessagePack {packet, opts} delivered with acks
	reqBroadcastCount  = 8 // response: {type, requestId, clientCount}
	reqBroadcastAckRes = 9 // response (MessagePack): {type, requestId, packet}
)

// Bounds on what another node (or anyone who can publish on Redis) controls.
const (
	maxRequestBytes  = 1 << 20  // a request: rooms and ids, never bulk data
	maxResponseBytes = 16 << 20 // a response may list every socket id of a node
	maxIDLen         = 128      // uid, requestId, socket id
	maxRequestRooms  = 4096     // rooms named in one request
	maxPendingCalls  = 1024     // requests of this node waiting for answers
	maxAnswers       = 4096     // answers kept per request (one per node is expected)
	maxServing       = 64       // other nodes' requests answered at once
)

// wireRequest is a request as either side sends it. Rooms are JSON values: a Node.js node
// may name a room with a number.
type wireRequest struct {
	UID       string          `json:"uid,omitempty"`
	RequestID string          `json:"requestId,omitempty"`
	Type      int             `json:"type"`
	Opts      *wireOpts       `json:"opts,omitempty"`
	Rooms     json.RawMessage `json:"rooms,omitempty"`
	SID       string          `json:"sid,omitempty"`
	Room      json.RawMessage `json:"room,omitempty"` // one room, or a list (join)
	Close     bool            `json:"close,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	// Extension: a node of this product that holds no such socket answers a sid request
	// carrying it with {requestId, unknownSocket: true}, so the requester need not wait
	// for the timeout once every node answered. Node.js nodes ignore it (they answer
	// only when they hold the socket).
	Nack bool `json:"nack,omitempty"`
}

type wireOpts struct {
	Rooms  json.RawMessage `json:"rooms"`
	Except json.RawMessage `json:"except"`
}

// wireResponse is any response; which fields are set depends on the request.
type wireResponse struct {
	Type          *int            `json:"type,omitempty"`
	RequestID     string          `json:"requestId"`
	Sockets       json.RawMessage `json:"sockets,omitempty"`
	Rooms         json.RawMessage `json:"rooms,omitempty"`
	ClientCount   *int            `json:"clientCount,omitempty"`
	Data          json.RawMessage `json:"data,omitempty"`
	UnknownSocket bool            `json:"unknownSocket,omitempty"`
}

// fetchedSocket is one socket of a REMOTE_FETCH answer, in the shape socket.io's
// RemoteSocket reads.
type fetchedSocket struct {
	ID        string         `json:"id"`
	Handshake handshake      `json:"handshake"`
	Rooms     []string       `json:"rooms"`
	Data      map[string]any `json:"data"`
}

type handshake struct {
	Headers map[string]string `json:"headers"`
	Time    string            `json:"time"`
	Address string            `json:"address"`
	XDomain bool              `json:"xdomain"`
	Secure  bool              `json:"secure"`
	Issued  int64             `json:"issued"`
	URL     string            `json:"url"`
	Query   map[string]string `json:"query"`
	Auth    map[string]any    `json:"auth"`
}

// jsonRooms reads a JSON list of rooms (strings or numbers); an error when it is not a
// list or names more than maxRequestRooms.
func jsonRooms(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []any
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("rooms: %w", err)
	}
	if len(list) > maxRequestRooms {
		return nil, fmt.Errorf("rooms: %d rooms, at most %d", len(list), maxRequestRooms)
	}
	return jsonRoomValues(list), nil
}

func jsonRoomValues(list []any) []string {
	out := make([]string, 0, len(list))
	for _, r := range list {
		switch r := r.(type) {
		case string:
			out = append(out, r)
		case float64:
			out = append(out, fmt.Sprint(r))
		}
	}
	return out
}

// jsonRoomOrRooms reads the room of a sid request: one room, or a list.
func jsonRoomOrRooms(raw json.RawMessage) ([]string, error) {
	raw = json.RawMessage(strings.TrimSpace(string(raw)))
	if len(raw) > 0 && raw[0] == '[' {
		return jsonRooms(raw)
	}
	var one any
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, fmt.Errorf("room: %w", err)
	}
	return jsonRoomValues([]any{one}), nil
}

// roomValue is how a room goes into a sid request: a Node.js node's socket.leave takes
// exactly one room; socket.join takes one or a list.
func roomValue(rooms []string) json.RawMessage {
	var b []byte
	if len(rooms) == 1 {
		b, _ = json.Marshal(rooms[0])
	} else {
		b, _ = json.Marshal(rooms)
	}
	return b
}

func validID(s string) bool { return s != "" && len(s) <= maxIDLen }
