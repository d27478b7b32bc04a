package socketio

// Cases where the reference server (socket.io 4.8, socket.io-parser) behaves in a way
// clients notice, checked through real sockets.

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A client DISCONNECT of "/" detaches its socket only: the session stays, with its
// heartbeats, and may CONNECT again. With no socket left it must do so within
// ConnectTimeout, as after the handshake (the reference would keep it open forever).
func TestRawClientDisconnectKeepsSession(t *testing.T) {
	reasons := make(chan string, 4)
	srv, url := startServer(t, Options{PingInterval: 100 * time.Millisecond, ConnectTimeout: 600 * time.Millisecond}, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			so.OnDisconnect(func(_ *Socket, reason string) { reasons <- reason })
			so.On("echo", func(so *Socket, a Args, _ Ack) { _ = so.Emit("echo", a.Values()...) })
		})
	})
	r := dialRaw(t, url)
	id := r.connect("")
	r.send("1")
	if got := recv(t, reasons, "OnDisconnect"); got != ReasonClientDisconnect {
		t.Errorf("reason %q", got)
	}
	eventually(t, "socket removed", func() bool { return srv.Socket(id) == nil })
	// The session is alive: the server keeps pinging it.
	_ = r.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := r.ws.ReadMessage(); err != nil || string(b) != "2" {
		t.Fatalf("after DISCONNECT: %q %v, want a ping", b, err)
	}
	writeText(t, r.ws, "3")
	// And it connects again, with a new socket.
	if id2 := r.connect(""); id2 == id {
		t.Errorf("same id after reconnecting: %s", id2)
	}
	r.send(`2["echo","again"]`)
	if m := r.readText(); m != `42["echo","again"]` {
		t.Errorf("got %q", m)
	}
	// Without a socket it is closed after ConnectTimeout, pings answered or not.
	r.send("1")
	if got := recv(t, reasons, "OnDisconnect"); got != ReasonClientDisconnect {
		t.Errorf("reason %q", got)
	}
	r.expectClosed()
}

func writeText(t *testing.T, ws *websocket.Conn, s string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

// A placeholder naming no attachment is refused like the reference parser does
// ("illegal attachments"): the session closes and no handler sees the packet.
func TestRawIllegalPlaceholder(t *testing.T) {
	_, url := echoServer(t, Options{})
	for _, tc := range []struct{ pkt string }{
		{`51-["x",{"_placeholder":true,"num":7}]`},
		{`51-["x",{"_placeholder":true,"num":1}]`},
		{`51-["x",{"deep":[{"_placeholder":true,"num":-1}]}]`},
		{`51-3["x",{"_placeholder":true,"num":"0"}]`},
	} {
		r := dialRaw(t, url)
		r.connect("")
		r.send(tc.pkt)
		r.sendBinary([]byte{1})
		r.expectClosed()
	}
	// A valid one still goes through.
	r := dialRaw(t, url)
	r.connect("")
	r.send(`51-["x",{"_placeholder":true,"num":0}]`)
	r.sendBinary([]byte{1})
	if m := r.readText(); m != `451-["x:back",{"_placeholder":true,"num":0}]` {
		t.Errorf("got %q", m)
	}
}

// Event names follow the reference parser: a number is a name, the reserved names close.
func TestRawEventNames(t *testing.T) {
	_, url := echoServer(t, Options{})
	r := dialRaw(t, url)
	r.connect("")
	r.send(`2[1,"a"]`)
	if m := r.readText(); m != `42["1:back","a"]` {
		t.Errorf("numeric event: got %q", m)
	}
	for _, name := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
		r := dialRaw(t, url)
		r.connect("")
		r.send(`2["` + name + `",1]`)
		r.expectClosed()
	}
}

// Namespaces of Options.Namespaces connect beside "/", and leave on their own.
func TestRawNamespaces(t *testing.T) {
	auths := make(chan string, 4)
	srv, url := startServer(t, Options{Namespaces: []string{"/custom"}}, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			auths <- so.Namespace()
			so.OnAny(func(so *Socket, event string, a Args, ack Ack) {
				if ack != nil {
					_ = ack(a.Values()...)
					return
				}
				_ = so.Emit(event+":back", a.Values()...)
			})
			so.Join("room") // no-op outside "/"
		})
	})
	r := dialRaw(t, url)
	r.send(`0/custom,{"token":"abc"}`)
	if m := r.readText(); !strings.HasPrefix(m, `40/custom,{"sid":"`) {
		t.Fatalf("CONNECT reply %q", m)
	}
	if ns := recv(t, auths, "connection"); ns != "/custom" {
		t.Errorf("namespace %q", ns)
	}
	r.connect("")
	recv(t, auths, "connection")
	r.send(`2/custom,["e",1]`)
	if m := r.readText(); m != `42/custom,["e:back",1]` {
		t.Errorf("got %q", m)
	}
	r.send(`51-/custom,4["e",{"_placeholder":true,"num":0}]`)
	r.sendBinary([]byte{9})
	if m := r.readText(); m != `461-/custom,4[{"_placeholder":true,"num":0}]` {
		t.Errorf("got %q", m)
	}
	if m, bin, err := r.next(); err != nil || !bin || m != "\x09" {
		t.Errorf("attachment %q %v %v", m, bin, err)
	}
	if n := srv.RoomSize("room"); n != 1 {
		t.Errorf("room size %d: only the socket of / is in it", n)
	}
	if _, err := srv.Emit("all"); err != nil {
		t.Fatal(err)
	}
	if m := r.readText(); m != `42["all"]` {
		t.Errorf("broadcast got %q", m)
	}
	r.send("1/custom,")
	r.send(`2["main"]`)
	if m := r.readText(); m != `42["main:back"]` {
		t.Errorf("got %q", m)
	}
	// A packet for a namespace that is not connected closes the session.
	r.send(`2/custom,["late"]`)
	r.expectClosed()
}
