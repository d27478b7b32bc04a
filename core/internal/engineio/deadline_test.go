package engineio_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rtserver/rtserver/core/internal/engineio"
)

// A read deadline left on a websocket by the HTTP layer (nbio arms its idle timeout after
// handing the connection to its poller, which may have upgraded it by then) is taken
// away by the heartbeat: a websocket that answers its pings stays open past it.
func TestWebsocketOutlivesLeftoverReadDeadline(t *testing.T) {
	e := startEnv(t, engineio.Options{PingInterval: 200 * time.Millisecond, PingTimeout: 2 * time.Second})
	ws := e.dialWS("")
	_, open := readWS(t, ws)
	sid := parseOpen(t, open).SID
	c := e.conn(sid)
	c.SetTransportReadDeadline(time.Now().Add(time.Second))

	// Answer every ping for three times the deadline's length.
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		mt, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("websocket closed by the server: %v", err)
		}
		if mt == websocket.TextMessage && string(msg) == "2" {
			writeWS(t, ws, websocket.TextMessage, "3")
		}
	}
}
