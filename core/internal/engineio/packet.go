package engineio

import (
	"encoding/base64"
	"errors"
	"fmt"
)

// Packet types of Engine.IO v4, as the ASCII digit that starts a text packet.
const (
	packetOpen    byte = '0'
	packetClose   byte = '1'
	packetPing    byte = '2'
	packetPong    byte = '3'
	packetMessage byte = '4'
	packetUpgrade byte = '5'
	packetNoop    byte = '6'
)

// recordSeparator joins packets in a polling payload (v4 replaced v3's length prefixes).
const recordSeparator byte = 0x1e

// errParse is the root of every decoding error: the session closes with "parse error".
var errParse = errors.New("engineio: parse error")

// packet is one decoded inbound packet. data aliases the input buffer.
type packet struct {
	typ    byte
	data   []byte
	binary bool
}

// decodeText decodes a text packet: a type digit followed by its data.
func decodeText(b []byte) (packet, error) {
	if len(b) == 0 {
		return packet{}, fmt.Errorf("%w: empty packet", errParse)
	}
	if b[0] < packetOpen || b[0] > packetNoop {
		return packet{}, fmt.Errorf("%w: packet type %q", errParse, b[0])
	}
	return packet{typ: b[0], data: b[1:]}, nil
}

// decodePayload splits a polling body into packets and calls fn for each, in order; it
// stops at the first error (from decoding or from fn). A packet starting with 'b' is a
// base64 binary message. Text packet data aliases body; binary data is freshly decoded.
func decodePayload(body []byte, fn func(p packet) error) error {
	if len(body) == 0 {
		return fmt.Errorf("%w: empty payload", errParse)
	}
	for len(body) > 0 {
		i := indexByte(body, recordSeparator)
		var raw []byte
		if i < 0 {
			raw, body = body, nil
		} else {
			raw, body = body[:i], body[i+1:]
			if len(body) == 0 {
				// A trailing separator announces a packet that never came.
				return fmt.Errorf("%w: trailing separator", errParse)
			}
		}
		p, err := decodePollingPacket(raw)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// decodePollingPacket decodes one packet of a polling payload.
func decodePollingPacket(raw []byte) (packet, error) {
	if len(raw) > 0 && raw[0] == 'b' {
		enc := raw[1:]
		dst := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
		n, err := base64.StdEncoding.Decode(dst, enc)
		if err != nil {
			return packet{}, fmt.Errorf("%w: base64: %w", errParse, err)
		}
		return packet{typ: packetMessage, data: dst[:n], binary: true}, nil
	}
	return decodeText(raw)
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
