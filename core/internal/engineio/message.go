package engineio

import (
	"encoding/base64"
	"encoding/binary"
	"sync/atomic"
)

// Message is one outbound packet, encoded once and shareable across sessions: a broadcast
// prepares one Message and sends the same pointer to every recipient. The websocket frame
// and the polling encoding are built on first use and cached, so 1,000 recipients cost one
// encoding of each kind.
type Message struct {
	data   []byte
	typ    byte
	binary bool

	// framed is the websocket frame built at construction around data (NewFramedMessage);
	// nil for other messages, whose frame is built on first use.
	framed []byte
	frame  atomic.Pointer[[]byte] // complete server->client websocket frame (unmasked)
	poll   atomic.Pointer[[]byte] // polling encoding: type+text or 'b'+base64
}

// Shared control packets: they carry no per-session data, so one instance serves all.
var (
	msgPing  = newPacket(packetPing, nil)
	msgNoop  = newPacket(packetNoop, nil)
	msgClose = newPacket(packetClose, nil)
	msgProbe = newPacket(packetPong, []byte("probe"))
)

// NewMessage wraps data as a message packet ('4'). data must not be modified afterwards:
// the Message keeps it and may be sent from several goroutines.
func NewMessage(data []byte, binary bool) *Message {
	return &Message{data: data, typ: packetMessage, binary: binary}
}

// FrameHeadroom is the room NewFramedMessage needs in front of the payload: the longest
// websocket frame header (10 bytes) and the packet type.
const FrameHeadroom = 11

// NewFramedMessage makes a text message packet of buf[off:] whose websocket frame and
// polling encoding are written in place, into the FrameHeadroom bytes in front of it
// (off >= FrameHeadroom; with less room it copies like NewMessage). An encoder that leaves
// that room saves the copy of every outbound packet into its frame. buf must not be
// modified afterwards.
func NewFramedMessage(buf []byte, off int) *Message {
	data := buf[off:]
	if off < FrameHeadroom {
		return NewMessage(data, false)
	}
	buf[off-1] = packetMessage
	n := len(data) + 1
	start := off - 1 - frameHeaderLen(n)
	putFrameHeader(buf[start:off-1], 0x1, n)
	return &Message{data: data, typ: packetMessage, framed: buf[start:]}
}

func newPacket(typ byte, data []byte) *Message {
	return &Message{data: data, typ: typ}
}

// Binary reports whether the message is binary.
func (m *Message) Binary() bool { return m.binary }

// Data returns the message payload; do not modify it.
func (m *Message) Data() []byte { return m.data }

// wsFrame returns the websocket frame: text frames carry the type digit, binary frames
// carry the raw bytes (a binary frame is always a message in v4).
func (m *Message) wsFrame() []byte {
	if m.framed != nil {
		return m.framed
	}
	if p := m.frame.Load(); p != nil {
		return *p
	}
	n := len(m.data)
	opcode := byte(0x1) // text
	if m.binary {
		opcode = 0x2
	} else {
		n++
	}
	hl := frameHeaderLen(n)
	f := make([]byte, hl, hl+n)
	putFrameHeader(f, opcode, n)
	if !m.binary {
		f = append(f, m.typ)
	}
	f = append(f, m.data...)
	// Two goroutines may race to build it; both results are identical, keep the first.
	m.frame.CompareAndSwap(nil, &f)
	return *m.frame.Load()
}

// frameHeaderLen is the length of a server frame's header for a payload of n bytes.
func frameHeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	}
	return 10
}

// putFrameHeader writes a final, unmasked frame's header for a payload of n bytes into h,
// which is frameHeaderLen(n) long.
func putFrameHeader(h []byte, opcode byte, n int) {
	h[0] = 0x80 | opcode // FIN, no fragmentation
	switch len(h) {
	case 2:
		h[1] = byte(n)
	case 4:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
}

// wsPayload returns the websocket message payload without the frame header.
func (m *Message) wsPayload() []byte {
	f := m.wsFrame()
	switch f[1] {
	case 126:
		return f[4:]
	case 127:
		return f[10:]
	}
	return f[2:]
}

// pollEncoding returns the packet as it appears in a polling payload.
func (m *Message) pollEncoding() []byte {
	if m.framed != nil {
		return m.framed[len(m.framed)-len(m.data)-1:] // the type digit and the text
	}
	if p := m.poll.Load(); p != nil {
		return *p
	}
	var e []byte
	if m.binary {
		e = make([]byte, 1+base64.StdEncoding.EncodedLen(len(m.data)))
		e[0] = 'b'
		base64.StdEncoding.Encode(e[1:], m.data)
	} else {
		e = make([]byte, 0, 1+len(m.data))
		e = append(e, m.typ)
		e = append(e, m.data...)
	}
	m.poll.CompareAndSwap(nil, &e)
	return *m.poll.Load()
}

// encodePayload joins packets for a polling response.
func encodePayload(msgs []*Message) []byte {
	n := 0
	for _, m := range msgs {
		n += len(m.pollEncoding()) + 1
	}
	out := make([]byte, 0, n)
	for i, m := range msgs {
		if i > 0 {
			out = append(out, recordSeparator)
		}
		out = append(out, m.pollEncoding()...)
	}
	return out
}
