package server_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// FuzzClientEvents sends arbitrary payloads to every client event the server handles, over
// one real connection. A payload that is not JSON is a malformed packet and may close that
// connection; anything else must be answered (an ack, a reply or an `error` event), and the
// server must keep serving: after each input a ping on a live connection gets its ack.
func FuzzClientEvents(f *testing.F) {
	events := []string{"register", "room:join", "room:leave", "ping", "client:event", "client:message", "client:action", "unknown"}
	seeds := []string{`{}`, `null`, `1`, `"x"`, `[1,2]`, `{"userId":"u"}`, `{"room":"r"}`, `{"room":""}`,
		`{"type":"t","data":{"a":[1,{"b":null}]}}`, `{"content":"c","type":"chat"}`, `{"action":"a","params":[]}`,
		strings.Repeat("[", 200) + strings.Repeat("]", 200), `{"room":"\u0000"}`, `{"type":` + strings.Repeat(`"x`, 10) + `}`}
	for i, s := range seeds {
		f.Add(uint8(i), s)
	}
	e := startServer(f, nil)
	c := e.raw(f, "fuzzer")
	f.Fuzz(func(t *testing.T, which uint8, payload string) {
		if c == nil {
			c = e.raw(t, "fuzzer")
			defer func() { c = nil }() // t's cleanup closes it after this input
		}
		event := events[int(which)%len(events)]
		frame := `42["` + event + `",` + payload + `]`
		if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			c = nil
			return
		}
		// A ping with an ack (id 9) after the input: its answer shows the socket is alive
		// and everything before it was handled.
		if err := c.ws.WriteMessage(websocket.TextMessage, []byte(`429["ping",{}]`)); err != nil {
			c = nil
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			_, b, err := c.ws.ReadMessage()
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("no answer to a ping after %q", frame)
			}
			if err != nil {
				// The connection was closed as a malformed packet; the server must still
				// accept a new one.
				c.close()
				c = nil
				e.raw(t, "fuzzer-after")
				return
			}
			if string(b) == "2" {
				_ = c.ws.WriteMessage(websocket.TextMessage, []byte("3"))
				continue
			}
			if strings.HasPrefix(string(b), "439[") {
				return
			}
		}
	})
}
