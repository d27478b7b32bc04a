package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// PacketType is the Socket.IO v5 packet type (the first character of a text packet).
type PacketType byte

// Socket.IO v5 packet types.
const (
	PacketConnect      PacketType = 0
	PacketDisconnect   PacketType = 1
	PacketEvent        PacketType = 2
	PacketAck          PacketType = 3
	PacketConnectError PacketType = 4
	PacketBinaryEvent  PacketType = 5
	PacketBinaryAck    PacketType = 6
)

func (t PacketType) String() string {
	switch t {
	case PacketConnect:
		return "CONNECT"
	case PacketDisconnect:
		return "DISCONNECT"
	case PacketEvent:
		return "EVENT"
	case PacketAck:
		return "ACK"
	case PacketConnectError:
		return "CONNECT_ERROR"
	case PacketBinaryEvent:
		return "BINARY_EVENT"
	case PacketBinaryAck:
		return "BINARY_ACK"
	}
	return "UNKNOWN(" + strconv.Itoa(int(t)) + ")"
}

// ErrParse is wrapped by every decoding error.
var ErrParse = errors.New("socket.io parse error")

// maxAttachments bounds the attachments one packet may announce; engineio's MaxPayload
// bounds their size.
const maxAttachments = 1000

// maxAckID is the largest ack id accepted: JavaScript clients count in doubles, so ids
// beyond 2^53 cannot come from a real client.
const maxAckID = 1<<53 - 1

// Packet is one decoded text packet. Data is the raw JSON payload (nil when absent); for
// EVENT/ACK packets Args holds the split array elements (sub-slices of Data).
type Packet struct {
	Type        PacketType
	Namespace   string // "/" when absent
	Attachments int    // BINARY_EVENT / BINARY_ACK only
	ID          uint64
	HasID       bool
	Data        []byte
	Args        []json.RawMessage // EVENT, BINARY_EVENT, ACK, BINARY_ACK
	Depth       int               // the deepest nesting of objects and arrays within an Args element
	Members     Members           // EVENT, BINARY_EVENT: see Options.ArgMembers
	Event       string            // EVENT, BINARY_EVENT: the decoded first argument
}

func parseErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrParse}, a...)...)
}

// DecodePacket parses one text packet (without the Engine.IO '4' prefix). It never
// panics and returns an error wrapping ErrParse for anything a v5 peer would not send.
// The returned Packet aliases b.
func DecodePacket(b []byte) (Packet, error) { return decodePacket(b, nil) }

// decodePacket is DecodePacket that also picks up, in the same pass, the members of an
// EVENT's first argument that memberKeys names for its event (Options.ArgMembers).
func decodePacket(b []byte, memberKeys map[string][]string) (Packet, error) {
	return decodePacketNames(b, memberKeys, nil)
}

