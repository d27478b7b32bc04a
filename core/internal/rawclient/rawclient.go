// Package rawclient is a test client that speaks Engine.IO v4 / Socket.IO v5 over one
// plain websocket, frame by frame, in the calling goroutine only. Tests use it where
// they need to write exact frames (malformed ones included) or see exact replies,
// which a full client library hides.
package rawclient

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// readWait bounds every read: a test waiting for a frame that never comes fails
// instead of hanging.
const readWait = 5 * time.Second

// Conn is one websocket session. Its methods fail the test on error.
type Conn struct {
	t  testing.TB
	ws *websocket.Conn
}

// Dial opens a websocket session on the server at base ("http://host:port" or
// "ws://host:port") and reads its Engine.IO open packet. The session is closed
// when the test ends.
func Dial(t testing.TB, base string) *Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(strings.TrimPrefix(base, "ws"), "http") +
		"/socket.io/?EIO=4&transport=websocket"
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &Conn{t: t, ws: ws}
	t.Cleanup(c.Close)
	if f := c.Read(); !strings.HasPrefix(f, "0{") {
		t.Fatalf("handshake %q", f)
	}
	return c
}

// Connect sends a CONNECT to the main namespace with that auth object and returns
// the reply packet (CONNECT or CONNECT_ERROR).
func (c *Conn) Connect(authJSON string) string {
	c.t.Helper()
	c.Send("40" + authJSON)
	return c.Read()
}

// Send writes one text frame.
func (c *Conn) Send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Emit sends an EVENT with one argument, given as JSON.
func (c *Conn) Emit(event, argJSON string) { c.Send(`42["` + event + `",` + argJSON + `]`) }

// Read returns the next frame that is not a heartbeat; pings are answered so that a
// slow test is not dropped by the server.
func (c *Conn) Read() string {
	c.t.Helper()
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(readWait))
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if string(b) == "2" {
			c.Send("3")
			continue
		}
		return string(b)
	}
}

// Expect reads until an EVENT named event arrives and returns its whole frame.
func (c *Conn) Expect(event string) string {
	c.t.Helper()
	for i := 0; i < 100; i++ {
		if f := c.Read(); strings.HasPrefix(f, `42["`+event+`"`) {
			return f
		}
	}
	c.t.Fatalf("no %q", event)
	return ""
}

// Closed waits for the server to close the session; it fails the test if the session
// is still open after the read deadline.
func (c *Conn) Closed() {
	c.t.Helper()
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(readWait))
		if _, _, err := c.ws.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatal("still connected")
			}
			return
		}
	}
}

// Close closes the websocket from the client side.
func (c *Conn) Close() { _ = c.ws.Close() }

// WS is the underlying websocket, for tests that drive frames without the checks above.
func (c *Conn) WS() *websocket.Conn { return c.ws }
