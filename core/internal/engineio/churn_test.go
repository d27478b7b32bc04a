package engineio_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rtserver/rtserver/core/internal/engineio"
)

// replyAndClose answers every message, then closes the session gracefully: the server
// writes from a handler goroutine to peers that may already be gone.
type replyAndClose struct{}

func (replyAndClose) OnOpen(*engineio.Conn) {}
func (replyAndClose) OnMessage(c *engineio.Conn, data []byte, binary bool) {
	_ = c.Send(engineio.NewMessage(data, binary))
	c.Close("bye")
}
func (replyAndClose) OnClose(*engineio.Conn, string) {}

// TestChurnLosesNoDial is the regression test for a lost connection under churn: a
// client that closes without reading makes the server's next write fail (EPIPE), nbio
// then closes the fd on the writing goroutine while its poller may still hold the peer's
// hang-up event for that fd; without the accept fence (fence_unix.go) the next accepted
// connection, given the same fd number, was closed by that stale event and the client's
// dial failed with "unexpected EOF" (about 1 in 2,000).
func TestChurnLosesNoDial(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 500
	}
	eio := engineio.NewServer(engineio.Options{}, replyAndClose{})
	u := serveEngine(t, eio)
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	fails := 0
	for i := 0; i < n; i++ {
		ws, _, err := dialer.Dial(u, nil)
		if err != nil {
			fails++
			t.Errorf("dial %d: %v", i, err)
			if fails > 5 {
				t.FailNow()
			}
			continue
		}
		_, _, _ = ws.ReadMessage() // open packet
		_ = ws.WriteMessage(websocket.TextMessage, []byte("4hello"))
		if i%2 == 0 {
			_, _, _ = ws.ReadMessage()
		}
		_ = ws.Close() // unread data makes this a reset: the server's writes fail
	}
	// Every session is closed: gracefully by the handler or by the peer's reset.
	deadline := time.Now().Add(5 * time.Second)
	for eio.Count() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c := eio.Count(); c != 0 {
		t.Errorf("%d sessions still open", c)
	}
}

// BenchmarkChurnDial measures a fresh websocket session per iteration (dial, open packet,
// close): the accept path, including the accept fence's poller round trip.
func BenchmarkChurnDial(b *testing.B) {
	eio := engineio.NewServer(engineio.Options{}, replyAndClose{})
	u := serveEngine(b, eio)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ws, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _, _ = ws.ReadMessage()
		_ = ws.Close()
	}
}