// decodePacketNames is decodePacket that takes an EVENT's name from names (nameTable)
// when it is there, instead of allocating it.
func decodePacketNames(b []byte, memberKeys map[string][]string, names map[string]string) (Packet, error) {
	var p Packet
	if len(b) == 0 {
		return p, parseErr("empty packet")
	}
	if b[0] < '0' || b[0] > '6' {
		return p, parseErr("unknown packet type %q", b[0])
	}
	p.Type = PacketType(b[0] - '0')
	i := 1
	if p.Type == PacketBinaryEvent || p.Type == PacketBinaryAck {
		start := i
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			n = n*10 + int(b[i]-'0')
			if n > maxAttachments {
				return p, parseErr("too many attachments")
			}
			i++
		}
		if i == start || i >= len(b) || b[i] != '-' {
			return p, parseErr("illegal attachments")
		}
		i++
		p.Attachments = n
	}
	p.Namespace = "/"
	if i < len(b) && b[i] == '/' {
		start := i
		for i < len(b) && b[i] != ',' {
			i++
		}
		p.Namespace = string(b[start:i])
		if i < len(b) {
			i++ // the ','
		}
	}
	if i < len(b) && b[i] >= '0' && b[i] <= '9' {
		var id uint64
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			id = id*10 + uint64(b[i]-'0')
			if id > maxAckID {
				return p, parseErr("ack id too large")
			}
			i++
		}
		p.ID, p.HasID = id, true
	}
	if i < len(b) {
		p.Data = b[i:]
	}
	switch p.Type {
	case PacketConnect:
		if p.HasID {
			return p, parseErr("ack id on CONNECT")
		}
		if p.Data != nil && !isObject(p.Data) {
			return p, parseErr("invalid CONNECT payload")
		}
	case PacketDisconnect:
		if p.Data != nil || p.HasID {
			return p, parseErr("invalid DISCONNECT payload")
		}
	case PacketConnectError:
		if p.HasID || (p.Data != nil && !validJSON(p.Data)) {
			return p, parseErr("invalid CONNECT_ERROR payload")
		}
	case PacketEvent, PacketBinaryEvent:
		sp, err := splitArrayNames(p.Data, true, memberKeys, names)
		if errors.Is(err, errBadEvent) {
			return p, parseErr("invalid event name")
		}
		if err != nil || len(sp.elems) == 0 {
			return p, parseErr("invalid EVENT payload")
		}
		p.Event, p.Args, p.Depth, p.Members = sp.event, sp.elems[1:], sp.depth, sp.members
	case PacketAck, PacketBinaryAck:
		if !p.HasID {
			return p, parseErr("ACK without id")
		}
		sp, err := splitArray(p.Data, false, nil)
		if err != nil {
			return p, parseErr("invalid ACK payload")
		}
		p.Args, p.Depth = sp.elems, sp.depth
	}
	return p, nil
}

// reservedEvents are the event names the reference parser refuses from a peer: the
// client and Node's EventEmitter give them meanings of their own.
var reservedEvents = [...]string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}

// eventName reads an EVENT's first element as the reference parser does: a string that is
// not reserved, or a number, named by its JavaScript text ("1", "2.5").
func eventName(raw json.RawMessage, names map[string]string) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	if raw[0] == '"' {
		ev, ok := internedString(raw, names)
		if !ok {
			ev, ok = unquoteString(raw)
		}
		if !ok || slices.Contains(reservedEvents[:], ev) {
			return "", false
		}
		return ev, true
	}
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return "", false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) {
		return "", false
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f+0, 'f', -1, 64), true // +0: -0 is "0"
	}
	return strconv.FormatFloat(f, 'g', -1, 64), true
}

// validPlaceholders reports whether every placeholder in args ({"_placeholder":true,
// "num":N}, at any depth) names one of n attachments: N an integer, 0 <= N < n. The
// reference parser refuses a packet with any other ("illegal attachments").
func validPlaceholders(args []json.RawMessage, n int) bool {
	for _, raw := range args {
		if !bytes.Contains(raw, placeholderKey) {
			continue
		}
		var v any
		if json.Unmarshal(raw, &v) != nil || !placeholdersIn(v, n) {
			return false
		}
	}
	return true
}

func placeholdersIn(v any, n int) bool {
	switch x := v.(type) {
	case map[string]any:
		if ph, _ := x["_placeholder"].(bool); ph {
			num, ok := x["num"].(float64)
			return ok && num >= 0 && num < float64(n) && num == math.Trunc(num)
		}
		for _, e := range x {
			if !placeholdersIn(e, n) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !placeholdersIn(e, n) {
				return false
			}
		}
	}
	return true
}

func isObject(b []byte) bool {
	i := skipSpace(b, 0)
	return i < len(b) && b[i] == '{' && validJSON(b)
}

// encoder builds outbound packets. Arguments are marshalled once; the common argument
// types (strings, numbers, bools, raw JSON, byte slices) skip reflection.
type encoder struct {
	buf         []byte
	attachments [][]byte
}

