package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
)

// The broadcast wire format of @socket.io/redis-adapter 8.x (classic) and
// @socket.io/redis-emitter 5.x: a message published on <prefix>#<nsp># (or
// <prefix>#<nsp>#<room># when it targets exactly one room) whose payload is the MessagePack
// encoding of
//
//	[uid, {type: 2, data: [event, ...args], nsp: "/"}, {rooms: [...], except: [...], flags: {}}]
//
// uid names the publishing node (the emitter's is "emitter"); a node drops its own.
// Only the main namespace "/" exists in this product.

// packetEvent is the Socket.IO EVENT packet type; packetBinaryEvent may come from a Node
// node whose arguments hold buffers.
const (
	packetEvent       = 2
	packetBinaryEvent = 5
	mainNamespace     = "/"
)

// broadcastChannel is the channel a broadcast to rooms is published on: the one for all
// nodes, or the room's own when there is exactly one room.
func broadcastChannel(prefix string, rooms []string) string {
	base := prefix + "#" + mainNamespace + "#"
	if len(rooms) == 1 {
		return base + rooms[0] + "#"
	}
	return base
}

// encodeBroadcast builds the message for a broadcast of event with one JSON argument. The
// JSON is re-encoded as MessagePack values (integers in their shortest form, other numbers
// as float64, object keys sorted) so that a Node node decodes the same argument.
//
// countID, when not empty, asks the nodes of this product to answer with the number of
// sockets they reached (see Adapter.BroadcastCount). With openOffset the options end with
// the key "offset" and no value yet: the recovery log's offset is appended to the message
// as a str8 once Redis has given it (recovery.go). Both are extra keys of the options,
// which Node.js nodes ignore; "offset" must stay the last.
func encodeBroadcast(uid string, rooms, except []string, event string, data json.RawMessage, countID string, openOffset bool) ([]byte, error) {
	var arg any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&arg); err != nil {
		return nil, fmt.Errorf("cluster: broadcast data: %w", err)
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	w := &writer{enc: enc}
	w.arrayLen(3)
	w.str(uid)
	// The packet, keys in the order socket.io builds it.
	w.mapLen(3)
	w.str("type")
	w.int(packetEvent)
	w.str("data")
	w.arrayLen(2)
	w.str(event)
	w.value(arg)
	w.str("nsp")
	w.str(mainNamespace)
	// The broadcast options, in the adapter's order.
	n := 3
	if countID != "" {
		n++
	}
	if openOffset {
		n++
	}
	w.mapLen(n)
	w.str("rooms")
	w.strings(rooms)
	w.str("except")
	w.strings(except)
	w.str("flags")
	w.mapLen(0)
	if countID != "" {
		w.str(countKey)
		w.str(countID)
	}
	if openOffset {
		w.str("offset")
	}
	if w.err != nil {
		return nil, w.err
	}
	return buf.Bytes(), nil
}

// writer keeps the first encoding error so the layout above reads as a list.
type writer struct {
	enc *msgpack.Encoder
	err error
}

func (w *writer) do(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *writer) arrayLen(n int) { w.do(w.enc.EncodeArrayLen(n)) }
func (w *writer) mapLen(n int)   { w.do(w.enc.EncodeMapLen(n)) }
func (w *writer) str(s string)   { w.do(w.enc.EncodeString(s)) }
func (w *writer) int(n int64)    { w.do(w.enc.EncodeInt(n)) }

func (w *writer) strings(list []string) {
	w.arrayLen(len(list))
	for _, s := range list {
		w.str(s)
	}
}

// value writes a value decoded from JSON with UseNumber.
func (w *writer) value(v any) {
	switch v := v.(type) {
	case nil:
		w.do(w.enc.EncodeNil())
	case bool:
		w.do(w.enc.EncodeBool(v))
	case string:
		w.str(v)
	case json.Number:
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			w.int(n)
			return
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			w.do(fmt.Errorf("cluster: number %s: %w", v, err))
			return
		}
		// A JavaScript number with no fraction (1e3) is an integer to notepack too.
		if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
			w.int(int64(f))
			return
		}
		w.do(w.enc.EncodeFloat64(f))
	case []any:
		w.arrayLen(len(v))
		for _, e := range v {
			w.value(e)
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		w.mapLen(len(keys))
		for _, k := range keys {
			w.str(k)
			w.value(v[k])
		}
	default:
		w.do(fmt.Errorf("cluster: unexpected JSON value %T", v))
	}
}

// broadcast is a decoded broadcast message.
type broadcast struct {
	uid    string
	event  string
	args   []any // as MessagePack decoded them: maps, slices, []byte for binary, numbers
	rooms  []string
	except []string
	// countID asks for a BROADCAST_CLIENT_COUNT answer (an extension of this product).
	countID string
	offset  string // the recovery log's offset of a logged broadcast (recovery.go)
}

// countKey is the broadcast option that carries countID.
const countKey = "countRequestId"

var errIgnored = errors.New("cluster: not an event of the main namespace")

// decodeBroadcast reads a broadcast message; errIgnored for one this product has nothing to
// deliver for (another namespace, not an event).
func decodeBroadcast(msg []byte) (*broadcast, error) {
	var parts []any
	if err := msgpack.Unmarshal(msg, &parts); err != nil {
		return nil, fmt.Errorf("cluster: broadcast: %w", err)
	}
	if len(parts) < 3 {
		return nil, fmt.Errorf("cluster: broadcast has %d parts, want 3", len(parts))
	}
	b := &broadcast{}
	b.uid, _ = parts[0].(string)
	packet, ok := parts[1].(map[string]any)
	if !ok {
		return nil, errors.New("cluster: broadcast packet is not a map")
	}
	if nsp, ok := packet["nsp"]; ok && nsp != mainNamespace {
		return nil, errIgnored
	}
	switch t, _ := toInt(packet["type"]); t {
	case packetEvent, packetBinaryEvent:
	default:
		return nil, errIgnored
	}
	data, ok := packet["data"].([]any)
	if !ok || len(data) == 0 {
		return nil, errors.New("cluster: broadcast packet has no event")
	}
	if b.event, ok = data[0].(string); !ok {
		return nil, errors.New("cluster: broadcast event name is not a string")
	}
	b.args = data[1:]
	opts, _ := parts[2].(map[string]any)
	b.rooms = roomList(opts["rooms"])
	b.except = roomList(opts["except"])
	if id, ok := opts[countKey].(string); ok && validID(id) {
		b.countID = id
	}
	b.offset, _ = opts["offset"].(string)
	return b, nil
}

// roomList reads a list of rooms; a Node node may name a room with a number.
func roomList(v any) []string {
	list, _ := v.([]any)
	if len(list) == 0 {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, r := range list {
		switch r := r.(type) {
		case string:
			out = append(out, r)
		default:
			out = append(out, fmt.Sprint(r))
		}
	}
	return out
}

func toInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint64:
		return int64(v), true
	case float64:
		return int64(v), v == float64(int64(v))
	}
	return 0, false
}
