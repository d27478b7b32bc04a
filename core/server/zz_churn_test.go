package server_test

import (
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

func churn(t *testing.T, name string, n int, fn func(ws *websocket.Conn, tok string)) {
	e := startServer(t, nil)
	u := "ws" + strings.TrimPrefix(e.url, "http") + "/socket.io/?EIO=4&transport=websocket"
	tok := token(t, "c")
	fails := 0
	for i := 0; i < n; i++ {
		ws, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			fails++
			continue
		}
		fn(ws, tok)
		ws.Close()
	}
	t.Logf("%s: %d of %d dials failed", name, fails, n)
}

func TestChurn3(t *testing.T) {
	churn(t, "connect-malformed-close", 4000, func(ws *websocket.Conn, tok string) {
		ws.ReadMessage()
		ws.WriteMessage(websocket.TextMessage, []byte(`40{"token":"`+tok+`"}`))
		ws.WriteMessage(websocket.TextMessage, []byte(`42["x",`))
	})
	churn(t, "connect-read-malformed-read-close", 4000, func(ws *websocket.Conn, tok string) {
		ws.ReadMessage()
		ws.WriteMessage(websocket.TextMessage, []byte(`40{"token":"`+tok+`"}`))
		ws.ReadMessage()
		ws.WriteMessage(websocket.TextMessage, []byte(`42["x",`))
		ws.ReadMessage()
	})
	churn(t, "connect-read-malformed-close", 4000, func(ws *websocket.Conn, tok string) {
		ws.ReadMessage()
		ws.WriteMessage(websocket.TextMessage, []byte(`40{"token":"`+tok+`"}`))
		ws.ReadMessage()
		ws.WriteMessage(websocket.TextMessage, []byte(`42["x",`))
	})
	churn(t, "eio-malformed-read-close", 4000, func(ws *websocket.Conn, tok string) {
		ws.ReadMessage()
		ws.WriteMessage(websocket.TextMessage, []byte(`4zzz`))
		ws.ReadMessage()
	})
}

func TestChurn2(t *testing.T) {
	e := startServer(t, nil)
	u := "ws" + strings.TrimPrefix(e.url, "http") + "/socket.io/?EIO=4&transport=websocket"
	fails := 0
	for i := 0; i < 5000; i++ {
		ws, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			fails++
			t.Logf("dial %d: %v", i, err)
			continue
		}
		ws.ReadMessage()
		ws.WriteMessage(websocket.TextMessage, []byte(`40{"token":"`+token(t, "c")+`"}`))
		if i%3 == 0 {
			ws.ReadMessage()
		}
		ws.WriteMessage(websocket.TextMessage, []byte(`42["x",`))
		if i%2 == 0 {
			ws.ReadMessage()
		}
		ws.Close()
	}
	if fails > 0 {
		t.Fatalf("%d dials failed", fails)
	}
}
