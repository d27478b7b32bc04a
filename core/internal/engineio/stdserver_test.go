package engineio_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/rtserver/rtserver/core/internal/engineio"
)

// TestUnderNetHTTP: ServeHTTP also works under a plain net/http server (the websocket then
// runs in nbio's blocking mode, one reading goroutine per connection).
func TestUnderNetHTTP(t *testing.T) {
	rec := newRecorder(t)
	var conns = make(chan *engineio.Conn, 10)
	rec.onOpen = func(c *engineio.Conn) { conns <- c }
	eio := engineio.NewServer(engineio.Options{}, rec)
	hs := httptest.NewServer(eio)
	t.Cleanup(func() {
		eio.Close()
		hs.Close()
	})
	e := &env{t: t, rec: rec, eio: eio, base: hs.URL + "/socket.io/", addr: strings.TrimPrefix(hs.URL, "http://")}
	sid := e.openPolling()
	c := <-conns
	_ = c.Send(engineio.NewMessage([]byte("x"), false))
	if got := e.poll(sid); got != "4x" {
		t.Fatalf("poll %q", got)
	}
	ws := e.dialWS("")
	_, s := readWS(t, ws)
	parseOpen(t, s)
	c = <-conns
	_ = c.Send(engineio.NewMessage([]byte("y"), false))
	if _, s := readWS(t, ws); s != "4y" {
		t.Fatalf("ws got %q", s)
	}
	writeWS(t, ws, websocket.TextMessage, "4z")
	if m := rec.next(t, "message"); m.data != "z" {
		t.Fatalf("message %+v", m)
	}
}