// JSONAppender is an argument that writes its own JSON text (valid JSON, no binary
// parts): what the server sends on every connect uses it to skip encoding/json's
// reflection.
type JSONAppender interface {
	AppendJSON(dst []byte) []byte
	// JSONLen is about the length AppendJSON adds, so that the packet's buffer is sized once.
	JSONLen() int
}

// AppendJSONString appends s as a JSON string.
func AppendJSONString(dst []byte, s string) []byte { return appendString(dst, s) }

// appendArg appends one argument as JSON; []byte values (also inside map[string]any and
// []any) become placeholders with the bytes collected as attachments.
func (e *encoder) appendArg(v any) error {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case JSONAppender:
		e.buf = x.AppendJSON(e.buf)
	case string:
		e.buf = appendString(e.buf, x)
	case json.RawMessage:
		if len(x) == 0 {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		if !validJSON(x) {
			return fmt.Errorf("socketio: argument is not valid JSON")
		}
		e.buf = append(e.buf, x...)
	case []byte:
		e.buf = append(e.buf, `{"_placeholder":true,"num":`...)
		e.buf = strconv.AppendInt(e.buf, int64(len(e.attachments)), 10)
		e.buf = append(e.buf, '}')
		e.attachments = append(e.attachments, x)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case uint:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint64:
		e.buf = strconv.AppendUint(e.buf, x, 10)
	case uint32:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("socketio: unsupported float value %v", x)
		}
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Errorf("socketio: encode argument: %w", err)
		}
		e.buf = append(e.buf, b...)
	case map[string]any:
		if !containsBytes(x) {
			return e.marshal(x)
		}
		e.buf = append(e.buf, '{')
		first := true
		for k, val := range x {
			if !first {
				e.buf = append(e.buf, ',')
			}
			first = false
			e.buf = appendString(e.buf, k)
			e.buf = append(e.buf, ':')
			if err := e.appendArg(val); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, '}')
	case []any:
		if !containsBytes(x) {
			return e.marshal(x)
		}
		e.buf = append(e.buf, '[')
		for i, val := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.appendArg(val); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
	default:
		return e.marshal(x)
	}
	return nil
}

func (e *encoder) marshal(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("socketio: encode argument: %w", err)
	}
	e.buf = append(e.buf, b...)
	return nil
}

// containsBytes reports whether v holds a []byte inside maps and slices of any.
func containsBytes(v any) bool {
	switch x := v.(type) {
	case []byte:
		return true
	case map[string]any:
		for _, val := range x {
			if containsBytes(val) {
				return true
			}
		}
	case []any:
		for _, val := range x {
			if containsBytes(val) {
				return true
			}
		}
	}
	return false
}

// encoded is an outbound EVENT/ACK packet: its text is buf[off:], with at least
// engineio.FrameHeadroom free bytes in front for the websocket frame header.
type encoded struct {
	buf  []byte
	off  int
	atts [][]byte
}

// data is the packet's text.
func (e encoded) data() []byte { return e.buf[e.off:] }

// messages wraps the packet and its attachments for sending; the text's websocket frame
// is built in place, in front of it, when off leaves room for it (engineio.FrameHeadroom),
// else copied. Framing in place happens once per buffer: a replay of logged bytes wraps
// them with off 0.
func (e encoded) messages() []*engineio.Message {
	msgs := make([]*engineio.Message, 1+len(e.atts))
	msgs[0] = engineio.NewFramedMessage(e.buf, e.off)
	for i, a := range e.atts {
		msgs[i+1] = engineio.NewMessage(a, true)
	}
	return msgs
}

// encodePacket builds a whole EVENT/ACK packet of the main namespace: prefix, optional
// event name, args and an optional trailing offset string (connection state recovery).
//
// typ is PacketEvent or PacketAck; it becomes the binary variant when attachments appear.
func encodePacket(typ PacketType, id uint64, hasID bool, event *string, args []any, offset string) (encoded, error) {
	return encodeNspPacket(typ, "/", id, hasID, event, args, offset)
}

