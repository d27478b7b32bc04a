package conformance_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The Socket.IO checks of the Socket.IO protocol test suite (socketio/socket.io-protocol,
// test-suite/test-suite.js) against /socket.io/, and the Socket.IO cases of the reference
// server (socket.io 4.8, socket.io-parser) the protocol layer follows.

func TestSocketIOConnect(t *testing.T) {
	s := start(t)
	for _, tc := range []struct{ connect, reply, auth string }{
		{"40", "40", `42["auth",{}]`},
		{`40{"token":"123"}`, "40", `42["auth",{"token":"123"}]`},
		{"40/custom,", "40/custom,", `42/custom,["auth",{}]`},
		{`40/custom,{"token":"abc"}`, "40/custom,", `42/custom,["auth",{"token":"abc"}]`},
	} {
		w := s.open("/socket.io/", "")
		w.read()
		w.send(tc.connect)
		m := w.read()
		rest, ok := strings.CutPrefix(m, tc.reply)
		var h map[string]any
		if !ok || json.Unmarshal([]byte(rest), &h) != nil || len(h) != 1 || h["sid"] == "" {
			t.Errorf("%s: CONNECT reply %q, want %s{\"sid\":...} alone", tc.connect, m, tc.reply)
		}
		if m := w.read(); m != tc.auth {
			t.Errorf("%s: auth packet %q, want %q", tc.connect, m, tc.auth)
		}
	}
	// An unknown namespace is refused, the session stays.
	w := s.open("/socket.io/", "")
	w.read()
	w.send("40/random")
	if m := w.read(); m != `44/random,{"message":"Invalid namespace"}` {
		t.Errorf("unknown namespace: %q", m)
	}
	// An invalid handshake closes.
	w = s.open("/socket.io/", "")
	w.read()
	w.send("4abc")
	w.closed()
	// So does no handshake (connectTimeout), a session that answers its pings too.
	w = s.open("/socket.io/", "")
	w.read()
	start := time.Now()
	for {
		m, err := w.readErr()
		if err != nil {
			break
		}
		if m == "2" {
			w.send("3")
		}
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("closed after %v: before connectTimeout (1s)", d)
	}
}

// A DISCONNECT of "/" leaves the session open: the next packet is a ping (issue 14,
// case 2: the whole session used to close).
func TestSocketIODisconnect(t *testing.T) {
	s := start(t)
	w := s.connectIO()
	w.send("41")
	if m := w.read(); m != "2" {
		t.Errorf("after DISCONNECT: %q, want a ping", m)
	}
	w.send("3")
	// The namespace can be connected again on the same session.
	w.send("40")
	if m := w.read(); !strings.HasPrefix(m, `40{"sid":"`) {
		t.Fatalf("CONNECT again: %q", m)
	}
	if m := w.readSkipPings(); m != `42["auth",{}]` {
		t.Errorf("auth %q", m)
	}

	// A custom namespace connects and leaves beside "/".
	w = s.connectIO()
	if m := w.read(); m != "2" {
		t.Fatalf("ping %q", m)
	}
	w.send("40/custom")
	if m := w.read(); !strings.HasPrefix(m, `40/custom,{"sid":"`) {
		t.Fatalf("custom CONNECT reply %q", m)
	}
	if m := w.read(); m != `42/custom,["auth",{}]` {
		t.Fatalf("custom auth %q", m)
	}
	w.send("41/custom")
	w.send(`42["message","message to main namespace"]`)
	if m := w.read(); m != `42["message-back","message to main namespace"]` {
		t.Errorf("main after the custom DISCONNECT: %q", m)
	}
}

func TestSocketIOMessages(t *testing.T) {
	s := start(t)
	w := s.connectIO()
	w.send(`42["message",1,"2",{"3":[true]}]`)
	if m := w.readSkipPings(); m != `42["message-back",1,"2",{"3":[true]}]` {
		t.Errorf("plain: %q", m)
	}
	w.send(`42456["message-with-ack",1,"2",{"3":[false]}]`)
	if m := w.readSkipPings(); m != `43456[1,"2",{"3":[false]}]` {
		t.Errorf("ack: %q", m)
	}
	for _, tc := range []struct{ send, want string }{
		{`452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
			`452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`},
		{`452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
			`462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`},
	} {
		w.send(tc.send)
		w.sendBinary([]byte{1, 2, 3})
		w.sendBinary([]byte{4, 5, 6})
		if m := w.readSkipPings(); m != tc.want {
			t.Errorf("binary: %q, want %q", m, tc.want)
		}
		for _, att := range []string{"\x01\x02\x03", "\x04\x05\x06"} {
			if m := w.readSkipPings(); m != att {
				t.Errorf("attachment %q, want %q", m, att)
			}
		}
	}
	// A number is an event name (issue 14, case 5): nothing handles "1", the session
	// stays.
	w.send(`42[1,"x"]`)
	w.send(`42["message","after"]`)
	if m := w.readSkipPings(); m != `42["message-back","after"]` {
		t.Errorf("after a numeric event: %q", m)
	}

	for _, bad := range []string{
		"4abc", "42{}", `42abc["message-with-ack",1,"2",{"3":[false]}]`,
		// The names socket.io-parser reserves (issue 14, case 5).
		`42["connect"]`, `42["connect_error"]`, `42["disconnect"]`, `42["disconnecting"]`,
		`42["newListener"]`, `42["removeListener"]`,
	} {
		w := s.connectIO()
		w.send(bad)
		w.closedQuietly(bad)
	}
}

// A placeholder that names no attachment is refused: the session closes and nothing is
// echoed (issue 14, case 3: the handler got the placeholder object).
func TestSocketIOIllegalAttachments(t *testing.T) {
	s := start(t)
	w := s.connectIO()
	w.send(`451-["message",{"_placeholder":true,"num":7}]`)
	w.sendBinary([]byte{1})
	w.closedQuietly("illegal attachments")
}