// encodeNspPacket is encodePacket for namespace nsp.
func encodeNspPacket(typ PacketType, nsp string, id uint64, hasID bool, event *string, args []any, offset string) (encoded, error) {
	// The attachment count is only known after the args are encoded, so the args are
	// written after some headroom and the prefix goes right in front of them; in front
	// of that, room for the websocket frame header.
	prefixRoom := 48 // type + attachment count + '-' + ack id
	if nsp != "/" {
		prefixRoom += len(nsp) + 1
	}
	headroom := engineio.FrameHeadroom + prefixRoom
	size := headroom + 2 + len(offset) + 3 + argsSize(args)
	if event != nil {
		size += len(*event) + 3
	}
	e := encoder{buf: make([]byte, headroom, size)}
	e.buf = append(e.buf, '[')
	n := 0
	if event != nil {
		e.buf = appendString(e.buf, *event)
		n++
	}
	for _, a := range args {
		if n > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.appendArg(a); err != nil {
			return encoded{}, err
		}
		n++
	}
	if offset != "" {
		if n > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendString(e.buf, offset)
	}
	e.buf = append(e.buf, ']')
	if len(e.attachments) > 0 {
		typ += 3 // EVENT->BINARY_EVENT, ACK->BINARY_ACK
	}
	var pb [64]byte
	prefix := append(pb[:0], byte('0'+typ))
	if len(e.attachments) > 0 {
		prefix = strconv.AppendInt(prefix, int64(len(e.attachments)), 10)
		prefix = append(prefix, '-')
	}
	if nsp != "/" {
		prefix = append(prefix, nsp...)
		prefix = append(prefix, ',')
	}
	if hasID {
		prefix = strconv.AppendUint(prefix, id, 10)
	}
	start := headroom - len(prefix)
	copy(e.buf[start:], prefix)
	return encoded{buf: e.buf, off: start, atts: e.attachments}, nil
}

// argsSize guesses the encoded size of args, so that the packet's buffer is allocated
// once in the common cases (raw JSON and strings, as the hub sends).
func argsSize(args []any) int {
	n := 0
	for _, a := range args {
		switch x := a.(type) {
		case json.RawMessage:
			n += len(x) + 1
		case string:
			n += len(x) + 3
		case JSONAppender:
			n += x.JSONLen() + 1
		default:
			n += 24
		}
	}
	return n
}

// withNamespace inserts nsp (unless "/") after the type digit of a packet without
// attachments, as a CONNECT reply or a DISCONNECT of that namespace carries it.
func withNamespace(b []byte, nsp string) []byte {
	if nsp == "/" || nsp == "" {
		return b
	}
	out := make([]byte, 0, len(b)+len(nsp)+1)
	out = append(out, b[0])
	out = append(out, nsp...)
	out = append(out, ',')
	return append(out, b[1:]...)
}

// encodeConnect builds a CONNECT reply {"sid":...[,"pid":...]}.
func encodeConnect(sid, pid string) []byte {
	b := make([]byte, 0, 64)
	b = append(b, `0{"sid":`...)
	b = appendString(b, sid)
	if pid != "" {
		b = append(b, `,"pid":`...)
		b = appendString(b, pid)
	}
	return append(b, '}')
}

// encodeConnectError builds CONNECT_ERROR {"message":..., "data":...} for namespace nsp.
func encodeConnectError(nsp, message string, data any) ([]byte, error) {
	b := make([]byte, 0, 64)
	b = append(b, '4')
	if nsp != "/" && nsp != "" {
		b = append(b, nsp...)
		b = append(b, ',')
	}
	b = append(b, `{"message":`...)
	b = appendString(b, message)
	if data != nil {
		d, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("socketio: encode CONNECT_ERROR data: %w", err)
		}
		b = append(b, `,"data":`...)
		b = append(b, d...)
	}
	return append(b, '}'), nil
}
